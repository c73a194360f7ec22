import Foundation
import Testing
import ZonegateDocker
import ZonegateEngine
import ZonegateTesting

/// The client, the inventory builder and the veth resolver against a real dockerd: a private one
/// (`PrivateDocker`) per test, in the end-to-end run's network and mount namespaces (the resolver
/// reads their /sys/class/net). Each test creates what it needs; the engine removes it all.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct LiveDockerTests {
    let engine: PrivateDocker

    init() throws {
        engine = try PrivateDocker(userlandProxy: false)
    }

    @Test func listInspectEventsAndVeth() async throws {
        let suffix = String(UInt32.random(in: 0..<UInt32.max), radix: 16)
        let network = "zgdt-net-\(suffix)"
        let name = "zgdt-c-\(suffix)"
        try await DockerAPIClient.withClient(host: engine.host) { client in
            let version = try await client.version()
            #expect(version.apiVersion >= DockerAPIClient.minimumAPIVersion)

            let events = try await client.events()
            let collected = Task { () throws -> [DockerEvent] in
                var seen: [DockerEvent] = []
                for try await event in events {
                    seen.append(event)
                    if event.type == "container" && event.action == "start" && event.attributes["name"] == name { break }
                }
                return seen
            }
            defer {
                collected.cancel()
                _ = try? engine.docker(["rm", "-f", name])
                _ = try? engine.docker(["network", "rm", network])
            }
            try engine.docker(["network", "create", "--ipv6", "--subnet", "172.29.7.0/24", "--subnet", "fd00:29:7::/64", network])
            let id = try engine.docker(["run", "-d", "--name", name, "--network", network, "--label", "zonegate.zone=web",
                                            "--expose", "8080", "-p", "127.0.0.1::80", PrivateDocker.image, "sleep", "120"])
                .trimmingCharacters(in: .whitespacesAndNewlines)

            // The subscription made before the container existed sees its whole start.
            let seen = try await LiveDocker.value(of: collected, within: .seconds(15))
            let mine = seen.filter { $0.containerID == id }.map { "\($0.type) \($0.action)" }
            #expect(mine == ["container create", "network connect", "container start"])

            let containers = try await client.runningContainers()
            let container = try #require(containers.first { $0.id == id })
            #expect(container.name == name && container.labels["zonegate.zone"] == "web" && container.pid > 0)
            #expect(container.exposedPorts.map(\.description) == ["80/tcp", "8080/tcp"])
            #expect(container.publishedPorts.map { "\($0.hostAddress) \($0.containerPort)" } == ["127.0.0.1 80/tcp"])
            let endpoint = try #require(container.endpoints.first)
            #expect(endpoint.networkName == network && endpoint.ipv4?.description == "172.29.7.2" && endpoint.ipv6?.description == "fd00:29:7::2")
            #expect(try await client.inspectContainer(id: id) == container)
            #expect(try await client.inspectContainer(id: "zgdt-no-such-container") == nil)

            let networks = try await client.networks()
            let dockerNetwork = try #require(networks.first { $0.name == network })
            let bridge = try #require(dockerNetwork.bridgeDevice)

            let port = try VethResolver().bridgePort(of: container, on: endpoint, bridge: bridge)
            let link = try NetnsCommand.check(["ip", "-o", "link", "show", "dev", port])
            #expect(link.contains("master \(bridge)"), "\(link)")

            let inventory = DockerInventory.build(containers: containers, networks: networks, managedNetworks: [network],
                                                  bridgePort: VethResolver().resolver())
            #expect(inventory.containers.map(\.name) == [name])
            #expect(inventory.containers.first?.attachments == [BridgeAttachment(bridge: bridge, port: port, addresses: [endpoint.ipv4!, endpoint.ipv6!])])
            #expect(inventory.bridges == [bridge])
            #expect(throws: Never.self) { try inventory.validate() }
        }
    }

    @Test func cancellingTheConsumerEndsTheStream() async throws {
        let network = "zgdt-cancel-\(String(UInt32.random(in: 0..<UInt32.max), radix: 16))"
        let listeners = try #require(try eventListeners())
        try await DockerAPIClient.withClient(host: engine.host) { client in
            let events = try await client.events()
            let (sightings, sighted) = AsyncStream.makeStream(of: DockerEvent.self)
            let consumer = Task { () throws -> Int in
                var count = 0
                for try await event in events {
                    count += 1
                    sighted.yield(event)
                }
                return count
            }
            defer {
                consumer.cancel()
                _ = try? engine.docker(["network", "rm", network])
            }
            // The stream is live: dockerd counts its subscription, and an event reaches the consumer.
            #expect(try await LiveDocker.eventually { try eventListeners() == listeners + 1 })
            try engine.docker(["network", "create", network])
            let created = Task { () throws -> Bool in
                for await event in sightings where event.type == "network" && event.action == "create" && event.attributes["name"] == network {
                    return true
                }
                return false
            }
            #expect(try await LiveDocker.value(of: created, within: .seconds(15)))
            consumer.cancel()
            // Ends promptly (no further event needed), without an error, having read that event...
            let count = try await LiveDocker.value(of: consumer, within: .seconds(5))
            #expect(count >= 1)
            // ...and ends the request under it: dockerd no longer counts the subscription.
            #expect(try await LiveDocker.eventually { try eventListeners() == listeners },
                    "dockerd still serves \(String(describing: try? eventListeners())) event subscriptions, \(listeners) before")
        }
    }

    /// How many event subscriptions dockerd serves now (`NEventsListener` of `docker info`).
    func eventListeners() throws -> Int? {
        Int(try engine.docker(["info", "--format", "{{.NEventsListener}}"]).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Waiting with a bound: the live tests never hang on a stream that does not end.
enum LiveDocker {
    /// Waits until `condition` holds; false after `limit`.
    static func eventually(within limit: Duration = .seconds(5), _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while try !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String
    }

    /// The task's value, or a failure after `limit` (the task is cancelled then).
    static func value<T: Sendable>(of task: Task<T, Error>, within limit: Duration) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() } }
            group.addTask {
                try await Task.sleep(for: limit)
                throw TimedOut(description: "no result within \(limit)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
