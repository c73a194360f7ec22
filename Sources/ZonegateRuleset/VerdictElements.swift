import ZonegateEngine
import ZonegatePolicy

/// Where an element goes: one set of one of zonegate's two tables.
struct SetAddress: Hashable, Sendable {
    var family: Family
    var set: String
}

/// The verdict table laid out as set and map elements, one container at a time: each entry
/// between two identities repeated for the addresses (or outside ranges) that hold them. What one
/// container adds depends on its own addresses and identity and on identity-level facts only, so
/// the elements of a container that starts are compiled without looking at the others.
struct VerdictElements: Sendable {
    private let entries: [Pair: [VerdictEntry]]
    private let summaries: [UInt32: String]
    private let outsideRanges: [(low: IPAddress, high: IPAddress, identity: UInt32)]
    /// The identities of containers, each with its chain and verdict map towards containers.
    let containerIdentities: [UInt32]
    /// The containers behind each published host port, by protocol and port.
    private let backends: [(key: ProtocolPort, behind: [Backend])]

    private struct Pair: Hashable {
        var source: UInt32
        var destination: UInt32
    }

    private struct Backend {
        var mapping: HostPortMapping
        var identity: UInt32
        var name: String
        var addresses: [IPAddress]

        /// The container port it leads to.
        var target: String { "\(name) \(mapping.port)" }
    }

    /// The grant mark of each host port that leads to one container port (see `grantMarks`).
    private let grantMarks: [ProtocolPort: UInt32]

    init(_ table: VerdictTable, _ inventory: Inventory) {
        entries = Dictionary(grouping: table.entries) { Pair(source: $0.source, destination: $0.destination) }
        summaries = Dictionary(uniqueKeysWithValues: table.identities.map { ($0.id, $0.summary) })
        outsideRanges = table.outsideRanges
        containerIdentities = table.identities.compactMap {
            if case .container = $0.peer.kind { return $0.id }
            return nil
        }
        let identityOf = Dictionary(table.containerAddresses.map { ($0.container, $0.identity) }, uniquingKeysWith: { first, _ in first })
        backends = publishedBackends(inventory).map { key, behind in
            (key: key, behind: behind.compactMap { index, mapping in
                let container = inventory.containers[index]
                return identityOf[container.name].map { Backend(mapping: mapping, identity: $0, name: container.name, addresses: container.addresses) }
            })
        }
        grantMarks = Self.grantMarks(backends)
    }

    /// The mark of each container port behind a published port in the proxy's grants: the first
    /// `protocol << 16 | host port` that leads to it alone (`tcp . 8080` is 0x00061f90), readable
    /// in `nft list` and stable while that port stands. A host port with several containers behind
    /// it (on different host addresses) gives no grant: their proxy's connections are the host's.
    private static func grantMarks(_ backends: [(key: ProtocolPort, behind: [Backend])]) -> [ProtocolPort: UInt32] {
        var markOfTarget: [String: UInt32] = [:]
        var marks: [ProtocolPort: UInt32] = [:]
        for (key, behind) in backends where behind.count == 1 {
            let target = behind[0].target
            if markOfTarget[target] == nil { markOfTarget[target] = key.mark }
            marks[key] = markOfTarget[target]
        }
        return marks
    }

