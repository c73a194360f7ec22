import Foundation
import Synchronization
import ZonegateDocker

/// An in-memory `DockerEngine` for the daemon's tests: its containers and networks are set by
/// hand, events are emitted into every open stream, and streams or list calls fail on demand.
/// Thread-safe; every call is counted.
public final class FakeDockerEngine: DockerEngine {
    /// How often each `DockerEngine` call was made (failed ones included).
    public struct Calls: Hashable, Sendable {
        public var runningContainers = 0
        public var inspectContainer = 0
        public var networks = 0
        public var events = 0

        public init(runningContainers: Int = 0, inspectContainer: Int = 0, networks: Int = 0, events: Int = 0) {
            self.runningContainers = runningContainers
            self.inspectContainer = inspectContainer
            self.networks = networks
            self.events = events
        }
    }

    private struct State {
        var containers: [String: DockerContainer] = [:]
        var networks: [DockerNetwork] = []
        var streams: [Int: AsyncThrowingStream<DockerEvent, Error>.Continuation] = [:]
        var nextStream = 0
        var calls = Calls()
        var listFailure: Error?
        var eventsFailure: Error?
    }

    private let state = Mutex(State())

    public init(containers: [DockerContainer] = [], networks: [DockerNetwork] = []) {
        state.withLock { state in
            state.containers = Dictionary(containers.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
            state.networks = networks
        }
    }

    // MARK: DockerEngine

    public func runningContainers() async throws -> [DockerContainer] {
        try state.withLock { state in
            state.calls.runningContainers += 1
            if let failure = state.listFailure { throw failure }
            return state.containers.values.filter(\.running).sorted { $0.name < $1.name }
        }
    }

    public func inspectContainer(id: String) async throws -> DockerContainer? {
        try state.withLock { state in
            state.calls.inspectContainer += 1
            if let failure = state.listFailure { throw failure }
            return state.containers[id]
        }
    }

    public func networks() async throws -> [DockerNetwork] {
        try state.withLock { state in
            state.calls.networks += 1
            if let failure = state.listFailure { throw failure }
            return state.networks
        }
    }

    public func events() async throws -> AsyncThrowingStream<DockerEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<DockerEvent, Error>.makeStream()
        let id = try state.withLock { state in
            state.calls.events += 1
            if let failure = state.eventsFailure { throw failure }
            state.nextStream += 1
            state.streams[state.nextStream] = continuation
            return state.nextStream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.streams.removeValue(forKey: id) }
        }
        return stream
    }

    // MARK: Setting the scene

    /// Replaces every container.
    public func setContainers(_ containers: [DockerContainer]) {
        state.withLock { $0.containers = Dictionary(containers.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last }) }
    }

    /// Adds a container, or replaces the one with its id.
    public func upsert(_ container: DockerContainer) {
        state.withLock { $0.containers[container.id] = container }
    }

    public func removeContainer(id: String) {
        state.withLock { _ = $0.containers.removeValue(forKey: id) }
    }

    public func setNetworks(_ networks: [DockerNetwork]) {
        state.withLock { $0.networks = networks }
    }

    /// Sends `event` to every stream open now.
    public func emit(_ event: DockerEvent) {
        for continuation in state.withLock({ Array($0.streams.values) }) { continuation.yield(event) }
    }

    /// Adds (or replaces) a running container and emits its `start` event, as dockerd does.
    public func start(_ container: DockerContainer) {
        var running = container
        running.running = true
        upsert(running)
        emit(DockerEvent(type: "container", action: "start", actorID: running.id, attributes: ["name": running.name]))
    }

    /// Marks a container stopped and emits its `die` event.
    public func stop(id: String) {
        let name = state.withLock { state -> String? in
            state.containers[id]?.running = false
            state.containers[id]?.pid = 0
            return state.containers[id]?.name
        }
        emit(DockerEvent(type: "container", action: "die", actorID: id, attributes: name.map { ["name": $0] } ?? [:]))
    }

    /// Ends every open stream by throwing `error`, as a dropped connection to dockerd does.
    public func breakStreams(with error: Error = DockerError(.streamEnded, "fake Docker: event stream broken")) {
        let streams = state.withLock { state in
            defer { state.streams.removeAll() }
            return Array(state.streams.values)
        }
        for continuation in streams { continuation.finish(throwing: error) }
    }

    /// While set, `runningContainers`, `inspectContainer` and `networks` throw it.
    public func failLists(with error: Error?) {
        state.withLock { $0.listFailure = error }
    }

    /// While set, `events()` throws it.
    public func failEvents(with error: Error?) {
        state.withLock { $0.eventsFailure = error }
    }

    // MARK: Looking

    public var calls: Calls { state.withLock { $0.calls } }

    /// Streams opened and neither broken nor dropped by their consumer.
    public var openStreamCount: Int { state.withLock { $0.streams.count } }

    /// Waits (polling, at most `timeout`) until `count` streams are open: a test emits only after
    /// the code under test has subscribed. Returns whether they are.
    public func waitForStreams(_ count: Int = 1, timeout: Duration = .seconds(5)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while openStreamCount < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}
