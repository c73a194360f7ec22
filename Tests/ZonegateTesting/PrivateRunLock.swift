import Foundation

/// `zonegate run` takes an exclusive lock on /run/zonegate.lock: one daemon per host. The
/// daemons that tests and benchmarks start run in the test process's own network namespace,
/// against a private dockerd, so they must neither collide with a real daemon on the host nor
/// with another test process's daemons. This mounts a private file over /run/zonegate.lock
/// inside the test process's own mount namespace (the Makefile launches those suites under
/// `unshare --net --mount`), once; the daemons it starts inherit that namespace.
public enum PrivateRunLock {
    public static let path = "/run/zonegate.lock"

    private static let once = NSLock()

    /// Idempotent and safe to call from concurrent tests; throws unless the process has a
    /// private mount namespace.
    public static func prepare() throws {
        try once.withLock { try mountPrivateFile() }
    }

    private static func mountPrivateFile() throws {
        try PrivateNetworkNamespace.requirePrecondition()
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        if mounts.split(separator: "\n").contains(where: { $0.split(separator: " ").dropFirst(4).first == Substring(path) }) {
            return
        }
        // The mount point must exist: created empty on the shared /run if missing (the real
        // daemon creates the same file), it is never written through this namespace.
        let target = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard target >= 0 else { throw NetnsFixtureError("cannot create \(path): errno \(errno)") }
        close(target)
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-test-lock-\(getpid())-\(UUID().uuidString.prefix(8))").path
        guard FileManager.default.createFile(atPath: source, contents: nil) else { throw NetnsFixtureError("cannot create \(source)") }
        // The bind mount keeps the inode; the name can go at once, so nothing is left behind.
        defer { unlink(source) }
        try NetnsCommand.check(["mount", "--bind", source, path])
    }
}
