import ZonegatePolicy

/// One end of a flow.
public enum Peer: Hashable, Sendable {
    /// A managed container, by its index in the inventory.
    case container(Int)
    /// An outside address that no CIDR of the policy covers.
    case world
    /// The Docker host's own addresses, which no CIDR endpoint matches.
    case host
    /// A particular address that is no container's: `world`, and any CIDR endpoint that contains it.
    case address(IPAddress)
}

/// The outcome of a flow under the policy.
public enum VerdictKind: String, Hashable, Sendable, Codable {
    case allow, deny
    /// Denied only by zones in audit mode: it passes and is logged as would-be-denied.
    case audit
}

/// A zone (or `defaults.unzoned`) that restricts one side of a flow, with the mode it restricts in.
public struct Restriction: Hashable, Sendable {
    /// A zone name, or `defaults.unzoned` for an unzoned container's ingress.
    public var source: String
    public var mode: EnforcementMode
}

/// The verdict of one flow and what decided it.
public struct Decision: Hashable, Sendable {
    public var verdict: VerdictKind
    /// The rules that allow the flow, as cli.md's matrix names them: those whose `from`, `to` and
    /// `ports` cover it, but none when it is denied or when no side is restricted (then the open
    /// sides allow it, whatever rule also matches).
    public var rules: [String]
    /// Every rule whose `from`, `to` and `ports` cover the flow, needed or not (for explain).
    public var matchingRules: [String]
    /// Why the destination's ingress is restricted; nil when it is not a managed container.
    public var ingressRestrictions: [Restriction]?
    /// Why the source's egress is restricted; nil when it is not a managed container.
    public var egressRestrictions: [Restriction]?
    /// Neither end is a managed container (or both are the same container): zonegate never touches it.
    public var untouched: Bool
}

/// A container's zones and the CIDR blocks of the policy its addresses fall in; containers that
/// share both get the same verdicts, so the engine reasons once per identity, not per container.
public struct Identity: Hashable, Sendable {
    /// Indices of `policy.zones`.
    public var zones: [Int]
    /// Indices of `PolicyEvaluator.cidrBlocks`.
    public var cidrBlocks: [Int]
}

/// The policy applied to one inventory: zones of each container, and verdicts of flows.
public struct PolicyEvaluator: Sendable {
    public let policy: Policy
    public let inventory: Inventory
    /// Indices into `policy.zones`, per container.
    public let zonesOfContainer: [[Int]]
    /// Index into `identities`, per container.
    public let identityOfContainer: [Int]
    public let identities: [Identity]
    /// Every distinct CIDR endpoint of the rules, in rule order.
    public let cidrBlocks: [CIDRBlock]
    /// Per identity, the rules whose `from` (and `to`) match it: a verdict is then two bitset lookups.
    /// (Filled last in `init`, from the other properties.)
    private var rulesFromIdentity: [RuleSet] = []
    private var rulesToIdentity: [RuleSet] = []
    /// Which rules name which endpoint, per side (filled in `init` before the sets above).
    private var fromEndpoints = EndpointRules()
    private var toEndpoints = EndpointRules()
    private let zoneIndex: [String: Int]
    private let containerIndex: [String: Int]
    private let containerOfAddress: [IPAddress: Int]
    /// The index of each block in `cidrBlocks`: matching a rule's CIDR endpoint is one lookup.
    private let cidrIndex: [CIDRBlock: Int]
    /// The host's own addresses (its interfaces', the bridges' gateways among them): an address
    /// of these that no container holds is `host`, never an outside address.
    public let hostAddresses: Set<IPAddress>

