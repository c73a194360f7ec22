import Foundation

/// Where a fixture's child process runs: the private "host" namespace the test process
/// itself lives in, or a named namespace a fixture created.
public enum NetnsLocation: Sendable, Hashable, CustomStringConvertible {
    case privateHost
    case named(String)

    public var description: String {
        switch self {
        case .privateHost: "private host namespace"
        case .named(let name): "netns \(name)"
        }
    }
}

/// Anything a probe can run in: a fake container, the outside world, the fake host.
public protocol ProbeSite: Sendable {
    var netnsLocation: NetnsLocation { get }
}

extension NetnsLocation: ProbeSite {
    public var netnsLocation: NetnsLocation { self }
}

/// A failure of the fixtures themselves (a command that could not run or failed), as
/// opposed to traffic that did not get through, which probes report as `false`.
public struct NetnsFixtureError: Error, CustomStringConvertible {
    public let description: String
    public let file: String
    public let line: Int

    init(_ description: String, file: String = #fileID, line: Int = #line) {
        self.description = description
        self.file = file
        self.line = line
    }
}

/// The outcome of one finished child process.
struct NetnsCommandResult {
    let status: Int32
    let output: String
    let errorOutput: String
}

/// Runs fixture commands as child processes, never in-process: network namespaces are
/// per thread on Linux and the test runner uses several threads. Tests use `check` for
/// their own `nft` / `ip` calls: Foundation's `Process` can hang (see `ChildProcess`).
public enum NetnsCommand {
    /// A fixed PATH so that `ip`, `nft`, `busybox` and Debian's `python3` are found
    /// whatever the caller's environment holds (pyenv shims, no sbin).
    static let environment = [
        "PATH": "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C",
    ]

    /// `timeout` bounds every child; `ip netns exec` then `exec`s the command, so the
    /// pid `timeout` watches is the command itself.
    static func arguments(_ command: [String], in location: NetnsLocation, timeout: Duration) -> [String] {
        var arguments = ["--kill-after=1", String(format: "%.3f", timeout.seconds)]
        if case .named(let name) = location {
            arguments += ["ip", "netns", "exec", name]
        }
        return arguments + command
    }

    /// Starts `command` under `timeout` with the given descriptors as its stdin, stdout
    /// and stderr.
    static func spawn(
        _ command: [String], in location: NetnsLocation, timeout: Duration,
        stdin: Int32, stdout: Int32, stderr: Int32
    ) throws -> ChildProcess {
        try ChildProcess(
            ["/usr/bin/timeout"] + arguments(command, in: location, timeout: timeout),
            stdin: stdin, stdout: stdout, stderr: stderr)
    }

    /// Runs `command` to completion (at most `timeout` plus a second) and returns its
    /// status and output; throws only when it cannot be started.
    static func run(
        _ command: [String], in location: NetnsLocation = .privateHost,
        timeout: Duration = .seconds(5), input: String? = nil
    ) throws -> NetnsCommandResult {
        let inputPipe = try ChildProcess.pipe()
        let outputPipe = try ChildProcess.pipe()
        let errorPipe = try ChildProcess.pipe()
        let child: ChildProcess
        do {
            child = try spawn(
                command, in: location, timeout: timeout,
                stdin: inputPipe.read, stdout: outputPipe.write, stderr: errorPipe.write)
        } catch {
            [inputPipe.read, inputPipe.write, outputPipe.read, outputPipe.write, errorPipe.read, errorPipe.write]
                .forEach { close($0) }
            throw error
        }
        // Only the child keeps the ends it uses, so each pipe reaches EOF when it exits.
        [inputPipe.read, outputPipe.write, errorPipe.write].forEach { close($0) }
        ChildProcess.writeAll(Array((input ?? "").utf8), to: inputPipe.write)
        close(inputPipe.write)
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        let errorOutput = PipeCollector(FileHandle(fileDescriptor: errorPipe.read, closeOnDealloc: true))
        let output = FileHandle(fileDescriptor: outputPipe.read, closeOnDealloc: true).readDataToEndOfFile()
        let status = child.waitForExit()
        return NetnsCommandResult(
            status: status, output: String(decoding: output, as: UTF8.self), errorOutput: errorOutput.waitForEnd())
    }

