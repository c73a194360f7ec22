import Foundation
import Logging
import Synchronization
import ServiceLifecycle
import ZonegateDocker
import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset

/// How often the reconciler does what it does on its own.
public struct ReconcilerTiming: Sendable {
    /// The full comparison with Docker and the kernel that repairs drift (`--resync-interval`).
    public var resyncInterval: Duration
    /// How often the policy directory is looked at for changes.
    public var policyPollInterval: Duration
    /// The first wait before reconnecting a broken event stream; it doubles up to `maximumBackoff`.
    public var initialBackoff: Duration
    /// The longest wait before reconnecting, and the wait before retrying a pass that failed.
    public var maximumBackoff: Duration
    /// How often the end of a flood of denied flows is looked for, to report what was suppressed.
    public var suppressedFlowReportInterval: Duration

    public init(resyncInterval: Duration = .seconds(30), policyPollInterval: Duration = .seconds(1),
                initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(5),
                suppressedFlowReportInterval: Duration = .seconds(1)) {
        self.resyncInterval = resyncInterval
        self.policyPollInterval = policyPollInterval
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.suppressedFlowReportInterval = suppressedFlowReportInterval
    }
}

/// Where the reconciler reads and writes: Docker, the kernel (through the enforcer), the policy
/// directory and the host. Each is a value or closure so that tests give fakes.
public struct ReconcilerEnvironment: Sendable {
    public var engine: any DockerEngine
    public var enforcer: Enforcer
    /// Reads and parses the policy directory (throws `PolicyError` for an invalid policy).
    public var loadPolicy: @Sendable () throws -> Policy
    /// A cheap summary of the policy directory (names, sizes, times) that changes when a file does.
    public var policyFingerprint: @Sendable () -> String
    /// A resolver of the host side of containers' veths for one inventory build
    /// (`VethResolver().resolver()` in production).
    public var bridgePorts: @Sendable () -> BridgePortResolver
    /// Makes bridged traffic reach zonegate's rules; returns what it changed, or why it could
    /// not, to log as a warning.
    public var prepareHost: @Sendable () throws -> String?
    /// The host's own addresses, which the policy calls `host`.
    public var hostAddresses: @Sendable () -> Set<IPAddress>
    /// The packets the ruleset logs as denied or audited (NFLOG), if they can be read.
    public var flowLog: AsyncThrowingStream<FlowLogRecord, Error>?
    /// Compiles the policy applied to the containers; runs on a thread of its own, off the
    /// reconciler, in a task that is cancelled when a newer policy or shutdown makes it moot
    /// (`CompiledRuleset.cancellable` in production, which stops between batches; tests make it slow).
    public var compile: @Sendable (PolicyEvaluator) async throws -> CompiledRuleset

    public init(engine: any DockerEngine, enforcer: Enforcer, loadPolicy: @escaping @Sendable () throws -> Policy,
                policyFingerprint: @escaping @Sendable () -> String,
                bridgePorts: @escaping @Sendable () -> BridgePortResolver,
                prepareHost: @escaping @Sendable () throws -> String? = { nil },
                hostAddresses: @escaping @Sendable () -> Set<IPAddress> = { [] },
                flowLog: AsyncThrowingStream<FlowLogRecord, Error>? = nil,
                compile: @escaping @Sendable (PolicyEvaluator) async throws -> CompiledRuleset = { try CompiledRuleset.cancellable($0) }) {
        self.engine = engine
        self.enforcer = enforcer
        self.loadPolicy = loadPolicy
        self.policyFingerprint = policyFingerprint
        self.bridgePorts = bridgePorts
        self.prepareHost = prepareHost
        self.hostAddresses = hostAddresses
        self.flowLog = flowLog
        self.compile = compile
    }
}

/// Why `zonegate run` could not start; the command turns it into cli.md's exit code.
public struct StartupFailure: Error, CustomStringConvertible {
    public enum Kind: Sendable { case invalidPolicy, environment }
    public var kind: Kind
    public var description: String
}

