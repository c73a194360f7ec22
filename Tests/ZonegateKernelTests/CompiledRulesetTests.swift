import Foundation
import Testing
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateTesting

/// The compiled ruleset of the shipped example policy, in the kernel: it loads, reads back
/// equal, lists as nft text that nft reads back, and container changes touch elements only.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct CompiledRulesetTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let dataplane: NetlinkDataplane
    let policy: ZonegatePolicy.Policy
    let inventory: Inventory

    init() throws {
        dataplane = try NetlinkDataplane()
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: Ruleset()))
        policy = try PolicyDirectory.load(Self.packageRoot.appendingPathComponent("policies").path)
        var inventory = try Inventory.decode(Data(contentsOf: Self.packageRoot.appendingPathComponent("Tests/Fixtures/pci-host-inventory.json")))
        for index in inventory.containers.indices {
            let container = inventory.containers[index]
            inventory.containers[index].attachments = [BridgeAttachment(bridge: "br-zg", port: "veth\(index)zg", addresses: container.addresses)]
        }
        inventory.bridges = ["br-zg", "docker0"]
        // Published ports: reached through Docker's userland proxy, they are judged as the flow
        // to the container behind them.
        inventory.containers[0].published = [HostPortMapping(hostPort: 18443, port: inventory.containers[0].ports.first ?? ServicePort(443, .tcp))]
        self.inventory = inventory
    }

    private func compiled(_ inventory: Inventory) -> Ruleset {
        RulesetCompiler.ruleset(PolicyEvaluator(policy: policy, inventory: inventory))
    }

    @Test func loadsAndReadsBackEqual() throws {
        let desired = compiled(inventory)
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: desired))
        let readBack = try dataplane.readAll(name: "zonegate")
        #expect(readBack == desired)
        #expect(try diff(from: readBack, to: desired).isEmpty)
    }

    @Test func nftListsItAndReadsTheListingBack() throws {
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: compiled(inventory)))
        let listing = try NetnsCommand.check(["nft", "list", "ruleset"])
        for text in ["step 1: replies within allowed connections pass", "ip saddr vmap @dispatch4", "payments-1", "api-to-payments",
                     "ip saddr . ip daddr . meta l4proto . th dport vmap @ctr_out4",
                     "meta l4proto . th dport @published ip saddr . meta l4proto . th dport vmap @ctr_proxy4",
                     "meta mark set meta l4proto . th dport map @proxy_ports update @proxy_grants { meta mark }",
                     "iifname \"lo\" meta l4proto . th dport @published meta l4proto . th dport vmap @host_proxy",
                     "meta mark 0x00000000 meta mark set ip daddr . meta l4proto . th dport map @proxy_backends4 jump proxy_onward",
                     "meta skuid 0 meta mark @proxy_grants meta mark set 0x00000000 accept", "flags dynamic,timeout"] {
            #expect(listing.contains(text), "nft list lacks \(text)")
        }
        // The inet table's listing is a valid nft script: it loads into an empty namespace (checked,
        // `-c`). (The bridge table's neighbour-advertisement rule lists its target as raw
        // `@th,64,128`, since nft 1.0.6 has no `icmpv6 taddr`, and so does not read back.)
        let inet = try NetnsCommand.check(["nft", "list", "table", "inet", "zonegate"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-listing-\(getpid()).nft")
        defer { try? FileManager.default.removeItem(at: file) }
        try inet.write(to: file, atomically: true, encoding: .utf8)
        try NetnsCommand.check(["unshare", "-n", "nft", "-c", "-f", file.path])
    }

    /// A table reloaded from its own listing (a ruleset saved with `nft list ruleset` and restored at
    /// boot) holds expressions nft writes and zonegate does not (`byteorder`): it still reads back,
    /// and one enforcement brings it back to what zonegate compiles.
    @Test func aTableReloadedByNftIsTakenOver() throws {
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: compiled(inventory)))
        let inet = try NetnsCommand.check(["nft", "list", "table", "inet", "zonegate"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-reload-\(getpid()).nft")
        defer { try? FileManager.default.removeItem(at: file) }
        try inet.write(to: file, atomically: true, encoding: .utf8)
        try NetnsCommand.check(["nft", "delete", "table", "inet", "zonegate"])
        try NetnsCommand.check(["nft", "-f", file.path])
        let reloaded = try dataplane.readAll(name: "zonegate")
        #expect(reloaded != compiled(inventory), "nft's encoding differs from zonegate's")
        let enforcer = Enforcer(dataplane: dataplane, tracker: nil, hostAddresses: { [] })
        let repair = try enforcer.enforce(PolicyEvaluator(policy: policy, inventory: inventory))
        #expect(!repair.transaction.isEmpty)
        #expect(try dataplane.readAll(name: "zonegate") == compiled(inventory))
    }

    @Test func containerStartAndStopChangeElementsOnly() throws {
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: compiled(inventory)))
        var grown = inventory
        grown.containers.append(Container(name: "shop-web-2", labels: ["zonegate.zone": "web"], addresses: [IPAddress("172.18.0.20")!],
                                          ports: [ServicePort(443, .tcp)],
                                          attachments: [BridgeAttachment(bridge: "br-zg", port: "vethnewzg", addresses: [IPAddress("172.18.0.20")!])],
                                          published: [HostPortMapping(hostPort: 28443, port: ServicePort(443, .tcp))]))
        for (from, to) in [(inventory, grown), (grown, inventory)] {
            let transaction = try diff(from: try dataplane.readAll(name: "zonegate"), to: compiled(to))
            #expect(!transaction.isEmpty)
            #expect(transaction.operations.allSatisfy {
                switch $0 {
                case .addElements, .deleteElements, .flushSet(_, "proxy_grants"): true
                default: false
                }
            }, "\(transaction)")
            try dataplane.apply(transaction)
            #expect(try dataplane.readAll(name: "zonegate") == compiled(to))
            _ = from
        }
    }
}
