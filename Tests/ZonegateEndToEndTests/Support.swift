import Foundation
import Testing
import ZonegateTesting

/// The policy every end-to-end test starts from: web -> api 8080/tcp, api -> db 5432/tcp, the
/// world -> web 80/tcp, the host -> api 9100/tcp; db's egress is restricted, and unzoned
/// containers accept nothing.
let basePolicy = """
    version: 1
    defaults:
      unzoned: restricted
    zones:
      - {name: web}
      - {name: api}
      - {name: db, egress: restricted}
    rules:
      - {name: web-to-api, from: web, to: api, ports: [8080/tcp]}
      - {name: api-to-db, from: api, to: db, ports: [5432/tcp]}
      - {name: world-to-web, from: world, to: web, ports: [80/tcp]}
      - {name: host-to-api, from: host, to: api, ports: [9100/tcp]}
    """

/// The ports each zone's containers expose (and serve in the tests).
let zonePorts: [String: [UInt16]] = ["web": [80], "api": [8080, 9100], "db": [5432], "": [7000]]

/// The user-defined network of the tests (IPv4 and IPv6).
let userNetwork = "zg-e2e"

/// One row of `zonegate matrix --format json`.
struct MatrixFlow: Hashable, CustomStringConvertible {
    let from: String
    let to: String
    let port: UInt16
    let proto: String
    let verdict: String

    /// Audit verdicts pass (and are logged).
    var passes: Bool { verdict != "deny" }
    var description: String { "\(from) -> \(to) \(port)/\(proto): \(verdict)" }
}

/// A private dockerd, a policy directory and, once started, `zonegate run` against them.
/// `close()` stops the daemon, runs `zonegate teardown` and removes all the engine made.
final class EndToEndHost: @unchecked Sendable {
    let docker: PrivateDocker
    let policies: String
    private(set) var daemon: ZonegateDaemonProcess?
    private(set) var containers: [String: PrivateContainer] = [:]
    private(set) var servers: [String: [UInt16: ProbeServer]] = [:]

    init(userlandProxy: Bool = false, policy: String = basePolicy) throws {
        // The daemons of this process take a lock of their own, not the host's.
        try PrivateRunLock.prepare()
        docker = try PrivateDocker(userlandProxy: userlandProxy)
        policies = docker.directory + "/policies"
        do {
            try FileManager.default.createDirectory(atPath: policies, withIntermediateDirectories: true)
            try writePolicy(policy)
            try docker.createNetwork(userNetwork, ipv4Subnet: "172.30.0.0/24", ipv6Subnet: "fd00:30::/64")
        } catch {
            docker.remove()
            throw error
        }
    }