/// `zonegate run`: keeps the kernel in step with the policy and the containers. On start it takes
/// over whatever zonegate tables exist and replaces them in one transaction; then each Docker
/// event becomes one small transaction (set elements only), a timer compares everything with
/// Docker and the kernel and repairs drift, and a changed policy directory (or SIGHUP) reloads the
/// policy, keeping the last good one when the new one is invalid. It stops on graceful shutdown,
/// leaving its rules in the kernel.
///
/// Its timers, backoffs and retries run on `clock` (`ContinuousClock` in production), so that
/// tests move time by hand instead of waiting for it.
///
/// A full compile (start, reload, resync, a change the per-container path cannot take) runs on a
/// thread of its own, never on the reconciler: however long it takes, events for containers the
/// enforced policy can classify keep being applied with that policy, and shutdown is not held
/// up (an unfinished compile is abandoned; the kernel keeps the last rules applied). A newer
/// policy cancels and replaces a compile of an older one; a compile asked for by Docker changes
/// while one runs waits for it and then follows, so that a stream of changes cannot starve it.
public actor Reconciler<C: Clock<Duration>>: Service {
    private let environment: ReconcilerEnvironment
    private let timing: ReconcilerTiming
    private let clock: C
    private let logger: Logger
    private let mailbox = Mailbox()

    /// The policy in force: the one the last full compile applied (nil until the first one).
    private var policy: Policy?
    /// The newest valid policy read: the one in force, or one being compiled.
    private var latestPolicy: Policy?
    /// The full compile running off the reconciler, if any.
    private var compiling: PendingCompile?
    /// A full compile asked for while one ran, without superseding it: started once it is applied.
    private var followUp: (reasons: [String], takeOver: Bool)?
    private var compileGeneration = 0
    private let finishedCompiles = FinishedCompiles()
    /// The resync waiting to retry what failed, if any.
    private var retry: Task<Void, Never>?
    /// Superseded compiles still running on their threads, by generation: their end is logged.
    private var abandoned: [Int: PendingCompile] = [:]
    /// The policy directory's fingerprint taken just before the policy was last read: a change
    /// made at any moment after that read is noticed.
    private var policyFingerprint = ""
    private var containers: [String: DockerContainer] = [:]
    private var networks: [DockerNetwork] = []
    /// Resolved bridge ports by container id and network id: a veth lasts as long as the
    /// container's run, so it is resolved once per start, not on every pass.
    private var bridgePortCache: [String: [String: String]] = [:]
    /// What was last enforced: the zones of each classified container, and the unenforced
    /// attachments already reported, so that the log names what changed.
    private var classified: [String: ClassifiedContainer] = [:]
    private var reportedUnenforced: Set<UnenforcedAttachment> = []
    private var ready = false
    /// The policy applied to the containers as last enforced: what names the ends of a denied flow.
    private var evaluator: PolicyEvaluator?
    private var deniedFlowLimiter = EventRateLimiter<C.Instant>()
    /// Flows already reported, and when: a dropped TCP SYN never confirms its conntrack entry,
    /// so each retransmission is "new" again and logged again by the kernel; one attempt is
    /// one event.
    private var recentDeniedFlows: [LoggedFlow: C.Instant] = [:]
    static var repeatedFlowWindow: Duration { .seconds(10) }

    /// A container as last enforced, for the log.
    struct ClassifiedContainer: Equatable {
        var name: String
        var zones: [String]
        var addresses: [IPAddress]
    }

    public init(environment: ReconcilerEnvironment, timing: ReconcilerTiming = ReconcilerTiming(), clock: C, logger: Logger) {
        self.environment = environment
        self.timing = timing
        self.clock = clock
        self.logger = logger
    }

    public init(environment: ReconcilerEnvironment, timing: ReconcilerTiming = ReconcilerTiming(), logger: Logger) where C == ContinuousClock {
        self.init(environment: environment, timing: timing, clock: ContinuousClock(), logger: logger)
    }

    /// Asks for the policy to be read again (SIGHUP).
    public nonisolated func requestReload(reason: String) {
        mailbox.post { $0.reloadReasons.append(reason) }
    }

    /// Asks for a full comparison with Docker and the kernel now.
    public nonisolated func requestResync(reason: String) {
        mailbox.post { $0.resync = true; $0.reasons.append(reason) }
    }

    public func run() async throws {
        defer {
            compiling?.task.cancel()
            retry?.cancel()
        }
        try await cancelWhenGracefulShutdown { [self] in
            let events = try await start()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.watchEvents(first: events) }
                group.addTask { await self.tick(every: self.timing.resyncInterval) { self.requestResync(reason: "periodic resync") } }
                group.addTask { await self.watchPolicyDirectory() }
                group.addTask { try await self.reconcileLoop() }
                if let flowLog = self.environment.flowLog {
                    group.addTask { await self.logDeniedFlows(flowLog) }
                    group.addTask { await self.tick(every: self.timing.suppressedFlowReportInterval) { await self.reportSuppressedFlows() } }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        mailbox.finish()
        logger.info("stopped; zonegate's rules stay in the kernel until `zonegate teardown`")
    }

    // MARK: - Start

    /// Loads the policy, subscribes to Docker's events (before listing, so nothing is missed),
    /// lists every container and network, and starts the compile that replaces the kernel's
    /// zonegate tables in one transaction; "ready" is logged once it is applied.
    private func start() async throws -> AsyncThrowingStream<DockerEvent, Error> {
        policyFingerprint = environment.policyFingerprint()
        do {
            let loaded = try loadValidPolicy()
            latestPolicy = loaded.policy
            logCDERules(loaded.cde)
        } catch let error as PolicyError {
            throw StartupFailure(kind: .invalidPolicy, description: "policy rejected, nothing changed in the kernel:\n\(error)")
        } catch {
            throw StartupFailure(kind: .environment, description: "cannot read the policy: \(error)")
        }
        do {
            // What it changed, or why bridged traffic escapes: worth a warning either way.
            if let change = try environment.prepareHost() { logger.warning("\(change)") }
        } catch {
            throw StartupFailure(kind: .environment, description: "cannot prepare the host: \(error)")
        }
        let events: AsyncThrowingStream<DockerEvent, Error>
        do {
            events = try await environment.engine.events()
            try await listEverything()
        } catch {
            throw StartupFailure(kind: .environment, description: "cannot read Docker: \(error)")
        }
        startCompile(reasons: ["start: taking over zonegate's tables"], takeOver: true)
        return events
    }

    // MARK: - Producers

    /// Follows Docker's event stream; when it breaks, reconnects with backoff and asks for a full
    /// resync, since events may have been missed meanwhile.
    private func watchEvents(first: AsyncThrowingStream<DockerEvent, Error>) async {
        var stream: AsyncThrowingStream<DockerEvent, Error>? = first
        var backoff = timing.initialBackoff
        while !Task.isCancelled {
            do {
                if stream == nil {
                    stream = try await environment.engine.events()
                    logger.notice("Docker event stream reconnected; resynchronising")
                    requestResync(reason: "event stream reconnected")
                    backoff = timing.initialBackoff
                }
                for try await event in stream! { mailbox.post(event) }
                if Task.isCancelled { return }
                logger.warning("Docker event stream ended; reconnecting")
            } catch {
                if Task.isCancelled { return }
                logger.warning("Docker event stream broke; reconnecting", metadata: [
                    "error": "\(error)", "retry_in_ms": .milliseconds(backoff),
                ])
            }
            stream = nil
            try? await clock.sleep(for: backoff)
            backoff = min(backoff * 2, timing.maximumBackoff)
        }
    }

    private nonisolated func tick(every interval: Duration, _ action: @Sendable () async -> Void) async {
        while (try? await clock.sleep(for: interval)) != nil { await action() }
    }

    private func watchPolicyDirectory() async {
        while (try? await clock.sleep(for: timing.policyPollInterval)) != nil {
            let now = environment.policyFingerprint()
            if now != policyFingerprint {
                policyFingerprint = now
                requestReload(reason: "policy directory changed")
            }
        }
    }

    // MARK: - The loop

    private func reconcileLoop() async throws {
        while let work = await mailbox.take() {
            try await perform(work)
        }
    }

    private func perform(_ work: Mailbox.Work) async throws {
        if work.compileFinished { try await applyFinishedCompile() }
        let policyChanged = !work.reloadReasons.isEmpty && reloadPolicy(because: work.reloadReasons)
        let dockerChanged = !work.containers.isEmpty || work.networks || work.resync
        guard policyChanged || dockerChanged else { return }
        await refreshAndEnforce(work, reasons: (policyChanged ? work.reloadReasons : []) + work.reasons,
                                policyChanged: policyChanged)
    }

    /// Reads the policy again; true when it is new and valid. An invalid one is logged with every
    /// problem's file:line:column and the last good policy stays enforced.
    private func reloadPolicy(because reasons: [String]) -> Bool {
        let loaded: Policy
        let cde: CDEJustification
        do {
            (loaded, cde) = try loadValidPolicy()
        } catch let error as PolicyError {
            for diagnostic in error.diagnostics {
                logger.error("\(diagnostic)", metadata: ["location": "\(diagnostic.location)"])
            }
            logger.error("policy rejected; still enforcing the last good policy", metadata: [
                "errors": .number(error.diagnostics.count), "policy": "\(policy?.digest ?? "none")",
                "action": "fix the files named above; zonegate reloads when they change",
            ])
            return false
        } catch {
            logger.error("cannot read the policy; still enforcing the last good policy", metadata: ["error": "\(error)"])
            return false
        }
        guard loaded.digest != latestPolicy?.digest else {
            logger.info("policy unchanged", metadata: ["policy": "\(loaded.digest)", "reason": "\(reasons.joined(separator: "; "))"])
            return false
        }
        logger.notice("policy loaded", metadata: [
            "policy": "\(loaded.digest)", "previous": "\(latestPolicy?.digest ?? "none")", "reason": "\(reasons.joined(separator: "; "))",
            "zones": .number(loaded.zones.count), "rules": .number(loaded.rules.count),
        ])
        latestPolicy = loaded
        logCDERules(cde)
        return true
    }

    /// The policy read and validated whole: parsed, and every rule that can reach a `pci: cde`
    /// zone justified (policy.md); throws `PolicyError` for either.
    private func loadValidPolicy() throws -> (policy: Policy, cde: CDEJustification) {
        let policy = try environment.loadPolicy()
        let cde = CDEJustification(policy: policy)
        try cde.validate()
        return (policy, cde)
    }

    /// Each rule that can allow flows into or out of a CDE zone, once per policy loaded, with who
    /// owns it and why it is needed: the log shows what the CDE is open to (PCI DSS 1.2.5).
    private func logCDERules(_ cde: CDEJustification) {
        for (rule, reach) in cde.reachingRules {
            var metadata: Logger.Metadata = [
                "rule": "\(rule.name)", "cde_zones": .list(reach.cdeZones), "direction": "\(reach.direction)", "why": "\(reach.why)",
                "owner": "\(rule.annotations.owner ?? "")", "justification": "\(rule.annotations.justification ?? "")",
                "ports": "\(rule.ports.map { $0.map(\.description).joined(separator: ", ") } ?? "all")",
            ]
            if let ticket = rule.annotations.ticket { metadata["ticket"] = "\(ticket)" }
            if let location = rule.location { metadata["location"] = "\(location)" }
            logger.info("rule reaches the CDE", metadata: metadata)
        }
    }

    /// Reads what the work names from Docker, then enforces: the containers it names alone when
    /// nothing else changed and they can be compiled alone (with the policy in force, also while
    /// a full compile runs), a full compile otherwise.
    private func refreshAndEnforce(_ work: Mailbox.Work, reasons: [String], policyChanged: Bool) async {
        var previousNames: [String: String] = [:]
        do {
            if work.resync {
                try await listEverything()
            } else {
                if work.networks { networks = try await environment.engine.networks() }
                for id in work.containers.sorted() {
                    previousNames[id] = containers[id]?.name
                    let inspected = try await environment.engine.inspectContainer(id: id)
                    if let inspected, inspected.running { containers[id] = inspected } else { containers[id] = nil }
                    bridgePortCache[id] = nil
                }
            }
        } catch {
            logger.error("cannot read Docker; enforcement stays as it was, retrying", metadata: [
                "error": "\(error)", "retry_in_ms": .milliseconds(timing.maximumBackoff),
            ])
            retryLater()
            return
        }
        // The compile running now was built before these changes: they are applied again on top of it.
        compiling?.changedSince.formUnion(work.containers)
        if policyChanged || work.networks || work.resync {
            startCompile(reasons: reasons, takeOver: work.resync, supersede: policyChanged)
            return
        }
        do {
            if try !enforce(changed: work.containers, previousNames: previousNames, reasons: reasons) {
                startCompile(reasons: reasons, takeOver: false)
            }
        } catch let failure as IncrementalUpdateFailure {
            logger.error("\(failure)", metadata: ["reason": "\(reasons.joined(separator: "; "))"])
            startCompile(reasons: reasons, takeOver: false)
        } catch {
            logger.error("the kernel refused the change; the previous rules stay in force, retrying", metadata: [
                "error": "\(error)", "retry_in_ms": .milliseconds(timing.maximumBackoff),
            ])
            retryLater()
        }
    }

    // MARK: - Full compiles, off the reconciler

    /// A full compile running on its own thread, and what to do with its result.
    private struct PendingCompile {
        var generation: Int
        var task: Task<Void, Never>
        var policy: Policy
        var reasons: [String]
        /// Compare with the kernel itself (start, resync), not with what was last written.
        var takeOver: Bool
        var started: C.Instant
        /// Containers whose bridge port was not found when the inventory was built.
        var portFailures: [String: PortFailure]
        /// Containers that changed after the inventory was built: applied again once it is.
        var changedSince: Set<String> = []
    }

    /// Starts a full compile of the newest policy for the containers as they are now. While one
    /// runs, a newer policy (`supersede`) cancels it and takes its place, keeping what it was
    /// asked for; anything else waits for it and follows.
    private func startCompile(reasons: [String], takeOver: Bool, supersede: Bool = false) {
        var reasons = reasons, takeOver = takeOver
        if let running = compiling {
            guard supersede else {
                followUp = ((followUp?.reasons ?? []) + reasons, (followUp?.takeOver ?? false) || takeOver)
                return
            }
            // Abandoned, not awaited: a compile that ignores its cancellation ends on its own thread.
            running.task.cancel()
            compiling = nil
            abandoned[running.generation] = running
            logger.info("compile superseded by a newer policy", metadata: ["policy": "\(running.policy.digest)"])
            reasons = running.reasons + reasons
            takeOver = takeOver || running.takeOver
        }
        if let waiting = followUp {
            reasons = waiting.reasons + reasons
            takeOver = takeOver || waiting.takeOver
            followUp = nil
        }
        guard let policy = latestPolicy else { return }
        compileGeneration += 1
        let generation = compileGeneration
        var portFailures: [String: PortFailure] = [:]
        let inventory = inventory(of: Array(containers.values), policy) { portFailures[$0.id] = PortFailure(container: $0, error: $1) }
        let compile = environment.compile
        let results = finishedCompiles, mailbox = self.mailbox
        let thread = DedicatedThread(name: "zonegate-compile-\(generation)", qualityOfService: .utility)
        let task = Task.detached(executorPreference: thread, priority: .utility) {
            defer { thread.finishWhenIdle() }
            let outcome: Result<CompiledPass, Error>
            do {
                let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
                // A coarse cancellation point between the two long steps.
                try Task.checkCancellation()
                let compiled = try await compile(evaluator)
                try Task.checkCancellation()
                outcome = .success(CompiledPass(evaluator: evaluator, compiled: compiled))
            } catch {
                outcome = .failure(error)
            }
            results.store(generation, outcome)
            mailbox.post { $0.compileFinished = true }
        }
        compiling = PendingCompile(generation: generation, task: task, policy: policy, reasons: reasons, takeOver: takeOver,
                                   started: clock.now, portFailures: portFailures)
    }

    /// Applies the result of the compile in flight, if it has finished: the kernel then holds the
    /// policy it compiled; containers changed meanwhile are applied on top, and a compile asked
    /// for meanwhile starts. Before "ready", a kernel refusal ends the run (cli.md: exit 2).
    private func applyFinishedCompile() async throws {
        let finished = finishedCompiles.takeAll()
        for generation in finished.keys.sorted() {
            // Its thread is free again; its result is moot.
            guard let gone = abandoned.removeValue(forKey: generation) else { continue }
            logger.debug("superseded compile ended; its result is dropped", metadata: [
                "policy": "\(gone.policy.digest)", "duration_ms": .milliseconds(gone.started.duration(to: clock.now)),
            ])
        }
        guard let pending = compiling, let outcome = finished[pending.generation] else { return }
        compiling = nil
        let pass: CompiledPass
        switch outcome {
        case .success(let compiled):
            pass = compiled
        case .failure(let error):
            if !(error is CancellationError) {
                logger.error("compile failed; the previous rules stay in force, retrying", metadata: ["error": "\(error)"])
                retryLater()
            }
            startFollowUp()
            return
        }
        if pending.takeOver { environment.enforcer.resync() }
        let report: EnforcementReport
        do {
            report = try environment.enforcer.enforce(pass.compiled, under: pass.evaluator)
        } catch {
            guard ready else {
                throw StartupFailure(kind: .environment, description: "cannot program nftables: \(error); run as root or with CAP_NET_ADMIN")
            }
            logger.error("the kernel refused the change; the previous rules stay in force, retrying", metadata: [
                "error": "\(error)", "retry_in_ms": .milliseconds(timing.maximumBackoff),
            ])
            retryLater()
            startFollowUp()
            return
        }
        policy = pending.policy
        evaluator = pass.evaluator
        var entries: [String: ClassifiedContainer?] = Dictionary(uniqueKeysWithValues: classified.keys.map { ($0, nil) })
        for (key, entry) in Self.classification(pass.evaluator) { entries[key] = entry }
        logClassification(entries)
        await logUnenforced(Set(pass.evaluator.inventory.unenforced), portFailures: pending.portFailures)
        logApplied(report, reasons: pending.reasons, started: pending.started, drift: ready ? report.drift : nil)
        if !ready {
            ready = true
            logger.info("ready", metadata: [
                "policy": "\(pending.policy.digest)", "containers": .number(classified.count),
                "duration_ms": .milliseconds(pending.started.duration(to: clock.now)),
            ])
        }
        // Changes that came while it compiled were applied with the policy then in force; the
        // new one judges them again.
        let changed = pending.changedSince.filter { containers[$0] != nil || classified[$0] != nil }
        if !changed.isEmpty {
            mailbox.post { $0.containers.formUnion(changed); $0.reasons.append("changed while the policy compiled") }
        }
        startFollowUp()
    }

    private func startFollowUp() {
        guard compiling == nil, let waiting = followUp else { return }
        followUp = nil
        startCompile(reasons: waiting.reasons, takeOver: waiting.takeOver)
    }

    /// A full resync after `maximumBackoff`. One covers every failure before it, so a retry
    /// already waiting is not doubled; shutdown cancels it.
    private func retryLater() {
        guard retry == nil else { return }
        retry = Task { [mailbox, clock, timing] in
            guard (try? await clock.sleep(for: timing.maximumBackoff)) != nil else { return }
            retry = nil
            mailbox.post { $0.resync = true; $0.reasons.append("retry after an error") }
        }
    }

    private func listEverything() async throws {
        let engine = environment.engine
        async let listedNetworks = engine.networks()
        let running = try await engine.runningContainers()
        networks = try await listedNetworks
        containers = Dictionary(running.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        bridgePortCache = [:]
    }

    /// Containers that started, stopped or changed, compiled alone, when nothing else changed;
    /// false when they need the full compile: one shares another's network namespace, or has an
    /// attachment zonegate cannot enforce, or `Enforcer` says so (a new zone combination,
    /// published ports, a new bridge). Nothing else is built: the cost follows the containers
    /// named, not the number on the host.
    private func enforce(changed ids: Set<String>, previousNames: [String: String], reasons: [String]) throws -> Bool {
        guard let policy, ready else { return false }
        let started = clock.now
        let names = Set(previousNames.values).union(ids.compactMap { containers[$0]?.name })
        guard !reportedUnenforced.contains(where: { names.contains($0.container) }) else { return false }
        var changes: [ContainerChange] = []
        for id in ids.sorted() {
            let docker = containers[id].map { [$0] } ?? []
            guard !docker.contains(where: { $0.networkMode.hasPrefix("container:") }) else { return false }
            var failure: PortFailure?
            let built = inventory(of: docker, policy) { failure = PortFailure(container: $0, error: $1) }
            if let failure, (failure.error as? VethResolver.Failure)?.containerGone == true {
                // Its process ended before its veth could be found (`docker run --rm ... true`):
                // gone, not unenforced, and no reason for a full compile. Its die event follows.
                logger.debug("container gone before it could be enforced", metadata: [
                    "container": "\(failure.container.name)", "id": "\(id.prefix(12))", "detail": "\(failure.error)",
                ])
                containers[id] = nil
                changes.append(ContainerChange(key: id, container: nil))
                continue
            }
            guard built.unenforced.isEmpty else { return false }
            changes.append(ContainerChange(key: id, container: built.containers.first))
        }
        guard let report = try environment.enforcer.enforce(changes) else { return false }
        evaluator = nil  // rebuilt when a denied flow needs it
        let present = PolicyEvaluator(policy: policy, inventory: Inventory(containers: changes.compactMap(\.container)))
        var entries: [String: ClassifiedContainer?] = Dictionary(changes.map { ($0.key, nil) }, uniquingKeysWith: { first, _ in first })
        for (key, entry) in Self.classification(present) { entries[key] = entry }
        logClassification(entries)
        logApplied(report, reasons: reasons, started: started, drift: nil)
        return true
    }

    /// Each container of the evaluator's inventory as classified, by key.
    private static func classification(_ evaluator: PolicyEvaluator) -> [String: ClassifiedContainer] {
        Dictionary(evaluator.inventory.containers.enumerated().map { index, container in
            (container.id ?? container.name,
             ClassifiedContainer(name: container.name, zones: evaluator.zoneNames(ofContainer: index), addresses: container.addresses))
        }, uniquingKeysWith: { first, _ in first })
    }

    /// The inventory of these containers under the policy's managed networks; `failed` hears of
    /// each container whose bridge port was not found.
    private func inventory(of containers: [DockerContainer], _ policy: Policy,
                           failed: (DockerContainer, Error) -> Void = { _, _ in }) -> Inventory {
        let resolve = cachedBridgePorts()
        return DockerInventory.build(containers: containers, networks: networks, managedNetworks: policy.defaults.networks,
                                     bridgePort: { container, endpoint, bridge in
                                         do {
                                             return try resolve(container, endpoint, bridge)
                                         } catch {
                                             failed(container, error)
                                             throw error
                                         }
                                     })
    }

    /// The policy applied to the containers as they are now: built again only after a change.
    private func currentEvaluator() -> PolicyEvaluator? {
        if evaluator == nil, let policy { evaluator = PolicyEvaluator(policy: policy, inventory: inventory(of: Array(containers.values), policy)) }
        return evaluator
    }

    /// Logs what a pass changed: as drift (a warning naming the operations that undid it) when the
    /// kernel held what zonegate had not written, as applied otherwise.
    private func logApplied(_ report: EnforcementReport, reasons: [String], started: C.Instant, drift: Transaction?) {
        guard !report.transaction.isEmpty, let policy else { return }
        var metadata: Logger.Metadata = [
            "reason": "\(reasons.joined(separator: "; "))", "change": "\(summary(of: report.transaction))",
            "duration_ms": .milliseconds(started.duration(to: clock.now)), "policy": "\(policy.digest)",
        ]
        if !report.endedConnections.isEmpty { metadata["ended_connections"] = .number(report.endedConnections.count) }
        if let drift {
            metadata["operations_nft"] = "\(drift.description)"
            logger.warning("drift repaired: zonegate's tables differed from the policy and containers", metadata: metadata)
        } else {
            logger.info("applied", metadata: metadata)
        }
    }

    /// The bridge-port resolver for one build, answering from the cache where it can.
    private func cachedBridgePorts() -> BridgePortResolver {
        var resolver: BridgePortResolver?
        return { [self] container, endpoint, bridge in
            if let port = bridgePortCache[container.id]?[endpoint.networkID] { return port }
            if resolver == nil { resolver = environment.bridgePorts() }
            let port = try resolver!(container, endpoint, bridge)
            bridgePortCache[container.id, default: [:]][endpoint.networkID] = port
            return port
        }
    }

    // MARK: - Denied flows (policy.md step 7)

    /// One event per denied (or audited) new flow the kernel logs, naming both ends as the policy
    /// in force sees them; beyond the rate limit, a count of suppressed events instead.
    private func logDeniedFlows(_ records: AsyncThrowingStream<FlowLogRecord, Error>) async {
        do {
            for try await record in records {
                switch record {
                case .lost(let count):
                    let event = DeniedFlowEvent.lost(count)
                    logger.warning("\(event.message)", metadata: event.metadata)
                case .flow(let flow):
                    let now = clock.now
                    guard isFirstReport(of: flow, at: now) else { continue }
                    let admission = deniedFlowLimiter.admit(at: now)
                    if let suppressed = admission.suppressedSummary {
                        let event = DeniedFlowEvent.suppressed(suppressed)
                        logger.warning("\(event.message)", metadata: event.metadata)
                    }
                    guard admission.log, let evaluator = currentEvaluator() else { continue }
                    let event = DeniedFlowEvent.make(flow, evaluator: evaluator, hostAddresses: environment.hostAddresses())
                    logger.notice("\(event.message)", metadata: event.metadata)
                }
            }
        } catch {
            logger.error("cannot read denied-flow events any more; enforcement goes on without them", metadata: ["error": "\(error)"])
        }
    }

    private func isFirstReport(of flow: LoggedFlow, at now: C.Instant) -> Bool {
        if let seen = recentDeniedFlows[flow], seen.duration(to: now) < Self.repeatedFlowWindow { return false }
        if recentDeniedFlows.count >= 4096 { recentDeniedFlows = recentDeniedFlows.filter { $0.value.duration(to: now) < Self.repeatedFlowWindow } }
        recentDeniedFlows[flow] = now
        return true
    }

    /// The end of a flood is reported without waiting for the next event.
    private func reportSuppressedFlows() {
        if let suppressed = deniedFlowLimiter.summary(at: clock.now) {
            let event = DeniedFlowEvent.suppressed(suppressed)
            logger.warning("\(event.message)", metadata: event.metadata)
        }
    }

    /// Logs each container classified, reclassified or gone (nil), by key, and records it.
    private func logClassification(_ entries: [String: ClassifiedContainer?]) {
        let name = { (id: String) in entries[id]??.name ?? self.classified[id]?.name ?? id }
        for id in entries.keys.sorted(by: { name($0) < name($1) }) {
            let before = classified[id]
            guard let entry = entries[id]! else {
                if let before { logger.info("container gone", metadata: ["container": "\(before.name)", "id": "\(id.prefix(12))"]) }
                classified[id] = nil
                continue
            }
            guard before != entry else { continue }
            logger.info(before == nil ? "container classified" : "container reclassified", metadata: [
                "container": "\(entry.name)", "id": "\(id.prefix(12))",
                "zones": .array(entry.zones.map { .string($0) }),
                "addresses": .array(entry.addresses.map { .string($0.description) }),
            ])
            classified[id] = entry
        }
    }

    /// Logs each attachment zonegate cannot enforce on, once. A container whose bridge port was
    /// not found because it was already gone (a `docker run --rm ... true` that ended between its
    /// event and the look into it) is not "not enforced": Docker is asked again, and one that no
    /// longer runs, or runs another process, is noted at debug level; its die event follows.
    private func logUnenforced(_ unenforced: Set<UnenforcedAttachment>, portFailures: [String: PortFailure]) async {
        let fresh = unenforced.subtracting(reportedUnenforced)
        var gone: [String: String] = [:]  // name -> why
        for (id, failure) in portFailures where fresh.contains(where: { $0.container == failure.container.name }) {
            let why = "\(failure.error)"
            // Its die event came meanwhile, or the resolver saw its process end.
            if containers[id]?.pid != failure.container.pid || (failure.error as? VethResolver.Failure)?.containerGone == true {
                gone[failure.container.name] = why
                continue
            }
            // Another failure may still be a race with the container's end: Docker says.
            let now: DockerContainer?
            do {
                now = try await environment.engine.inspectContainer(id: id)
            } catch {
                continue  // Docker cannot say: the warning stands
            }
            if now.map({ !$0.running || $0.pid != failure.container.pid }) ?? true { gone[failure.container.name] = why }
        }
        for attachment in fresh.sorted(by: { $0.description < $1.description }) {
            if let why = gone[attachment.container] {
                logger.debug("container gone before it could be enforced", metadata: [
                    "container": "\(attachment.container)", "network": "\(attachment.network)", "detail": "\(why)",
                ])
                continue
            }
            logger.warning("container not enforced", metadata: [
                "container": "\(attachment.container)", "network": "\(attachment.network)", "reason": "\(attachment.reason)",
            ])
        }
        reportedUnenforced = unenforced
    }
}

/// `+3 -1 elements, 2 rules, 1 chain`: what a transaction changes, for the log.
func summary(of transaction: Transaction) -> String {
    var added = 0, removed = 0, rules = 0, chains = 0, sets = 0, tables = 0
    for operation in transaction.operations {
        switch operation {
        case .addElements(_, _, let elements): added += elements.count
        case .deleteElements(_, _, let elements): removed += elements.count
        case .addRule: rules += 1
        case .addChain, .flushChain, .deleteChain: chains += 1
        case .addSet, .deleteSet, .flushSet: sets += 1
        case .addTable, .deleteTable: tables += 1
        }
    }
    var parts = ["+\(added) -\(removed) elements"]
    for (count, noun) in [(rules, "rule"), (chains, "chain"), (sets, "set"), (tables, "table")] where count > 0 {
        parts.append("\(count) \(noun)\(count == 1 ? "" : "s")")
    }
    return parts.joined(separator: ", ")
}

/// A container whose bridge port was not found, as it was then, and why.
struct PortFailure {
    var container: DockerContainer
    var error: Error
}

/// A compile's result: the evaluator it was built from and the compiled ruleset.
struct CompiledPass: Sendable {
    var evaluator: PolicyEvaluator
    var compiled: CompiledRuleset
}

/// Results of compiles, by generation, handed from their threads to the reconciler.
final class FinishedCompiles: Sendable {
    private let results = Mutex<[Int: Result<CompiledPass, Error>]>([:])

    func store(_ generation: Int, _ outcome: Result<CompiledPass, Error>) {
        results.withLock { $0[generation] = outcome }
    }

    /// The results stored since the last call, by generation.
    func takeAll() -> [Int: Result<CompiledPass, Error>] {
        results.withLock { results in
            defer { results = [:] }
            return results
        }
    }
}
