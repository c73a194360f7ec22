import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import ZonegateDaemon
import ZonegateDocker
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateRuleset

/// `zonegate-bench --daemon <docker socket> <policy directory> <resync seconds>`: the daemon as
/// `zonegate run` assembles it (the real Reconciler, Docker client, netlink dataplane and
/// conntrack, default timing but the resync interval) except for the bridge ports: the simulated containers have no veth, so each port is
/// named after the container's id. It logs JSON lines on standard output, each prefixed with the
/// CLOCK_MONOTONIC nanoseconds at which it was written.
enum BenchDaemon {
    static func run(socket: String, policyDirectory: String, resyncSeconds: Int) async throws {
        LoggingSystem.bootstrap { _ in
            LineLogHandler(format: .json) { line in
                let stamped = Array("\(monotonicNanoseconds()) \(line)".utf8)
                _ = stamped.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            }
        }
        let logger = Logger(label: "zonegate-bench.daemon")
        let client = try DockerAPIClient(host: "unix://" + socket)
        let enforcer = Enforcer(dataplane: try NetlinkDataplane(), tracker: try? ConntrackTable(), hostAddresses: { [] })
        let environment = ReconcilerEnvironment(
            engine: client, enforcer: enforcer,
            loadPolicy: { try PolicyDirectory.load(policyDirectory) },
            policyFingerprint: { PolicyDirectory.fingerprint(policyDirectory) },
            bridgePorts: { { container, _, _ in "vb" + container.id.prefix(12) } })
        let reconciler = Reconciler(environment: environment, timing: ReconcilerTiming(resyncInterval: .seconds(resyncSeconds)), logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: reconciler, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm], logger: logger))
        try await group.run()
        try? await client.shutdown()
    }
}

/// The parent's handle on a `--daemon` child: it reads the child's log lines as they come,
/// keeping when each "applied" transaction (acked by the kernel) named each event.
final class DaemonUnderTest: @unchecked Sendable {
    let pid: pid_t
    private let condition = NSCondition()
    /// Reason ("container 0000000003e8 start") -> the child's stamps of the applied lines naming it.
    private var appliedStamps: [String: [UInt64]] = [:]
    private var ready = false
    private var exited = false
    /// Stamps of "drift repaired": a periodic resync's transaction, which also enforces the
    /// events that came before its listing (their own pass then changes nothing, logs nothing).
    private var driftStamps: [UInt64] = []
    /// Warnings and errors logged after "ready", drift repairs aside.
    private var troubles: [String] = []
    /// The `duration_ms` of each applied line: the daemon's own compile+diff+kernel time.
    private var enforceSeconds: [Double] = []
    /// The child's last lines, for the message of a failure.
    private var lastLines: [String] = []

