import ArgumentParser
import Foundation
import ZonegateDocker
import ZonegateEngine
import ZonegatePolicy

/// `--docker-host URL`, shared by the commands that read the live Docker host.
struct DockerOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The Docker engine (default: $DOCKER_HOST, else unix:///var/run/docker.sock).", valueName: "URL"))
    var dockerHost: String?

    var url: String {
        dockerHost ?? ProcessInfo.processInfo.environment["DOCKER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "unix:///var/run/docker.sock"
    }

    /// A client for the engine; an environment failure (exit 2) when the URL cannot be used.
    func client(for command: String) throws -> DockerAPIClient {
        do {
            return try DockerAPIClient(host: url)
        } catch {
            throw CommandFailure.environment("\(error)")
        }
    }

    /// The live host's containers as an inventory, under the policy's `defaults.networks`.
    func inventory(for command: String, managedNetworks: [String]?) async throws -> Inventory {
        try await withClient(for: command) { try await Self.snapshot($0, managedNetworks: managedNetworks).inventory }
    }

    /// Runs `body` with a client for the engine and shuts it down afterwards; a failure to reach
    /// Docker is an environment failure (exit 2).
    func withClient<T>(for command: String, _ body: (DockerAPIClient) async throws -> T) async throws -> T {
        let client = try client(for: command)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw CommandFailure.environment("cannot read Docker at \(url): \(error)")
        }
    }

    /// The running containers and the networks as Docker lists them, and the inventory built from them.
    static func snapshot(_ client: DockerAPIClient, managedNetworks: [String]?)
        async throws -> (containers: [DockerContainer], networks: [DockerNetwork], inventory: Inventory) {
        async let listed = client.networks()
        let containers = try await client.runningContainers()
        let networks = try await listed
        let inventory = DockerInventory.build(containers: containers, networks: networks,
                                              managedNetworks: managedNetworks, bridgePort: VethResolver().resolver())
        return (containers, networks, inventory)
    }
}