    /// Replaces the policy file (written to a temporary name and renamed, as an editor would).
    func writePolicy(_ text: String) throws {
        let temporary = policies + "/.policy.yaml.tmp"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, policies + "/policy.yaml") == 0 else { throw EndToEndError("rename into \(policies): errno \(errno)") }
    }

    /// Starts a container in `zone` ("" for unzoned) exposing the zone's ports, with a probe
    /// server on each of them.
    @discardableResult
    func add(_ name: String, zone: String, network: String = userNetwork, ip: String? = nil,
             publish: [(host: UInt16, container: UInt16)] = [], command: [String]? = nil) throws -> PrivateContainer {
        let ports = zonePorts[zone] ?? []
        let container = try docker.run(
            name, network: network, ip: ip, labels: zone.isEmpty ? ["role": "misc"] : ["zonegate.zone": zone],
            expose: ports.map { "\($0)/tcp" }, publish: publish, command: command)
        containers[name] = container
        for port in ports {
            servers[name, default: [:]][port] = try docker.startServer(in: container, port: port)
        }
        return container
    }

    /// Refreshes a container's addresses (after `docker network connect`).
    func refresh(_ name: String) throws -> PrivateContainer {
        let container = try docker.inspect(name)
        containers[name] = container
        return container
    }

    func removeContainer(_ name: String) throws {
        servers.removeValue(forKey: name)?.values.forEach { $0.stop() }
        containers.removeValue(forKey: name)
        try docker.removeContainer(name)
    }

    /// Stops the container (it stays, stopped) and its probe servers.
    func stopContainer(_ name: String) throws {
        servers.removeValue(forKey: name)?.values.forEach { $0.stop() }
        containers.removeValue(forKey: name)
        try docker.stopContainer(name)
    }

    /// `zonegate run` in the background (against `dockerHost`, the engine's socket by default);
    /// waits for "ready" (throws with its log if it does not come within `timeout`).
    @discardableResult
    func startZonegate(dockerHost: String? = nil, timeout: Duration = .seconds(40)) throws -> ZonegateDaemonProcess {
        let daemon = try ZonegateDaemonProcess(policies: policies, dockerHost: dockerHost ?? docker.host)
        self.daemon = daemon
        guard daemon.waitForMessage("ready", timeout: timeout) else {
            throw EndToEndError("zonegate run did not log ready within \(timeout) (exit status \(daemon.exitStatus.map(String.init) ?? "none, still running")):\n\(daemon.tail())")
        }
        return daemon
    }

    /// Forgets the daemon (after the test killed it) so that `startZonegate` starts another.
    func discardDaemon() { daemon = nil }

    /// `zonegate inventory --docker-host` of the live engine (the text it printed).
    func inventory() throws -> String {
        let outcome = try ZonegateBinary.run(["inventory", "--docker-host", docker.host])
        guard outcome.status == 0 else { throw EndToEndError("zonegate inventory exited \(outcome.status): \(outcome.stderr)") }
        return outcome.stdout
    }

    /// `zonegate matrix --docker-host --format json`: the live host, no inventory file.
    func liveMatrix() throws -> [MatrixFlow] {
        let outcome = try ZonegateBinary.run(["matrix", "--policies", policies, "--docker-host", docker.host, "--format", "json"])
        guard outcome.status == 0 else { throw EndToEndError("zonegate matrix (live) exited \(outcome.status): \(outcome.stderr)") }
        return try Self.decodeMatrix(outcome.stdout)
    }

    /// `zonegate matrix --inventory FILE --format json` over what `inventory` printed.
    func matrix(inventory: String) throws -> [MatrixFlow] {
        let file = docker.directory + "/inventory.json"
        try inventory.write(toFile: file, atomically: true, encoding: .utf8)
        let outcome = try ZonegateBinary.run(["matrix", "--policies", policies, "--inventory", file, "--format", "json"])
        guard outcome.status == 0 else { throw EndToEndError("zonegate matrix exited \(outcome.status): \(outcome.stderr)") }
        return try Self.decodeMatrix(outcome.stdout)
    }

    static func decodeMatrix(_ text: String) throws -> [MatrixFlow] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let flows = object["flows"] as? [[String: Any]]
        else { throw EndToEndError("matrix JSON without flows: \(text.prefix(300))") }
        return flows.compactMap { flow in
            guard let from = flow["from"] as? String, let to = flow["to"] as? String, let port = flow["port"] as? Int,
                let proto = flow["proto"] as? String, let verdict = flow["verdict"] as? String
            else { return nil }
            return MatrixFlow(from: from, to: to, port: UInt16(port), proto: proto, verdict: verdict)
        }
    }

    /// Stops the daemon, removes zonegate's tables and everything the engine made; records an
    /// issue for anything left behind.
    func close() {
        daemon?.stop()
        _ = try? ZonegateBinary.run(["teardown"])
        // Should teardown fail, the tables must still not outlive the test.
        for family in ["inet", "bridge"] {
            _ = try? NetnsCommand.check(["nft", "delete", "table", family, "zonegate"])
        }
        let left = docker.remove()
        try? FileManager.default.removeItem(atPath: policies)
        #expect(left.isEmpty, "left behind: \(left)")
    }
}

/// A failure of the test's own setup or of a zonegate command, with what it printed.
struct EndToEndError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Retries `probe` (at most `attempts` times, 200 ms apart) until it returns true.
func eventually(attempts: Int = 25, _ probe: () throws -> Bool) rethrows -> Bool {
    for attempt in 0..<attempts {
        if try probe() { return true }
        if attempt + 1 < attempts { Thread.sleep(forTimeInterval: 0.2) }
    }
    return false
}

/// Whether a TCP exchange from `site` to `address`:`port` completes (1 s timeout).
func reaches(_ site: some ProbeSite, _ address: String, _ port: UInt16) throws -> Bool {
    try BatchProbe.tcp(from: site, to: [ProbeTarget(address, port)])[ProbeTarget(address, port)] ?? false
}
