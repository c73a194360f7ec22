import Foundation
import ZonegateEngine
import ZonegatePolicy

/// Issue 10: `check` and `matrix` at the documented limits, as a user runs them: the `zonegate`
/// binary (release when built, else debug) in a child process under `/usr/bin/time`, for its
/// wall time and peak resident memory. The baselines are the acceptance limits the issue gives
/// (60 s, 4 GB), so a ratio below 1 is within them. Needs no root and no namespace:
/// `ZONEGATE_BENCH_ONLY=offline` runs only these.
struct OfflineBench {
    /// The policy at the policy limits (zones, rules; assertions between zones), and the
    /// inventories of `ReachabilityMatrix.maximumContainers` containers.
    static let zones = PolicyLimits.zones
    static let rules = PolicyLimits.rules
    static let assertions = 100
    static let containers = ReachabilityMatrix.maximumContainers

    let scratch: URL
    let binary: String

    init(scratch: URL) throws {
        self.scratch = scratch
        let release = ".build/release/zonegate", debug = ".build/debug/zonegate"
        guard let found = [release, debug].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw BenchError(description: "no zonegate binary: swift build -c release --product zonegate")
        }
        binary = found
    }

    private var build: String { binary.contains("release") ? "release" : "debug" }

    func run(_ notes: inout [String]) throws -> [Result] {
        let host = SyntheticHost(containers: Self.containers, zones: Self.zones, rules: Self.rules)
        let policies = scratch.appendingPathComponent("offline-policies")
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        var yaml = host.policyYAML + "assertions:\n"
        for index in 0..<Self.assertions {
            let from = index % Self.zones, to = SyntheticHost.ruleDestination(index * 13, zones: Self.zones)
            yaml += "  - {name: a\(index), \(index % 2 == 0 ? "deny" : "allow"): {from: z\(from), to: z\(to), ports: [\(SyntheticHost.rulePort(index))/tcp]}}\n"
        }
        try yaml.write(to: policies.appendingPathComponent("large.yaml"), atomically: true, encoding: .utf8)

        var results: [Result] = []
        let policyName = "\(Self.zones) zones, \(Self.rules) rules, \(Self.assertions) assertions"
        results += try measured("check, \(policyName)", ["check", "--policies", policies.path], notes: &notes,
                                acceptExit: [0, 1])

        // The matrix of the largest inventory with no ports (every row skipped: issue 10 took 48 s),
        // with 1% of containers listening (1 million rows), and 2,000 containers with 2 ports each
        // (8 million rows), each as JSON to /dev/null.
        let base = host.inventory().containers
        let inventories: [(String, [Container])] = [
            ("\(Self.containers) containers, no ports (0 rows)", base.map { var container = $0; container.ports = []; return container }),
            ("\(Self.containers) containers, 1% with a port (\(String(rowsOf: base, every: 100)) rows)",
             base.enumerated().map { var container = $1; if $0 % 100 != 0 { container.ports = [] }; return container }),
            ("2000 containers, 2 ports each (8.0M rows)", base.prefix(2_000).map { var container = $0
                container.ports = [container.ports[0], ServicePort(53, .udp)]; return container }),
        ]
        let encoder = JSONEncoder()
        for (index, (name, containers)) in inventories.enumerated() {
            let file = scratch.appendingPathComponent("offline-inventory-\(index).json")
            try encoder.encode(Inventory(containers: containers)).write(to: file)
            results += try measured("matrix --format json, \(name), \(policyName)",
                                    ["matrix", "--policies", policies.path, "--inventory", file.path, "--format", "json"], notes: &notes)
        }
        return results
    }

    /// Three runs of the binary: the median wall time and peak memory, each against its limit.
    private func measured(_ name: String, _ arguments: [String], notes: inout [String], acceptExit: Set<Int32> = [0]) throws -> [Result] {
        var seconds: [Double] = [], megabytes: [Double] = []
        for _ in 0..<3 {
            let (status, stderr) = try Self.timed([binary] + arguments)
            guard acceptExit.contains(status), let last = stderr.split(separator: "\n").last else {
                notes.append("\(name): exit \(status): \(stderr.suffix(300))")
                return []
            }
            let fields = last.split(separator: " ")
            guard fields.count == 2, let wall = Double(fields[0]), let kilobytes = Double(fields[1]) else {
                notes.append("\(name): cannot read /usr/bin/time's line '\(last)'")
                return []
            }
            seconds.append(wall)
            megabytes.append(kilobytes / 1024)
        }
        return [Result("\(name) (\(build) binary)", Sample(seconds: seconds), baseline: "acceptance time limit", 60, goal: "<= 1"),
                Result("  peak memory", Sample(seconds: megabytes), baseline: "acceptance memory limit", 4096, goal: "<= 1", unit: "MB")]
    }

    /// Runs `command` under `/usr/bin/time -f "%e %M"` with its output discarded.
    private static func timed(_ command: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-f", "%e %M"] + command
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let error = Pipe()
        process.standardError = error
        try process.run()
        let text = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

private extension String {
    /// The rows of a matrix where every `every`-th container has one port: each such container is
    /// the destination of every other container, `world` and `host`.
    init(rowsOf containers: [Container], every: Int) {
        let destinations = (containers.count + every - 1) / every
        self = String(destinations * (containers.count + 1))
    }
}
