import Foundation
import Testing
import ZonegateDocker

/// The client against no dockerd and against a stub one on a unix socket: requests, the event
/// stream cut into chunks and broken, and errors as a user sees them.
@Suite(.serialized)
struct DockerAPIClientTests {
    @Test func noSocketSaysSo() async throws {
        let host = "unix:///tmp/zg-no-docker-\(UUID().uuidString).sock"
        try await DockerAPIClient.withClient(host: host) { client in
            let listing = await #expect(throws: DockerError.self) { try await client.runningContainers() }
            #expect(listing?.code == .unreachable)
            #expect(listing?.message == "cannot reach Docker at \(host): no such file or directory (is dockerd running?)")
            let events = await #expect(throws: DockerError.self) { try await client.events() }
            #expect(events?.code == .unreachable)
        }
    }

    @Test func refusedHostFailsAtInit() {
        let error = #expect(throws: DockerError.self) { try DockerAPIClient(host: "tcp://127.0.0.1:2375") }
        #expect(error?.code == .unsupportedHost)
    }

    static func eventLines() throws -> [String] {
        let text = String(decoding: try Fixtures.data("events.jsonl"), as: UTF8.self)
        return text.split(separator: "\n").prefix(3).map { $0 + "\n" }
    }

    /// Events arrive whole although chunks cut through them; a connection dropped mid-stream
    /// ends the stream with `streamEnded`, as does a stream dockerd ends cleanly.
    @Test(arguments: [false, true])
    func eventStreamAcrossChunksEndsByThrowing(endsCleanly: Bool) async throws {
        let lines = try Self.eventLines()
        let half = lines[1].index(lines[1].startIndex, offsetBy: 40)
        let chunks = [lines[0] + String(lines[1][..<half]), String(lines[1][half...]) + lines[2]]
        let server = try StubDockerServer { head in
            if head.hasPrefix("GET /version ") { return [StubDockerServer.version] }
            return StubDockerServer.chunked(chunks) + (endsCleanly ? ["0\r\n\r\n"] : [])
        }
        defer { server.stop() }
        try await DockerAPIClient.withClient(host: server.host) { client async throws in
            var actions: [String] = []
            let error = await #expect(throws: DockerError.self) {
                for try await event in try await client.events() { actions.append("\(event.type) \(event.action)") }
            }
            #expect(actions == ["container create", "network connect", "container start"])
            #expect(error?.code == .streamEnded)
            // A cut inside the chunked body is an HTTP parse error (NIO's "stream ended at an
            // unexpected time"), which the message carries after its own explanation.
            #expect(error?.message.hasPrefix(endsCleanly ? "Docker at \(server.host) closed the event stream"
                                                        : "the event stream from Docker at \(server.host) broke (did dockerd stop?): ") == true,
                    "\(error?.message ?? "")")
        }
        let request = try #require(server.requests.last)
        #expect(request.hasPrefix("GET /v1.41/events?since="))
        #expect(request.contains("filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D "))
        #expect(request.lowercased().contains("\r\nhost: docker\r\n"))
    }

    @Test func answersBecomeValuesOrErrors() async throws {
        let server = try StubDockerServer { head in
            switch head.split(separator: " ")[1] {
            case "/version": [StubDockerServer.version]
            case "/v1.41/containers/gone/json": [StubDockerServer.answer("404 Not Found", #"{"message":"No such container: gone"}"#)]
            case "/v1.41/containers/json": [StubDockerServer.answer("500 Internal Server Error", #"{"message":"boom"}"#)]
            default: [StubDockerServer.answer("400 Bad Request", "unexpected")]
            }
        }
        defer { server.stop() }
        try await DockerAPIClient.withClient(host: server.host) { client async throws in
            #expect(try await client.version().apiVersion == DockerAPIVersion(1, 41))
            #expect(try await client.inspectContainer(id: "gone") == nil)
            let error = await #expect(throws: DockerError.self) { try await client.runningContainers() }
            #expect(error?.code == .requestFailed)
            #expect(error?.message == "Docker answered HTTP 500 to GET /containers/json: boom")
        }
    }

    @Test func tooOldAnEngineIsRefusedBeforeAnyOtherRequest() async throws {
        let server = try StubDockerServer { _ in
            [StubDockerServer.answer("200 OK", #"{"Version":"1.11.2","ApiVersion":"1.23"}"#)]
        }
        defer { server.stop() }
        try await DockerAPIClient.withClient(host: server.host) { client async throws in
            let error = await #expect(throws: DockerError.self) { try await client.networks() }
            #expect(error?.code == .unsupportedAPIVersion)
            #expect(error?.message.contains("Docker 1.11.2 speaks Engine API 1.23") == true)
        }
        #expect(server.requests.allSatisfy { $0.hasPrefix("GET /version ") })
    }
}
