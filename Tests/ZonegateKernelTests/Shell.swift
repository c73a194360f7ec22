import Foundation

/// Child processes through posix_spawn and waitpid: Foundation's `Process` waits
/// on a CFSocket wakeup pair that cannot be created in a fresh network namespace
/// without loopback, and then never notices its children exit.
enum Child {
    /// Starts `arguments` with output to `output` (or /dev/null); returns its PID.
    static func spawn(_ arguments: [String], output: Int32? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        // The test runner blocks signals; a child inheriting that mask would ignore
        // SIGTERM (and `timeout` could not stop its command), so reset it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, environ)
        guard status == 0 else { throw ShellError(command: arguments, output: String(cString: strerror(status))) }
        return pid
    }

    /// Waits for `pid`; returns its exit status (128 + signal when killed).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// Runs a command and returns its exit status and combined output.
@discardableResult
func shell(_ arguments: String...) throws -> (status: Int32, output: String) {
    try shell(arguments)
}

@discardableResult
func shell(_ arguments: [String]) throws -> (status: Int32, output: String) {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw ShellError(command: arguments, output: "pipe failed") }
    let pid: pid_t
    do {
        pid = try Child.spawn(arguments, output: ends[1])
    } catch {
        close(ends[0])
        close(ends[1])
        throw error
    }
    close(ends[1])
    let output = FileHandle(fileDescriptor: ends[0], closeOnDealloc: true).readDataToEndOfFile()
    return (Child.wait(pid), String(decoding: output, as: UTF8.self))
}

struct ShellError: Error {
    var command: [String]
    var output: String
}