    init(socket: String, policyDirectory: String, resyncSeconds: Int) throws {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw BenchError(description: "pipe: \(String(cString: strerror(errno)))") }
        let (reading, writing) = (pipeEnds[0], pipeEnds[1])
        pid = try spawn(CommandLine.arguments[0], ["--daemon", socket, policyDirectory, String(resyncSeconds)]) { actions in
            posix_spawn_file_actions_adddup2(&actions, writing, 1)
            posix_spawn_file_actions_addclose(&actions, reading)
        }
        close(writing)
        Thread { [self] in readLines(reading) }.start()
    }

    /// Waits for the daemon's "ready" (its first full transaction acked).
    func waitUntilReady(timeout: Double) throws {
        try waitFor(timeout: timeout, "ready") { ready }
    }

    /// The stamp of the first applied line naming `reason` at or after `stamp`.
    func appliedStamp(_ reason: String, after stamp: UInt64, timeout: Double) throws -> UInt64 {
        var found: UInt64?
        try waitFor(timeout: timeout, "applied \(reason)") {
            found = appliedStamps[reason]?.first { $0 >= stamp }
            return found != nil
        }
        return found!
    }

    /// After the fact, the stamp of the transaction that enforced an event of `stamp`: the first
    /// applied line naming it within `window`, else the first drift repair within it.
    func acknowledgement(_ reason: String, after stamp: UInt64, window: UInt64 = 10_000_000_000) -> UInt64? {
        condition.withLock {
            let inWindow = { (ack: UInt64) in ack >= stamp && ack - stamp <= window }
            return appliedStamps[reason]?.first(where: inWindow) ?? driftStamps.first(where: inWindow)
        }
    }

    var troublesSinceReady: [String] { condition.withLock { troubles } }
    /// The daemon's own enforcement time of the applied transactions after its start.
    var enforceDurations: Sample { condition.withLock { Sample(seconds: Array(enforceSeconds.dropFirst())) } }
    var driftRepairs: Int { condition.withLock { driftStamps.count } }

    /// The child's VmRSS now, in bytes.
    var currentResidentBytes: Double { residentBytes(of: "\(pid)") }

    /// SIGTERM (a graceful shutdown, as for `zonegate run`), then waits for the child's end.
    func stop() {
        kill(pid, SIGTERM)
        waitForExit(pid)
    }

    private func waitFor(timeout: Double, _ what: String, _ done: () -> Bool) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !done() {
            guard !exited else { throw BenchError(description: "the daemon child exited before \(what):\n\(lastLines.joined(separator: "\n"))") }
            guard condition.wait(until: deadline) else {
                throw BenchError(description: "no \(what) from the daemon child within \(timeout) s; its last lines:\n\(lastLines.joined(separator: "\n"))")
            }
        }
    }

    private func readLines(_ descriptor: Int32) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                record(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        close(descriptor)
        condition.withLock { exited = true; condition.broadcast() }
    }

    /// Parses only the lines that matter: one "container classified" line per container would
    /// otherwise cost more than the daemon spends writing them.
    private func record(_ line: String) {
        condition.withLock { lastLines = lastLines.suffix(9) + [line] }
        guard let space = line.firstIndex(of: " "), let stamp = UInt64(line[..<space]) else { return }
        let isApplied = line.contains(#""message":"applied""#), isReady = line.contains(#""message":"ready""#)
        let isDrift = line.contains(#""message":"drift repaired"#)
        let isTrouble = line.contains(#""level":"warning""#) || line.contains(#""level":"error""#)
        guard isApplied || isReady || isTrouble,
              let object = try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8)) as? [String: Any] else { return }
        condition.withLock {
            if isReady { ready = true }
            if isApplied, let reasons = object["reason"] as? String {
                for reason in reasons.components(separatedBy: "; ") { appliedStamps[reason, default: []].append(stamp) }
                if let milliseconds = (object["duration_ms"] as? NSNumber)?.doubleValue { enforceSeconds.append(milliseconds / 1e3) }
            }
            if isDrift { driftStamps.append(stamp) } else if isTrouble && ready { troubles.append(object["message"] as? String ?? line) }
            condition.broadcast()
        }
    }
}

/// A simulated Docker engine with `host`'s containers and a daemon child reading it, both
/// stopped at the end of `body`, and zonegate's tables removed; the policy is written to a
/// directory of `scratch`.
func withSimulatedHost<T>(_ host: SyntheticHost, kernel: KernelBench, resyncSeconds: Int, _ body: (SimulatedDocker, DaemonUnderTest) throws -> T) throws -> T {
    let directory = kernel.scratch.appendingPathComponent("daemon-\(host.containerCount)")
    let policies = directory.appendingPathComponent("policies")
    try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try host.policyYAML.write(to: policies.appendingPathComponent("bench.yaml"), atomically: true, encoding: .utf8)
    let docker = try SimulatedDocker(host, directory: directory)
    defer { docker.shutdownServer() }
    let daemon = try DaemonUnderTest(socket: docker.socketPath, policyDirectory: policies.path, resyncSeconds: resyncSeconds)
    defer {
        daemon.stop()
        try? kernel.clearZonegate()
    }
    try daemon.waitUntilReady(timeout: 120)
    return try body(docker, daemon)
}
