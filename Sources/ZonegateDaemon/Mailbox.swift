import Synchronization
import ZonegateDocker

/// What the reconciler has been asked to do and not yet done. Producers (Docker events, the
/// resync timer, the policy watcher, SIGHUP) add work at any time; the reconciler takes all of it
/// at once, so that work queued while it was busy is coalesced into one pass, with no fixed
/// debounce delay in front of the first.
final class Mailbox: Sendable {
    /// One pass's worth of work.
    struct Work: Sendable, Equatable {
        /// Containers to inspect again (an event named them).
        var containers: Set<String> = []
        /// Networks were created or removed: list them again.
        var networks = false
        /// List everything again and compare with the kernel itself (timer, reconnect, retry).
        var resync = false
        /// Read the policy directory again, with the reasons it was asked for.
        var reloadReasons: [String] = []
        /// Why this pass runs, for the log.
        var reasons: [String] = []
        /// A compile running off the reconciler has finished: apply its result.
        var compileFinished = false

        var isEmpty: Bool { containers.isEmpty && !networks && !resync && reloadReasons.isEmpty && !compileFinished }
    }

    private let pending = Mutex(Work())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func post(_ change: (inout Work) -> Void) {
        pending.withLock { change(&$0) }
        wake.yield()
    }

    /// Waits until there is work, then takes all of it; nil once the task is cancelled.
    func take() async -> Work? {
        for await _ in wakeups {
            let work = pending.withLock { pending in
                defer { pending = Work() }
                return pending
            }
            if !work.isEmpty { return work }
        }
        return nil
    }

    func finish() { wake.finish() }
}

extension Mailbox {
    /// Container and network events that change what zonegate must enforce; the rest (exec,
    /// attach, health checks, ...) are ignored, since `docker exec` alone sends three per call.
    func post(_ event: DockerEvent) {
        switch (event.type, event.action) {
        case ("container", "start"), ("container", "restart"), ("container", "die"), ("container", "stop"),
             ("container", "destroy"), ("container", "rename"):
            post { $0.containers.insert(event.actorID); $0.reasons.append("container \(event.actorID.prefix(12)) \(event.action)") }
        case ("network", "connect"), ("network", "disconnect"):
            guard let container = event.containerID else { return }
            post { $0.containers.insert(container); $0.reasons.append("container \(container.prefix(12)) network \(event.action)") }
        case ("network", "create"), ("network", "destroy"):
            post { $0.networks = true; $0.reasons.append("network \(event.attributes["name"] ?? event.actorID) \(event.action)") }
        default:
            return
        }
    }
}
