import ZonegateTesting
import Foundation
import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// The prover checked against brute force on random small policies: every kind of container
/// (each label set over the mentioned keys and values, plus absent and "other"; each set of
/// representative addresses), every outside address class, the host, and every port where a
/// rule or the assertion changes, each flow decided by the engine's own single-flow evaluator.
/// `ZONEGATE_PROVER_SEEDS=5000` runs thousands of seeds (default 300).
@Suite struct ProverDifferentialTests {
    static var seedCount: Int {
        ProcessInfo.processInfo.environment["ZONEGATE_PROVER_SEEDS"].flatMap(Int.init) ?? 300
    }

    @Test func proverAgreesWithBruteForce() {
        var disagreements: [String] = []
        for seed in 0..<UInt64(Self.seedCount) {
            var random = SplitMix64(seed: seed)
            let policy = RandomPolicy.make(&random)
            let brute = BruteForce(policy: policy)
            for result in AssertionProver(policy: policy).prove() {
                let truth = brute.decide(result.assertion)
                if truth.holds != result.holds || (result.assertion.kind == .deny && truth.rules != result.responsibleRules.sorted()) {
                    disagreements.append("seed \(seed): \(result.assertion.name) prover holds=\(result.holds) rules=\(result.responsibleRules)"
                        + " brute force holds=\(truth.holds) rules=\(truth.rules)\n  \(result.failures)\n  \(RandomPolicy.describe(policy))")
                }
            }
        }
        if !disagreements.isEmpty {
            Issue.record("\(disagreements.count) disagreements:\n\(disagreements.prefix(5).joined(separator: "\n"))")
        }
    }

    @Test func labelSatisfiabilityAgreesWithBruteForce() {
        let keys = ["a", "b", "c"], values = ["1", "2", "3"]
        var failures: [String] = []
        for seed in 0..<UInt64(Self.seedCount * 4) {
            var random = SplitMix64(seed: seed &+ 1_000_000)
            let required = (0..<random.int(3)).map { _ in RandomPolicy.selector(&random, keys: keys, values: values) }
            let excluded = (0..<random.int(5)).map { _ in RandomPolicy.selector(&random, keys: keys, values: values) }
            let expected = BruteForce.labelSets(keys: keys, values: values).contains { labels in
                required.allSatisfy { $0.matches(labels) } && !excluded.contains { $0.matches(labels) }
            }
            if LabelSatisfiability.satisfiable(matching: required, notMatching: excluded) != expected {
                failures.append("seed \(seed): required \(required) excluded \(excluded): expected \(expected)")
            }
        }
        if !failures.isEmpty { Issue.record("\(failures.count) disagreements:\n\(failures.prefix(5).joined(separator: "\n"))") }
    }
}


/// Random small policies: a few zones over 2–3 keys and 2–3 values, random sides and modes,
/// rules between zones, world, host, any and a few CIDRs, and random assertions.
enum RandomPolicy {
    static let cidrPool: [CIDRBlock] = [
        block("10.0.0.0/8"), block("10.1.0.0/16"), block("10.1.2.0/24"), block("10.0.0.0/8", except: ["10.1.0.0/16"]),
        block("192.168.1.7/32"), block("fd00::/8"), block("fd00:1::/64"), block("0.0.0.0/0", except: ["10.0.0.0/8"]),
    ]
    static let portPool: [PortRange] = [
        PortRange(.tcp, 80, 80), PortRange(.tcp, 443, 443), PortRange(.tcp, 8000, 8100), PortRange(.tcp, 1, 1024),
        PortRange(.tcp), PortRange(.udp, 53, 53), PortRange(.udp), PortRange(.icmp),
    ]

    static func block(_ cidr: String, except: [String] = []) -> CIDRBlock {
        CIDRBlock(try! CIDR.parse(cidr).get(), except: except.map { try! CIDR.parse($0).get() })
    }

    static func selector(_ random: inout SplitMix64, keys: [String], values: [String]) -> LabelSelector {
        var selector = LabelSelector()
        for _ in 0..<random.int(3) {
            let key = random.pick(keys)
            if random.chance(40) {
                selector.matchLabels[key] = random.pick(values)
            } else {
                let op = random.pick(LabelSelector.Requirement.Operator.allCases)
                let chosen = op == .in || op == .notIn ? Array(Set((0...random.int(2)).map { _ in random.pick(values) })).sorted() : []
                selector.matchExpressions.append(.init(key: key, op: op, values: chosen))
            }
        }
        return selector
    }

