import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ZonegateTesting

/// A simulated Docker engine on a unix socket: HTTP/1.1 with keep-alive, serving `/version`,
/// `/containers/json`, `/containers/{id}/json`, `/networks` and a streaming `/events` (chunked
/// JSON lines) for synthetic containers on one bridge network, so that the real Docker client of
/// the daemon sees thousands of containers that real dockerd could not start here. Containers
/// have no process, so they have no PID and no veth: the daemon under test resolves bridge ports
/// synthetically. `/events` sends only what happens after the subscription (no `since` replay):
/// the benchmarks start and stop containers only once the daemon is ready.
final class SimulatedDocker: @unchecked Sendable {
    static let networkName = "zg-bench"
    static let networkID = String(repeating: "be", count: 32)

    let socketPath: String
    var host: String { "unix://" + socketPath }
    private let synthetic: SyntheticHost
    private let listener: Int32
    private let lock = NSLock()
    private var running: Set<Int>
    private var subscribers: [Int32] = []
    private var connections: Set<Int32> = []

    /// `host`'s containers 0..<containerCount are running; higher indices exist, stopped, until started.
    init(_ host: SyntheticHost, directory: URL) throws {
        synthetic = host
        running = Set(0..<host.containerCount)
        socketPath = directory.appendingPathComponent("docker.sock").path
        listener = try UnixSocketListener.listen(at: socketPath, backlog: 64)
        Thread { [self] in acceptConnections() }.start()
    }

    /// The id of container `index`: its index leads, so that the first 12 characters (what the
    /// daemon logs, and what names its synthetic bridge port) are unique.
    static func id(_ index: Int) -> String { String(format: "%012x", index) + String(repeating: "c", count: 52) }

    static func index(ofID id: some StringProtocol) -> Int? { Int(id.prefix(12), radix: 16) }

    /// A container beyond the initial ones joins the zone of an initial one: a start adds a
    /// member to an existing zone, not a new identity.
    func zone(of index: Int) -> Int {
        let populated = max(1, min(synthetic.containerCount, synthetic.zones))
        return synthetic.zone(ofContainer: index < synthetic.containerCount ? index : index % populated)
    }

    /// Marks the container running and writes its `start` event; the CLOCK_MONOTONIC time at
    /// which the event was about to be written.
    @discardableResult
    func start(_ index: Int) -> UInt64 {
        lock.withLock { _ = running.insert(index) }
        return publish(index, action: "start")
    }

    /// Marks the container exited and writes its `die` event; as `start`.
    @discardableResult
    func stop(_ index: Int) -> UInt64 {
        lock.withLock { _ = running.remove(index) }
        return publish(index, action: "die")
    }

    func shutdownServer() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.withLock { for connection in connections { shutdown(connection, Int32(SHUT_RDWR)) } }
        unlink(socketPath)
    }

    private func publish(_ index: Int, action: String) -> UInt64 {
        let event = #"{"Type":"container","Action":"\#(action)","Actor":{"ID":"\#(Self.id(index))","Attributes":{"name":"c\#(index)"}},"scope":"local"}"# + "\n"
        let chunk = Array((String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n").utf8)
        return lock.withLock {
            let stamp = monotonicNanoseconds()
            subscribers = subscribers.filter { writeAll($0, chunk) }
            return stamp
        }
    }

    private func acceptConnections() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            lock.withLock { _ = connections.insert(connection) }
            Thread { [self] in serve(connection) }.start()
        }
    }

    /// Answers requests on one connection until the client closes it, or hands it to the event
    /// subscribers for good.
    private func serve(_ connection: Int32) {
        while let path = readRequestPath(connection) {
            let route = path.replacingOccurrences(of: #"^/v[0-9.]+"#, with: "", options: .regularExpression)
            if route.hasPrefix("/events") {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                lock.withLock { if writeAll(connection, Array(head.utf8)) { subscribers.append(connection) } }
                return
            }
            let (status, body) = answer(route)
            let response = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            guard writeAll(connection, Array(response.utf8)) else { break }
        }
        lock.withLock { _ = connections.remove(connection) }
        close(connection)
    }

    /// The path and query of the next request head (GETs only: no body follows); nil at the end.
    private func readRequestPath(_ connection: Int32) -> String? {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1)
        while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            guard read(connection, &buffer, 1) == 1 else { return nil }
            head.append(buffer[0])
        }
        let requestLine = String(decoding: head, as: UTF8.self).prefix { $0 != "\r" }.split(separator: " ")
        return requestLine.count >= 2 ? String(requestLine[1]) : nil
    }

    private func answer(_ route: String) -> (String, String) {
        let path = route.prefix { $0 != "?" }
        if path == "/version" {
            return ("200 OK", #"{"Version":"20.10.24-simulated","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#)
        }
        if path == "/networks" {
            return ("200 OK", #"[{"Name":"\#(Self.networkName)","Id":"\#(Self.networkID)","Driver":"bridge","Options":{"com.docker.network.bridge.name":"\#(SyntheticHost.bridge)"}}]"#)
        }
        if path == "/containers/json" {
            let ids = lock.withLock { running.sorted() }.map { #"{"Id":"\#(Self.id($0))"}"# }
            return ("200 OK", "[" + ids.joined(separator: ",") + "]")
        }
        let parts = path.split(separator: "/")
        if parts.count == 3, parts[0] == "containers", parts[2] == "json", let index = Self.index(ofID: parts[1]) {
            return ("200 OK", inspect(index, running: lock.withLock { running.contains(index) }))
        }
        return ("404 Not Found", #"{"message":"no such object"}"#)
    }

    /// `GET /containers/{id}/json` reduced to the fields zonegate reads.
    private func inspect(_ index: Int, running: Bool) -> String {
        let container = synthetic.container(index, zone: zone(of: index))
        let port = container.ports[0].number
        let zone = container.labels["zonegate.zone"]!
        let address = running ? "\(container.addresses[0])" : ""
        let mac = String(format: "02:42:%02x:%02x:%02x:%02x", (index >> 24) & 255, (index >> 16) & 255, (index >> 8) & 255, index & 255)
        return #"{"Id":"\#(Self.id(index))","Name":"/c\#(index)","State":{"Running":\#(running),"Pid":0},"#
            + #""Config":{"Labels":{"zonegate.zone":"\#(zone)"},"ExposedPorts":{"\#(port)/tcp":{}}},"#
            + #""HostConfig":{"NetworkMode":"\#(Self.networkName)"},"#
            + #""NetworkSettings":{"Ports":{},"Networks":{"\#(Self.networkName)":{"NetworkID":"\#(Self.networkID)","IPAddress":"\#(address)","MacAddress":"\#(mac)"}}}}"#
    }
}

/// Writes all of `bytes`; false when the peer has gone.
private func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard written > 0 else { return false }
        offset += written
    }
    return true
}

/// CLOCK_MONOTONIC in nanoseconds: system-wide, so stamps of the bench and of its daemon child compare.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
