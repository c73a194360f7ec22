import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the bridge port of a container's endpoint (the host side of its veth) through sysfs,
/// without entering any namespace:
///
/// 1. in the container's own sysfs, `<proc>/<pid>/root/sys/class/net/*/address`, the interface
///    with the endpoint's MAC; its `iflink` is the ifindex of its veth peer in the host;
/// 2. in the host's sysfs, the interface with that `ifindex`, checked to be that interface's peer
///    (its own `iflink` is the container side's `ifindex`) and a port of the expected bridge
///    (`master`).
///
/// Needs root (to read another process's root) and the host-side sysfs of dockerd's network
/// namespace. Both roots are parameters so that tests run it on a fake tree.
public struct VethResolver: Sendable {
    /// `/proc`.
    public var procRoot: String
    /// `/sys/class/net` of the network namespace dockerd plugs veths into.
    public var hostNetRoot: String

    public init(procRoot: String = "/proc", hostNetRoot: String = "/sys/class/net") {
        self.procRoot = procRoot
        self.hostNetRoot = hostNetRoot
    }

    /// Why a bridge port was not found.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        /// The container's process or network namespace was gone: it ended between Docker's
        /// report and the look into it (a short-lived container), which is no enforcement failure.
        public var containerGone: Bool

        public init(description: String, containerGone: Bool = false) {
            self.description = description
            self.containerGone = containerGone
        }
    }

    /// A resolver for one inventory build: it indexes the host's interfaces once, and again only
    /// when an interface is missing from that index (a veth created meanwhile).
    public func resolver() -> BridgePortResolver {
        let index = HostIndex(self)
        return { container, endpoint, bridge in
            try bridgePort(of: container, on: endpoint, bridge: bridge, index: index)
        }
    }

    /// The bridge port of one endpoint, from a fresh look at the host's interfaces.
    public func bridgePort(of container: DockerContainer, on endpoint: DockerEndpoint, bridge: String) throws -> String {
        try bridgePort(of: container, on: endpoint, bridge: bridge, index: HostIndex(self))
    }

    private func bridgePort(of container: DockerContainer, on endpoint: DockerEndpoint, bridge: String, index: HostIndex) throws -> String {
        guard container.pid > 0 else { throw Failure(description: "\(container.name) has no process (not running)") }
        let mac = endpoint.macAddress.lowercased()
        guard !mac.isEmpty else { throw Failure(description: "Docker reports no MAC address for \(container.name) on \(endpoint.networkName)") }
        let inside = "\(procRoot)/\(container.pid)/root/sys/class/net"
        let names: [String]
        do {
            names = try SysFS.list(inside)
        } catch let failure as SysFS.Failure {
            if !processRuns(container.pid) {
                throw Failure(description: "the process \(container.pid) of \(container.name) is gone (the container ended)", containerGone: true)
            }
            // Only a refusal is about privileges; anything else says what it is.
            let hint = failure.code == EACCES || failure.code == EPERM ? " (zonegate needs root to look into containers)" : ""
            throw Failure(description: "\(failure)\(hint)")
        }
        guard let interface = names.sorted().first(where: { (try? SysFS.read("\(inside)/\($0)/address"))?.lowercased() == mac }) else {
            // A container whose namespace is being torn down loses its interfaces first.
            throw Failure(description: "no interface with MAC \(mac) in \(inside)", containerGone: !processRuns(container.pid))
        }
        let innerIndex = try SysFS.readInt("\(inside)/\(interface)/ifindex")
        let peerIndex = try SysFS.readInt("\(inside)/\(interface)/iflink")
        guard peerIndex != innerIndex else {
            throw Failure(description: "\(interface) of \(container.name) is not one end of a veth pair (it links to itself)")
        }
        guard let port = try index.name(ofIndex: peerIndex) else {
            throw Failure(description: "no interface with ifindex \(peerIndex), the peer of \(interface) of \(container.name), in \(hostNetRoot) " +
                                       "(is zonegate in dockerd's network namespace?)")
        }
        let host = "\(hostNetRoot)/\(port)"
        guard (try? SysFS.readInt("\(host)/iflink")) == innerIndex else {
            throw Failure(description: "\(port) (ifindex \(peerIndex)) is not the peer of \(interface) of \(container.name)")
        }
        guard let master = try? SysFS.linkTarget("\(host)/master") else {
            throw Failure(description: "\(port), the peer of \(interface) of \(container.name), is a port of no bridge")
        }
        let masterName = URL(fileURLWithPath: master).lastPathComponent
        guard masterName == bridge else {
            throw Failure(description: "\(port), the peer of \(interface) of \(container.name), is a port of \(masterName), not of \(bridge)")
        }
        return port
    }

    /// Whether `pid` is a live process: not absent from `procRoot`, not a zombie (a container
    /// whose init exited is a zombie until dockerd reaps it, with its namespaces already gone),
    /// and not exiting (an exiting process lets go of its root and mount namespace first, while
    /// its state still reads running: `/proc/PID/root` then leads nowhere, ENOENT).
    func processRuns(_ pid: Int32) -> Bool {
        guard let line = try? SysFS.read("\(procRoot)/\(pid)/stat") else { return false }
        // `pid (comm) S ...`: the state follows the last ')' (comm may hold parentheses).
        if let close = line.lastIndex(of: ")") {
            let state = line[line.index(after: close)...].drop(while: { $0 == " " }).first
            if state == "Z" || state == "X" { return false }
        }
        var status = stat()
        if stat("\(procRoot)/\(pid)/root", &status) != 0 && (errno == ENOENT || errno == ESRCH) { return false }
        return true
    }

    /// The host's interfaces by ifindex, read when first needed and re-read once on a miss.
    private final class HostIndex {
        private let root: String
        private var names: [Int: String]?
        private var refreshed = false

        init(_ resolver: VethResolver) { root = resolver.hostNetRoot }

        func name(ofIndex index: Int) throws -> String? {
            if names == nil { names = try read() }
            if let name = names?[index] { return name }
            guard !refreshed else { return nil }
            refreshed = true
            names = try read()
            return names?[index]
        }

        private func read() throws -> [Int: String] {
            var names: [Int: String] = [:]
            for name in try SysFS.list(root) {
                // An interface removed while listing simply has no index.
                if let index = try? SysFS.readInt("\(root)/\(name)/ifindex") { names[index] = name }
            }
            return names
        }
    }
}

/// Small reads of sysfs (and of a fake tree in tests), failing with the path and errno.
enum SysFS {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The errno, when a system call failed.
        var code: Int32 = 0
    }

    static func list(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else { throw failure("cannot list", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The file's text without surrounding whitespace (sysfs values end with a newline).
    static func read(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("cannot open", path) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            guard count >= 0 else { throw failure("cannot read", path) }
            if count == 0 { break }
            bytes += buffer.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func readInt(_ path: String) throws -> Int {
        let text = try read(path)
        guard let value = Int(text) else { throw Failure(description: "\(path) holds '\(text)', not a number") }
        return value
    }

    static func linkTarget(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { throw failure("cannot read link", path) }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func failure(_ what: String, _ path: String) -> Failure {
        let code = errno
        return Failure(description: "\(what) \(path): \(String(cString: strerror(code)).lowercased())", code: code)
    }
}
