import Foundation
import ZonegateTesting

/// Issue 5 item 5, all real: a private dockerd (ZonegateTesting's PrivateDocker, in this
/// process's private network and mount namespaces), the `zonegate run` binary, a peer in zone b
/// serving TCP and UDP and recording every connection and datagram it receives, and `starts`
/// containers in zone a, which may not reach b, each probing the peer from its first moment for
/// about two seconds. What the peer received from them must be nothing; a control container in
/// zone c, which may reach b, probes the same way first, to show that the probes do arrive.
struct ExposureBench {
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
        _ = try start("control", zone: "c")
        Thread.sleep(forTimeInterval: 3)  // until its probes end
        let control = server.receivedPeers.count
        guard control > 0 else { throw BenchError(description: "zero exposure: the allowed control container's probes did not arrive") }
        let seconds = try (0..<starts).map { try start("a\($0)", zone: "a") }
        Thread.sleep(forTimeInterval: 3)  // the last probes end
        let delivered = server.receivedPeers.count - control
        notes.append("zero exposure: \(starts) real containers (private dockerd, `zonegate run`), each probing a denied peer over TCP and UDP for 2 s from its first moment (the allowed control delivered \(control)); median `docker run -d` \(String(format: "%.2f", Sample(seconds: seconds).median)) s")
        return [.count("zero exposure: \(starts) starts, delivered packets", delivered, goal: "0")]
    }
}