    /// Every element `container`, of identity `identity`, adds, by set.
    func contribution(of container: Container, identity: UInt32) -> [SetAddress: [SetElement]] {
        var sets: [SetAddress: [SetElement]] = [:]
        func add(_ family: Family, _ set: String, _ elements: [SetElement]) {
            if !elements.isEmpty { sets[SetAddress(family: family, set: set), default: []] += elements }
        }
        let name = container.name
        for family in IPFamily.allCases {
            for address in container.addresses where address.isIPv4 == (family == .v4) {
                let key = KeyPart(value: address.bytes)
                add(.inet, family.containerSet, [SetElement(key, comment: name)])
                add(.inet, "dispatch\(family.suffix)",
                    [SetElement(key, data: .verdict(.jump(RulesetCompiler.chainName(identity))), comment: name)])
                for range in outside(family) {
                    let outside = KeyPart(low: range.low.bytes, high: range.high.bytes)
                    let summary = summaries[range.identity] ?? "?"
                    add(.inet, "ctr_out\(family.suffix)", elements(Pair(source: identity, destination: range.identity), [key, outside], "\(name) -> \(summary)"))
                    add(.inet, "out_ctr\(family.suffix)", elements(Pair(source: range.identity, destination: identity), [outside, key], "\(summary) -> \(name)"))
                }
                add(.inet, "ctr_host\(family.suffix)", elements(Pair(source: identity, destination: VerdictTable.hostIdentity), [key], name))
                add(.inet, "host_ctr\(family.suffix)", elements(Pair(source: VerdictTable.hostIdentity, destination: identity), [key], name))
                add(.inet, "ctr_proxy\(family.suffix)", toPublished(from: [key], identity: identity, name, container: name))
                for source in containerIdentities {
                    add(.inet, RulesetCompiler.mapName(source, family), elements(Pair(source: source, destination: identity), [key], name))
                }
            }
        }
        for attachment in container.attachments {
            // No comment: two containers may name one port in turn, and its element is the same.
            add(.bridge, RulesetCompiler.containerPorts, [SetElement(.ifname(attachment.port))])
            for address in attachment.addresses {
                let family: IPFamily = address.isIPv4 ? .v4 : .v6
                add(.bridge, "addrs\(family.suffix)", [SetElement(KeyPart(value: address.bytes))])
                add(.bridge, "bound\(family.suffix)", [SetElement(.ifname(attachment.port), KeyPart(value: address.bytes), comment: name)])
            }
        }
        return sets
    }

    /// What an identity stands for (`zones: web, api`), for comments.
    func summary(of identity: UInt32) -> String { summaries[identity] ?? "?" }

    private func outside(_ family: IPFamily) -> [(low: IPAddress, high: IPAddress, identity: UInt32)] {
        outsideRanges.filter { $0.low.isIPv4 == (family == .v4) }
    }

    /// `source . protocol . host port` for connections to ports Docker publishes on the host that
    /// reach its userland proxy (NAT would have sent them on to the container): the verdict of
    /// the flow to the container behind the port. `source` is a container's address, an outside
    /// range, or nothing for the host's own. Where two containers publish one host port (on
    /// different host addresses), the stricter verdict applies.
    private func toPublished(from source: [KeyPart], identity: UInt32, _ name: String, container: String? = nil) -> [SetElement] {
        backends.compactMap { key, behind -> SetElement? in
            // A container reaching itself is always allowed; otherwise the pair's entries say.
            let found = behind.map { backend -> TableAction? in
                if backend.name == container { return .accept }
                return (entries[Pair(source: identity, destination: backend.identity)] ?? []).first {
                    $0.protocols.contains(key.proto) && $0.ports.contains(backend.mapping.port.number)
                }?.action
            }
            guard found.allSatisfy({ $0 != nil }) else { return nil }
            let audited = found.contains { $0 == .audit }
            let names = behind.map { "\($0.name) \($0.mapping)" }.joined(separator: ", ")
            return SetElement(parts: source + [.proto(key.proto), .port(key.port)],
                              data: .verdict(.jump(audited ? RulesetCompiler.proxyAudited : RulesetCompiler.proxyAllowed)),
                              comment: String("\(name) -> \(names) via the host".prefix(120)))
        }
    }

    /// The host's own connections to published ports (docker-proxy listens on the host's
    /// loopback too), judged as host -> the container behind the port.
    var hostToPublished: [SetElement] {
        toPublished(from: [], identity: VerdictTable.hostIdentity, "host")
    }

