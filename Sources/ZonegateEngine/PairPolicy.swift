import ZonegatePolicy

/// What the policy allows between two peer classes, over every port at once: the form a
/// dataplane programs, where `decide` answers for one port.
public struct PairPolicy: Hashable, Sendable {
    /// Neither end is a managed container: never touched.
    public var untouched: Bool
    /// No side is restricted: every protocol and port passes.
    public var unrestricted: Bool
    /// Rules covering the pair, with the ports each covers (ranges may overlap across rules).
    public var rules: [RuleCoverage]
    /// What no rule covers passes as would-be-denied (denied only by zones in audit mode).
    public var auditsTheRest: Bool
}

/// A rule and the ports it opens.
public struct RuleCoverage: Hashable, Sendable {
    public var name: String
    public var ports: [PortRange]
}

extension PolicyEvaluator {
    /// The pair's policy; `decide` for any port agrees with it.
    public func pairPolicy(from source: PeerClass, to destination: PeerClass) -> PairPolicy {
        PairPolicies(self, [source, destination]).policy(from: 0, to: 1)
    }

    /// The classes of outside addresses: the address space cut at every boundary of the policy's
    /// CIDR blocks, each piece with the blocks that contain it. Together they cover every IPv4 and
    /// IPv6 address exactly once; containers' own addresses are told apart before these apply.
    public func outsideClasses() -> [OutsideRange] {
        [true, false].flatMap { ipv4 in
            var cuts: Set<IPAddress> = [IPAddress.lowest(ipv4: ipv4)]
            for block in cidrBlocks where block.cidr.isIPv4 == ipv4 {
                for prefix in [block.cidr] + block.except {
                    cuts.insert(prefix.first)
                    if let next = prefix.last.successor { cuts.insert(next) }
                }
            }
            let starts = cuts.sorted()
            var ranges: [OutsideRange] = []
            for (index, low) in starts.enumerated() {
                // The next start is above the lowest address, so it has a predecessor.
                let high = index + 1 < starts.count ? starts[index + 1].predecessor! : IPAddress.highest(ipv4: ipv4)
                let blocks = cidrBlocks.indices.filter { cidrBlocks[$0].contains(low) }
                if let last = ranges.last, last.blocks == blocks, last.high.successor == low {
                    ranges[ranges.count - 1].high = high
                } else {
                    ranges.append(OutsideRange(low: low, high: high, blocks: blocks))
                }
            }
            return ranges
        }
    }
}

/// The policies of every pair of a list of peer classes (the compiler's identities), each class's
/// rule sets and restrictions worked out once: a pair then costs one AND of two rule bitsets, so
/// all pairs cost classes × rules plus classes² × rules / 64, not classes² × rules (the rule sets
/// of outside classes are not cached by the evaluator, and `decide` alone recomputes them).
struct PairPolicies {
    let classes: [PeerClass]
    private let rules: [Rule]
    private let fromRules: [RuleSet]
    private let toRules: [RuleSet]
    /// nil for a class that is not a managed container, as in `Decision`.
    private let ingress: [[Restriction]?]
    private let egress: [[Restriction]?]

    init(_ evaluator: PolicyEvaluator, _ classes: [PeerClass]) {
        self.classes = classes
        rules = evaluator.policy.rules
        let from = OutsideRuleIndex(evaluator, \.from), to = OutsideRuleIndex(evaluator, \.to)
        fromRules = classes.map { from.ruleSet(matching: $0) ?? evaluator.ruleSet(matching: $0, \.from) }
        toRules = classes.map { to.ruleSet(matching: $0) ?? evaluator.ruleSet(matching: $0, \.to) }
        // A plain loop: the closures `classes.map { $0.identity.map { ... } }` crash the Swift 6.3
        // optimizer (SIL ownership verifier) in release builds.
        var ingress: [[Restriction]?] = [], egress: [[Restriction]?] = []
        for peer in classes {
            if case .container(let index) = peer.kind {
                ingress.append(evaluator.ingressRestrictions(of: evaluator.identities[index]))
                egress.append(evaluator.egressRestrictions(of: evaluator.identities[index]))
            } else {
                ingress.append(nil)
                egress.append(nil)
            }
        }
        self.ingress = ingress
        self.egress = egress
    }