    public init(policy: Policy, inventory: Inventory, hostAddresses: Set<IPAddress> = []) {
        self.policy = policy
        self.inventory = inventory
        self.hostAddresses = hostAddresses
        zoneIndex = Dictionary(uniqueKeysWithValues: policy.zones.enumerated().map { ($1.name, $0) })
        containerIndex = Dictionary(inventory.containers.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        containerOfAddress = Dictionary(inventory.containers.enumerated().flatMap { index, container in
            container.addresses.map { ($0, index) }
        }, uniquingKeysWith: { a, _ in a })
        let blocks = Self.cidrBlocks(of: policy)
        cidrBlocks = blocks
        cidrIndex = Dictionary(blocks.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var identityIds: [Identity: Int] = [:]
        var identities: [Identity] = []
        var zonesOfContainer: [[Int]] = []
        var identityOfContainer: [Int] = []
        for container in inventory.containers {
            let identity = Self.identity(of: container, policy: policy, cidrBlocks: blocks)
            let id = identityIds[identity] ?? {
                identities.append(identity)
                identityIds[identity] = identities.count - 1
                return identities.count - 1
            }()
            zonesOfContainer.append(identity.zones)
            identityOfContainer.append(id)
        }
        self.zonesOfContainer = zonesOfContainer
        self.identityOfContainer = identityOfContainer
        self.identities = identities
        fromEndpoints = EndpointRules(policy.rules.map(\.from), zoneIndex: zoneIndex, cidrIndex: cidrIndex)
        toEndpoints = EndpointRules(policy.rules.map(\.to), zoneIndex: zoneIndex, cidrIndex: cidrIndex)
        rulesFromIdentity = identities.indices.map { computeRuleSet(matching: PeerClass(.container(identity: $0)), \.from) }
        rulesToIdentity = identities.indices.map { computeRuleSet(matching: PeerClass(.container(identity: $0)), \.to) }
    }

    /// Every distinct CIDR endpoint of the policy's rules, in rule order.
    public static func cidrBlocks(of policy: Policy) -> [CIDRBlock] {
        var blocks: [CIDRBlock] = []
        for rule in policy.rules {
            for case .cidr(let block) in rule.from + rule.to where !blocks.contains(block) { blocks.append(block) }
        }
        return blocks
    }

    /// A container's identity: the zones its labels select and the blocks its addresses fall in.
    /// It depends on nothing else, so one container is classified without the others.
    public static func identity(of container: Container, policy: Policy, cidrBlocks: [CIDRBlock]) -> Identity {
        Identity(zones: policy.zones.indices.filter { policy.zones[$0].selector.matches(container.labels) },
                 cidrBlocks: cidrBlocks.indices.filter { index in container.addresses.contains { cidrBlocks[index].contains($0) } })
    }

    /// The rules one side of which (`\.from` or `\.to`) matches the peer.
    /// Rules whose `from` matches the source and `to` the destination, whatever their ports.
    func ruleSetIndices(from source: PeerClass, to destination: PeerClass) -> [Int] {
        ruleSet(matching: source, \.from).intersection(ruleSet(matching: destination, \.to)).indices
    }

    func ruleSet(matching peer: PeerClass, _ side: KeyPath<Rule, [Endpoint]>) -> RuleSet {
        guard let id = peer.identity else { return computeRuleSet(matching: peer, side) }
        return side == \Rule.from ? rulesFromIdentity[id] : rulesToIdentity[id]
    }

    /// The rules one side of which matches the peer, from the endpoints' index: the cost follows
    /// the rules that name the peer's zones and blocks, not every rule (1,000 identities x
    /// 10,000 rules took seconds through `matches`).
    func computeRuleSet(matching peer: PeerClass, _ side: KeyPath<Rule, [Endpoint]>) -> RuleSet {
        let endpoints = side == \Rule.from ? fromEndpoints : toEndpoints
        var set = RuleSet(count: policy.rules.count)
        func add(_ rules: [Int]) { for rule in rules { set.insert(rule) } }
        add(endpoints.any)
        switch peer.kind {
        case .container(let id):
            for zone in identities[id].zones { add(endpoints.zones[zone]) }
            for block in identities[id].cidrBlocks { add(endpoints.cidrs[block]) }
        case .outside(let blocks):
            add(endpoints.world)
            for block in blocks { add(endpoints.cidrs[block]) }
        case .host:
            add(endpoints.host)
        }
        return set
    }

    // MARK: - Resolving names

    /// The words that name an end of a flow other than a container: `world` and `host` (cli.md),
    /// and `any` (a policy endpoint).
    public static let reservedNames: Set<String> = ["world", "host", "any"]

    /// The prefix that names a container whatever its name: `container:world`. Docker's names
    /// cannot hold a colon, so it never clashes with a real name.
    public static let containerPrefix = "container:"

    /// A container name, `container:NAME`, an address, `world` or `host`. `world` and `host`
    /// always mean those ends, and text that reads as an address always means the address, even
    /// when a container has that name (Docker allows containers named `world` or `10.0.0.1`):
    /// such a container is named `container:NAME`, as `name(of:)` shows it.
    public func peer(named text: String) -> Peer? {
        switch text {
        case "world": return .world
        case "host": return .host
        default:
            if text.hasPrefix(Self.containerPrefix) {
                return containerIndex[String(text.dropFirst(Self.containerPrefix.count))].map(Peer.container)
            }
            if let address = IPAddress(text) { return peer(at: address) }
            return containerIndex[text].map(Peer.container)
        }
    }

    /// The container holding an address, `host` for one of the host's own addresses, or the
    /// address as an outside peer.
    public func peer(at address: IPAddress) -> Peer {
        if let index = containerOfAddress[address] { return .container(index) }
        return hostAddresses.contains(address) ? .host : .address(address)
    }

    /// The name of a peer as every output shows it, never ambiguous: a container whose name is a
    /// reserved word or reads as an address is shown as `container:NAME`.
    public func name(of peer: Peer) -> String {
        switch peer {
        case .container(let index): return Self.displayName(ofContainer: inventory.containers[index].name)
        case .world: return "world"
        case .host: return "host"
        case .address(let address): return address.description
        }
    }

    /// `NAME`, or `container:NAME` when NAME alone would mean another end (`world`, `host`, `any`,
    /// an address) or looks like the prefixed form.
    public static func displayName(ofContainer name: String) -> String {
        reservedNames.contains(name) || name.hasPrefix(containerPrefix) || IPAddress(name) != nil ? containerPrefix + name : name
    }

    public func zoneNames(ofContainer index: Int) -> [String] {
        zonesOfContainer[index].map { policy.zones[$0].name }
    }

    // MARK: - Verdicts

    /// The verdict of policy.md step 4 and 5 (with audit mode) for one flow.
    public func decide(from source: Peer, to destination: Peer, port: ServicePort) -> Decision {
        decide(from: PeerClass(source, self), to: PeerClass(destination, self), port: port,
               sameContainer: source == destination && source.isContainer)
    }

    func decide(from source: PeerClass, to destination: PeerClass, port: ServicePort, sameContainer: Bool = false) -> Decision {
        let ingress = destination.identity.map { ingressRestrictions(of: identities[$0]) }
        let egress = source.identity.map { egressRestrictions(of: identities[$0]) }
        if sameContainer || (ingress == nil && egress == nil) {
            return Decision(verdict: .allow, rules: [], matchingRules: [], ingressRestrictions: ingress, egressRestrictions: egress,
                            untouched: true)
        }
        // In place: copying each candidate Rule (names, endpoints, annotations) cost more than
        // the rest of the verdict.
        var matching: [String] = []
        for index in ruleSetIndices(from: source, to: destination) {
            let covers = policy.rules[index].ports.map { ranges in ranges.contains { $0.contains(port) } } ?? PortRange.all(port.proto).contains(port)
            if covers { matching.append(policy.rules[index].name) }
        }
        let restrictions = (ingress ?? []) + (egress ?? [])
        let verdict: VerdictKind
        if !matching.isEmpty || restrictions.isEmpty {
            verdict = .allow
        } else {
            verdict = restrictions.allSatisfy { $0.mode == .audit } ? .audit : .deny
        }
        return Decision(verdict: verdict, rules: restrictions.isEmpty ? [] : matching, matchingRules: matching,
                        ingressRestrictions: ingress, egressRestrictions: egress, untouched: false)
    }

    func ingressRestrictions(of identity: Identity) -> [Restriction] {
        if identity.zones.isEmpty {
            return policy.defaults.unzoned == .restricted ? [Restriction(source: "defaults.unzoned", mode: policy.defaults.mode)] : []
        }
        return identity.zones.map { policy.zones[$0] }.filter { $0.ingress == .restricted }
            .map { Restriction(source: $0.name, mode: policy.mode(of: $0)) }
    }

    func egressRestrictions(of identity: Identity) -> [Restriction] {
        identity.zones.map { policy.zones[$0] }.filter { $0.egress == .restricted }
            .map { Restriction(source: $0.name, mode: policy.mode(of: $0)) }
    }

    private func matches(_ endpoint: Endpoint, _ peer: PeerClass) -> Bool {
        switch (endpoint, peer.kind) {
        case (.any, _): return true
        case (.zone(let name), .container(let id)): return zoneIndex[name].map(identities[id].zones.contains) ?? false
        case (.cidr(let block), .container(let id)): return cidrIndex[block].map(identities[id].cidrBlocks.contains) ?? false
        case (.cidr(let block), .outside(let blocks)): return cidrIndex[block].map(blocks.contains) ?? false
        case (.world, .outside), (.host, .host): return true
        default: return false
        }
    }
}

/// A peer reduced to what verdicts depend on: a container by its identity, an outside address by
/// the policy's CIDR blocks it falls in, or the host. Peers of one class get the same verdicts.
public struct PeerClass: Hashable, Sendable {
    /// The three kinds of peer.
    public enum Kind: Hashable, Sendable {
        /// Containers of one identity (an index of `PolicyEvaluator.identities`).
        case container(identity: Int)
        /// Outside addresses inside exactly these CIDR blocks (indices of `cidrBlocks`); `world` is none.
        case outside(blocks: [Int])
        case host
    }

    public var kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public static let world = PeerClass(.outside(blocks: []))
    public static let host = PeerClass(.host)

    init(_ peer: Peer, _ evaluator: PolicyEvaluator) {
        switch peer {
        case .container(let index): kind = .container(identity: evaluator.identityOfContainer[index])
        case .world: kind = .outside(blocks: [])
        case .host: kind = .host
        case .address(let address): kind = .outside(blocks: evaluator.cidrBlocks.indices.filter { evaluator.cidrBlocks[$0].contains(address) })
        }
    }

    /// Not inlined: Swift 6.3.1's optimizer (CopyPropagation) crashes on it inlined into a
    /// closure over borrowed classes (`PairPolicies.init`), which broke every release build.
    var identity: Int? {
        @inline(never) get {
            switch kind {
            case .container(let id): return id
            case .outside, .host: return nil
            }
        }
    }
}

extension Peer {
    /// Whether the peer is a managed container.
    public var isContainer: Bool {
        if case .container = self { return true }
        return false
    }
}

/// For one side of the rules (`from` or `to`), which rules name each endpoint: what `matches`
/// says, worked out once per rule rather than once per rule and peer.
struct EndpointRules: Sendable {
    var any: [Int] = []
    var world: [Int] = []
    var host: [Int] = []
    /// Per index of `policy.zones`, of `PolicyEvaluator.cidrBlocks`.
    var zones: [[Int]] = []
    var cidrs: [[Int]] = []

    init() {}

    init(_ sides: [[Endpoint]], zoneIndex: [String: Int], cidrIndex: [CIDRBlock: Int]) {
        zones = Array(repeating: [], count: zoneIndex.count)
        cidrs = Array(repeating: [], count: cidrIndex.count)
        for (rule, endpoints) in sides.enumerated() {
            for endpoint in endpoints {
                switch endpoint {
                case .any: any.append(rule)
                case .world: world.append(rule)
                case .host: host.append(rule)
                case .zone(let name): if let zone = zoneIndex[name] { zones[zone].append(rule) }
                case .cidr(let block): if let index = cidrIndex[block] { cidrs[index].append(rule) }
                }
            }
        }
    }
}

/// A set of rule indices as a bitset, so that "rules matching both ends" is one AND per word.
struct RuleSet: Hashable, Sendable {
    private var words: [UInt64]

    init(count: Int) { words = Array(repeating: 0, count: (count + 63) / 64) }

    mutating func insert(_ index: Int) { words[index / 64] |= 1 << UInt64(index % 64) }

    func intersection(_ other: RuleSet) -> RuleSet {
        var result = self
        for index in words.indices { result.words[index] &= other.words[index] }
        return result
    }

    func isDisjoint(with other: RuleSet) -> Bool {
        for index in words.indices where words[index] & other.words[index] != 0 { return false }
        return true
    }

    /// Members in ascending order, so verdicts list rules in policy order.
    var indices: [Int] {
        var result: [Int] = []
        for (wordIndex, word) in words.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { result.append(wordIndex * 64 + bit) }
        }
        return result
    }
}
