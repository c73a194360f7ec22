import ZonegatePolicy

/// What the kernel does with a flow that the verdict table finds.
public enum TableAction: String, Hashable, Sendable {
    case accept
    /// Would be denied, but only by zones in audit mode: log, then pass.
    case audit
}

/// One element of the kernel's verdict map: flows from one identity to another, over a range of
/// IP protocols and destination ports. Flows no element covers are denied.
public struct VerdictEntry: Hashable, Sendable {
    public var source: UInt32
    public var destination: UInt32
    public var protocols: ClosedRange<UInt8>
    public var ports: ClosedRange<UInt16>
    public var action: TableAction
    /// The rules that allow it (empty for open sides and audit), for the element's comment.
    public var rules: [String]
}

/// A numbered identity as the kernel sees it, with what it stands for (for comments and logs).
public struct NumberedIdentity: Hashable, Sendable {
    public var id: UInt32
    public var peer: PeerClass
    /// `zones: web, api`, `world`, `198.51.100.0/24`, `host`.
    public var summary: String
}

/// The policy applied to an inventory, reduced to what a dataplane looks up: an identity per
/// container address and per range of outside addresses, and verdicts between identities. Its size
/// follows the number of identities and rules, not of containers; a container whose identity
/// already exists adds one address element and nothing else.
public struct VerdictTable: Sendable {
    public static let hostIdentity: UInt32 = 1

    public var identities: [NumberedIdentity]
    /// Every address of every container, with its identity.
    public var containerAddresses: [(address: IPAddress, identity: UInt32, container: String)]
    /// Outside address ranges (IPv4 and IPv6, together covering each family once) and their identity.
    public var outsideRanges: [(low: IPAddress, high: IPAddress, identity: UInt32)]
    public var entries: [VerdictEntry]

    public init(_ evaluator: PolicyEvaluator) {
        self.init(evaluator, checkpoint: {})
    }

    /// `checkpoint` is called now and then (after each source identity's verdicts): throwing from
    /// it abandons the table, so a long compile can stop when its task is cancelled.
    public init<Failure: Error>(_ evaluator: PolicyEvaluator, checkpoint: () throws(Failure) -> Void) throws(Failure) {
        let policy = evaluator.policy
        var classes: [(PeerClass, String)] = evaluator.identities.indices.map { index in
            let identity = evaluator.identities[index]
            let zones = identity.zones.map { policy.zones[$0].name }
            let blocks = identity.cidrBlocks.map { evaluator.cidrBlocks[$0].description }
            return (PeerClass(.container(identity: index)),
                    (zones.isEmpty ? "unzoned" : "zones: " + zones.joined(separator: ", ")) + (blocks.isEmpty ? "" : "; in " + blocks.joined(separator: ", ")))
        }
        let outside = evaluator.outsideClasses()
        for peer in Set(outside.map(\.peerClass)).sorted(by: { "\($0)" < "\($1)" }) {
            guard case .outside(let blocks) = peer.kind else { continue }
            classes.append((peer, blocks.isEmpty ? "world" : blocks.map { evaluator.cidrBlocks[$0].description }.joined(separator: ", ")))
        }
        let numbers = VerdictTable.number(classes.map(\.1))
        let numbered = [NumberedIdentity(id: Self.hostIdentity, peer: .host, summary: "host")]
            + zip(classes, numbers).map { NumberedIdentity(id: $1, peer: $0.0, summary: $0.1) }
        identities = numbered
        let idOfClass = Dictionary(uniqueKeysWithValues: numbered.map { ($0.peer, $0.id) })
        containerAddresses = evaluator.inventory.containers.enumerated().flatMap { index, container in
            container.addresses.map { ($0, idOfClass[PeerClass(.container(identity: evaluator.identityOfContainer[index]))]!, container.name) }
        }
        outsideRanges = outside.map { ($0.low, $0.high, idOfClass[$0.peerClass]!) }
        // Most pairs of a large policy pass nothing (a restricted side, no rule between them): they
        // cost one bitset test. The others' entries are what the table holds.
        let policies = PairPolicies(evaluator, numbered.map(\.peer))
        var entries: [VerdictEntry] = []
        for source in numbered.indices {
            try checkpoint()
            for destination in numbered.indices
            where !policies.untouched(from: source, to: destination) && !policies.deniesEverything(from: source, to: destination) {
                entries += VerdictTable.pairEntries(policies.policy(from: source, to: destination), numbered[source].id, numbered[destination].id)
            }
        }
        self.entries = entries
    }

