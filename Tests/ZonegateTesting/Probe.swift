import Foundation

/// One-shot client probes. Each runs as a child process in `site`, is bounded by its
/// timeout, and answers whether the exchange completed; each throws only when the probe
/// itself could not run, so a broken harness never passes for a blocked packet.
public enum Probe {
    /// Connects over TCP, sends a line and waits for the server's echo; as user id `user` when
    /// given (root otherwise).
    public static func tcpConnect(
        from site: some ProbeSite, to address: String, port: UInt16, timeout: Duration = .seconds(2), user: UInt32? = nil
    ) throws -> Bool {
        try runClient(["tcp", address, String(port), String(timeout.seconds)], in: site, timeout: timeout, user: user)
    }

    /// Sends one UDP datagram and waits for the server's echo.
    public static func udpExchange(
        from site: some ProbeSite, to address: String, port: UInt16, timeout: Duration = .seconds(2)
    ) throws -> Bool {
        try runClient(["udp", address, String(port), String(timeout.seconds)], in: site, timeout: timeout)
    }

    /// Sends `count` ICMP (or ICMPv6) echo requests; true when a reply came back in time.
    public static func ping(
        from site: some ProbeSite, to address: String, count: Int = 1, timeout: Duration = .seconds(2)
    ) throws -> Bool {
        // busybox ping takes whole seconds: -W waits for the first reply, -w caps the run.
        let seconds = String(max(1, Int(timeout.seconds.rounded(.up))))
        let family = NetnsAddress.isIPv6(address) ? "-6" : "-4"
        let result = try NetnsCommand.run(
            ["busybox", "ping", family, "-q", "-c", String(count), "-W", seconds, "-w", seconds, address],
            in: site.netnsLocation, timeout: timeout + .seconds(1))
        switch result.status {
        case 0: return true
        case 1: return false
        default:
            throw NetnsFixtureError(
                "ping \(address) from \(site.netnsLocation) failed to run (status \(result.status)): \(result.errorOutput)")
        }
    }

    /// Sends one UDP datagram whose source is `spoofedSource`, an address the sending
    /// namespace does not own (bound with IP_TRANSPARENT). Whether it arrived shows on the
    /// receiving `ProbeServer` (`waitForPeer(spoofedSource, transport: .udp)`).
    public static func sendSpoofedUDP(
        from site: some ProbeSite, spoofedSource: String, to address: String, port: UInt16
    ) throws {
        let sent = try runClient(["spoofed-udp", address, String(port), "1", spoofedSource], in: site, timeout: .seconds(2))
        guard sent else {
            throw NetnsFixtureError("could not send a datagram from \(spoofedSource) in \(site.netnsLocation)")
        }
    }

    /// Runs the client script; status 0 is a completed exchange, `noExchangeStatus` (or
    /// a kill by `timeout`) a failed one, anything else a harness failure.
    static func runClient(_ arguments: [String], in site: some ProbeSite, timeout: Duration, user: UInt32? = nil) throws -> Bool {
        let asUser = user.map { ["setpriv", "--reuid", String($0), "--regid", String($0), "--clear-groups"] } ?? []
        let result = try NetnsCommand.run(
            asUser + ["python3", "-I", "-c", ProbeScripts.client] + arguments, in: site.netnsLocation,
            timeout: timeout + .seconds(2))
        switch result.status {
        case 0: return true
        case ProbeScripts.noExchangeStatus, 124, 137: return false
        default:
            throw NetnsFixtureError(
                "probe \(arguments.joined(separator: " ")) in \(site.netnsLocation) failed to run (status \(result.status)): \(result.errorOutput)")
        }
    }
}
