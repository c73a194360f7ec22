import Foundation
import ZonegateEngine
import ZonegateNetfilter
import ZonegateRuleset

/// Benchmarks against the kernel's nf_tables. They run only inside a private network namespace
/// (`make bench` starts one with `unshare -n`), so that the host's ruleset is never touched.
struct KernelBench {
    let dataplane: NetlinkDataplane
    let scratch: URL

    /// Runs nft, for the baselines only: the product never calls nft.
    @discardableResult
    func nft(_ arguments: [String]) throws -> String {
        try run("/usr/sbin/nft", arguments)
    }

    /// Runs a program to its end; its standard output.
    @discardableResult
    func run(_ program: String, _ arguments: [String]) throws -> String {
        let output = scratch.appendingPathComponent("stdout").path
        let errors = scratch.appendingPathComponent("stderr").path
        let pid = try spawn(program, arguments) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        guard waitForExit(pid) == 0 else {
            let message = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            throw BenchError(description: "\(program) \(arguments.joined(separator: " ")): \(message)")
        }
        return try String(contentsOfFile: output, encoding: .utf8)
    }

    /// Removes zonegate's tables, whatever they hold.
    func clearZonegate() throws {
        try dataplane.apply(try diff(from: dataplane.readAll(name: RulesetCompiler.tableName), to: Ruleset()))
    }

