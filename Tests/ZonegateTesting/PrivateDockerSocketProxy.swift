import Foundation

/// A unix-socket relay in front of a `PrivateDocker`'s socket, so that a test can cut every
/// connection through it (the daemon's event stream included) while dockerd runs on, change
/// containers meanwhile through the real socket, and open the relay again.
public final class DockerSocketRelay: @unchecked Sendable {
    public let socketPath: String
    private let upstream: String
    private var process: ProbeProcess?

    /// `unix://…` of the relay, for `--docker-host`.
    public var host: String { "unix://" + socketPath }

    /// Starts relaying `docker`'s socket at `DIRECTORY/relay.sock`.
    public init(for docker: PrivateDocker) throws {
        upstream = docker.socketPath
        socketPath = docker.directory + "/relay.sock"
        try open()
    }

    deinit { process?.stop() }

    /// Starts (again) accepting and relaying connections; waits until it listens.
    public func open() throws {
        guard process == nil else { return }
        let started = try ProbeProcess(["python3", "-I", "-c", Self.script, socketPath, upstream, "600"],
                                       in: .privateHost, lifetime: .seconds(600))
        guard started.waitForLine(timeout: .seconds(3), where: { $0 == "ready" }) else {
            started.stop()
            throw NetnsFixtureError("docker socket relay did not start: \(started.outputTail)")
        }
        process = started
    }

    /// Closes the listening socket and every relayed connection (the relay process ends).
    public func cut() {
        process?.stop()
        process = nil
    }

    /// argv: listen-path upstream-path lifetime-seconds. One pair of pumping threads per
    /// connection; everything ends with the process.
    static let script = #"""
        import os, socket, sys, threading, time
        path, upstream, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(64)
        server.settimeout(0.5)
        print("ready", flush=True)
        \#(ProbeScripts.pump)
        while time.monotonic() < deadline:
            try:
                client, _ = server.accept()
            except socket.timeout:
                continue
            backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                backend.connect(upstream)
            except OSError:
                client.close()
                continue
            for a, b in ((client, backend), (backend, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()
        """#
}