    /// Runs `command` (argv, no shell) in `location`, bounded by `timeout`, and throws
    /// unless it exits with status 0; returns its stdout.
    @discardableResult
    public static func check(
        _ command: [String], in location: NetnsLocation = .privateHost,
        timeout: Duration = .seconds(5), input: String? = nil,
        file: String = #fileID, line: Int = #line
    ) throws -> String {
        let result = try run(command, in: location, timeout: timeout, input: input)
        guard result.status == 0 else {
            let stdin = input.map { "\nstdin:\n\($0)" } ?? ""
            throw NetnsFixtureError(
                "\(command.joined(separator: " ")) in \(location) exited \(result.status): "
                    + result.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines) + stdin,
                file: file, line: line)
        }
        return result.output
    }
}

/// A child started with posix_spawn and reaped with waitpid. Foundation's `Process` is
/// not used: on this toolchain its `waitUntilExit()` was seen to miss a child's exit and
/// wait forever with the child left a zombie.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Held while a pipe is made and marked close-on-exec (Glibc does not export pipe2),
    /// so that no child spawned meanwhile inherits a pipe end and keeps it open.
    private static let spawnLock = NSLock()

    /// A child that exits before reading its input must not kill the test process with
    /// SIGPIPE: writes then fail with EPIPE instead. Children get default signals back.
    private static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// A pipe whose ends close on exec, so no other child inherits them by accident.
    static func pipe() throws -> (read: Int32, write: Int32) {
        Self.ignoreBrokenPipes
        return try spawnLock.withLock {
            var fds: [Int32] = [-1, -1]
            guard Glibc.pipe(&fds) == 0 else { throw NetnsFixtureError("pipe: errno \(errno)") }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return (fds[0], fds[1])
        }
    }

    init(_ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            posix_spawn_file_actions_adddup2(&actions, source, target)
        }
        // The test runner may ignore or block signals; the child starts with defaults, so
        // SIGTERM from `stop()` and from `timeout` works.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        var noSignals = sigset_t()
        sigfillset(&allSignals)
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let environment = NetnsCommand.environment.map { "\($0.key)=\($0.value)" }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var pid: pid_t = 0
        let error = Self.spawnLock.withLock { posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment) }
        guard error == 0 else {
            throw NetnsFixtureError("cannot start \(argv.joined(separator: " ")): \(String(cString: strerror(error)))")
        }
        self.pid = pid
    }

    /// Writes `bytes` to `fd`, giving up when the reader has gone.
    static func writeAll(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    /// The exit status (128 + signal number when killed), or nil while it runs.
    func exitStatus() -> Int32? {
        lock.withLock {
            if status == nil { reap(options: WNOHANG) }
            return status
        }
    }

    /// Blocks until the child exits; callers rely on `timeout` to bound the wait.
    func waitForExit() -> Int32 {
        lock.withLock {
            while status == nil { reap(options: 0) }
            return status!
        }
    }

    /// Sends `signal` unless the child was already reaped (its pid may be reused).
    func send(_ signal: Int32) {
        lock.withLock {
            if status == nil { kill(pid, signal) }
        }
    }

    private func reap(options: Int32) {
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, options)
        if result == pid {
            // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
            let signal = raw & 0x7f
            status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        } else if result == -1 && errno != EINTR {
            status = -1
        }
    }
}

/// Reads a pipe to its end on a thread of its own.
final class PipeCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let finished = DispatchSemaphore(value: 0)

    /// `onLine` sees each complete line as it arrives (used by background probes).
    init(_ handle: FileHandle, onLine: (@Sendable (String) -> Void)? = nil) {
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.withLock { data.append(chunk) }
                guard let onLine else { continue }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    onLine(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            finished.signal()
        }
        thread.start()
    }

    /// Everything read so far.
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

    /// Waits (at most `timeout`) until every writer closed the pipe, then returns the
    /// text. Bounded because a stray grandchild could keep the pipe open.
    func waitForEnd(timeout: Duration = .seconds(2)) -> String {
        if finished.wait(timeout: .now() + timeout.seconds) == .success {
            // Signal again so that a later call returns at once.
            finished.signal()
        }
        return text
    }
}

extension Duration {
    /// The duration in seconds, as a Double (figures and timeouts in tests and benchmarks).
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
