import Foundation

/// Checks that the test process runs where kernel tests may change the network: as root,
/// in a network namespace and a mount namespace of its own (the Makefile launches the
/// suite under `unshare --net --mount`), so neither the host's ruleset nor its
/// `/run/netns` is ever touched.
public enum PrivateNetworkNamespace {
    /// Marks the tmpfs this library mounts on `/run/netns`, so a second call sees it is done.
    static let netnsDirectorySource = "zonegate-test-netns"
    static let netnsDirectory = "/run/netns"

    /// Why kernel tests must not run here, or nil when they may (`TestLayer.runs()` asks it).
    public static func unmetPrecondition() -> String? {
        let launch = "run these tests as root under `unshare --net --mount --propagation private -- swift test ...`, as `make test` does"
        guard geteuid() == 0 else {
            return "kernel tests need root; \(launch)"
        }
        guard isInPrivateNetworkNamespace else {
            return "the test process shares the host's network namespace; \(launch)"
        }
        guard let ownMount = namespaceInode(of: "self", kind: "mnt"),
            let hostMount = hostNamespaceInode(kind: "mnt"), ownMount != hostMount
        else {
            return "the test process shares the host's mount namespace, so `ip netns add` would leak into the host's /run/netns; \(launch)"
        }
        return nil
    }

    /// Whether this process's network namespace differs from the host's (that of pid 1,
    /// or, when pid 1 cannot be inspected, of the outermost ancestor that can).
    public static var isInPrivateNetworkNamespace: Bool {
        guard let own = namespaceInode(of: "self", kind: "net"), let host = hostNamespaceInode(kind: "net") else {
            return false
        }
        return own != host
    }

    /// Throws unless `unmetPrecondition()` is nil; fixtures call it before creating anything.
    static func requirePrecondition() throws {
        if let reason = unmetPrecondition() {
            throw NetnsFixtureError("refusing to touch the network: \(reason)")
        }
    }

    /// Mounts a private tmpfs on `/run/netns` inside this process's own mount namespace,
    /// once, so that namespaces made with `ip netns add` vanish with the test process
    /// even if it crashes.
    static func prepareNamedNamespaceDirectory() throws {
        try requirePrecondition()
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let lines = mounts.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        if lines.contains(where: { $0.count > 4 && $0[4] == netnsDirectory && $0.contains(netnsDirectorySource) }) {
            return
        }
        // A mount made under a shared mount would propagate back to the host's namespace;
        // `unshare --mount` makes every mount private, so no "shared:" tag may be left.
        if let shared = lines.first(where: { $0.contains(where: { $0.hasPrefix("shared:") }) }) {
            throw NetnsFixtureError(
                "mount \(shared.count > 4 ? shared[4] : "?") is shared with another mount namespace; launch with `unshare --net --mount` (private propagation)")
        }
        try FileManager.default.createDirectory(atPath: netnsDirectory, withIntermediateDirectories: true)
        try NetnsCommand.check(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", netnsDirectorySource, netnsDirectory])
    }

    static func namespaceInode(of process: String, kind: String) -> UInt64? {
        var status = stat()
        guard stat("/proc/\(process)/ns/\(kind)", &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }

    /// Pid 1's namespace, or the outermost readable ancestor's when pid 1 is hidden
    /// (as in some VM sandboxes where /proc/1/ns is not accessible even to root).
    static func hostNamespaceInode(kind: String) -> UInt64? {
        if let inode = namespaceInode(of: "1", kind: kind) { return inode }
        var outermost: UInt64?
        var pid = getppid()
        while pid > 1 {
            if let inode = namespaceInode(of: "\(pid)", kind: kind) { outermost = inode }
            guard let next = parentPid(of: pid) else { break }
            pid = next
        }
        return outermost
    }

    static func parentPid(of pid: pid_t) -> pid_t? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") })
        else { return nil }
        return pid_t(line.dropFirst("PPid:".count).trimmingCharacters(in: .whitespaces))
    }
}
