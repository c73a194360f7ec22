import XCTest
import ZonegateEngine
import ZonegatePolicy
@testable import ZonegateRuleset
import ZonegateTesting

/// verify's ruleset comparison names each kind of difference in nft syntax (pure, on values).
final class RulesetComparisonTests: XCTestCase {
    func desired() throws -> Ruleset {
        let policy = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: """
            zones: [{name: web}, {name: db, egress: restricted}]
            rules: [{name: web-to-db, from: web, to: db, ports: [5432/tcp]}]
            """)])
        let inventory = Inventory(containers: [
            Container(name: "web-1", labels: ["zonegate.zone": "web"], addresses: [IPAddress("172.18.0.2")!], ports: [ServicePort(80, .tcp)],
                      attachments: [BridgeAttachment(bridge: "br-1", port: "veth1", addresses: [IPAddress("172.18.0.2")!])]),
            Container(name: "db-1", labels: ["zonegate.zone": "db"], addresses: [IPAddress("172.18.0.3")!], ports: [ServicePort(5432, .tcp)],
                      attachments: [BridgeAttachment(bridge: "br-1", port: "veth2", addresses: [IPAddress("172.18.0.3")!])]),
        ], bridges: ["br-1"])
        return RulesetCompiler.ruleset(PolicyEvaluator(policy: policy, inventory: inventory))
    }

    func edit(_ ruleset: Ruleset, _ family: Family, _ body: (inout Table) -> Void) -> Ruleset {
        var copy = ruleset
        let index = copy.tables.firstIndex { $0.family == family }!
        body(&copy.tables[index])
        return copy
    }

    func testIdenticalTablesHaveNoDifference() throws {
        let wanted = try desired()
        XCTAssertEqual(RulesetComparison.compare(actual: wanted, desired: wanted), [])
        XCTAssertEqual(RulesetComparison.canonicalText(wanted),
                       RulesetComparison.canonicalText(Ruleset(tables: wanted.tables.reversed().map { table in
                           var copy = table
                           copy.sets = table.sets.reversed().map { var set = $0; set.elements.reverse(); return set }
                           copy.chains.reverse()
                           return copy
                       })), "the canonical text does not depend on the order the kernel lists things in")
    }

    func testMissingTablesAndAnExtraTable() throws {
        let wanted = try desired()
        let found = RulesetComparison.compare(actual: Ruleset(tables: [Table(family: .ip, name: "zonegate")]), desired: wanted)
        XCTAssertEqual(found.map(\.description).sorted(), ["extra table: table ip zonegate", "missing table: table bridge zonegate",
                                                          "missing table: table inet zonegate"])
    }

    func testExtraRuleIsNamedWithItsPosition() throws {
        let wanted = try desired()
        let actual = edit(wanted, .inet) { $0.chains[$0.chains.firstIndex { $0.name == "forward" }!].rules.insert(SampleRulesets.allowWeb, at: 0) }
        let found = RulesetComparison.compare(actual: actual, desired: wanted)
        XCTAssertEqual(found.count, 1, "\(found)")
        XCTAssertEqual(found.first?.kind, .extraRule)
        XCTAssertTrue(found[0].text.hasPrefix("in chain inet zonegate forward at position 1: "), found[0].text)
        XCTAssertTrue(found[0].text.hasSuffix("accept"), found[0].text)
    }

    func testMissingRuleAndReorderedRules() throws {
        let wanted = try desired()
        let forward = wanted.table(.inet, "zonegate")!.chains.firstIndex { $0.name == "forward" }!
        let missing = edit(wanted, .inet) { $0.chains[forward].rules.removeLast() }
        let found = RulesetComparison.compare(actual: missing, desired: wanted)
        XCTAssertEqual(found.map(\.kind), [.missingRule])
        XCTAssertTrue(found[0].text.hasPrefix("add rule inet zonegate forward "), found[0].text)
        let reordered = edit(wanted, .inet) { $0.chains[forward].rules.swapAt(0, 1) }
        XCTAssertEqual(RulesetComparison.compare(actual: reordered, desired: wanted).map(\.kind), [.reorderedRules])
    }

    func testMissingAndExtraElements() throws {
        let wanted = try desired()
        let actual = edit(wanted, .bridge) { table in
            let index = table.sets.firstIndex { $0.name == "bound4" }!
            table.sets[index].elements.removeFirst()
            table.sets[index].elements.append(SetElement(.ifname("veth9"), .ipv4("172.18.0.9")!))
        }
        let found = RulesetComparison.compare(actual: actual, desired: wanted).map(\.description)
        XCTAssertEqual(found.count, 2, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("missing element: add element bridge zonegate bound4 { \"veth") }, "\(found)")
        XCTAssertTrue(found.contains("extra element: element bridge zonegate bound4 { \"veth9\" . 172.18.0.9 }"), "\(found)")
    }

    func testChangedChainPolicyHookAndPriority() throws {
        let wanted = try desired()
        let forward = wanted.table(.inet, "zonegate")!.chains.firstIndex { $0.name == "forward" }!
        let actual = edit(wanted, .inet) { $0.chains[forward].hook?.policy = .drop; $0.chains[forward].hook?.priority = 10 }
        let found = RulesetComparison.compare(actual: actual, desired: wanted)
        XCTAssertEqual(found.map(\.kind), [.changedChain])
        XCTAssertTrue(found[0].text.contains("priority 10; policy drop;"), found[0].text)
        XCTAssertTrue(found[0].text.contains("expected { type filter hook forward priority"), found[0].text)
    }

    func testExtraChainSetsAndChangedSet() throws {
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
        XCTAssertTrue(kinds.isSuperset(of: [.extraChain, .extraRule, .extraSet, .missingChain, .changedSet]), "\(found)")
        XCTAssertTrue(found.contains { $0.description == "extra rule: in chain inet zonegate sneaky: accept" }, "\(found)")
        XCTAssertTrue(found.contains { $0.description.hasPrefix("missing chain: add chain inet zonegate audit") }, "\(found)")
    }

    func testDynamicSetElementsAreNoDifference() throws {
        let wanted = try desired()
        guard let grants = wanted.table(.inet, "zonegate")?.sets.first(where: { $0.flags.contains(.dynamic) }) else {
            return XCTFail("the compiled ruleset has a dynamic set (proxy_grants)")
        }
        let actual = edit(wanted, .inet) { table in
            let index = table.sets.firstIndex { $0.name == grants.name }!
            table.sets[index].elements = [SetElement(key: [UInt8](repeating: 1, count: Int(grants.keyLength)))]
        }
        XCTAssertEqual(RulesetComparison.compare(actual: actual, desired: wanted), [])
        XCTAssertEqual(RulesetComparison.canonicalText(actual), RulesetComparison.canonicalText(wanted))
    }
}
