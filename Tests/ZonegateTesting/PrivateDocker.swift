import Foundation

/// A container of a `PrivateDocker`, as the tests probe it: its network namespace is attached
/// under `/run/netns` (private to the test), so probes run in it even while dockerd is down.
public struct PrivateContainer: ProbeSite, Hashable {
    public let name: String
    public let id: String
    /// Addresses by Docker network name (IPv4 first, then IPv6 when the network has it).
    public let addresses: [String: [String]]
    /// The attached namespace (`ip netns attach`), removed with the container.
    public let namespace: String

    public var netnsLocation: NetnsLocation { .named(namespace) }

    /// The IPv4 address on `network`.
    public func ipv4(on network: String) -> String? { addresses[network]?.first { !$0.contains(":") } }
    /// The IPv6 address on `network`.
    public func ipv6(on network: String) -> String? { addresses[network]?.first { $0.contains(":") } }
}

/// A dockerd of the test's own, started in the test's private network and mount namespaces
/// with private paths (data root, exec root, pid file, socket under one temporary directory),
/// and an empty tmpfs on `/run` so that neither containerd's nor Docker's runtime files meet
/// another engine's. It never uses or disturbs a dockerd already running on the machine.
/// `remove()` (or deinit) deletes every container, network and directory it made and stops
/// dockerd and containerd.
public final class PrivateDocker: @unchecked Sendable {
    /// The image every container runs: busybox-static and its applet links, nothing else.
    public static let image = "zonegate-e2e-busybox:1"
    /// The default bridge network's name in Docker.
    public static let defaultNetwork = "bridge"
    static let runSource = "zonegate-e2e-run"
    static let sysSource = "zonegate-e2e-sys"

    public let directory: String
    public let userlandProxy: Bool
    /// `unix:///…/docker.sock`, what `--docker-host` takes.
    public var host: String { "unix://" + socketPath }
    public var socketPath: String { directory + "/docker.sock" }
    public var logPath: String { directory + "/dockerd.log" }

    private let lock = NSLock()
    private var daemon: ChildProcess?
    private var attachedNamespaces: [String: String] = [:]
    /// Every container id ever started, to find its processes should Docker fail to remove it.
    private var containerIDs: Set<String> = []
    private var cleanups: [@Sendable () -> Void] = []
    private var servers: [ProbeServer] = []
    private var removed = false