    /// Neither end is a managed container: the pair's policy says `untouched`, whatever its rules.
    func untouched(from source: Int, to destination: Int) -> Bool {
        ingress[destination] == nil && egress[source] == nil
    }

    /// Nothing passes between them: some side is restricted, not in audit mode alone, and no rule
    /// has the source in `from` and the destination in `to` (most pairs of a large policy).
    func deniesEverything(from source: Int, to destination: Int) -> Bool {
        let restrictions = restrictions(from: source, to: destination)
        return !restrictions.isEmpty && !restrictions.allSatisfy { $0.mode == .audit }
            && fromRules[source].isDisjoint(with: toRules[destination])
    }

    func policy(from source: Int, to destination: Int) -> PairPolicy {
        let restrictions = restrictions(from: source, to: destination)
        let untouched = untouched(from: source, to: destination)
        let candidates = fromRules[source].intersection(toRules[destination]).indices.map { rules[$0] }
        return PairPolicy(untouched: untouched, unrestricted: !untouched && restrictions.isEmpty,
                          rules: candidates.map { RuleCoverage(name: $0.name, ports: $0.portRanges) },
                          auditsTheRest: !restrictions.isEmpty && restrictions.allSatisfy { $0.mode == .audit })
    }

    private func restrictions(from source: Int, to destination: Int) -> [Restriction] {
        (ingress[destination] ?? []) + (egress[source] ?? [])
    }
}

/// One side of the rules (`from` or `to`) inverted for the classes the evaluator does not cache
/// (outside addresses and the host): the rules naming `any`, `world`, `host` and each CIDR block.
/// An outside class's rule set is then the union of a few lists, not a pass over every rule and
/// endpoint (the same answers as `PolicyEvaluator.computeRuleSet`, which `decide` uses).
private struct OutsideRuleIndex {
    private let ruleCount: Int
    private var anyOrWorld: [Int] = []
    private var anyOrHost: [Int] = []
    private var byBlock: [[Int]]

    init(_ evaluator: PolicyEvaluator, _ side: KeyPath<Rule, [Endpoint]>) {
        ruleCount = evaluator.policy.rules.count
        byBlock = Array(repeating: [], count: evaluator.cidrBlocks.count)
        let blockIndex = Dictionary(evaluator.cidrBlocks.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, rule) in evaluator.policy.rules.enumerated() {
            for endpoint in rule[keyPath: side] {
                switch endpoint {
                case .any: anyOrWorld.append(index); anyOrHost.append(index)
                case .world: anyOrWorld.append(index)
                case .host: anyOrHost.append(index)
                case .cidr(let block): if let block = blockIndex[block] { byBlock[block].append(index) }
                case .zone: break
                }
            }
        }
    }

    /// nil for a container class: the evaluator has its rule sets.
    func ruleSet(matching peer: PeerClass) -> RuleSet? {
        var set = RuleSet(count: ruleCount)
        switch peer.kind {
        case .container: return nil
        case .host: anyOrHost.forEach { set.insert($0) }
        case .outside(let blocks):
            anyOrWorld.forEach { set.insert($0) }
            for block in blocks where byBlock.indices.contains(block) { byBlock[block].forEach { set.insert($0) } }
        }
        return set
    }
}

/// A contiguous range of outside addresses that lie in the same CIDR blocks of the policy.
public struct OutsideRange: Hashable, Sendable {
    public var low: IPAddress
    public var high: IPAddress
    /// Indices of `PolicyEvaluator.cidrBlocks`.
    public var blocks: [Int]

    public var peerClass: PeerClass { PeerClass(.outside(blocks: blocks)) }
}
