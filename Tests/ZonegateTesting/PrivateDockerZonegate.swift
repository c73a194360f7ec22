import Foundation

/// The outcome of one finished command: status, stdout and stderr.
public struct CommandOutcome: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// The `zonegate` binary as a user runs it, black box: one-shot commands and the daemon.
public enum ZonegateBinary {
    /// `.build/debug/zonegate` under the package root (found from this file's path).
    public static let path: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/zonegate").path
    }()

    /// Runs `zonegate ARGS` to completion (bounded by `timeout`).
    public static func run(_ arguments: [String], timeout: Duration = .seconds(30)) throws -> CommandOutcome {
        let result = try NetnsCommand.run([path] + arguments, timeout: timeout)
        return CommandOutcome(status: result.status, stdout: result.output, stderr: result.errorOutput)
    }
}

/// `zonegate run` in the background (or another command a test signals while it runs), its
/// stderr read as it arrives: one JSON object per line with `--log-format json`. Started so
/// that it dies with the test process; `stop()` (or deinit) ends it.
public final class ZonegateDaemonProcess: @unchecked Sendable {
    private let child: ChildProcess
    private let collector: PipeCollector

    /// `zonegate run --policies DIR --docker-host HOST --resync-interval RESYNC --log-format json`.
    public convenience init(policies: String, dockerHost: String, resyncInterval: String = "2s") throws {
        try self.init(arguments: ["run", "--policies", policies, "--docker-host", dockerHost,
                                  "--resync-interval", resyncInterval, "--log-format", "json"])
    }

    /// `zonegate ARGS`, its stdout discarded.
    public init(arguments: [String]) throws {
        let output = try ChildProcess.pipe()
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer {
            close(null)
            close(output.write)
        }
        let argv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", ZonegateBinary.path] + arguments
        do {
            child = try ProcessLifetimeThread.shared.spawn(argv, stdin: null, stdout: null, stderr: output.write)
        } catch {
            close(output.read)
            throw error
        }
        collector = PipeCollector(FileHandle(fileDescriptor: output.read, closeOnDealloc: true))
    }

    deinit { stop() }

    /// Every stderr line so far.
    public var lines: [String] {
        collector.text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// The number of lines so far: a mark for `waitFor(... after:)`.
    public var mark: Int { lines.count }

    /// Waits (at most `timeout`) for a log entry, after the first `after` lines, satisfying
    /// `predicate`; false when it did not come or the daemon exited first.
    public func waitFor(after: Int = 0, timeout: Duration, _ predicate: @escaping ([String: Any]) -> Bool) -> Bool {
        let found = {
            self.lines.dropFirst(after).contains { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]).map(predicate) ?? false
            }
        }
        _ = poll(timeout: timeout, interval: .milliseconds(50)) { found() || exitStatus != nil }
        return found()
    }

    /// Waits for the entry whose `message` is `message`.
    public func waitForMessage(_ message: String, after: Int = 0, timeout: Duration = .seconds(30)) -> Bool {
        waitFor(after: after, timeout: timeout) { ($0["message"] as? String) == message }
    }

    /// The exit status once it ended (128 + signal when killed), nil while it runs.
    public var exitStatus: Int32? { child.exitStatus() }

    /// Sends a signal (SIGHUP reloads, SIGKILL simulates a crash).
    public func send(_ signal: Int32) { child.send(signal) }

    /// SIGTERM, then waits (at most `timeout`) and returns the exit status; SIGKILL if it
    /// would not end.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) -> Int32 {
        if let status = child.exitStatus() { return status }
        child.send(SIGTERM)
        if !poll(timeout: timeout, interval: .milliseconds(20), { child.exitStatus() != nil }) {
            child.send(SIGKILL)
        }
        return child.waitForExit()
    }

    /// The last lines of the log, for failure messages.
    public func tail(_ count: Int = 15) -> String { lines.suffix(count).joined(separator: "\n") }
}