    func write(_ text: String, _ name: String) throws -> String {
        let file = scratch.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// Issue 5 item 2: 1,000 containers' worth of state in one transaction, from an empty kernel.
    func fullResync(_ host: SyntheticHost, repetitions: Int) throws -> [Result] {
        let (desired, compile) = timed { RulesetCompiler.ruleset(host.evaluator()) }
        let transaction = try diff(from: Ruleset(), to: desired)
        let compiled = Sample(seconds: [compile])
        var netlink: [Double] = []
        var whole: [Double] = []
        for repetition in 0...repetitions {
            try clearZonegate()
            let ((), seconds) = try timed { try dataplane.apply(transaction) }
            try clearZonegate()
            let ((), everything) = try timed {
                try dataplane.apply(try diff(from: Ruleset(), to: RulesetCompiler.ruleset(host.evaluator())))
            }
            if repetition > 0 { netlink.append(seconds); whole.append(everything) }  // the first one warms up
        }
        // zonegate's inet table as nft itself lists it (nft's listing of the bridge table does not
        // reload: a raw payload field looked up in a set).
        let inetOnly = try diff(from: Ruleset(), to: Ruleset(tables: desired.tables.filter { $0.family == .inet }))
        var inetNetlink: [Double] = []
        for repetition in 0...repetitions {
            try clearZonegate()
            let ((), seconds) = try timed { try dataplane.apply(inetOnly) }
            if repetition > 0 { inetNetlink.append(seconds) }
        }
        let listed = try nft(["list", "table", "inet", RulesetCompiler.tableName])
        try clearZonegate()
        let ownFile = try write(listed, "zonegate.nft")
        // Deleted with nft: what nft loads holds expressions (byteorder) zonegate's decoder refuses.
        let own = try measureNft(file: ownFile, repetitions: repetitions) { try nft(["delete", "table", "inet", RulesetCompiler.tableName]) }
        let (linear, linearRules) = host.linearNftScript(table: "linear")
        let linearFile = try write(linear, "linear.nft")
        let linearSample = try measureNft(file: linearFile, repetitions: repetitions) { try nft(["delete", "table", "inet", "linear"]) }

        let size = "\(host.containerCount) containers, \(host.rules) zone tuples"
        let linearName = "nft -f linear (\(linearRules) rules)"
        let netlinkSample = Sample(seconds: netlink)
        return [
            Result("full resync netlink, \(size) (\(transaction.operations.count) ops)", netlinkSample,
                   baseline: linearName, linearSample.median, goal: "<= 0.25"),
            Result("full resync netlink, inet table only, \(size)", Sample(seconds: inetNetlink),
                   baseline: "nft -f zonegate's inet table", own.median),
            Result("full resync compile+diff+netlink, \(size)", Sample(seconds: whole), baseline: linearName, linearSample.median),
            Result("  compile alone (once)", compiled, baseline: "compile+diff+netlink", Sample(seconds: whole).median),
            Result("nft -f zonegate's inet table, \(size)", own, baseline: linearName, linearSample.median),
        ]
    }

    /// `nft -f file` timed as a whole process (parse included), then `reset` untimed, each time.
    func measureNft(file: String, repetitions: Int, reset: () throws -> Void) throws -> Sample {
        var seconds: [Double] = []
        for repetition in 0...repetitions {
            let ((), taken) = try timed { try nft(["-f", file]) }
            if repetition > 0 { seconds.append(taken) }
            try reset()
        }
        return Sample(seconds: seconds)
    }

    /// The phases of one container start at one size.
    struct Start {
        var compile: [Double] = []
        var kernel: [Double] = []
        var operations = 0
        var elements = 0
        var total: Sample { Sample(seconds: compile.indices.map { compile[$0] + kernel[$0] }) }
    }

    /// Issue 5 item 3: one container start, as the daemon handles it: the container compiled alone
    /// against what was last written (`CompiledRuleset.update`, what `Enforcer` does for an
    /// event), then its element-only transaction. The new container joins zone z0, which already
    /// has containers: no new identity. It stops again, untimed.
    func containerStart(_ host: SyntheticHost, repetitions: Int) throws -> Start {
        try clearZonegate()
        var compiled = CompiledRuleset(host.evaluator())
        try dataplane.apply(try diff(from: Ruleset(), to: compiled.ruleset))
        var start = Start()
        for repetition in 0...repetitions {
            let newcomer = host.container(host.containerCount, zone: 0)
            let (update, compile) = try timed { try compiled.update([ContainerChange(key: newcomer.name, container: newcomer)]) }
            guard let transaction = update?.transaction else { throw BenchError(description: "a container start needed a full compile") }
            let ((), kernel) = try timed { try dataplane.apply(transaction) }
            guard let stop = try compiled.update([ContainerChange(key: newcomer.name, container: nil)]) else {
                throw BenchError(description: "a container stop needed a full compile")
            }
            try dataplane.apply(stop.transaction)
            guard repetition > 0 else { continue }
            start.compile.append(compile)
            start.kernel.append(kernel)
            start.operations = transaction.operations.count
            start.elements = transaction.operations.reduce(0) { if case .addElements(_, _, let added) = $1 { $0 + added.count } else { $0 } }
            if transaction.operations.contains(where: { if case .addElements = $0 { return false } else { return true } }) {
                throw BenchError(description: "a container start produced more than element additions: \(transaction)")
            }
        }
        try clearZonegate()
        return start
    }

    /// Compile + diff from empty + apply at this size: the full resync the start is compared with.
    func fullResyncOnce(_ host: SyntheticHost, repetitions: Int) throws -> Sample {
        var seconds: [Double] = []
        for _ in 0..<repetitions {
            try clearZonegate()
            seconds.append(try timed {
                try dataplane.apply(try diff(from: Ruleset(), to: RulesetCompiler.ruleset(host.evaluator())))
            }.1)
        }
        try clearZonegate()
        return Sample(seconds: seconds)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

/// Starts a program with posix_spawn rather than Foundation's Process, whose exit monitoring hung
/// in the private namespace; `redirect` adds the file actions for its standard streams.
func spawn(_ program: String, _ arguments: [String], redirect: (inout posix_spawn_file_actions_t) -> Void) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    redirect(&actions)
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, program, &actions, nil, argv, environ) == 0 else {
        throw BenchError(description: "cannot start \(program)")
    }
    return pid
}

/// The wait status of a child once it has exited.
@discardableResult
func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
}

/// VmRSS of a process (this one unless told), in bytes.
func residentBytes(of process: String = "self") -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
    return kilobytes * 1024
}
