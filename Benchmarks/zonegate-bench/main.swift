import Foundation
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy

// `make bench`: each figure is a ratio against a baseline measured in the same run, reported as
// median and p99 over repetitions, printed as a table and written as JSON. The kernel benchmarks
// run only when ZONEGATE_BENCH_NETNS=1 says this process is in a private network namespace (and a
// private mount namespace: the packet benchmark's containers are `ip netns add` namespaces).
// `--echo-server` / `--echo-client` are the packet benchmark's two ends, run inside its containers.
// ZONEGATE_BENCH_ONLY=packet runs only the per-packet benchmark (PacketBench.swift), =daemon runs only the daemon benchmarks (DaemonBench.swift), =exposure
// only the zero-exposure one (ExposureBench.swift: a private dockerd, so `unshare --mount` too), =offline
// only `check` and `matrix` at the documented limits (OfflineBench.swift), =verify-probe only `verify --probe`'s
// engine at 50 containers (VerifyProbeBench.swift).
// `--daemon <docker socket> <policy directory> <resync seconds>` is the daemon child they start.

EchoEnds.runIfAsked(CommandLine.arguments)
if CommandLine.arguments.dropFirst().first == "--daemon" {
    try await BenchDaemon.run(socket: CommandLine.arguments[2], policyDirectory: CommandLine.arguments[3],
                              resyncSeconds: Int(CommandLine.arguments[4])!)
    exit(0)
}
let only = ProcessInfo.processInfo.environment["ZONEGATE_BENCH_ONLY"]

var results: [Result] = []
var notes: [String] = []

// Matrix summary of 10,000 containers and 1,000 rules, reasoning per identity, against the
// per-pair evaluation it replaces (measured on a 1% sample of source containers, scaled up).
if only == nil {
    let host = SyntheticHost(containers: 10_000, zones: 50, rules: 1_000)
    let inventory = host.inventory()
    let evaluator = PolicyEvaluator(policy: host.policy, inventory: inventory)
    let summary = measure(repetitions: 5) { _ = ReachabilityMatrix(evaluator).summary() }
    let sampledSources = 100
    let perPair = measure(repetitions: 3) {
        for source in 0..<sampledSources {
            for destination in inventory.containers.indices where destination != source {
                for port in inventory.containers[destination].ports {
                    _ = evaluator.decide(from: .container(source), to: .container(destination), port: port)
                }
            }
        }
    }
    let scale = Double(inventory.containers.count + 2) / Double(sampledSources)
    results.append(Result("matrix summary, 10k containers x 1k rules", summary,
                          baseline: "per-pair evaluation (extrapolated)", perPair.median * scale))
}

// Issue 10: `check` and `matrix` at the documented limits, the zonegate binary in a child process
// (time and peak memory). No root needed: ZONEGATE_BENCH_ONLY=offline runs only these.
if only == nil || only == "offline" {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-bench-offline-\(getpid())")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    do {
        results += try OfflineBench(scratch: scratch).run(&notes)
    } catch {
        notes.append("offline benchmarks failed: \(error)")
    }
}

if only != "offline", ProcessInfo.processInfo.environment["ZONEGATE_BENCH_NETNS"] == "1" {
    // The kernel benchmarks create and delete tables: never in the host's own namespace.
    let namespace = { (pid: String) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net") }
    guard let own = namespace("self"), own != namespace("1") else {
        throw BenchError(description: "ZONEGATE_BENCH_NETNS=1 but this is the host's network namespace: run `make bench` (unshare -n)")
    }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-bench-\(getpid())")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let kernel = KernelBench(dataplane: try NetlinkDataplane(), scratch: scratch)

    if only == nil {
        // Full resync: 1,000 containers over 50 zones, 50 allowed zone tuples.
        results += try kernel.fullResync(SyntheticHost(containers: 1_000, zones: 50, rules: 50), repetitions: 15)
        results += try kernel.iptablesResync(SyntheticHost(containers: 1_000, zones: 50, rules: 50), repetitions: 15)

        // Incremental locality: one container start at 10, 1,000 and 10,000 containers.
        var starts: [Int: KernelBench.Start] = [:]
        for (size, repetitions) in [(10, 50), (1_000, 30), (10_000, 15)] {
            starts[size] = try kernel.containerStart(SyntheticHost(containers: size, zones: 50, rules: 50), repetitions: repetitions)
        }
        let small = starts[10]!.total
        for size in [10, 1_000, 10_000] {
            let start = starts[size]!
            let total = start.total
            results.append(Result("container start at \(size) (compiled alone + netlink, \(start.operations) ops, \(start.elements) elements)", total,
                                  baseline: "container start at 10", small.median, goal: size == 10_000 ? "<= 1.5" : nil))
            for (phase, seconds) in [("compiled alone", start.compile), ("netlink apply", start.kernel)] {
                results.append(Result("  \(phase) at \(size)", Sample(seconds: seconds), baseline: "its container start", total.median))
            }
        }
        let resync = try kernel.fullResyncOnce(SyntheticHost(containers: 10_000, zones: 50, rules: 50), repetitions: 5)
        results.append(Result("container start at 10000", starts[10_000]!.total,
                              baseline: "full resync at 10000 (compile+diff+netlink)", resync.median, goal: "<= 0.02"))
    }

    // Issue 5 item 1: round trips between two containers among 1,000, under each ruleset.
    if only == nil || only == "packet" { results += try PacketBench(kernel: kernel).run() }

    // Issue 5 items 4, 7, 6: the daemon itself against a simulated Docker engine.
    if only == nil || only == "daemon" { results += DaemonBench(kernel: kernel).all(&notes) }

    // Issue 5 item 5: real containers, real dockerd, the zonegate binary.
    if only == nil || only == "exposure" {
        if let reason = ExposureBench.reasonToSkip {
            notes.append("zero exposure skipped: \(reason)")
        } else {
            do {
                results += try ExposureBench().run(starts: 200, &notes)
            } catch {
                notes.append("zero exposure failed: \(error)")
            }
        }
    }

    // Issue 11: `verify --probe` at 50 containers with 2 ports each, against the same probes one by one.
    if only == nil || only == "verify-probe" {
        do {
            results += try VerifyProbeBench().run(&notes)
        } catch {
            notes.append("verify --probe benchmark failed: \(error)")
        }
    }
} else if only != "offline" {
    notes.append("kernel benchmarks skipped: run `make bench` (root, private network and mount namespaces via unshare)")
}

printTable(results)
for note in notes { print("note: \(note)") }
let output = CommandLine.arguments.dropFirst().first ?? "bench-results.json"
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
struct Report: Encodable { var results: [Result]; var notes: [String] }
try encoder.encode(Report(results: results, notes: notes)).write(to: URL(fileURLWithPath: output))
print("written: \(output)")
