import Testing
import ZonegateEngine
import ZonegatePolicy
@testable import ZonegateRuleset
import ZonegateTesting

/// Containers compiled alone: after any sequence of starts, stops and changes, the kernel holds
/// exactly what a full compile of the same inventory gives, through element-only transactions.
@Suite struct CompiledRulesetTests {
    static let policy = try! PolicyParser.parse([PolicyFile(name: "p.yaml", text: RulesetCompilerTests.policyText + """

          - {name: web-corp, from: web, to: corp, ports: [8443/tcp]}
          - {name: corp-world, from: corp, to: {cidr: 172.18.0.0/24}, ports: [22/tcp]}
        """)])

    static let zones: [String?] = ["web", "api", "corp", nil]

    /// A container of `zone` at host number `host`, on bridge port `port`.
    static func container(_ name: String, _ zone: String?, host: Int, port: Int, v6: Bool) -> Container {
        RulesetCompilerTests.attach(name, zone, ["172.18.0.\(host)"] + (v6 ? ["fd00::\(String(host, radix: 16))"] : []), port: "veth\(port)")
    }

    static func full(_ containers: [String: Container]) -> Ruleset {
        RulesetCompiler.ruleset(PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers.values.sorted { $0.name < $1.name },
                                                                                     bridges: ["br-zg"])))
    }

    @Test(arguments: 0..<3)
    func anySequenceOfChangesEndsWhereAFullCompileDoes(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        // One container of each zone stays throughout, so every identity keeps a member.
        var containers: [String: Container] = [:]
        for (index, zone) in Self.zones.enumerated() {
            containers["anchor\(index)"] = Self.container("anchor\(index)", zone, host: 200 + index, port: 200 + index, v6: index % 2 == 0)
        }
        let fake = FakeDataplane()
        var compiled = CompiledRuleset(PolicyEvaluator(policy: Self.policy, inventory: Inventory(containers: Array(containers.values), bridges: ["br-zg"])))
        try fake.apply(try diff(from: Ruleset(), to: compiled.ruleset))
        var incremental = 0
        for step in 0..<30 {
            var changes: [ContainerChange] = []
            for _ in 0..<(1 + random.int(3)) {
                let key = "c\(random.int(12))"
                if containers[key] != nil && random.int(3) == 0 {
                    containers[key] = nil
                    changes.append(ContainerChange(key: key, container: nil))
                } else {
                    // A new holder of a possibly reused address and port, in a zone that exists.
                    let container = Self.container(key, Self.zones[random.int(Self.zones.count)], host: 2 + random.int(8),
                                                   port: random.int(8), v6: random.int(2) == 0)
                    containers[key] = container
                    changes.append(ContainerChange(key: key, container: container))
                }
            }
            // Each address held once, as Docker guarantees: a change that reuses one also stops its holder.
            for change in changes {
                guard let container = change.container else { continue }
                for (key, other) in containers where key != change.key && !Set(other.addresses).isDisjoint(with: container.addresses) {
                    containers[key] = nil
                    changes.append(ContainerChange(key: key, container: nil))
                }
            }
            let expected = Self.full(containers)
            if let update = try compiled.update(changes) {
                incremental += 1
                let operations = update.transaction.operations
                #expect(operations.allSatisfy { if case .addElements = $0 { true } else if case .deleteElements = $0 { true } else { false } },
                        "step \(step): elements only")
                try fake.apply(update.transaction)
            } else {
                compiled = CompiledRuleset(PolicyEvaluator(policy: Self.policy, inventory: Inventory(containers: Array(containers.values), bridges: ["br-zg"])))
                try fake.apply(try diff(from: fake.ruleset, to: compiled.ruleset))
            }
            let kernelMatches = fake.ruleset == expected, partsMatch = compiled.ruleset == expected
            #expect(kernelMatches, "step \(step): the kernel holds what a full compile gives: \(Self.difference(fake.ruleset, expected))")
            #expect(partsMatch, "step \(step): the parts assemble into it: \(Self.difference(compiled.ruleset, expected))")
        }
        #expect(incremental > 15, "most changes are compiled alone")
    }

    /// The elements one ruleset has and the other lacks, set by set, for a failure message.
    static func difference(_ actual: Ruleset, _ expected: Ruleset) -> String {
        var lines: [String] = []
        for table in expected.tables {
            for set in table.sets {
                let have = Set(actual.table(table.family, table.name)?.set(set.name)?.elements ?? [])
                let want = Set(set.elements)
                for element in have.subtracting(want) { lines.append("\(set.name): extra \(element.key) \(element.comment ?? "")") }
                for element in want.subtracting(have) { lines.append("\(set.name): missing \(element.key) \(element.comment ?? "")") }
            }
        }
        return lines.isEmpty ? "same elements" : lines.prefix(8).joined(separator: "; ")
    }

    @Test func whatOnlyAFullCompileDecidesIsRefused() throws {
        let anchors = [Self.container("w", "web", host: 2, port: 2, v6: false), Self.container("a", "api", host: 3, port: 3, v6: false)]
        let compiled = CompiledRuleset(PolicyEvaluator(policy: Self.policy, inventory: Inventory(containers: anchors, bridges: ["br-zg"])))
        var published = Self.container("p", "web", host: 4, port: 4, v6: false)
        published.published = [HostPortMapping(hostPort: 18080, port: ServicePort(8080, .tcp))]
        var otherBridge = Self.container("b", "web", host: 5, port: 5, v6: false)
        otherBridge.attachments[0].bridge = "br-new"
        let refused: [(String, [ContainerChange])] = [
            ("a zone combination with no container yet", [ContainerChange(key: "n", container: Self.container("n", "corp", host: 6, port: 6, v6: false))]),
            ("the last container of an identity", [ContainerChange(key: "a", container: nil)]),
            ("published ports", [ContainerChange(key: "p", container: published)]),
            ("a bridge not yet managed", [ContainerChange(key: "b", container: otherBridge)]),
        ]
        for (what, changes) in refused {
            var copy = compiled
            #expect(try copy.update(changes) == nil, "\(what)")
            #expect(copy.ruleset == compiled.ruleset, "\(what): nothing recorded")
        }
        var accepted = compiled
        let start = try accepted.update([ContainerChange(key: "w2", container: Self.container("w2", "web", host: 7, port: 7, v6: false))])
        #expect(start?.releasedAddresses == [] && start?.reassignedAddresses == [], "a fresh address revokes nothing")
        let reuse = try accepted.update([ContainerChange(key: "w2", container: nil),
                                         ContainerChange(key: "w3", container: Self.container("w3", "web", host: 7, port: 8, v6: false))])
        #expect(reuse?.reassignedAddresses == [IPAddress("172.18.0.7")!])
        let stop = try accepted.update([ContainerChange(key: "w3", container: nil)])
        #expect(stop?.releasedAddresses == [IPAddress("172.18.0.7")!])
    }
}

