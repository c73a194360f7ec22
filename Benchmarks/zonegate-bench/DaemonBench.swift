import Foundation

/// Issue 5 items 4, 6 and 7: the real daemon (a `--daemon` child: Reconciler, Docker client,
/// netlink, conntrack) against a simulated Docker engine, enforcing in this private namespace.
/// Latency runs from the moment the simulated engine writes an event to the moment the daemon
/// logs the kernel's ack of the transaction that event caused (CLOCK_MONOTONIC on both sides).
struct DaemonBench {
    let kernel: KernelBench
    /// `zonegate run`'s default resync interval, for the churn; the one-event-at-a-time
    /// measurements use an hour, so that no periodic resync falls among them.
    static let productionResync = 30
    static let quietResync = 3_600
    static let zones = 50
    static let rules = 50

    func host(_ containers: Int) -> SyntheticHost {
        SyntheticHost(containers: containers, zones: Self.zones, rules: Self.rules)
    }

    static func reason(_ index: Int, _ action: String) -> String {
        "container \(SimulatedDocker.id(index).prefix(12)) \(action)"
    }

    /// Event-to-enforced latencies of one container at a time starting (joining an existing
    /// zone), then stopping, on a host of `containers`.
    struct Latency {
        var start: Sample
        var stop: Sample
        /// The daemon's own compile+diff+kernel part of each (its log's duration_ms).
        var enforce: Sample
    }

    func sequentialLatency(containers: Int, repetitions: Int) throws -> Latency {
        try withSimulatedHost(host(containers), kernel: kernel, resyncSeconds: Self.quietResync) { docker, daemon in
            var starts: [Double] = [], stops: [Double] = []
            for repetition in 0...repetitions {
                let index = containers + repetition
                let started = docker.start(index)
                let startAck = try daemon.appliedStamp(Self.reason(index, "start"), after: started, timeout: 60)
                let stopped = docker.stop(index)
                let stopAck = try daemon.appliedStamp(Self.reason(index, "die"), after: stopped, timeout: 60)
                guard repetition > 0 else { continue }  // warm-up
                starts.append(Double(startAck - started) / 1e9)
                stops.append(Double(stopAck - stopped) / 1e9)
            }
            return Latency(start: Sample(seconds: starts), stop: Sample(seconds: stops), enforce: daemon.enforceDurations)
        }
    }

    /// DFW's model of the same event: a 500 ms debounce, then `nft -f` of the whole linear ruleset.
    func dfwModel(containers: Int) throws -> (seconds: Double, rules: Int) {
        let (script, rules) = host(containers).linearNftScript(table: "linear")
        let file = try kernel.write(script, "linear-\(containers).nft")
        let reload = try kernel.measureNft(file: file, repetitions: 5) { try kernel.nft(["delete", "table", "inet", "linear"]) }
        return (0.5 + reload.median, rules)
    }

    /// Item 4.
    func latencyRows(_ notes: inout [String]) throws -> (rows: [Result], idleAt1000: Sample) {
        let small = try sequentialLatency(containers: 10, repetitions: 200)
        let large = try sequentialLatency(containers: 1_000, repetitions: 100)
        var rows: [Result] = []
        for (size, latency) in [(10, small), (1_000, large)] {
            let (model, rules) = try dfwModel(containers: size)
            let baseline = "DFW model: 500 ms debounce + nft -f linear (\(rules) rules)"
            rows.append(Result("event->enforced, start at \(size) (sim. Docker, real daemon+kernel)", latency.start,
                               baseline: baseline, model, goal: "p99 <= 5 ms"))
            rows.append(Result("event->enforced, stop at \(size) (sim. Docker, real daemon+kernel)", latency.stop,
                               baseline: baseline, model, goal: "p99 <= 5 ms"))
            rows.append(Result("  of which the daemon's compile+diff+kernel at \(size) (its duration_ms)", latency.enforce,
                               baseline: "event->enforced, start", latency.start.median))
        }
        rows.append(.comparingP99("event->enforced p99, start at 1000 vs 10", large.start,
                                  baseline: "event->enforced p99, start at 10", small.start, goal: "<= 1.5"))
        notes.append("event->enforced rows: one event at a time, no periodic resync among them; a simulated Docker engine (unix socket, Engine API JSON) and the real daemon in a child process (Reconciler, DockerAPIClient, netlink, conntrack); bridge ports are synthetic names (no veth), so the ruleset is real but no packet crosses it")
        return (rows, large.start)
    }

    /// Item 7: VmRSS of the daemon child once it has enforced `containers`, three fresh children each.
    func resident(_ containers: Int) throws -> Sample {
        Sample(seconds: try (0..<3).map { _ in
            try withSimulatedHost(host(containers), kernel: kernel, resyncSeconds: Self.quietResync) { _, daemon in
                Thread.sleep(forTimeInterval: 1)  // the startup's transient allocations settle
                return daemon.currentResidentBytes / 1e6
            }
        })
    }

