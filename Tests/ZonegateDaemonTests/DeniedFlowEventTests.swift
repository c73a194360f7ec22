import Logging
import Testing
import ZonegateDaemon
import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset
import ZonegateTesting

/// The denied-flow event (policy.md step 7) built from a logged flow and the policy in force,
/// and the daemon's rate limit on those events.
struct DeniedFlowEventTests {
    static let policyText = """
        defaults: {unzoned: restricted}
        zones:
          - {name: web}
          - {name: payments}
          - {name: batch, egress: restricted}
          - {name: corp, mode: audit}
        rules:
          - {name: web-payments, from: web, to: payments, ports: [8443/tcp]}
        """
    static let hostAddress = IPAddress("172.30.0.1")!

    static let evaluator: PolicyEvaluator = {
        let containers = [("web-1", "web", 2), ("pay-1", "payments", 3), ("batch-1", "batch", 4), ("corp-1", "corp", 5), ("loose", nil, 6)]
            .map { name, zone, host in
                Container(name: name, labels: zone.map { ["zonegate.zone": $0] } ?? [:], addresses: [IPAddress("172.30.0.\(host)")!])
            }
        let policy = try! PolicyParser.parse([PolicyFile(name: "p.yaml", text: policyText)])
        return PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers))
    }()

    static func flow(_ from: String, _ to: String, _ transport: LoggedFlow.Transport, _ port: UInt16 = 0,
                     kind: LoggedFlow.Kind = .deny) -> LoggedFlow {
        LoggedFlow(kind: kind, source: IPAddress(from)!, destination: IPAddress(to)!, transport: transport,
                   sourcePort: 40000, destinationPort: port)
    }

    static func event(_ flow: LoggedFlow) -> (message: String, metadata: Logger.Metadata) {
        DeniedFlowEvent.make(flow, evaluator: evaluator, hostAddresses: [hostAddress])
    }

    @Test func aDeniedFlowNamesBothEndsTheirZonesAndTheRestrictedSide() {
        let (message, metadata) = Self.event(Self.flow("172.30.0.2", "172.30.0.3", .tcp, 9000))
        #expect(message == "flow denied")
        #expect(metadata == [
            "from": "web-1", "from_address": "172.30.0.2", "from_zones": .array(["web"]),
            "to": "pay-1", "to_address": "172.30.0.3", "to_zones": .array(["payments"]),
            "proto": "tcp", "port": .number(9000), "source_port": .number(40000),
            "reason": "ingress of pay-1 is restricted by zone payments and no rule allows web-1 -> pay-1 on 9000/tcp",
        ])
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var flow: LoggedFlow
        var message: String
        /// Keys expected present with these values; keys mapped to nil expected absent.
        var metadata: [String: String?]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "both sides restricted", flow: flow("172.30.0.4", "172.30.0.3", .tcp, 8443), message: "flow denied", metadata: [
            "from_zones": "batch", "to_zones": "payments",
            "reason": "ingress of pay-1 is restricted by zone payments, egress of batch-1 is restricted by zone batch, and no rule allows batch-1 -> pay-1 on 8443/tcp",
        ]),
        Case(name: "audit mode", flow: flow("172.30.0.2", "172.30.0.5", .tcp, 8080, kind: .audit), message: "flow would be denied (audit)", metadata: [
            "to": "corp-1", "to_zones": "corp",
            "reason": "ingress of corp-1 is restricted by zone corp (audit) and no rule allows web-1 -> corp-1 on 8080/tcp",
        ]),
        Case(name: "egress to an outside address", flow: flow("172.30.0.4", "198.51.100.7", .udp, 53), message: "flow denied", metadata: [
            "to": "198.51.100.7", "to_zones": nil, "proto": "udp", "port": "53",
            "reason": "egress of batch-1 is restricted by zone batch and no rule allows batch-1 -> 198.51.100.7 on 53/udp",
        ]),
        Case(name: "ICMP from the host has no port", flow: flow("172.30.0.1", "172.30.0.3", .icmp), message: "flow denied", metadata: [
            "from": "host", "from_address": "172.30.0.1", "from_zones": nil, "proto": "icmp", "port": nil, "source_port": nil,
            "reason": "ingress of pay-1 is restricted by zone payments and no rule allows host -> pay-1 on icmp",
        ]),
        Case(name: "ICMPv6 is judged as icmp", flow: flow("172.30.0.2", "172.30.0.3", .icmpv6), message: "flow denied", metadata: [
            "proto": "icmpv6", "port": nil,
            "reason": "ingress of pay-1 is restricted by zone payments and no rule allows web-1 -> pay-1 on icmp",
        ]),
        Case(name: "unzoned ingress restricted by the defaults", flow: flow("172.30.0.2", "172.30.0.6", .tcp, 22), message: "flow denied",
             metadata: [
                "to": "loose", "to_zones": "",
                "reason": "ingress of loose is restricted by defaults.unzoned and no rule allows web-1 -> loose on 22/tcp",
             ]),
        Case(name: "a protocol no rule can name", flow: flow("172.30.0.4", "172.30.0.3", .other(47)), message: "flow denied", metadata: [
            "proto": "proto 47", "port": nil,
            "reason": "no rule can allow proto 47 (rules name tcp, udp, sctp and icmp): batch-1 -> pay-1 is denied",
        ]),
        Case(name: "logged under an older policy that denied it", flow: flow("172.30.0.2", "172.30.0.3", .tcp, 8443), message: "flow denied",
             metadata: [
                "reason": "denied by the ruleset in force when it was sent; the current policy now allows it: web-1 -> pay-1 on 8443/tcp",
             ]),
    ]

    @Test(arguments: cases)
    func events(_ testCase: Case) {
        let (message, metadata) = Self.event(testCase.flow)
        #expect(message == testCase.message)
        for (key, value) in testCase.metadata {
            #expect(metadata[key].map(Self.plain) == value, "\(key)")
        }
    }

    /// A value as text: a list's elements joined by commas (an unzoned container's empty list is
    /// ""), a number's digits.
    static func plain(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return convertible.description
        case .array(let values): return values.map(plain).joined(separator: ",")
        case .dictionary(let values): return "\(values)"
        }
    }

    @Test func lostEventsAreCounted() {
        let (message, metadata) = DeniedFlowEvent.lost(3)
        #expect(message == "3 denied-flow events lost")
        #expect(metadata["lost"] == .number(3))
    }

    // MARK: - Rate limit

    @Test func aBurstPassesThenEventsAreSuppressedAndSummarisedOncePerInterval() {
        var limiter = EventRateLimiter<ManualClock.Instant>(rate: 2, burst: 3, summaryInterval: .seconds(10))
        let start = ManualClock.Instant(offset: .zero)
        let first = (0..<5).map { _ in limiter.admit(at: start) }
        #expect(first.map(\.log) == [true, true, true, false, false])
        #expect(first.allSatisfy { $0.suppressedSummary == nil }, "no summary before the interval has passed")
        #expect(limiter.summary(at: start + .seconds(9)) == nil)
        // Half a second refills one token at 2 a second.
        #expect(limiter.admit(at: start + .milliseconds(500)).log)
        #expect(!limiter.admit(at: start + .milliseconds(500)).log)
        // The flood goes on: the event after the interval carries one summary line.
        #expect(limiter.admit(at: start + .seconds(10)) == .init(log: true, suppressedSummary: 3))
        #expect(limiter.summary(at: start + .seconds(30)) == nil, "nothing suppressed since the summary")
        #expect(DeniedFlowEvent.suppressed(3).message == "3 denied-flow events suppressed")
        #expect(DeniedFlowEvent.suppressed(3).metadata["suppressed"] == .number(3))
    }

    @Test func aFloodIsHeldToTheRate() {
        var limiter = EventRateLimiter<ManualClock.Instant>(rate: 20, burst: 40, summaryInterval: .seconds(10))
        let start = ManualClock.Instant(offset: .zero)
        // 10 000 events a second for 10 seconds.
        var logged = 0, summarised = 0
        for index in 0..<100_000 {
            let admission = limiter.admit(at: start + .microseconds(index * 100))
            if admission.log { logged += 1 }
            summarised += admission.suppressedSummary ?? 0
        }
        summarised += limiter.summary(at: start + .seconds(20)) ?? 0
        #expect((230...245).contains(logged), "burst of 40 plus about 20 a second: \(logged)")
        #expect(logged + summarised == 100_000, "every suppressed event is counted in a summary")
    }
}