    /// Starts dockerd (`--userland-proxy=true|false`, `--live-restore` so that containers keep
    /// running while it restarts), waits until it answers and imports the image. Throws after
    /// removing what it made if any step fails.
    public init(userlandProxy: Bool) throws {
        try PrivateNetworkNamespace.requirePrecondition()
        self.userlandProxy = userlandProxy
        directory = FileManager.default.temporaryDirectory.path + "/zonegate-e2e-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        try FileManager.default.createDirectory(atPath: directory + "/cli", withIntermediateDirectories: true)
        do {
            try Self.preparePrivateMounts()
            // `unshare --net` leaves loopback down; published ports are reached on it too.
            try NetnsCommand.check(["ip", "link", "set", "lo", "up"])
            try startDaemon()
            try importImage()
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    // MARK: - The docker CLI

    static let cli: String = FileManager.default.isExecutableFile(atPath: "/usr/bin/docker") ? "/usr/bin/docker" : "/usr/local/bin/docker"

    /// Runs `docker ARGS` against this engine and returns its stdout; throws if it fails.
    @discardableResult
    public func docker(_ arguments: [String], timeout: Duration = .seconds(30), input: String? = nil,
                       file: String = #fileID, line: Int = #line) throws -> String {
        try NetnsCommand.check([Self.cli, "--config", directory + "/cli", "-H", host] + arguments,
                               timeout: timeout, input: input, file: file, line: line)
    }

    // MARK: - Networks and containers

    /// `docker network create` of a bridge network with an IPv4 and, if given, an IPv6 subnet.
    public func createNetwork(_ name: String, ipv4Subnet: String, ipv6Subnet: String? = nil) throws {
        var arguments = ["network", "create", "--driver", "bridge", "--subnet", ipv4Subnet]
        if let ipv6Subnet { arguments += ["--ipv6", "--subnet", ipv6Subnet] }
        try docker(arguments + [name])
    }

    /// `docker run -d` of a container that sleeps (probe servers run in its namespace), with
    /// its labels, exposed ports (`8080/tcp`) and published ports (host port: container port),
    /// on `network` (at `ip` if given); `command` replaces the sleep. Returns it with its
    /// namespace attached.
    @discardableResult
    public func run(
        _ name: String, network: String = defaultNetwork, ip: String? = nil, labels: [String: String] = [:],
        expose: [String] = [], publish: [(host: UInt16, container: UInt16)] = [], command: [String]? = nil
    ) throws -> PrivateContainer {
        var arguments = ["run", "-d", "--name", name, "--hostname", name, "--network", network]
        if let ip { arguments += ["--ip", ip] }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { arguments += ["--label", "\(key)=\(value)"] }
        for port in expose { arguments += ["--expose", port] }
        for port in publish { arguments += ["-p", "\(port.host):\(port.container)"] }
        arguments += [Self.image] + (command ?? ["/bin/busybox", "sleep", "3600"])
        try docker(arguments)
        return try attach(name)
    }

    /// `docker network connect`; returns the container with its new addresses.
    public func connect(_ name: String, to network: String) throws -> PrivateContainer {
        try docker(["network", "connect", network, name])
        return try inspect(name)
    }

    /// The container as Docker reports it now.
    public func inspect(_ name: String) throws -> PrivateContainer {
        let text = try docker(["inspect", "--type", "container", name])
        guard let list = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]],
            let object = list.first, let id = object["Id"] as? String,
            let settings = object["NetworkSettings"] as? [String: Any],
            let networks = settings["Networks"] as? [String: [String: Any]]
        else { throw NetnsFixtureError("docker inspect \(name): unexpected output \(text.prefix(200))") }
        var addresses: [String: [String]] = [:]
        for (network, endpoint) in networks {
            addresses[network] = ["IPAddress", "GlobalIPv6Address"].compactMap { endpoint[$0] as? String }.filter { !$0.isEmpty }
        }
        let namespace = lock.withLock {
            containerIDs.insert(id)
            return attachedNamespaces[name]
        } ?? ""
        return PrivateContainer(name: name, id: id, addresses: addresses, namespace: namespace)
    }

    /// `docker rm -f`, after detaching the container's namespace.
    public func removeContainer(_ name: String) throws {
        detach(name)
        try docker(["rm", "-f", name])
    }

    /// `docker kill`, after detaching the container's namespace: it stays, stopped, and its
    /// addresses are free for others.
    public func stopContainer(_ name: String) throws {
        detach(name)
        try docker(["kill", name])
    }

    /// The lines of `docker logs` (stdout and stderr).
    public func logs(_ name: String) throws -> [String] {
        let result = try NetnsCommand.run([Self.cli, "--config", directory + "/cli", "-H", host, "logs", name], timeout: .seconds(10))
        return (result.output + result.errorOutput).split(separator: "\n").map(String.init)
    }

