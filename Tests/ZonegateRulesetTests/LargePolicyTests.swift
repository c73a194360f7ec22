import ZonegateTesting
import Testing
@testable import ZonegateEngine
import ZonegatePolicy
@testable import ZonegateRuleset

/// A policy of the shape that once took minutes to compile (issue 10: 197 zones, 2,000 rules,
/// 250 /32 CIDR destinations, `tools/gen-large-policy.py`), made smaller to stay quick in a debug
/// build. The compile's cost follows what it produces: pairs of identities that pass nothing cost a
/// bitset test. Checked here by shape and against the all-pairs derivation, not by timing.
@Suite struct LargePolicyTests {
    static let zoneCount = 30, ruleCount = 300, cidrCount = 40, containerCount = 50

    /// Zones selected by `zonegate.zone`, rules from a random zone to a random zone or to one of
    /// the /32 blocks, a few TCP ports each; containers spread over the zones on one bridge.
    static func evaluator(seed: UInt64) throws -> PolicyEvaluator {
        var random = SplitMix64(seed: seed)
        let zones = (0..<zoneCount).map { "z\($0)" }
        let cidrs = (0..<cidrCount).map { "203.0.113.\($0 * 2 + 1)/32" }
        var text = "version: 1\ndefaults: {unzoned: restricted}\nzones:\n"
        for (index, zone) in zones.enumerated() {
            let ingress = index % 4 == 3 ? "open" : "restricted", egress = index % 3 == 0 ? "restricted" : "open"
            let mode = index % 10 == 9 ? ", mode: audit" : ""
            text += "  - {name: \(zone), selector: {matchLabels: {zonegate.zone: \(zone)}}, ingress: \(ingress), egress: \(egress)\(mode)}\n"
        }
        text += "rules:\n"
        for index in 0..<ruleCount {
            let destination = random.int(10) < 4 ? "{cidr: \(cidrs[random.int(cidrCount)])}" : zones[random.int(zoneCount)]
            let ports = Set((0...random.int(3)).map { _ in [22, 53, 80, 443, 5432, 8080][random.int(6)] + random.int(3) }).sorted()
            text += "  - {name: r\(index), from: \(zones[random.int(zoneCount)]), to: \(destination), ports: [\(ports.map { "\($0)/tcp" }.joined(separator: ", "))]}\n"
        }
        let policy = try PolicyParser.parse([PolicyFile(name: "large.yaml", text: text)])
        let containers = (0..<containerCount).map { index in
            let addresses = [IPAddress("172.18.\(index / 250).\(index % 250 + 2)")!, IPAddress("fd00:18::\(String(index + 2, radix: 16))")!]
            return Container(name: "c\(index)", labels: ["zonegate.zone": zones[random.int(zoneCount)]], addresses: addresses,
                             attachments: [BridgeAttachment(bridge: "br-zg", port: "veth\(index)", addresses: addresses)])
        }
        return PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers, bridges: ["br-zg"]))
    }

    @Test(arguments: [1, 2] as [UInt64])
    func theVerdictTableIsTheAllPairsDerivation(seed: UInt64) throws {
        let evaluator = try Self.evaluator(seed: seed)
        let table = VerdictTable(evaluator)
        // Every pair of identities, each pair's policy derived alone from `decide` and the
        // evaluator's own rule matching: what the table was built as before it was made fast.
        func pairPolicy(_ source: PeerClass, _ destination: PeerClass) -> PairPolicy {
            let probe = evaluator.decide(from: source, to: destination, port: ServicePort(0, .icmp))
            let restrictions = (probe.ingressRestrictions ?? []) + (probe.egressRestrictions ?? [])
            let candidates = evaluator.ruleSetIndices(from: source, to: destination).map { evaluator.policy.rules[$0] }
            return PairPolicy(untouched: probe.untouched, unrestricted: !probe.untouched && restrictions.isEmpty,
                              rules: candidates.map { RuleCoverage(name: $0.name, ports: $0.portRanges) },
                              auditsTheRest: !restrictions.isEmpty && restrictions.allSatisfy { $0.mode == .audit })
        }
        let reference = table.identities.flatMap { source in
            table.identities.flatMap { destination in
                VerdictTable.pairEntries(pairPolicy(source.peer, destination.peer), source.id, destination.id)
            }
        }
        #expect(table.entries == reference)
        #expect(table.entries.contains { $0.action == .audit }, "audit zones give audit entries")
    }

    @Test func aPolicyWithManyCIDREndpointsCompilesToItsShape() throws {
        let evaluator = try Self.evaluator(seed: 1)
        let ruleset = CompiledRuleset(evaluator).ruleset
        let inet = ruleset.table(.inet, "zonegate")!
        let identities = Set(evaluator.inventory.containers.map { $0.labels["zonegate.zone"]! }).count
        #expect(evaluator.identities.count == identities, "the /32 blocks hold no container: one identity per zone in use")
        #expect(inet.chains.filter { $0.name.hasPrefix("from_") }.count == identities)
        #expect(inet.sets.filter { $0.name.hasPrefix("to4_") }.count == identities)
        // IPv4 cut at every block (none adjacent): the blocks and the gaps around them; IPv6 is all world.
        let outside = evaluator.outsideClasses()
        #expect(evaluator.cidrBlocks.count > Self.cidrCount / 2)
        #expect(outside.count == 2 * evaluator.cidrBlocks.count + 1 + 1)
        // Each container's address meets each outside range of its family once per entry of the
        // pair in ctr_out4: restricted sources only where a rule reaches the block, open ones everywhere.
        let table = VerdictTable(evaluator)
        let outsideIDs = Dictionary(table.outsideRanges.filter { $0.low.isIPv4 }.map { ($0.identity, 1) }, uniquingKeysWith: +)
        let expected = table.containerAddresses.filter { $0.address.isIPv4 }.reduce(0) { total, holder in
            total + table.entries.filter { $0.source == holder.identity }.reduce(0) { $0 + (outsideIDs[$1.destination] ?? 0) }
        }
        #expect(inet.set("ctr_out4")!.elements.count == expected)
        #expect(expected > 0)
        #expect(ruleset.table(.bridge, "zonegate")!.set("ctr_ports")!.elements.count == Self.containerCount)
    }

    @Test func aCompileStopsAtItsCheckpoint() throws {
        let evaluator = try Self.evaluator(seed: 1)
        struct Stop: Error {}
        var calls = 0
        #expect(throws: Stop.self) {
            _ = try CompiledRuleset(evaluator) { () throws(Stop) in
                calls += 1
                if calls == 3 { throw Stop() }
            }
        }
        #expect(calls == 3, "nothing runs past the checkpoint that threw")
        var total = 0
        _ = CompiledRuleset(evaluator) { total += 1 }
        #expect(total >= evaluator.identities.count, "at least one checkpoint per source identity")
    }

    @Test func aCancelledTaskStopsItsCompile() async throws {
        let evaluator = try Self.evaluator(seed: 1)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try CompiledRuleset.cancellable(evaluator)
        }
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(try CompiledRuleset.cancellable(evaluator).ruleset == CompiledRuleset(evaluator).ruleset)
    }
}
