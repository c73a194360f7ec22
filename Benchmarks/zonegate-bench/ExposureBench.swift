import Foundation
import ZonegateTesting

/// Issue 5 item 5, all real: a private dockerd (ZonegateTesting's PrivateDocker, in this
/// process's private network and mount namespaces), the `zonegate run` binary, a peer in zone b
/// serving TCP and UDP and recording every connection and datagram it receives, and `starts`
/// containers in zone a, which may not reach b, each probing the peer from its first moment for
/// about two seconds. What the peer received from them must be nothing; a control container in
/// zone c, which may reach b, probes the same way first, to show that the probes do arrive.
/// Fifty idle containers run throughout, and each start's event-to-enforced latency is read off
/// Docker's event time and the `applied` line zonegate logs once the kernel acked (issue 5 item 4,
/// real dockerd).
struct ExposureBench {
    static let idleContainers = 50
    static let network = "zg-exposure"
    static let peerPort: UInt16 = 7000
    static let policy = """
        version: 1
        zones:
          - {name: a}
          - {name: b}
          - {name: c}
        rules:
          - {from: c, to: b, ports: [7000/tcp, 7000/udp]}
        """

    /// Why it cannot run here, if it cannot (root, private network and mount namespaces).
    static var reasonToSkip: String? { PrivateNetworkNamespace.unmetPrecondition() }

    func run(starts: Int, _ notes: inout [String]) throws -> [Result] {
        try PrivateRunLock.prepare()  // the daemon's lock is this namespace's, not the host's
        let docker = try PrivateDocker(userlandProxy: false)
        var zonegate: ZonegateDaemonProcess?
        defer {
            zonegate?.stop()
            _ = try? ZonegateBinary.run(["teardown"])
            let left = docker.remove()
            if !left.isEmpty { notes.append("zero exposure: left behind: \(left)") }
        }
        let policies = docker.directory + "/policies"
        try FileManager.default.createDirectory(atPath: policies, withIntermediateDirectories: true)
        try Self.policy.write(toFile: policies + "/policy.yaml", atomically: true, encoding: .utf8)
        try docker.createNetwork(Self.network, ipv4Subnet: "172.28.0.0/22")
        let daemon = try ZonegateDaemonProcess(policies: policies, dockerHost: docker.host, resyncInterval: "30s")
        zonegate = daemon
        guard daemon.waitForMessage("ready", timeout: .seconds(40)) else {
            throw BenchError(description: "zonegate run did not log ready: \(daemon.tail())")
        }
        let peer = try docker.run("peer", network: Self.network, labels: ["zonegate.zone": "b"], expose: ["\(Self.peerPort)/tcp", "\(Self.peerPort)/udp"])
        let server = try docker.startServer(in: peer, port: Self.peerPort, lifetime: .seconds(600))
        guard let address = peer.ipv4(on: Self.network) else { throw BenchError(description: "the peer has no address") }
        // A TCP connection attempt and a UDP datagram at once, again and again for 2 s.
        let probe = "timeout 2 sh -c 'while true; do echo x | nc -w 1 \(address) \(Self.peerPort); done' & "
            + "timeout 2 sh -c 'while true; do echo x | nc -u -w 1 \(address) \(Self.peerPort); done'; wait"
        func start(_ name: String, zone: String) throws -> Double {
            try timed {
                try docker.docker(["run", "-d", "--rm", "--name", name, "--network", Self.network, "--label", "zonegate.zone=\(zone)",
                                   PrivateDocker.image, "/bin/sh", "-c", probe])
            }.1
        }
        for index in 0..<Self.idleContainers {
            try docker.docker(["run", "-d", "--name", "idle\(index)", "--network", Self.network, "--label", "zonegate.zone=c",
                               PrivateDocker.image, "/bin/busybox", "sleep", "3600"])
        }
        _ = try start("control", zone: "c")
        Thread.sleep(forTimeInterval: 3)  // until its probes end
        let control = server.receivedPeers.count
        guard control > 0 else { throw BenchError(description: "zero exposure: the allowed control container's probes did not arrive") }
        let since = Date()
        let seconds = try (0..<starts).map { try start("a\($0)", zone: "a") }
        Thread.sleep(forTimeInterval: 3)  // the last probes end
        let delivered = server.receivedPeers.count - control
        var results: [Result] = [.count("zero exposure: \(starts) starts, delivered packets", delivered, goal: "0")]
        do {
            let latency = try Self.eventToEnforced(since: since, docker: docker, log: daemon.lines)
            results.append(Result("event -> enforced, real dockerd, \(latency.seconds.count) starts among \(Self.idleContainers + 1) running", latency,
                                  baseline: "DFW's debounce alone (500 ms)", 0.5, goal: "p99 <= 5 ms"))
        } catch {
            notes.append("real dockerd latency failed: \(error)")
        }
        notes.append("zero exposure: \(starts) real containers (private dockerd, `zonegate run`), each probing a denied peer over TCP and UDP for 2 s from its first moment (the allowed control delivered \(control)); median `docker run -d` \(String(format: "%.2f", Sample(seconds: seconds).median)) s")
        notes.append("real dockerd latency: Docker's event time to the time of zonegate's `applied` line (logged after the kernel's ack; 1 ms resolution), `zonegate run` a debug build, \(Self.idleContainers) idle containers running")
        return results
    }

    /// For each container start since `since`: from the event's time in Docker to the time of the
    /// `applied` line whose reasons name it.
    static func eventToEnforced(since: Date, docker: PrivateDocker, log: [String]) throws -> Sample {
        let events = try docker.docker(["events", "--since", String(Int(since.timeIntervalSince1970) - 1), "--until", String(Int(Date().timeIntervalSince1970) + 1),
                                        "--filter", "type=container", "--filter", "event=start", "--format", "{{json .}}"])
        let parser = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var applied: [(time: Date, reason: String)] = []
        for line in log {
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  entry["message"] as? String == "applied", let time = entry["time"] as? String, let reason = entry["reason"] as? String,
                  let date = try? parser.parse(time) else { continue }
            applied.append((date, reason))
        }
        var seconds: [Double] = []
        for line in events.split(separator: "\n") {
            guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = event["id"] as? String, let nanoseconds = (event["timeNano"] as? NSNumber)?.doubleValue,
                  nanoseconds / 1e9 >= since.timeIntervalSince1970,
                  let ack = applied.first(where: { $0.reason.contains("container \(id.prefix(12)) start") }) else { continue }
            seconds.append(max(0, ack.time.timeIntervalSince1970 - nanoseconds / 1e9))
        }
        guard !seconds.isEmpty else { throw BenchError(description: "no start event matched an applied line") }
        return Sample(seconds: seconds)
    }
}
