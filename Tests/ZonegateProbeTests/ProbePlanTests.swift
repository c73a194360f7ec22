import Testing
import ZonegatePolicy
@testable import ZonegateProbe

/// The pure parts of the probe engine: the outside namespace's addresses, what agrees with the
/// matrix, and the run's bounds.
struct ProbePlanTests {
    func cidr(_ text: String) -> CIDR { try! CIDR.parse(text).get() }

    @Test func theOutsideAddressAvoidsThePolicyRoutesAndAddressesInUse() {
        let free = OutsideAddressing.pick(avoid: [], routes: [], inUse: [])
        #expect(free.ipv4?.host == IPAddress("203.0.113.1") && free.ipv4?.outside == IPAddress("203.0.113.2"))
        #expect(free.ipv6?.outside == IPAddress("2001:db8:7a67::2"))
        // A policy CIDR over TEST-NET-3, a route into the first /30 of TEST-NET-1, an address in
        // use in the next: the pick moves on. A default route does not count.
        let moved = OutsideAddressing.pick(
            avoid: [cidr("203.0.113.0/24"), cidr("2001:db8::/32")],
            routes: [cidr("0.0.0.0/0"), cidr("192.0.2.0/30"), cidr("::/0")],
            inUse: [IPAddress("192.0.2.5")!])
        #expect(moved.ipv4?.outside == IPAddress("192.0.2.10"))
        #expect(moved.ipv6 == nil, "every candidate /64 lies in 2001:db8::/32")
        // Everything covered: no outside address, so `world` rows are not probed.
        let none = OutsideAddressing.pick(avoid: [cidr("0.0.0.0/0")], routes: [], inUse: [])
        #expect(none.ipv4 == nil)
    }

    @Test func onlyExpectedOutcomesAgree() {
        func result(_ allowed: Bool, _ outcome: ProbeOutcome, blockedBy: String? = nil) -> ProbeResult {
            ProbeResult(flow: ProbeFlow(from: .host, to: "a", port: ServicePort(80, .tcp), allowed: allowed), outcome: outcome,
                        note: nil, blockedBy: blockedBy, attempts: [])
        }
        #expect(result(true, .reached).agrees)
        #expect(!result(true, .blocked).agrees)
        #expect(result(true, .blocked, blockedBy: "Docker publishes no such port").agrees)
        #expect(result(false, .blocked).agrees)
        #expect(!result(false, .reached).agrees, "a leak")
        #expect(!result(true, .notProbed).agrees && !result(false, .notProbed).agrees)
    }

    @Test func aRunOverItsBoundsIsRefused() throws {
        var options = ProbeOptions()
        options.maxFlows = 2
        let flows = (0..<3).map { ProbeFlow(from: .host, to: "a", port: ServicePort(UInt16(80 + $0), .tcp), allowed: true) }
        #expect(throws: ProbeError.self) { try ProbeEngine.runBlocking(ProbePlan(containers: [], flows: flows), options: options) }
        options = ProbeOptions()
        options.maxInFlight = 0
        #expect(throws: ProbeError.self) { try ProbeEngine.runBlocking(ProbePlan(containers: [], flows: []), options: options) }
    }

    @Test func aFlowToAContainerOutsideThePlanIsNotProbed() throws {
        let report = try ProbeEngine.runBlocking(ProbePlan(containers: [], flows: [
            ProbeFlow(from: .container("gone"), to: "nowhere", port: ServicePort(80, .tcp), allowed: true),
        ]))
        #expect(report.results.first?.outcome == .notProbed)
        #expect(report.results.first?.note?.contains("not in the inventory") == true)
    }
}
