import Testing
import ZonegateDocker
import ZonegateTesting

/// The fake engine the daemon's tests drive: what they rely on it for.
struct FakeDockerEngineTests {
    static let web = DockerContainer(id: "w1", name: "web-1")

    @Test func listsWhatIsSetAndCountsCalls() async throws {
        let engine = FakeDockerEngine(containers: [Self.web, DockerContainer(id: "s1", name: "stopped", running: false)],
                                      networks: [DockerNetwork(id: "n1", name: "bridge", driver: "bridge", bridgeNameOption: "docker0")])
        #expect(try await engine.runningContainers().map(\.name) == ["web-1"])
        #expect(try await engine.inspectContainer(id: "s1")?.running == false)
        #expect(try await engine.inspectContainer(id: "gone") == nil)
        #expect(try await engine.networks().map(\.name) == ["bridge"])
        engine.failLists(with: DockerError(.unreachable, "down"))
        await #expect(throws: DockerError.self) { try await engine.runningContainers() }
        await #expect(throws: DockerError.self) { try await engine.networks() }
        engine.failLists(with: nil)
        #expect(try await engine.runningContainers().count == 1)
        #expect(engine.calls == FakeDockerEngine.Calls(runningContainers: 3, inspectContainer: 2, networks: 2, events: 0))
    }

    @Test func eventsReachOpenStreamsUntilBroken() async throws {
        let engine = FakeDockerEngine()
        let stream = try await engine.events()
        #expect(engine.openStreamCount == 1)
        engine.start(Self.web)
        engine.stop(id: "w1")
        engine.breakStreams()
        var seen: [String] = []
        let error = await #expect(throws: DockerError.self) {
            for try await event in stream { seen.append("\(event.action) \(event.actorID)") }
        }
        #expect(error?.code == .streamEnded)
        #expect(seen == ["start w1", "die w1"])
        #expect(engine.openStreamCount == 0)
        #expect(try await engine.inspectContainer(id: "w1")?.running == false)
        engine.failEvents(with: DockerError(.unreachable, "down"))
        await #expect(throws: DockerError.self) { try await engine.events() }
    }

    @Test func aDroppedStreamIsForgotten() async throws {
        let engine = FakeDockerEngine()
        let consumer = Task {
            for try await _ in try await engine.events() {}
        }
        #expect(await engine.waitForStreams(1))
        consumer.cancel()
        _ = await consumer.result
        #expect(await engine.waitForStreams(0) && engine.openStreamCount == 0)
    }
}
