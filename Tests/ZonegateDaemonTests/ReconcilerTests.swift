import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import ZonegateDaemon
import ZonegateDocker
import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset
import ZonegateTesting

/// A value shared between a test and the closures it hands the reconciler.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}

/// The reconciler against a fake Docker engine, a fake dataplane and a clock the test moves: what
/// reaches the "kernel", in how many transactions, and what the log says.
@Suite struct ReconcilerTests {
    static let policyText = """
        zones:
          - name: web
          - name: api
        rules:
          - {name: web-to-api, from: web, to: api, ports: [8080/tcp]}
        """
    static let bridge = DockerNetwork(id: "n1", name: "bridge", driver: "bridge", bridgeNameOption: "docker0")

    static func container(_ name: String, zone: String?, host: UInt8) -> DockerContainer {
        DockerContainer(id: "id-\(name)", name: name, labels: zone.map { ["zonegate.zone": $0] } ?? [:], running: true, pid: 100 + Int32(host),
                        networkMode: "bridge",
                        endpoints: [DockerEndpoint(networkID: "n1", networkName: "bridge", ipv4: IPAddress("172.17.0.\(host)"), ipv6: nil,
                                                   macAddress: "02:42:ac:11:00:\(String(host, radix: 16))")])
    }

    /// What the harness's reconciler waits for, on its clock.
    static let timing = ReconcilerTiming(resyncInterval: .seconds(3600))

    /// One reconciler with its fakes, running in the background until `stop()`.
    final class Harness: Sendable {
        let engine: FakeDockerEngine
        let dataplane: FakeDataplane
        let policyText: Locked<String>
        let lines = Locked<[String]>([])
        /// The reconciler's clock: its timers fire only when the test advances it.
        let clock = ManualClock()
        let reconciler: Reconciler<ManualClock>
        private let task = Locked<Task<Void, Error>?>(nil)

        /// Stands for the kernel's NFLOG of denied flows.
        let flowLog: AsyncThrowingStream<FlowLogRecord, Error>.Continuation

        init(containers: [DockerContainer], initial: Ruleset = Ruleset(), policy: String = ReconcilerTests.policyText,
             bridgePorts: @escaping @Sendable (DockerContainer) throws -> String = { "veth" + $0.name },
             compile: @escaping @Sendable (PolicyEvaluator) async throws -> CompiledRuleset = { CompiledRuleset($0) }) {
            let (flowRecords, flowLog) = AsyncThrowingStream.makeStream(of: FlowLogRecord.self, throwing: Error.self)
            self.flowLog = flowLog
            engine = FakeDockerEngine(containers: containers, networks: [ReconcilerTests.bridge])
            dataplane = FakeDataplane(initial)
            policyText = Locked(policy)
            let logger = Logger(label: "test") { [lines] _ in
                var handler = LineLogHandler(format: .json) { line in lines.withLock { $0.append(line) } }
                handler.logLevel = .debug
                return handler
            }
            let environment = ReconcilerEnvironment(
                engine: engine, enforcer: Enforcer(dataplane: dataplane, tracker: nil, hostAddresses: { [] }),
                loadPolicy: { [policyText] in try PolicyParser.parse([PolicyFile(name: "p.yaml", text: policyText.withLock { $0 })]) },
                policyFingerprint: { [policyText] in policyText.withLock { $0 } },
                bridgePorts: { { container, _, _ in try bridgePorts(container) } },
                flowLog: flowRecords, compile: compile)
            reconciler = Reconciler(environment: environment, timing: ReconcilerTests.timing, clock: clock, logger: logger)
        }

        /// Advances the reconciler's clock once `sleepers` tasks sleep on it, so that the advance
        /// reaches each of them: when idle, its three timers (resync, policy poll, suppressed-flow
        /// report); one more for each backoff or retry under way.
        func advance(by duration: Duration, sleepers: Int = 3) async -> Bool {
            guard await clock.waitForSleepers(sleepers) else { return false }
            clock.advance(by: duration)
            return true
        }

