import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// The whole-pair view the dataplane compiles from must agree with per-port verdicts.
@Suite struct PairPolicyTests {
    private let evaluator = sharedDataplaneEvaluator

    private var classes: [PeerClass] {
        evaluator.identities.indices.map { PeerClass(.container(identity: $0)) } + evaluator.outsideClasses().map(\.peerClass) + [.host]
    }

    @Test func pairPolicyAgreesWithPerPortVerdicts() {
        let ports = [ServicePort(443, .tcp), ServicePort(8050, .tcp), ServicePort(8101, .tcp), ServicePort(53, .udp),
                     ServicePort(53, .tcp), ServicePort(0, .icmp), ServicePort(9, .sctp)]
        for source in classes {
            for destination in classes {
                let pair = evaluator.pairPolicy(from: source, to: destination)
                for port in ports {
                    let decision = evaluator.decide(from: source, to: destination, port: port)
                    let ruleAllows = pair.rules.contains { $0.ports.contains { $0.contains(port) } }
                    let expected: VerdictKind = pair.untouched || pair.unrestricted || ruleAllows ? .allow : (pair.auditsTheRest ? .audit : .deny)
                    #expect(decision.verdict == expected, "\(source) -> \(destination) \(port)")
                }
            }
        }
    }

    @Test func outsideClassesCoverTheAddressSpaceOnce() {
        let ranges = evaluator.outsideClasses()
        for width in [4, 16] {
            let family = ranges.filter { $0.low.bytes.count == width }
            #expect(family.first?.low.bytes == Array(repeating: 0, count: width))
            #expect(family.last?.high.bytes == Array(repeating: 0xff, count: width))
            for (earlier, later) in zip(family, family.dropFirst()) {
                #expect(earlier.high.successor == later.low, "contiguous and disjoint")
                #expect(earlier.blocks != later.blocks, "neighbours with the same blocks are merged")
            }
            for range in family {
                for address in [range.low, range.high] {
                    #expect(range.blocks == evaluator.cidrBlocks.indices.filter { evaluator.cidrBlocks[$0].contains(address) }, "\(address)")
                }
            }
        }
        let v4 = ranges.filter { $0.low.isIPv4 }.map { "\($0.low)-\($0.high) \($0.blocks)" }
        #expect(v4 == ["0.0.0.0-198.51.99.255 []", "198.51.100.0-198.51.100.63 [0]", "198.51.100.64-198.51.100.127 []",
                            "198.51.100.128-198.51.100.255 [0]", "198.51.101.0-255.255.255.255 []"])
        #expect(ranges.filter { !$0.low.isIPv4 }.count == 3)
    }
}