    /// Outside addresses' connections to published ports that reach docker-proxy (those Docker
    /// does not NAT: IPv6 without ip6tables), judged as the flow to the container behind the port.
    func outsideToPublished(_ family: IPFamily) -> [SetElement] {
        outside(family).flatMap { range in
            toPublished(from: [KeyPart(low: range.low.bytes, high: range.high.bytes)], identity: range.identity, summary(of: range.identity))
        }
    }

    /// Every port Docker publishes on the host, as `protocol . host port`.
    var publishedPorts: [SetElement] {
        backends.map { key, behind in
            SetElement(.proto(key.proto), .port(key.port), comment: String(behind.map { "\($0.name) \($0.mapping)" }.joined(separator: ", ").prefix(120)))
        }
    }

    /// The userland proxy's grants: `protocol . host port : grant mark` for the published ports
    /// that lead to one container port, and `container . protocol . port : grant mark` for that
    /// container port. A flow allowed into docker-proxy at input records its port's mark for a few
    /// seconds; the proxy's own connection to the container finds it at output and passes as the
    /// flow it relays (otherwise it is the host's, and judged as such).
    var proxyPorts: [SetElement] {
        backends.compactMap { key, behind in
            grantMarks[key].map { SetElement(.proto(key.proto), .port(key.port), data: .value(KeyPart.mark($0).low), comment: behind[0].target) }
        }
    }

    func proxyBackends(_ family: IPFamily) -> [SetElement] {
        var seen = Set<[UInt8]>()
        return backends.flatMap { key, behind in
            behind.flatMap { backend in
                grantMarks[key].map { mark in
                    backend.addresses.filter { $0.isIPv4 == (family == .v4) }.compactMap { address -> SetElement? in
                        let element = SetElement(KeyPart(value: address.bytes), .proto(key.proto), .port(backend.mapping.port.number),
                                                 data: .value(KeyPart.mark(mark).low), comment: backend.target)
                        return seen.insert(element.key).inserted ? element : nil
                    }
                } ?? []
            }
        }
    }

    private func elements(_ pair: Pair, _ addresses: [KeyPart], _ who: String) -> [SetElement] {
        (entries[pair] ?? []).map { entry in
            let why = entry.rules.isEmpty ? (entry.action == .audit ? "audit" : "open") : entry.rules.joined(separator: ", ")
            return SetElement(parts: addresses + [KeyPart(low: [entry.protocols.lowerBound], high: [entry.protocols.upperBound]), .ports(entry.ports)],
                              data: .verdict(entry.action == .accept ? .accept : .jump("audit")),
                              comment: String("\(who): \(why)".prefix(120)))
        }
    }
}

/// The containers (by index in the inventory) behind each port Docker publishes on the host, by
/// protocol and host port: what the proxy's verdicts and the judging of its connections start from.
func publishedBackends(_ inventory: Inventory) -> [(key: ProtocolPort, behind: [(container: Int, mapping: HostPortMapping)])] {
    Dictionary(grouping: inventory.containers.indices.flatMap { index in inventory.containers[index].published.map { (container: index, mapping: $0) } },
               by: { ProtocolPort(proto: protocolNumber($0.mapping.port.proto), port: $0.mapping.hostPort) })
        .sorted { $0.key < $1.key }
        .map { (key: $0.key, behind: $0.value) }
}

/// An IP protocol and a port.
struct ProtocolPort: Hashable, Comparable {
    var proto: UInt8
    var port: UInt16

    static func < (a: ProtocolPort, b: ProtocolPort) -> Bool { (a.proto, a.port) < (b.proto, b.port) }

    /// `proto << 16 | port`, never 0 (a published port is not 0).
    var mark: UInt32 { UInt32(proto) << 16 | UInt32(port) }
}

/// The IP protocol number of a port's protocol (ICMP has no ports, so never published).
func protocolNumber(_ proto: PortProtocol) -> UInt8 {
    VerdictTable.portProtocols.first { $0.0 == proto }?.1 ?? 1
}