    /// Attaches the running container's network namespace as `zge-NAME` for probes.
    private func attach(_ name: String) throws -> PrivateContainer {
        let pid = try docker(["inspect", "--format", "{{.State.Pid}}", name]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let number = Int(pid), number > 0 else { throw NetnsFixtureError("container \(name) is not running (pid \(pid))") }
        let namespace = "zge-" + name
        detach(name)
        try NetnsCommand.check(["ip", "netns", "attach", namespace, pid])
        lock.withLock { attachedNamespaces[name] = namespace }
        return try inspect(name)
    }

    private func detach(_ name: String) {
        guard let namespace = lock.withLock({ attachedNamespaces.removeValue(forKey: name) }) else { return }
        _ = try? NetnsCommand.run(["ip", "netns", "delete", namespace])
    }

    /// Starts a `ProbeServer` in `site` that `remove()` stops.
    public func startServer(in site: some ProbeSite, port: UInt16, lifetime: Duration = .seconds(300)) throws -> ProbeServer {
        let server = try ProbeServer(in: site, port: port, lifetime: lifetime)
        lock.withLock { servers.append(server) }
        return server
    }

    /// Registers something `remove()` undoes (before it stops dockerd).
    func registerCleanup(_ cleanup: @escaping @Sendable () -> Void) {
        lock.withLock { cleanups.append(cleanup) }
    }

    // MARK: - The daemon

    /// Whether dockerd runs (it may have been stopped by `stopDaemon`).
    public var isRunning: Bool { lock.withLock { daemon }?.exitStatus() == nil && lock.withLock { daemon } != nil }

    /// Starts dockerd and waits (at most 30 s) until it answers on its socket.
    public func startDaemon() throws {
        guard lock.withLock({ daemon == nil }) else { throw NetnsFixtureError("dockerd runs already") }
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(log); close(null) }
        guard log >= 0, null >= 0 else { throw NetnsFixtureError("cannot open \(logPath): errno \(errno)") }
        // setpriv's parent-death signal takes dockerd down with the test process if it dies
        // before removing it; the spawning thread must then live as long as the process.
        let argv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "dockerd",
                    "--data-root", directory + "/data", "--exec-root", directory + "/exec",
                    "--pidfile", directory + "/dockerd.pid", "-H", host,
                    "--userland-proxy=\(userlandProxy)", "--live-restore", "--log-level", "warn"]
        let child = try ProcessLifetimeThread.shared.spawn(argv, stdin: null, stdout: log, stderr: log)
        lock.withLock { daemon = child }
        let answered = poll(timeout: .seconds(30), interval: .milliseconds(200)) {
            child.exitStatus() != nil
                || ((try? NetnsCommand.run([Self.cli, "--config", directory + "/cli", "-H", host, "version", "--format", "{{.Server.APIVersion}}"],
                                           timeout: .seconds(3)))?.status == 0)
        }
        guard answered, child.exitStatus() == nil else {
            throw NetnsFixtureError("dockerd did not start (status \(child.exitStatus().map(String.init) ?? "running")): \(logTail)")
        }
    }

    /// Stops dockerd (SIGTERM; SIGKILL after 20 s). With `--live-restore` its containers,
    /// their shims and their published-port NAT stay.
    public func stopDaemon() {
        guard let child = lock.withLock({ daemon }) else { return }
        child.send(SIGTERM)
        if !poll(timeout: .seconds(20), { child.exitStatus() != nil }) {
            child.send(SIGKILL)
            _ = child.waitForExit()
        }
        lock.withLock { daemon = nil }
    }

    /// The last lines of dockerd's log, for failure messages.
    public var logTail: String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(8).joined(separator: "\n")
    }

    // MARK: - Image

    /// `docker import` of a tarball holding /bin/busybox (Debian's busybox-static) and links
    /// for the applets the tests use; no registry is needed.
    private func importImage() throws {
        let busybox = "/bin/busybox"
        guard FileManager.default.isExecutableFile(atPath: busybox) else {
            throw NetnsFixtureError("\(busybox) is missing: install busybox-static (make deps)")
        }
        let root = directory + "/image"
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
        for applet in ["sh", "nc", "sleep", "cat", "echo", "seq", "hostname", "timeout", "grep", "true"] {
            try FileManager.default.createSymbolicLink(atPath: root + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try NetnsCommand.check(["tar", "-C", root, "-cf", directory + "/image.tar", "."])
        try docker(["import", directory + "/image.tar", Self.image], timeout: .seconds(60))
    }

    // MARK: - Private mounts

    /// Once per process: a fresh sysfs (so /sys/class/net shows the private network namespace,
    /// as dockerd expects; cgroups bound back in place), an empty tmpfs on /run (containerd's
    /// and runc's state, /run/docker), and the tmpfs on /run/netns the probes' namespaces use.
    static func preparePrivateMounts() throws {
        try lockForMounts.withLock {
            let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            let lines = mounts.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            func mounted(_ point: String, _ source: String) -> Bool {
                lines.contains { $0.count > 4 && $0[4] == point && $0.contains(source) }
            }
            if !mounted("/sys", sysSource) {
                let cgroups = FileManager.default.temporaryDirectory.path + "/zonegate-e2e-cgroup-\(getpid())"
                try FileManager.default.createDirectory(atPath: cgroups, withIntermediateDirectories: true)
                try NetnsCommand.check(["mount", "--rbind", "/sys/fs/cgroup", cgroups])
                try NetnsCommand.check(["mount", "-t", "sysfs", sysSource, "/sys"])
                try NetnsCommand.check(["mount", "--rbind", cgroups, "/sys/fs/cgroup"])
                try NetnsCommand.check(["umount", "-l", cgroups])
                try? FileManager.default.removeItem(atPath: cgroups)
            }
            if !mounted("/run", runSource) {
                try NetnsCommand.check(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", runSource, "/run"])
            }
            try PrivateNetworkNamespace.prepareNamedNamespaceDirectory()
        }
    }

    private static let lockForMounts = NSLock()

    // MARK: - Removing

    /// Removes every container and user-defined network, stops dockerd, ends what is left of
    /// containerd and its shims, unmounts and deletes the directory. Safe to call twice.
    /// Returns what could not be removed (empty when clean).
    @discardableResult
    public func remove() -> [String] {
        let (first, namespaces, servers, cleanups) = lock.withLock { () -> (Bool, [String], [ProbeServer], [@Sendable () -> Void]) in
            defer { removed = true; attachedNamespaces = [:]; self.servers = []; self.cleanups = [] }
            return (!removed, Array(attachedNamespaces.values), self.servers, self.cleanups)
        }
        guard first else { return [] }
        servers.forEach { $0.stop() }
        cleanups.reversed().forEach { $0() }
        for namespace in namespaces { _ = try? NetnsCommand.run(["ip", "netns", "delete", namespace]) }
        if lock.withLock({ daemon }) == nil, FileManager.default.fileExists(atPath: directory + "/data") {
            // Stopped by a test: started again only to remove what it still holds.
            try? startDaemon()
        }
        if isRunning {
            let containers = (try? docker(["ps", "-aq"]))?.split(separator: "\n").map(String.init) ?? []
            if !containers.isEmpty { _ = try? docker(["rm", "-f", "-v"] + containers, timeout: .seconds(60)) }
            _ = try? docker(["network", "prune", "-f"])
        }
        stopDaemon()
        killProcesses(mentioning: directory)
        killContainerProcesses()
        unmountEverything(under: directory)
        try? FileManager.default.removeItem(atPath: directory)
        return leftovers()
    }

    /// Containerd, shims and docker-proxy started by this engine name its directory in their
    /// command line; nothing else does.
    private func processes(mentioning path: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(pid_t.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self).contains(path)
        }
    }

    private func killProcesses(mentioning path: String) {
        let pids = processes(mentioning: path)
        pids.forEach { kill($0, SIGTERM) }
        if !poll(timeout: .seconds(5), { processes(mentioning: path).isEmpty }) {
            processes(mentioning: path).forEach { kill($0, SIGKILL) }
            _ = poll(timeout: .seconds(2)) { processes(mentioning: path).isEmpty }
        }
    }

    /// A container whose removal failed keeps running without its shim: its processes sit in
    /// cgroups named after its id (`…/docker/ID`).
    private func killContainerProcesses() {
        let ids = lock.withLock { containerIDs }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in entries.compactMap(pid_t.init) {
            guard let cgroups = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { continue }
            if ids.contains(where: { cgroups.contains("/docker/" + $0) }) { kill(pid, SIGKILL) }
        }
    }

    private func unmountEverything(under path: String) {
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let points = mounts.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4].hasPrefix(path) ? String(fields[4]) : nil
        }
        // Deepest first, so that nested mounts come off before their parents.
        for point in points.sorted(by: { $0.count > $1.count }) {
            _ = try? NetnsCommand.run(["umount", "-l", point])
        }
    }

    private func leftovers() -> [String] {
        var found = processes(mentioning: directory).map { "process \($0)" }
        if FileManager.default.fileExists(atPath: directory) { found.append("directory \(directory)") }
        return found
    }
}

/// One thread that lives as long as the test process and spawns the children whose
/// parent-death signal must fire only when the process dies (Linux sends it when the
/// spawning *thread* exits, and the test runner's threads may come and go).
final class ProcessLifetimeThread: @unchecked Sendable {
    static let shared = ProcessLifetimeThread()

    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private var jobs: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in
            while true {
                wake.wait()
                let job = lock.withLock { jobs.removeFirst() }
                job()
            }
        }
        thread.start()
    }

    func spawn(_ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32) throws -> ChildProcess {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<ChildProcess, any Error>!
        lock.withLock {
            jobs.append {
                result = Result { try ChildProcess(argv, stdin: stdin, stdout: stdout, stderr: stderr) }
                done.signal()
            }
        }
        wake.signal()
        done.wait()
        return try result.get()
    }
}

/// Calls `condition` every `interval` until it holds or `timeout` passes.
func poll(timeout: Duration, interval: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: interval.seconds)
    }
}
