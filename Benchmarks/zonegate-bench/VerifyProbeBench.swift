import Foundation
import ZonegateProbe
import ZonegateTesting

/// Issue 11: `verify --probe`'s engine at 50 containers with 2 TCP ports each (ZonegateTesting's
/// ProbeTestHost, the case of the kernel test `fiftyContainersWithTwoPortsEach`): every flow of
/// the matrix (container, host and world rows, over IPv4 and IPv6) with the engine's default
/// options, against the same probes made one by one (`maxInFlight` 1). One by one, each denied
/// flow waits out its connect timeout (1 s per address), thousands of seconds for the whole plan,
/// so that baseline is measured on a fixed sample (every `stride`-th allowed and every
/// `stride`-th denied flow, in the plan's order: both in the plan's proportion) and scaled to the
/// plan. `ZONEGATE_BENCH_ONLY=verify-probe` runs only this.
struct VerifyProbeBench {
    var repetitions = 3
    var stride = 40

    func run(_ notes: inout [String]) throws -> [Result] {
        let (host, plan) = try ProbeTestHost.fiftyContainersWithTwoPortsEach()
        defer { withExtendedLifetime(host) {} }  // its deinit removes the containers: not before the probes end
        let allowed = plan.flows.count { $0.allowed }
        let size = "50 containers x 2 ports, \(plan.flows.count) flows (\(allowed) allowed)"

        var full: [ProbeReport] = []
        for index in 1...repetitions {
            try Self.forgetNeighbours(host)
            let report = try ProbeEngine.runBlocking(plan)
            notes.append("verify --probe run \(index), \(size): " + Self.summary(report))
            full.append(report)
        }

        var sample = plan
        var taken: [Bool: Int] = [:]
        sample.flows = plan.flows.filter { flow in
            defer { taken[flow.allowed, default: 0] += 1 }
            return taken[flow.allowed, default: 0] % stride == 0
        }
        var oneByOne = ProbeOptions()
        oneByOne.maxInFlight = 1
        // ~2 s per denied flow (two addresses): the default 120 s would cut the sample short.
        oneByOne.deadline = .seconds(3 * sample.flows.count + 60)
        try Self.forgetNeighbours(host)
        let sequential = try ProbeEngine.runBlocking(sample, options: oneByOne)
        let sampleSeconds = sequential.elapsed.seconds
        let extrapolated = sampleSeconds * Double(plan.flows.count) / Double(sample.flows.count)
        let sampleAllowed = sample.flows.count { $0.allowed }
        notes.append("verify --probe one by one, every \(stride)th allowed and denied flow: \(sample.flows.count) of \(plan.flows.count) flows "
                     + "(\(sampleAllowed) allowed): " + Self.summary(sequential)
                     + String(format: "; x %.1f = %.0f s for the plan", Double(plan.flows.count) / Double(sample.flows.count), extrapolated))

        let times = Sample(seconds: full.map(\.elapsed.seconds))
        return [
            Result("verify --probe, \(size), engine defaults", times,
                   baseline: "the same one by one (maxInFlight 1), extrapolated from \(sample.flows.count) of \(plan.flows.count) flows",
                   extrapolated, goal: times.median < 10 ? "< 10 s: met" : "< 10 s: not met"),
            .count("  flows not as the matrix says, worst of \(repetitions) runs", full.map(\.disagreements.count).max() ?? 0, goal: "0"),
            .count("  the same, one by one, \(sample.flows.count) flows", sequential.disagreements.count, goal: "0"),
        ]
    }

    /// Empties the neighbour tables of the host's and the containers' namespaces, so that every
    /// run starts from the same state: the kernel's ARP/ND tables are shared by all namespaces, and
    /// the entries a run resolved stay REACHABLE 15-45 s, which would cut the next run's budget.
    static func forgetNeighbours(_ host: ProbeTestHost) throws {
        for location in [NetnsLocation.privateHost] + host.containers.values.map(\.netnsLocation) {
            try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: location)
        }
    }

    /// Time, attempts, outcomes, mismatches (the first few named) and warnings of one run.
    static func summary(_ report: ProbeReport) -> String {
        let mismatches = report.disagreements
        var text = String(format: "%.1f s, ", report.elapsed.seconds)
            + "\(report.attemptCount) attempts, \(report.count(.reached)) reached, \(report.count(.blocked)) blocked, "
            + "\(report.count(.notProbed)) not probed, \(report.results.count { ($0.note ?? "").hasPrefix("second try") }) tried twice, "
            + "\(mismatches.count) not as the matrix says"
        if !mismatches.isEmpty {
            text += " (" + mismatches.prefix(3).map { "\($0.flow) allowed=\($0.flow.allowed): \($0.outcome.rawValue) \($0.note ?? "")" }
                .joined(separator: "; ") + ")"
        }
        if !report.warnings.isEmpty { text += "; warnings: " + report.warnings.joined(separator: "; ") }
        return text
    }
}
