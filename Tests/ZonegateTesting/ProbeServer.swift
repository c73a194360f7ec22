import Foundation
import ZonegatePolicy

/// The transport a probe uses.
public enum ProbeTransport: String, Sendable, Hashable {
    case tcp
    case udp
}

/// One connection or datagram a probe server received: transport and source address.
public struct ProbePeer: Sendable, Hashable, CustomStringConvertible {
    public let transport: ProbeTransport
    public let address: String
    public let port: UInt16

    public var description: String { "\(transport) from \(address) port \(port)" }
}

/// A TCP and UDP echo server on one port, IPv4 and IPv6, inside one namespace. It records
/// every peer it hears from (how spoofed packets are detected) and stops by itself when
/// its lifetime ends; `stop()` or deinit end it sooner.
public final class ProbeServer: @unchecked Sendable {
    public let port: UInt16
    public let location: NetnsLocation
    private let process: ProbeProcess

    /// Starts the server and waits (at most `readyTimeout`) until all four sockets listen.
    public init(
        in site: some ProbeSite, port: UInt16, lifetime: Duration = .seconds(30),
        readyTimeout: Duration = .seconds(2)
    ) throws {
        self.port = port
        location = site.netnsLocation
        process = try ProbeProcess(
            ["python3", "-I", "-c", ProbeScripts.server, String(port), String(lifetime.seconds)],
            in: location, lifetime: lifetime + .seconds(1))
        guard process.waitForLine(timeout: readyTimeout, where: { $0 == "ready" }) else {
            let output = process.outputTail
            process.stop()
            throw NetnsFixtureError("probe server on port \(port) in \(location) did not start: \(output)")
        }
    }

    /// Everything received so far.
    public var receivedPeers: [ProbePeer] {
        process.outputLines.compactMap { line in
            let words = line.split(separator: " ")
            guard words.count == 4, words[0] == "peer", let transport = ProbeTransport(rawValue: String(words[1])),
                let port = UInt16(words[3])
            else { return nil }
            return ProbePeer(transport: transport, address: String(words[2]), port: port)
        }
    }

    /// Whether something from `address` arrived over `transport` within `timeout`.
    public func waitForPeer(
        _ address: String, transport: ProbeTransport, timeout: Duration = .seconds(2)
    ) -> Bool {
        let wanted = NetnsAddress.canonical(address)
        return poll(timeout: timeout) {
            self.receivedPeers.contains { $0.transport == transport && NetnsAddress.canonical($0.address) == wanted }
        }
    }

    /// Whether the server still runs (its lifetime has not ended).
    public var isRunning: Bool { process.isRunning }

    /// Ends the server now.
    public func stop() { process.stop() }
}

/// Textual IP addresses compared in one spelling ("fd00:30:0::2" equals "fd00:30::2").
enum NetnsAddress {
    static func isIPv6(_ address: String) -> Bool { address.contains(":") }

    static func canonical(_ address: String) -> String { IPAddress(address)?.description ?? address }
}
