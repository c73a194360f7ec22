import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `zonegate run` per host: an exclusive `flock` on a file under /run that holds the pid of
/// the daemon that took it. A second daemon would replace the first's tables with its own policy
/// and, when it stops, leave that policy in force until the first's next resync; so it refuses
/// to start, naming the first, before it touches the kernel.
///
/// The lock belongs to the host's kernel ruleset, not to a policy directory or a state
/// directory: two daemons with different `--policies` or `--state-dir` still fight over the same
/// tables. It lives in /run, which is per boot, so a lock never outlives a reboot; and `flock`
/// ends with the process (crash or SIGKILL included), so a stale file never blocks a restart.
public final class HostLock: Sendable {
    /// Where `zonegate run` takes its lock.
    public static let defaultPath = "/run/zonegate.lock"

    public let path: String
    private let descriptor: Int32

    /// Why the lock was not taken.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        /// The pid written by the daemon holding the lock; nil when it could not be read.
        public var holder: Int32?
        public var description: String
    }

    /// Takes the lock, or throws `Refusal`: held by another process (naming its pid), or the file
    /// cannot be opened (no root, a read-only /run).
    public init(path: String = HostLock.defaultPath) throws {
        self.path = path
        // O_CLOEXEC: children (none today) must not inherit the lock and outlive the daemon with it.
        var descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        var writable = true
        if descriptor < 0 && (errno == EACCES || errno == EROFS) {
            // flock needs no write access: a daemon with CAP_NET_ADMIN but not root locks a file
            // created for it (systemd-tmpfiles `f /run/zonegate.lock 0644`) or by an earlier root run.
            descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            writable = false
        }
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw Refusal(holder: nil, description: "cannot open the lock file \(path): \(reason) " +
                "(zonegate run needs root, or the file created for its user, e.g. by systemd-tmpfiles)")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(descriptor) }
            guard code == EWOULDBLOCK else {
                throw Refusal(holder: nil, description: "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            // The kernel knows who holds it; the file's pid is the fallback (a /proc without locks).
            let holder = Self.lockHolder(of: descriptor) ?? Self.holder(descriptor)
            let who = holder.map { "pid \($0)" } ?? "a process whose pid \(path) does not show yet"
            throw Refusal(holder: holder, description:
                "another zonegate run (\(who)) already enforces on this host (it holds \(path)); " +
                "one daemon per host: stop it first, or reload it with SIGHUP")
        }
        self.descriptor = descriptor
        // The pid, for the refusal of the next one and for operators (`cat /run/zonegate.lock`).
        // A file that cannot be written keeps an older pid: the refusal then asks the kernel.
        guard writable else { return }
        let text = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit {
        // Closing releases the flock; the file stays (removing it would race a starting daemon
        // that opened the old inode).
        close(descriptor)
    }

    /// The pid holding an flock on the file, from /proc/locks (`1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...`).
    private static func lockHolder(of descriptor: Int32) -> Int32? {
        var status = stat()
        guard fstat(descriptor, &status) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        let inode = String(status.st_ino)
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5].split(separator: ":").last.map(String.init) == inode,
                  let pid = Int32(fields[4]), pid > 0 else { continue }
            // The device is in hex, major:minor; the inode alone could match another file system's.
            let device = fields[5].split(separator: ":").prefix(2).compactMap { UInt32($0, radix: 16) }
            // glibc's major()/minor() are macros: the same bit layout, written out.
            let dev = UInt64(status.st_dev)
            let major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff))
            let minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~0xff))
            guard device.count == 2, device[0] == major, device[1] == minor else { continue }
            return pid
        }
        return nil
    }

    /// The pid in the file. The holder writes it right after locking, so a refusal that races
    /// that write reads again briefly.
    private static func holder(_ descriptor: Int32) -> Int32? {
        for attempt in 0..<5 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0, let pid = Int32(String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
               pid > 0 {
                return pid
            }
            if attempt < 4 { usleep(10_000) }
        }
        return nil
    }
}
