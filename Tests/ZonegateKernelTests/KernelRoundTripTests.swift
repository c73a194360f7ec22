import Foundation
import Testing
import ZonegateNetfilter
import ZonegateTesting

/// Kernel tests: run only as root, with ZONEGATE_KERNEL_TESTS=1, inside a private
/// network namespace (`make test-kernel` runs `unshare -n -- swift test ...`).
/// Serialized because they all own the same tables.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct KernelRoundTripTests {
    let dataplane: NetlinkDataplane

    init() throws {
        dataplane = try NetlinkDataplane()
        // Start from nothing: remove only zonegate's own tables, left by an earlier test.
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: Ruleset()))
    }

    @Test func fullRulesetReadsBackEqual() throws {
        try dataplane.apply(try diff(from: try dataplane.readAll(name: "zonegate"), to: SampleRulesets.full))
        let readBack = try dataplane.readAll(name: "zonegate")
        #expect(readBack == SampleRulesets.full)
        #expect(try diff(from: readBack, to: SampleRulesets.full).isEmpty)
        #expect(try dataplane.read(family: .bridge, name: "zonegate") == SampleRulesets.full.table(.bridge, "zonegate"))
    }

    @Test func nftListShowsTheComments() throws {
        try dataplane.apply(try diff(from: Ruleset(), to: SampleRulesets.full))
        let listing = try NetnsCommand.check(["nft", "list", "table", "inet", "zonegate"])
        for comment in ["replies", "v6 outside", "default deny", "web", "uplink", "v4 nets"] {
            #expect(listing.contains("\"\(comment)\""), "nft list lacks comment \(comment)")
        }
        #expect(listing.contains("ip saddr . meta l4proto . th dport @triples accept"))
        #expect(listing.contains("elements = { 1000-2000, 8080 }"))
    }

    @Test func elementChangesAreIncremental() throws {
        try dataplane.apply(try diff(from: Ruleset(), to: SampleRulesets.full))
        var desired = SampleRulesets.full
        let inet = desired.tables.firstIndex { $0.family == .inet }!
        let triples = desired.tables[inet].sets.firstIndex { $0.name == "triples" }!
        let nets6 = desired.tables[inet].sets.firstIndex { $0.name == "nets6" }!
        desired.tables[inet].sets[triples].elements.removeFirst()
        desired.tables[inet].sets[triples].elements.append(SetElement(.ipv4("10.1.0.9")!, .tcp, .port(443)))
        desired.tables[inet].sets[nets6].elements.append(SetElement(.prefix("fd02::/48")!, comment: "new"))

        let transaction = try diff(from: try dataplane.readAll(name: "zonegate"), to: desired)
        // delete element inet zonegate triples { 10.1.0.2 . tcp . 5432 }
        // add element inet zonegate nets6 { fd02::/48 comment "new" }
        // add element inet zonegate triples { 10.1.0.9 . tcp . 443 }
        #expect(transaction.operations.allSatisfy {
            if case .addElements = $0 { true } else if case .deleteElements = $0 { true } else { false }
        })
        #expect(transaction.operations.count == 3)
        try dataplane.apply(transaction)
        #expect(try dataplane.readAll(name: "zonegate") == desired)
    }

    @Test func refusedBatchLeavesThePreviousState() throws {
        try dataplane.apply(try diff(from: Ruleset(), to: SampleRulesets.full))
        let before = try dataplane.readAll(name: "zonegate")
        // The transaction believes a chain "ghost" exists; the kernel does not have it.
        var believed = before
        let inet = believed.tables.firstIndex { $0.family == .inet }!
        believed.tables[inet].chains.append(Chain(name: "ghost"))
        var transaction = Transaction(startingFrom: believed)
        let table = TableID(.inet, "zonegate")
        // add element inet zonegate triples { 10.7.7.7 . udp . 53 }   (valid, must be rolled back)
        try transaction.add(.addElements(table, set: "triples", [SetElement(.ipv4("10.7.7.7")!, .udp, .port(53))]))
        // flush chain inet zonegate zone_a                            (valid, must be rolled back)
        try transaction.add(.flushChain(table, name: "zone_a"))
        // add rule inet zonegate forward jump ghost                   (refused: no such chain)
        try transaction.add(.addRule(table, chain: "forward", Rule([.verdict(.jump("ghost"))])))

        let error = #expect(throws: NetfilterError.self) { try dataplane.apply(transaction) }
        #expect(error?.isKernelRefusal == true)
        #expect(error?.errno == ENOENT)
        #expect(error?.operationIndex == 2, "\(String(describing: error))")
        #expect(try dataplane.readAll(name: "zonegate") == before)
        // The socket stays usable after a refusal.
        try dataplane.apply(try diff(from: before, to: Ruleset()))
        #expect(try dataplane.readAll(name: "zonegate") == Ruleset())
    }

    @Test func largeElementListsAreSplitAcrossMessages() throws {
        // 20,000 elements need well over one 64 KiB message; all go in one batch.
        let hosts = (0..<20_000).map { index in
            SetElement(KeyPart(value: [10, 50, UInt8(index >> 8), UInt8(index & 0xff)]), .tcp, .port(443))
        }
        let desired = Ruleset(tables: [Table(family: .inet, name: "zonegate", sets: [
            NftSet(name: "many", keyType: [.ipv4Addr, .inetProto, .inetService], elements: hosts),
        ])])
        try dataplane.apply(try diff(from: Ruleset(), to: desired))
        // Read at once, while the kernel may still be resizing the hash table.
        let readBack = try dataplane.readAll(name: "zonegate")
        #expect(readBack.tables.first?.sets.first?.elements.count == hosts.count)
        #expect(readBack == desired)
    }
}