    /// Stable numbers: each identity's number comes from a hash of what it stands for, so a new
    /// identity does not renumber the others (and so rewrite their elements); collisions take the
    /// next free number, in a fixed order.
    static func number(_ summaries: [String]) -> [UInt32] {
        var taken: Set<UInt32> = [0, hostIdentity]
        var numbers = [UInt32](repeating: 0, count: summaries.count)
        for index in summaries.indices.sorted(by: { summaries[$0] < summaries[$1] }) {
            var candidate = fnv1a(summaries[index]) & 0x7fff_ffff
            while taken.contains(candidate) { candidate = (candidate + 1) & 0x7fff_ffff }
            taken.insert(candidate)
            numbers[index] = candidate
        }
        return numbers
    }

    private static func fnv1a(_ text: String) -> UInt32 {
        text.utf8.reduce(2_166_136_261 as UInt32) { ($0 ^ UInt32($1)) &* 16_777_619 }
    }

    /// The protocols with ports, and their IP protocol numbers.
    public static let portProtocols: [(PortProtocol, UInt8)] = [(.tcp, 6), (.udp, 17), (.sctp, 132)]
    static let icmpProtocols: [UInt8] = [1, 58]

    /// The disjoint entries of one pair: rule-covered ranges accept; the rest is audited or absent.
    static func pairEntries(_ pair: PairPolicy, _ source: UInt32, _ destination: UInt32) -> [VerdictEntry] {
        if pair.untouched { return [] }
        if pair.unrestricted {
            return [VerdictEntry(source: source, destination: destination, protocols: 0...255, ports: 0...65535, action: .accept, rules: [])]
        }
        var entries: [VerdictEntry] = []
        var uncoveredProtocols: [UInt8] = []
        for proto in UInt8.min...UInt8.max {
            let portProtocol = portProtocols.first { $0.1 == proto }?.0 ?? (icmpProtocols.contains(proto) ? .icmp : nil)
            guard let portProtocol else {
                uncoveredProtocols.append(proto)
                continue
            }
            let covering = pair.rules.filter { $0.ports.contains { $0.proto == portProtocol } }
            let covered = PortSet(covering.flatMap(\.ports).filter { $0.proto == portProtocol })
            for range in covered.ranges {
                let ports = portProtocol.hasPorts ? range.low...range.high : 0...65535
                let names = covering.filter { $0.ports.contains { $0.overlaps(range) } }.map(\.name)
                entries.append(VerdictEntry(source: source, destination: destination, protocols: proto...proto, ports: ports, action: .accept, rules: names))
            }
            guard pair.auditsTheRest else { continue }
            let rest = PortSet([.all(portProtocol)]).subtracting(covered).ranges
            if portProtocol.hasPorts {
                for range in rest {
                    entries.append(VerdictEntry(source: source, destination: destination, protocols: proto...proto, ports: range.low...range.high, action: .audit, rules: []))
                }
            } else if !rest.isEmpty {
                uncoveredProtocols.append(proto)
            }
        }
        if pair.auditsTheRest {
            for run in runs(uncoveredProtocols.sorted()) {
                entries.append(VerdictEntry(source: source, destination: destination, protocols: run, ports: 0...65535, action: .audit, rules: []))
            }
        }
        return entries
    }

    /// Consecutive values as ranges: [1, 2, 3, 7] -> [1...3, 7...7].
    private static func runs(_ values: [UInt8]) -> [ClosedRange<UInt8>] {
        var result: [ClosedRange<UInt8>] = []
        for value in values {
            if let last = result.last, last.upperBound < UInt8.max, last.upperBound + 1 == value {
                result[result.count - 1] = last.lowerBound...value
            } else {
                result.append(value...value)
            }
        }
        return result
    }
}
