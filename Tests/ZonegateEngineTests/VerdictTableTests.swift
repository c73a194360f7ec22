import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// The table the kernel looks flows up in gives the engine's verdicts, for every kind of peer.
@Suite struct VerdictTableTests {
    private let evaluator = sharedDataplaneEvaluator

    /// The identity the kernel would find for a peer name: container address map, outside ranges, host.
    private func identity(_ table: VerdictTable, _ name: String) -> UInt32 {
        if name == "host" { return VerdictTable.hostIdentity }
        let address: IPAddress
        if case .container(let index)? = evaluator.peer(named: name) {
            address = evaluator.inventory.containers[index].addresses[0]
            return table.containerAddresses.first { $0.address == address }!.identity
        }
        address = IPAddress(name)!
        // Addresses of one family order before all of the other: a range holds only its own.
        return table.outsideRanges.first { range in range.low <= address && address <= range.high }!.identity
    }

    @Test func lookupsGiveTheEngineVerdicts() {
        let table = VerdictTable(evaluator)
        let peers = ["w", "a", "c", "u", "host", "203.0.113.9", "198.51.100.10", "198.51.100.70", "2001:db8::1", "fd00::99"]
        let probes: [(UInt8, UInt16, ServicePort)] = [
            (6, 443, ServicePort(443, .tcp)), (6, 8049, ServicePort(8049, .tcp)), (6, 8150, ServicePort(8150, .tcp)),
            (6, 8201, ServicePort(8201, .tcp)), (17, 53, ServicePort(53, .udp)), (1, 0, ServicePort(0, .icmp)),
            (58, 1234, ServicePort(0, .icmp)), (132, 9, ServicePort(9, .sctp)),
        ]
        for from in peers {
            for to in peers where from != to {
                let source = identity(table, from), destination = identity(table, to)
                for (proto, port, servicePort) in probes {
                    let found = table.entries.filter {
                        $0.source == source && $0.destination == destination && $0.protocols.contains(proto) && $0.ports.contains(port)
                    }
                    #expect(found.count <= 1, "entries of a pair are disjoint: \(found)")
                    let decision = evaluator.decide(from: evaluator.peer(named: from)!, to: evaluator.peer(named: to)!, port: servicePort)
                    let expected: TableAction? = decision.untouched ? nil : [.allow: .accept, .audit: .audit][decision.verdict]
                    #expect(found.first?.action == expected, "\(from) -> \(to) proto \(proto) port \(port)")
                }
            }
        }
    }

    @Test func otherProtocolsFollowOpenSides() {
        let table = VerdictTable(evaluator)
        // GRE (47) from web to an unzoned container: both sides open, so it passes; into api it does not.
        let web = identity(table, "w"), unzoned = identity(table, "u"), api = identity(table, "a"), corp = identity(table, "c")
        #expect(table.entries.contains { $0.source == web && $0.destination == unzoned && $0.protocols.contains(47) && $0.action == .accept })
        #expect(!table.entries.contains { $0.source == web && $0.destination == api && $0.protocols.contains(47) })
        #expect(table.entries.contains { $0.source == web && $0.destination == corp && $0.protocols.contains(47) && $0.action == .audit })
    }

    @Test func entriesNameTheirRulesAndMergeOverlaps() {
        let table = VerdictTable(evaluator)
        let web = identity(table, "w"), api = identity(table, "a")
        let tcp = table.entries.filter { $0.source == web && $0.destination == api && $0.protocols == 6...6 }
        #expect(tcp.map(\.ports) == [8000...8200])
        #expect(tcp.first?.rules == ["web-api", "web-api-2"])
    }

    @Test func numbersAreStableWhenIdentitiesAreAdded() {
        let before = VerdictTable(evaluator)
        let grown = PolicyEvaluator(policy: evaluator.policy, inventory: Inventory(containers: evaluator.inventory.containers + [
            container("both", ["zonegate.zone": "web", "extra": "x"], ["172.18.0.9"]),
            container("new-cidr", ["zonegate.zone": "api"], ["198.51.100.3"]),
        ]))
        let after = VerdictTable(grown)
        for identity in before.identities {
            #expect(after.identities.first { $0.summary == identity.summary }?.id == identity.id, "\(identity.summary)")
        }
        #expect(Set(after.identities.map(\.id)).count == after.identities.count, "numbers are unique")
        #expect(VerdictTable.number(["a", "b", "a-collision"]).count == 3)
    }
}
