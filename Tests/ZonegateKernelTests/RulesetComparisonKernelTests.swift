import Foundation
import Testing
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateTesting

/// verify's ruleset check against a real kernel (private network namespace): the compiled tables
/// loaded through the dataplane read back with no difference; changes made behind zonegate's
/// back with `nft` are each named.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct RulesetComparisonKernelTests {
    let dataplane: NetlinkDataplane
    let desired: Ruleset

    init() throws {
        dataplane = try NetlinkDataplane()
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: Ruleset()))
        desired = try webToDatabaseRuleset(bridge: "br-t", webPort: "veth-w", databasePort: "veth-d")
        try dataplane.apply(try diff(from: Ruleset(), to: desired))
    }

    func differences() throws -> [String] {
        RulesetComparison.compare(actual: try dataplane.readAll(name: "zonegate"), desired: desired).map(\.description)
    }

    @Test func loadedTablesHaveNoDifferenceAndAStableDigestText() throws {
        #expect(try differences() == [])
        let readBack = try dataplane.readAll(name: "zonegate")
        #expect(RulesetComparison.canonicalText(readBack) == RulesetComparison.canonicalText(desired))
    }

    @Test func plantedAcceptRuleIsNamed() throws {
        try NetnsCommand.check(["nft", "insert", "rule", "inet", "zonegate", "forward", "ip", "saddr", "10.9.9.9", "accept"])
        let found = try differences()
        #expect(found == ["extra rule: in chain inet zonegate forward at position 1: meta nfproto ipv4 ip saddr 10.9.9.9 accept"], "\(found)")
    }

    @Test func deletedElementIsNamed() throws {
        try NetnsCommand.check(["nft", "delete", "element", "bridge", "zonegate", "bound4", "{", "\"veth-w\"", ".", "172.18.0.2", "}"])
        let found = try differences()
        #expect(found.count == 1 && found[0].hasPrefix("missing element: add element bridge zonegate bound4 { \"veth-w\" . 172.18.0.2"), "\(found)")
    }

    @Test func changedChainPolicyIsNamed() throws {
        try NetnsCommand.check(["nft", "chain", "inet", "zonegate", "forward", "{", "policy", "drop", ";", "}"])
        let found = try differences()
        #expect(found.count == 1 && found[0].hasPrefix("changed chain: chain inet zonegate forward has {") && found[0].contains("policy drop;"), "\(found)")
    }

    /// A chain on a hook zonegate does not model (inet's ingress, 5) reads back as foreign, never
    /// as a hook it knows: it is named, and the diff replaces it with zonegate's own.
    @Test func chainOnAForeignHookIsNamedAndReplaced() throws {
        try NetnsCommand.check(["ip", "link", "set", "lo", "up"])
        try NetnsCommand.check(["nft", "flush", "chain", "inet", "zonegate", "forward"])
        try NetnsCommand.check(["nft", "delete", "chain", "inet", "zonegate", "forward"])
        try NetnsCommand.check(["nft", "add", "chain", "inet", "zonegate", "forward",
                                "{", "type", "filter", "hook", "ingress", "device", "lo", "priority", "0", ";", "}"])
        let kernel = try dataplane.readAll(name: "zonegate")
        #expect(kernel.table(.inet, "zonegate")?.chain("forward")?.hook?.hook == .foreign(5))
        let found = try differences()
        #expect(found.contains { $0.hasPrefix("changed chain: chain inet zonegate forward has { type filter hook <foreign 5> priority 0;") }, "\(found)")
        try dataplane.apply(try diff(from: kernel, to: desired))
        #expect(try differences() == [])
    }

    @Test func missingTableAndExtraChainAreNamed() throws {
        try NetnsCommand.check(["nft", "add", "chain", "inet", "zonegate", "extra"])
        try NetnsCommand.check(["nft", "delete", "table", "bridge", "zonegate"])
        let found = try differences()
        #expect(found.contains("missing table: table bridge zonegate"), "\(found)")
        #expect(found.contains("extra chain: chain inet zonegate extra"), "\(found)")
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: Ruleset()))
    }
}
