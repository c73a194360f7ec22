import Foundation

/// A child process that runs beside the test (a server, a long-lived client) and whose
/// output lines are collected as they arrive. It is bounded twice: by `timeout` and by
/// the script's own deadline.
public final class ProbeProcess: @unchecked Sendable {
    private let child: ChildProcess
    private let collector: PipeCollector
    private let sink = LineSink()

    /// Starts `command` in `location`; it is killed after `lifetime` whatever happens.
    public init(_ command: [String], in location: NetnsLocation, lifetime: Duration) throws {
        let output = try ChildProcess.pipe()
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(input)
            // Only the child may hold the writing end, so the collector sees EOF when it exits.
            close(output.write)
        }
        do {
            child = try NetnsCommand.spawn(
                command, in: location, timeout: lifetime, stdin: input, stdout: output.write, stderr: output.write)
        } catch {
            close(output.read)
            throw error
        }
        collector = PipeCollector(FileHandle(fileDescriptor: output.read, closeOnDealloc: true)) { [sink] in
            sink.append($0)
        }
    }

    /// Output lines so far (stdout and stderr interleaved).
    public var outputLines: [String] { sink.lines }

    var isRunning: Bool { child.exitStatus() == nil }

    /// Polls (every 10 ms, at most `timeout`) until a line satisfies `predicate`.
    public func waitForLine(timeout: Duration, where predicate: (String) -> Bool) -> Bool {
        poll(timeout: timeout) { self.outputLines.contains(where: predicate) }
    }

    /// Waits at most `timeout` for the process to exit by itself.
    @discardableResult
    func waitForExit(timeout: Duration) -> Bool {
        let exited = poll(timeout: timeout) { !self.isRunning }
        if exited { _ = collector.waitForEnd() }
        return exited
    }

    /// Stops the process: SIGTERM (which `timeout` forwards to the command), then SIGKILL
    /// after a second.
    public func stop() {
        guard isRunning else { return }
        child.send(SIGTERM)
        if !waitForExit(timeout: .seconds(1)) {
            child.send(SIGKILL)
            waitForExit(timeout: .seconds(1))
        }
    }

    /// The last lines of output, for failure messages.
    public var outputTail: String { outputLines.suffix(5).joined(separator: "\n") }

    deinit { stop() }
}

/// Lines received from a child, shared between the reading thread and the test.
private final class LineSink: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

/// Calls `condition` every 10 ms until it holds or `timeout` passes.
func poll(timeout: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: 0.01)
    }
}
