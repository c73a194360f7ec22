import Foundation

/// One TCP destination of a batch probe.
public struct ProbeTarget: Sendable, Hashable, CustomStringConvertible {
    public let address: String
    public let port: UInt16

    public init(_ address: String, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// Many TCP exchanges from one site at once, against `ProbeServer`s: one child process per
/// source, one thread per target in it, each bounded by `timeout`. So a matrix of denied
/// (dropped) flows costs one timeout per source, not one per flow.
public enum BatchProbe {
    /// Which targets answered with their echo; throws only when the probe could not run.
    public static func tcp(
        from site: some ProbeSite, to targets: [ProbeTarget], timeout: Duration = .seconds(1)
    ) throws -> [ProbeTarget: Bool] {
        guard !targets.isEmpty else { return [:] }
        let result = try NetnsCommand.run(
            ["python3", "-I", "-c", script, String(timeout.seconds)] + targets.flatMap { [$0.address, String($0.port)] },
            in: site.netnsLocation, timeout: timeout + .seconds(3))
        guard result.status == 0 else {
            throw NetnsFixtureError("batch probe in \(site.netnsLocation) failed (status \(result.status)): \(result.errorOutput)")
        }
        var answers: [ProbeTarget: Bool] = [:]
        for line in result.output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 3, let port = UInt16(words[2]) else { continue }
            answers[ProbeTarget(words[1], port)] = words[0] == "ok"
        }
        guard answers.count == Set(targets).count else {
            throw NetnsFixtureError("batch probe in \(site.netnsLocation) answered \(answers.count) of \(targets.count): \(result.output)")
        }
        return answers
    }

    /// Runs the batches of several sources in parallel (one thread each) and returns their
    /// answers in order.
    public static func tcp(
        _ batches: [(site: any ProbeSite, targets: [ProbeTarget])], timeout: Duration = .seconds(1)
    ) throws -> [[ProbeTarget: Bool]] {
        try inParallel(batches.map { batch in { try tcp(from: batch.site, to: batch.targets, timeout: timeout) } })
    }

    /// argv: timeout address port [address port ...]. Prints "ok|no ADDRESS PORT" per target.
    static let script = #"""
        import socket, sys, threading
        timeout, args = float(sys.argv[1]), sys.argv[2:]
        targets = [(args[i], int(args[i + 1])) for i in range(0, len(args), 2)]
        results = {}
        def one(target):
            try:
                with socket.create_connection(target, timeout=timeout) as s:
                    s.settimeout(timeout)
                    s.sendall(b"probe\n")
                    results[target] = s.makefile("rb").readline() == b"echo probe\n"
            except OSError:
                results[target] = False
        threads = [threading.Thread(target=one, args=(t,)) for t in set(targets)]
        for t in threads: t.start()
        for t in threads: t.join()
        for (address, port), ok in results.items():
            print("ok" if ok else "no", address, port)
        """#
}

extension PrivateDocker {
    /// The same exchanges as `BatchProbe.tcp`, made by busybox nc inside the container itself
    /// (`docker exec`, all targets at once): evidence that probing from the container's
    /// namespace stands for the container's own processes.
    public func execProbe(from container: String, to targets: [ProbeTarget]) throws -> [ProbeTarget: Bool] {
        let unique = Array(Set(targets))
        let script = unique.map { target in
            "(echo probe | timeout 1 nc \(target.address) \(target.port) | grep -q 'echo probe' && echo ok \(target.address) \(target.port) || echo no \(target.address) \(target.port)) &"
        }.joined(separator: "\n") + "\nwait"
        let output = try docker(["exec", container, "sh", "-c", script], timeout: .seconds(15))
        var answers: [ProbeTarget: Bool] = [:]
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 3, let port = UInt16(words[2]) else { continue }
            answers[ProbeTarget(words[1], port)] = words[0] == "ok"
        }
        guard answers.count == unique.count else {
            throw NetnsFixtureError("docker exec probe in \(container) answered \(answers.count) of \(unique.count): \(output)")
        }
        return answers
    }
}

/// Runs each job on a thread of its own and waits for all; rethrows the first error.
public func inParallel<T: Sendable>(_ jobs: [@Sendable () throws -> T]) throws -> [T] {
    let slots = ParallelSlots<T>(jobs.count)
    let group = DispatchGroup()
    for (index, job) in jobs.enumerated() {
        group.enter()
        Thread {
            let result = Result { try job() }
            slots.lock.withLock { slots.results[index] = result }
            group.leave()
        }.start()
    }
    group.wait()
    return try slots.results.map { try $0!.get() }
}

/// The results of `inParallel`, filled in by its threads.
private final class ParallelSlots<T: Sendable>: @unchecked Sendable {
    let lock = NSLock()
    var results: [Result<T, any Error>?]
    init(_ count: Int) { results = Array(repeating: nil, count: count) }
}

extension PrivateDocker {
    static let outsideLink = "zge-outside"

    /// The "outside world" (`FakeOutsideWorld`'s documentation addresses): a namespace on a
    /// routed veth link from the private host, reaching published ports at `hostIPv4`.
    /// `remove()` deletes it.
    public func addOutsideWorld() throws -> FakeOutsideWorld {
        let outside = FakeOutsideWorld(namespace: "zge-outside", hostLink: Self.outsideLink)
        registerCleanup { [outside] in
            _ = try? NetnsCommand.run(["ip", "link", "del", outside.hostLink])
            _ = try? NetnsCommand.run(["ip", "netns", "delete", outside.namespace])
        }
        try NetnsCommand.check(["ip", "netns", "add", outside.namespace])
        try NetnsCommand.check(["ip", "link", "add", outside.hostLink, "type", "veth", "peer", "name", "eth0", "netns", outside.namespace])
        try NetnsCommand.check(["ip", "-batch", "-"], input: """
            addr add \(outside.hostIPv4)/24 dev \(outside.hostLink)
            addr add \(outside.hostIPv6)/64 dev \(outside.hostLink) nodad
            link set \(outside.hostLink) up
            """)
        try NetnsCommand.check(["ip", "-n", outside.namespace, "-batch", "-"], input: """
            link set lo up
            link set eth0 up
            addr add \(outside.ipv4)/24 dev eth0
            addr add \(outside.ipv6)/64 dev eth0 nodad
            route add default via \(outside.hostIPv4)
            route add default via \(outside.hostIPv6)
            """)
        return outside
    }
}