    func memoryRows() throws -> [Result] {
        let empty = try resident(0)
        var rows: [Result] = []
        for size in [1_000, 10_000] {
            rows.append(Result("daemon VmRSS, \(size) containers enforced (sim. Docker)", try resident(size),
                               baseline: "daemon VmRSS, no containers", empty.median, unit: "MB"))
        }
        return rows
    }

    /// Item 6: 20 starts and 20 stops a second for `seconds` over 1,000 running containers (a
    /// pool of 100 more takes turns: a container stays stopped 5 s, runs about 50 s).
    func churnRows(idle: Sample, seconds: Int, _ notes: inout [String]) throws -> [Result] {
        try withSimulatedHost(host(1_000), kernel: kernel, resyncSeconds: Self.productionResync) { docker, daemon in
            var running = Array(0..<1_000), stopped = Array(1_000..<1_100)
            var events: [(reason: String, stamp: UInt64)] = []
            var resident: [Double] = [daemon.currentResidentBytes / 1e6]
            let interval: UInt64 = 25_000_000  // 40 events a second, alternating start and stop
            let begin = monotonicNanoseconds()
            let count = seconds * 40
            for event in 0..<count {
                let due = begin + UInt64(event) * interval
                let now = monotonicNanoseconds()
                if due > now { usleep(UInt32((due - now) / 1_000)) }
                if event % 2 == 0 {
                    let index = stopped.removeFirst()
                    running.append(index)
                    events.append((Self.reason(index, "start"), docker.start(index)))
                } else {
                    let index = running.removeFirst()
                    stopped.append(index)
                    events.append((Self.reason(index, "die"), docker.stop(index)))
                }
                if event % 40 == 39 { resident.append(daemon.currentResidentBytes / 1e6) }
            }
            Thread.sleep(forTimeInterval: 5)  // the last events' transactions
            var latencies: [Double] = []
            var unacknowledged = 0
            for (reason, stamp) in events {
                if let ack = daemon.acknowledgement(reason, after: stamp) { latencies.append(Double(ack - stamp) / 1e9) } else { unacknowledged += 1 }
            }
            let latency = Sample(seconds: latencies)
            let troubles = daemon.troublesSinceReady
            notes.append("churn: \(events.count) events over \(seconds) s, \(unacknowledged) without an applied line naming them; daemon VmRSS first \(String(format: "%.1f", resident.first!)) MB, last \(String(format: "%.1f", resident.last!)) MB, max \(String(format: "%.1f", resident.max()!)) MB")
            if !troubles.isEmpty { notes.append("churn: warnings/errors after ready: \(Set(troubles).sorted().joined(separator: " | "))") }
            notes.append("churn: resync every \(Self.productionResync) s as `zonegate run`; \(daemon.driftRepairs) periodic resyncs logged 'drift repaired' (events enforced by the resync's listing before their own pass); a full resync triggered otherwise (stream broke/reconnected, retry, kernel refused) logs a warning or error first, counted in the row")
            return [
                .comparingP99("churn 20+20/s over 1000, event->enforced", latency, baseline: "idle event->enforced p99 at 1000", idle, goal: "<= 2"),
                .count("churn: full resyncs triggered (warnings/errors after ready)", troubles.count, goal: "0"),
                Result("churn: daemon VmRSS at the end of \(seconds) s", Sample(seconds: [resident.last!]), baseline: "VmRSS at churn start",
                       resident.first!, goal: "flat (~1)", unit: "MB"),
            ]
        }
    }

    /// Items 4, 7 and 6, in that order (the churn's baseline is item 4's idle latency); a part
    /// that fails becomes a note, so that the others are still reported.
    func all(_ notes: inout [String]) -> [Result] {
        var rows: [Result] = []
        var idle: Sample?
        do {
            let (latency, idleAt1000) = try latencyRows(&notes)
            rows += latency
            idle = idleAt1000
        } catch {
            notes.append("event->enforced latency failed: \(error)")
        }
        do {
            rows += try memoryRows()
        } catch {
            notes.append("daemon VmRSS failed: \(error)")
        }
        if let idle {
            do {
                rows += try churnRows(idle: idle, seconds: 60, &notes)
            } catch {
                notes.append("churn failed: \(error)")
            }
        }
        return rows
    }
}

extension Result {
    /// A row whose ratio is of p99s, where the goal bounds a tail.
    static func comparingP99(_ name: String, _ sample: Sample, baseline: String, _ baselineSample: Sample, goal: String) -> Result {
        var row = Result(name, sample, baseline: baseline, baselineSample.p99, goal: goal)
        row.ratio = sample.p99 / baselineSample.p99
        return row
    }

    /// An absolute count, with no baseline to divide by (its ratio is the count itself).
    static func count(_ name: String, _ value: Int, goal: String) -> Result {
        Result(name, Sample(seconds: [Double(value)]), baseline: "none (absolute)", 1, goal: goal, unit: "count")
    }
}