    static func make(_ random: inout SplitMix64) -> Policy {
        let keys = Array(["tier", "env", "team"].prefix(2 + random.int(2)))
        let values = Array(["a", "b", "c"].prefix(2 + random.int(2)))
        var policy = Policy()
        policy.defaults.unzoned = random.chance(30) ? .restricted : .open
        policy.defaults.mode = random.chance(15) ? .audit : .enforce
        let cidrs = (0..<random.int(4)).map { _ in random.pick(cidrPool) }
        policy.zones = (0..<(2 + random.int(3))).map { index in
            let choice = random.int(10)
            let selector: LabelSelector? = choice < 2 ? nil : choice == 2 ? LabelSelector() : selector(&random, keys: keys, values: values)
            return Zone(name: "z\(index)", selector: selector, ingress: random.chance(60) ? .restricted : .open,
                        egress: random.chance(40) ? .restricted : .open,
                        mode: random.chance(70) ? nil : random.chance(50) ? .audit : .enforce)
        }
        func endpoint() -> Endpoint {
            switch random.int(10) {
            case 0: return .world
            case 1: return .host
            case 2: return .any
            case 3, 4: return cidrs.isEmpty ? .world : .cidr(random.pick(cidrs))
            default: return .zone(random.pick(policy.zones).name)
            }
        }
        func endpoints() -> [Endpoint] { (0...random.int(2)).map { _ in endpoint() } }
        func ports() -> [PortRange]? { random.chance(25) ? nil : (0...random.int(2)).map { _ in random.pick(portPool) } }
        policy.rules = (0..<random.int(6)).map { index in Rule(name: "r\(index)", from: endpoints(), to: endpoints(), ports: ports()) }
        policy.assertions = (0..<3).map { index in
            Assertion(name: "a\(index)", kind: random.chance(50) ? .deny : .allow, from: endpoints(), to: endpoints(), ports: ports())
        }
        return policy
    }

    static func describe(_ policy: Policy) -> String {
        let zones = policy.zones.map { zone in
            "\(zone.name){\(zone.selector.matchLabels.sorted { $0.key < $1.key }) \(zone.selector.matchExpressions.map { "\($0.key) \($0.op.rawValue) \($0.values)" }) in:\(zone.ingress.rawValue) eg:\(zone.egress.rawValue) \(zone.mode?.rawValue ?? "")}"
        }
        let rules = policy.rules.map { "\($0.name): \($0.from) -> \($0.to) \($0.ports?.map(\.description) ?? ["all"])" }
        let assertions = policy.assertions.map { "\($0.name) \($0.kind.rawValue) \($0.from) -> \($0.to) \($0.ports?.map(\.description) ?? ["all"])" }
        return "unzoned:\(policy.defaults.unzoned.rawValue) mode:\(policy.defaults.mode.rawValue) zones: \(zones) rules: \(rules) assertions: \(assertions)"
    }
}

/// Decides assertions by trying flows: every kind of container, outside address and the host.
struct BruteForce {
    let policy: Policy
    let evaluator: PolicyEvaluator
    /// Representative addresses: the first address of every piece the policy's blocks cut.
    let addresses: [IPAddress]
    /// Indices of the source copy and the destination copy of each kind of container.
    let kinds: [(source: Int, destination: Int)]