        func start() {
            let reconciler = self.reconciler
            task.withLock { $0 = Task { try await reconciler.run() } }
        }

        /// Cancels the run and returns how it ended.
        func stop() async -> Result<Void, Error> {
            guard let running = task.withLock({ $0 }) else { return .success(()) }
            running.cancel()
            return await running.result
        }

        /// The log entries so far, decoded.
        var entries: [[String: Any]] {
            lines.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func messages(_ message: String) -> [[String: Any]] { entries.filter { $0["message"] as? String == message } }

        /// What the dataplane should hold for these containers under this policy.
        func expected(_ containers: [DockerContainer], policy: String = ReconcilerTests.policyText) throws -> Ruleset {
            let inventory = DockerInventory.build(containers: containers, networks: [ReconcilerTests.bridge], managedNetworks: nil,
                                                  bridgePort: { container, _, _ in "veth" + container.name })
            return RulesetCompiler.ruleset(PolicyEvaluator(policy: try PolicyParser.parse([PolicyFile(name: "p.yaml", text: policy)]),
                                                           inventory: inventory))
        }
    }

    /// Waits until `condition` holds, for work that runs on its own (the reconciler's actor, a
    /// compile's thread), not on the clock. `timeout` is wall time and only keeps a broken test
    /// from hanging: false then, never a pass.
    static func eventually(_ timeout: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    static func isElementsOnly(_ transaction: Transaction) -> Bool {
        transaction.operations.allSatisfy {
            switch $0 {
            case .addElements, .deleteElements: return true
            default: return false
            }
        }
    }

    @Test func startReplacesWhatTheKernelHeldInOneTransactionThenLogsReady() async throws {
        let web = Self.container("web1", zone: "web", host: 2), api = Self.container("api1", zone: "api", host: 3)
        // The kernel holds zonegate's tables from an earlier run, for containers long gone.
        let stale = try Harness(containers: []).expected([Self.container("old", zone: "api", host: 9)])
        let harness = Harness(containers: [web, api], initial: stale)
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        #expect(harness.dataplane.ruleset == (try harness.expected([web, api])))
        #expect(harness.dataplane.transactions.count == 1)
        let ready = harness.messages("ready").first
        #expect(ready?["containers"] as? Int == 2)
        let classified = harness.messages("container classified").compactMap { $0["container"] as? String }
        #expect(classified.sorted() == ["api1", "web1"])
        _ = await harness.stop()
    }

    @Test func containerStartsAndStopsAreElementOnlyTransactions() async throws {
        let web = Self.container("web1", zone: "web", host: 2), api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        // web's identity is new: its chain is the one non-element change a start may bring.
        harness.engine.start(web)
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api])) })
        let second = Self.container("web2", zone: "web", host: 4)
        harness.engine.start(second)
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, second, api])) })
        #expect(Self.isElementsOnly(harness.dataplane.transactions.last!), "\(harness.dataplane.transactions.last!)")
        // Compiled alone: the transaction was built without the other containers' elements.
        #expect(harness.dataplane.transactions.last!.base.table(.inet, "zonegate")?.set("ctr4")?.elements.isEmpty == true)
        let zones = harness.messages("container classified").first { $0["container"] as? String == "web2" }?["zones"] as? [String]
        #expect(zones == ["web"])
        harness.engine.stop(id: second.id)
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api])) })
        #expect(Self.isElementsOnly(harness.dataplane.transactions.last!))
        #expect(harness.messages("container gone").contains { $0["container"] as? String == "web2" })
        // docker exec and other noise change nothing and cost no inspect: once a start sent after
        // it is enforced, the noise has been read, and only the started container was inspected.
        let inspects = harness.engine.calls.inspectContainer
        harness.engine.emit(DockerEvent(type: "container", action: "exec_start: sh", actorID: web.id))
        let third = Self.container("web3", zone: "web", host: 5)
        harness.engine.start(third)
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, third, api])) })
        #expect(harness.engine.calls.inspectContainer == inspects + 1)
        _ = await harness.stop()
    }

    @Test func aBrokenEventStreamReconnectsAndResynchronises() async throws {
        let api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        // While the stream is down, a container starts and its event is lost.
        harness.engine.failEvents(with: DockerError(.streamEnded, "dockerd is restarting"))
        harness.engine.breakStreams()
        let web = Self.container("web1", zone: "web", host: 2)
        harness.engine.upsert(web)
        let broke = "Docker event stream broke; reconnecting"
        #expect(await Self.eventually { harness.messages(broke).count == 1 })
        // The first reconnect comes after the initial backoff, and fails: Docker is still down.
        #expect(await harness.advance(by: Self.timing.initialBackoff, sleepers: 4))
        #expect(await Self.eventually { harness.messages(broke).count == 2 })
        #expect(harness.messages(broke).map { $0["retry_in_ms"] as? Double } == [100, 200], "the backoff doubles")
        #expect(harness.engine.calls.events == 2)
        #expect(harness.dataplane.ruleset == (try harness.expected([api])), "nothing changes while Docker cannot be read")
        harness.engine.failEvents(with: nil)
        #expect(await harness.advance(by: Self.timing.initialBackoff * 2, sleepers: 4))
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api])) })
        #expect(!harness.messages("Docker event stream reconnected; resynchronising").isEmpty)
        #expect(harness.engine.calls.events == 3)
        _ = await harness.stop()
    }

    @Test func periodicResyncRepairsDriftAndLogsIt() async throws {
        let api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        let desired = try harness.expected([api])
        // Someone deletes zonegate's bridge table behind its back.
        var tampering = Transaction(startingFrom: harness.dataplane.ruleset)
        try tampering.add(.deleteTable(TableID(.bridge, "zonegate")))
        try harness.dataplane.apply(tampering)
        #expect(harness.dataplane.ruleset != desired)
        #expect(await harness.advance(by: Self.timing.resyncInterval))
        #expect(await Self.eventually { !harness.messages("drift repaired: zonegate's tables differed from the policy and containers").isEmpty })
        #expect(harness.dataplane.ruleset == desired)
        _ = await harness.stop()
    }

    @Test func anInvalidPolicyIsLoggedWithItsPositionAndTheLastGoodOneStays() async throws {
        let web = Self.container("web1", zone: "web", host: 2), api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [web, api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        let good = harness.dataplane.ruleset
        harness.policyText.withLock { $0 = Self.policyText + "\nbogus: 1\n" }
        #expect(await harness.advance(by: Self.timing.policyPollInterval))
        #expect(await Self.eventually { !harness.messages("policy rejected; still enforcing the last good policy").isEmpty }, "\(harness.lines.withLock { $0 })")
        #expect(harness.entries.contains { ($0["location"] as? String)?.hasPrefix("p.yaml:") == true })
        #expect(harness.dataplane.ruleset == good)
        // A stricter valid policy replaces it: web -> api is no longer allowed.
        let stricter = Self.policyText.replacingOccurrences(of: "ports: [8080/tcp]", with: "ports: [9090/tcp]")
        harness.policyText.withLock { $0 = stricter }
        #expect(await harness.advance(by: Self.timing.policyPollInterval))
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api], policy: stricter)) })
        #expect(!harness.messages("policy loaded").isEmpty)
        _ = await harness.stop()
    }

    @Test func aRefusedTransactionLeavesTheRulesAndIsRetried() async throws {
        let api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        let before = harness.dataplane.ruleset
        harness.dataplane.refuseNextApply()
        let web = Self.container("web1", zone: "web", host: 2)
        harness.engine.start(web)
        #expect(await Self.eventually { !harness.messages("the kernel refused the change; the previous rules stay in force, retrying").isEmpty })
        #expect(harness.dataplane.ruleset == before, "the refused change left the rules as they were")
        // The retry waits its delay on the clock: three timers and the retry sleep.
        #expect(await harness.advance(by: Self.timing.maximumBackoff, sleepers: 4))
        #expect(await Self.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api])) })
        _ = await harness.stop()
    }

    @Test func eachDeniedFlowIsOneEventNamingBothEndsAndWhy() async throws {
        let web = Self.container("web1", zone: "web", host: 2), api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [web, api])
        harness.start()
        #expect(await Self.eventually { !harness.messages("ready").isEmpty })
        let syn = LoggedFlow(kind: .deny, source: IPAddress("172.17.0.2")!, destination: IPAddress("172.17.0.3")!, transport: .tcp,
                             sourcePort: 40000, destinationPort: 9090)
        /// The flow again from another source port (another attempt), logged once the ones
        /// yielded before it have been read.
        func marked(_ port: UInt16) async -> Bool {
            var marker = syn
            marker.sourcePort = port
            harness.flowLog.yield(.flow(marker))
            return await Self.eventually { harness.messages("flow denied").contains { $0["source_port"] as? Int == Int(port) } }
        }
        // The SYN and its retransmission: one attempt, one event.
        harness.flowLog.yield(.flow(syn))
        harness.flowLog.yield(.flow(syn))
        #expect(await marked(40001))
        let events = harness.messages("flow denied")
        #expect(events.map { $0["source_port"] as? Int } == [40000, 40001])
        #expect(events.first?["from"] as? String == "web1" && events.first?["to"] as? String == "api1")
        #expect(events.first?["to_zones"] as? [String] == ["api"] && events.first?["port"] as? Int == 9090)
        #expect((events.first?["reason"] as? String)?.contains("no rule allows web1 -> api1 on 9090/tcp") == true, "\(events)")
        // A retransmission within the window of the first report is still the same attempt; the
        // same flow once the window has passed is a new one.
        harness.clock.advance(by: .seconds(9))
        harness.flowLog.yield(.flow(syn))
        #expect(await marked(40002))
        harness.clock.advance(by: .seconds(1))
        harness.flowLog.yield(.flow(syn))
        #expect(await marked(40003))
        #expect(harness.messages("flow denied").map { $0["source_port"] as? Int } == [40000, 40001, 40002, 40000, 40003])
        harness.flowLog.yield(.lost(3))
        #expect(await Self.eventually { !harness.messages("3 denied-flow events lost").isEmpty })
        _ = await harness.stop()
    }

    @Test(arguments: [(true, StartupFailure.Kind.invalidPolicy), (false, StartupFailure.Kind.environment)])
    func startupFailuresSayWhichAndChangeNothing(invalidPolicy: Bool, kind: StartupFailure.Kind) async throws {
        let harness = Harness(containers: [], policy: invalidPolicy ? "zones: [{name: Web}]" : Self.policyText)
        if !invalidPolicy { harness.engine.failLists(with: DockerError(.unreachable, "no such file")) }
        let outcome = await Task { try await harness.reconciler.run() }.result
        guard case .failure(let error as StartupFailure) = outcome else {
            Issue.record("expected a startup failure, got \(outcome)")
            return
        }
        #expect(error.kind == kind)
        #expect(harness.dataplane.transactions.isEmpty)
    }

    @Test func gracefulShutdownEndsTheRunAndLeavesTheRules() async throws {
        let api = Self.container("api1", zone: "api", host: 3)
        let harness = Harness(containers: [api])
        try await testGracefulShutdown { trigger in
            let run = Task { try await harness.reconciler.run() }
            #expect(await Self.eventually { !harness.messages("ready").isEmpty })
            trigger.triggerGracefulShutdown()
            try await run.value
        }
        #expect(harness.dataplane.ruleset == (try harness.expected([api])))
        #expect(!harness.messages("stopped; zonegate's rules stay in the kernel until `zonegate teardown`").isEmpty)
    }
}
