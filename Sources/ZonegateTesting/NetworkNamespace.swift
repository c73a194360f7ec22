import Foundation

/// Guards for tests that change the kernel: they may only run as root, when asked
/// to, and inside a network namespace of their own (`unshare -n`), never the host's.
public enum KernelTestGuard {
    /// The environment variable that opts in to kernel tests.
    public static let variable = "ZONEGATE_KERNEL_TESTS"
    /// The kernel's fixed inode for the initial network namespace (`PROC_NET_INIT_INO`).
    static let initialNamespace: UInt = 0xEFFF_FFF9

    /// Why kernel tests cannot run here; nil when they can.
    public static var reasonToSkip: String? {
        guard ProcessInfo.processInfo.environment[variable] == "1" else {
            return "kernel tests skipped: set \(variable)=1 and run `make test-kernel`"
        }
        guard geteuid() == 0 else { return "kernel tests skipped: they need root" }
        guard runsInPrivateNamespace else {
            return "kernel tests refused: not in a private network namespace; run them under `unshare -n`"
        }
        return nil
    }

    /// True when this process's network namespace is neither the initial one nor
    /// PID 1's, and an ancestor process (the shell that ran `unshare -n`) sits in
    /// another one. PID 1's namespace may be unreadable in a sandbox, hence the walk.
    public static var runsInPrivateNamespace: Bool {
        guard let own = namespaceID(of: "self"), own != initialNamespace else { return false }
        if let host = namespaceID(of: "1") { return host != own }
        var process = getppid()
        while process > 1 {
            if let namespace = namespaceID(of: "\(process)"), namespace != own { return true }
            guard let parent = parent(of: process) else { return false }
            process = parent
        }
        return false
    }

    /// The inode of a process's network namespace (`/proc/PID/ns/net`).
    public static func namespaceID(of process: String) -> UInt? {
        var info = stat()
        return stat("/proc/\(process)/ns/net", &info) == 0 ? UInt(info.st_ino) : nil
    }

    /// The parent PID, from the field after the command name in `/proc/PID/stat`.
    private static func parent(of process: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(process)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }
}