    init(policy: Policy) {
        self.policy = policy
        let endpoints = policy.rules.flatMap { $0.from + $0.to } + policy.assertions.flatMap { $0.from + $0.to }
        var blocks: [CIDRBlock] = []
        for case .cidr(let block) in endpoints where !blocks.contains(block) { blocks.append(block) }
        var starts: Set<IPAddress> = [IPAddress("0.0.0.0")!, IPAddress("::")!]
        for block in blocks {
            for prefix in [block.cidr] + block.except {
                starts.insert(prefix.network)
                if let next = prefix.last.successor { starts.insert(next) }
            }
        }
        addresses = starts.sorted()
        // Every set of blocks a container's addresses can be in: unions of single addresses' sets.
        func inBlocks(_ address: IPAddress) -> Set<Int> { Set(blocks.indices.filter { blocks[$0].contains(address) }) }
        var addressSets: [Set<Int>: [IPAddress]] = [:]
        for address in addresses where addressSets[inBlocks(address)] == nil { addressSets[inBlocks(address)] = [address] }
        var grown = true
        while grown {
            grown = false
            for (a, first) in addressSets { for (b, second) in addressSets where addressSets[a.union(b)] == nil {
                addressSets[a.union(b)] = first + second
                grown = true
            } }
        }
        // Every label set, reduced to the zones it selects.
        var keys: [String: Set<String>] = [:]
        for zone in policy.zones {
            for requirement in zone.selector.requirements { keys[requirement.key, default: []].formUnion(requirement.values) }
        }
        var labelKinds: [[Int]: [String: String]] = [:]
        for labels in Self.labelSets(keys: keys.keys.sorted(), values: keys.values.reduce(into: Set<String>()) { $0.formUnion($1) }.sorted()) {
            let zones = policy.zones.indices.filter { policy.zones[$0].selector.matches(labels) }
            if labelKinds[zones] == nil { labelKinds[zones] = labels }
        }
        var containers: [Container] = []
        var kinds: [(Int, Int)] = []
        for labels in labelKinds.values {
            for held in addressSets.values {
                for copy in ["s", "d"] {
                    containers.append(Container(name: "c\(containers.count)\(copy)", labels: labels, addresses: held))
                }
                kinds.append((containers.count - 2, containers.count - 1))
            }
        }
        self.kinds = kinds
        evaluator = PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers))
    }

    /// Every assignment of the keys to one of the values, "absent" or a value no selector names.
    static func labelSets(keys: [String], values: [String]) -> [[String: String]] {
        var sets: [[String: String]] = [[:]]
        for key in keys {
            sets = sets.flatMap { labels in
                ([nil, "\u{1}other"] + values).map { value -> [String: String] in
                    var labels = labels
                    labels[key] = value
                    return labels
                }
            }
        }
        return sets
    }

    private func members(_ endpoint: Endpoint, source: Bool) -> [Peer] {
        var peers: [Peer] = []
        for kind in kinds {
            let index = source ? kind.source : kind.destination
            let container = evaluator.inventory.containers[index]
            let member: Bool
            switch endpoint {
            case .any: member = true
            case .zone(let name): member = policy.zone(named: name)!.selector.matches(container.labels)
            case .cidr(let block): member = container.addresses.contains(where: block.contains)
            case .world, .host: member = false
            }
            if member { peers.append(.container(index)) }
        }
        for address in addresses {
            switch endpoint {
            case .any, .world: peers.append(.address(address))
            case .cidr(let block) where block.contains(address): peers.append(.address(address))
            default: break
            }
        }
        if endpoint == .any || endpoint == .host { peers.append(.host) }
        return peers
    }

    /// Every port of the assertion where a rule's or the assertion's ranges begin or end.
    private func ports(_ assertion: Assertion) -> [ServicePort] {
        var ports: Set<ServicePort> = []
        let ranges = assertion.portRanges + policy.rules.flatMap(\.portRanges)
        for proto in PortProtocol.allCases {
            var numbers: Set<Int> = [1, 65535]
            for range in ranges where range.proto == proto {
                numbers.formUnion([Int(range.low) - 1, Int(range.low), Int(range.high), Int(range.high) + 1])
            }
            for number in numbers where (1...65535).contains(number) || !proto.hasPorts {
                let port = ServicePort(UInt16(clamping: number), proto)
                if assertion.portRanges.contains(where: { $0.contains(port) }) { ports.insert(port) }
            }
        }
        return ports.sorted()
    }

    /// Whether the assertion holds, and for a `deny` the rules that let some flow through.
    func decide(_ assertion: Assertion) -> (holds: Bool, rules: [String]) {
        var holds = true
        var rules: Set<String> = []
        let ports = ports(assertion)
        for from in assertion.from {
            let sources = members(from, source: true)
            for to in assertion.to {
                let destinations = members(to, source: false)
                for source in sources {
                    for destination in destinations {
                        for port in ports {
                            let decision = evaluator.decide(from: source, to: destination, port: port)
                            switch assertion.kind {
                            case .deny:
                                if decision.verdict != .deny { holds = false }
                                rules.formUnion(decision.matchingRules)
                            case .allow:
                                if decision.verdict != .allow { holds = false }
                            }
                        }
                    }
                }
            }
        }
        return (holds, rules.sorted())
    }
}
