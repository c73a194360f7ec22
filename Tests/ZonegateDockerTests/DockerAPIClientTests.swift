import Foundation
import Testing
import ZonegateDocker

/// The client's failures without a dockerd: what a user sees when Docker is not there.
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
}
