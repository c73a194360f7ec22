/// A stand-in for Docker's userland proxy (docker-proxy) inside one namespace: it accepts TCP on
/// a port, IPv4 and IPv6, and relays each connection over a connection of its own to one target,
/// as docker-proxy relays a published port to the container behind it. It stops by itself when
/// its lifetime ends; `stop()` ends it sooner.
public final class ProbeRelay: @unchecked Sendable {
    private let process: ProbeProcess

    /// Starts the relay and waits (at most `readyTimeout`) until it listens.
    public init(
        in site: some ProbeSite, port: UInt16, to target: String, port targetPort: UInt16,
        lifetime: Duration = .seconds(60), readyTimeout: Duration = .seconds(2)
    ) throws {
        let location = site.netnsLocation
        process = try ProbeProcess(
            ["python3", "-I", "-c", ProbeScripts.relay, String(port), target, String(targetPort), String(lifetime.seconds)],
            in: location, lifetime: lifetime + .seconds(1))
        guard process.waitForLine(timeout: readyTimeout, where: { $0 == "ready" }) else {
            let output = process.outputTail
            process.stop()
            throw NetnsFixtureError("relay on port \(port) in \(location) did not start: \(output)")
        }
    }

    /// How many connections it relayed, and how many it could not take on to the target.
    public var outcomes: (relayed: Int, unreachable: Int) {
        let lines = process.outputLines
        return (lines.filter { $0 == "relayed" }.count, lines.filter { $0 == "unreachable" }.count)
    }

    /// Ends the relay now.
    public func stop() { process.stop() }
}
