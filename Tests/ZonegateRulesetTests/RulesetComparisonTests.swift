import Testing
import ZonegateEngine
import ZonegatePolicy
@testable import ZonegateRuleset
import ZonegateTesting

/// verify's ruleset comparison names each kind of difference in nft syntax (pure, on values).
@Suite struct RulesetComparisonTests {
    func desired() throws -> Ruleset {
        try webToDatabaseRuleset(bridge: "br-1", webPort: "veth1", databasePort: "veth2")
    }

    func edit(_ ruleset: Ruleset, _ family: Family, _ body: (inout Table) -> Void) -> Ruleset {
        var copy = ruleset
        let index = copy.tables.firstIndex { $0.family == family }!
        body(&copy.tables[index])
        return copy
    }

    @Test func identicalTablesHaveNoDifference() throws {
        let wanted = try desired()
        #expect(RulesetComparison.compare(actual: wanted, desired: wanted) == [])
        #expect(RulesetComparison.canonicalText(wanted) == RulesetComparison.canonicalText(Ruleset(tables: wanted.tables.reversed().map { table in
                           var copy = table
                           copy.sets = table.sets.reversed().map { var set = $0; set.elements.reverse(); return set }
                           copy.chains.reverse()
                           return copy
                       })), "the canonical text does not depend on the order the kernel lists things in")
    }

    @Test func missingTablesAndAnExtraTable() throws {
        let wanted = try desired()
        let found = RulesetComparison.compare(actual: Ruleset(tables: [Table(family: .ip, name: "zonegate")]), desired: wanted)
        #expect(found.map(\.description).sorted() == ["extra table: table ip zonegate", "missing table: table bridge zonegate",
                                                          "missing table: table inet zonegate"])
    }

    @Test func extraRuleIsNamedWithItsPosition() throws {
        let wanted = try desired()
        let actual = edit(wanted, .inet) { $0.chains[$0.chains.firstIndex { $0.name == "forward" }!].rules.insert(SampleRulesets.allowWeb, at: 0) }
        let found = RulesetComparison.compare(actual: actual, desired: wanted)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.kind == .extraRule)
        #expect(found[0].text.hasPrefix("in chain inet zonegate forward at position 1: "), "\(found[0].text)")
        #expect(found[0].text.hasSuffix("accept"), "\(found[0].text)")
    }

    @Test func missingRuleAndReorderedRules() throws {
        let wanted = try desired()
        let forward = wanted.table(.inet, "zonegate")!.chains.firstIndex { $0.name == "forward" }!
        let missing = edit(wanted, .inet) { $0.chains[forward].rules.removeLast() }
        let found = RulesetComparison.compare(actual: missing, desired: wanted)
        #expect(found.map(\.kind) == [.missingRule])
        #expect(found[0].text.hasPrefix("add rule inet zonegate forward "), "\(found[0].text)")
        let reordered = edit(wanted, .inet) { $0.chains[forward].rules.swapAt(0, 1) }
        #expect(RulesetComparison.compare(actual: reordered, desired: wanted).map(\.kind) == [.reorderedRules])
    }

    @Test func missingAndExtraElements() throws {
        let wanted = try desired()
        let actual = edit(wanted, .bridge) { table in
            let index = table.sets.firstIndex { $0.name == "bound4" }!
            table.sets[index].elements.removeFirst()
            table.sets[index].elements.append(SetElement(.ifname("veth9"), .ipv4("172.18.0.9")!))
        }
        let found = RulesetComparison.compare(actual: actual, desired: wanted).map(\.description)
        #expect(found.count == 2, "\(found)")
        #expect(found.contains { $0.hasPrefix("missing element: add element bridge zonegate bound4 { \"veth") }, "\(found)")
        #expect(found.contains("extra element: element bridge zonegate bound4 { \"veth9\" . 172.18.0.9 }"), "\(found)")
    }

    @Test func changedChainPolicyHookAndPriority() throws {
        let wanted = try desired()
        let forward = wanted.table(.inet, "zonegate")!.chains.firstIndex { $0.name == "forward" }!
        let actual = edit(wanted, .inet) { $0.chains[forward].hook?.policy = .drop; $0.chains[forward].hook?.priority = 10 }
        let found = RulesetComparison.compare(actual: actual, desired: wanted)
        #expect(found.map(\.kind) == [.changedChain])
        #expect(found[0].text.contains("priority 10; policy drop;"), "\(found[0].text)")
        #expect(found[0].text.contains("expected { type filter hook forward priority"), "\(found[0].text)")
    }

    @Test func extraChainSetsAndChangedSet() throws {
        let wanted = try desired()
        let actual = edit(wanted, .inet) { table in
            table.chains.append(Chain(name: "sneaky", rules: [Rule([.verdict(.accept)])]))
            table.sets.append(NftSet(name: "extra", keyType: [.ipv4Addr]))
            table.chains.removeAll { $0.name == "audit" }
            let index = table.sets.firstIndex { $0.name == "bridges" }!
            table.sets[index].comment = "changed"
        }
        let found = RulesetComparison.compare(actual: actual, desired: wanted)
        let kinds = Set(found.map(\.kind))
        #expect(kinds.isSuperset(of: [.extraChain, .extraRule, .extraSet, .missingChain, .changedSet]), "\(found)")
        #expect(found.contains { $0.description == "extra rule: in chain inet zonegate sneaky: accept" }, "\(found)")
        #expect(found.contains { $0.description.hasPrefix("missing chain: add chain inet zonegate audit") }, "\(found)")
    }

    @Test func dynamicSetElementsAreNoDifference() throws {
        let wanted = try desired()
        guard let grants = wanted.table(.inet, "zonegate")?.sets.first(where: { $0.flags.contains(.dynamic) }) else {
            Issue.record("the compiled ruleset has a dynamic set (proxy_grants)")
            return
        }
        let actual = edit(wanted, .inet) { table in
            let index = table.sets.firstIndex { $0.name == grants.name }!
            table.sets[index].elements = [SetElement(key: [UInt8](repeating: 1, count: Int(grants.keyLength)))]
        }
        #expect(RulesetComparison.compare(actual: actual, desired: wanted) == [])
        #expect(RulesetComparison.canonicalText(actual) == RulesetComparison.canonicalText(wanted))
    }
}
