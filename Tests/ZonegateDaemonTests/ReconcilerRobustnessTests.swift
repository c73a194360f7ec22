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

/// Makes the next compile after `arm()` wait until the test opens the gate, whatever its task's
/// cancellation says: it stands for a compile of minutes that never looks at cancellation.
final class CompileGate: Sendable {
    private let state = Mutex<(armed: Bool, open: Bool, entered: Int, waiting: [CheckedContinuation<Void, Never>])>((false, false, 0, []))

    /// How many compiles have been held at the gate.
    var entered: Int { state.withLock { $0.entered } }

    func arm() { state.withLock { $0.armed = true } }

    func pass() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                guard state.armed else { return true }
                state.armed = false
                state.entered += 1
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// The daemon under an operator's mistakes and hostile load, on fakes: a compile that takes
/// "minutes" blocks neither events, nor a newer policy, nor shutdown; short-lived containers
/// are no warnings; the JSON log is typed.
@Suite struct ReconcilerRobustnessTests {
    /// The policy whose compile is slow: web -> api on 9090 instead of 8080.
    static let slowPolicy = ReconcilerTests.policyText.replacingOccurrences(of: "ports: [8080/tcp]", with: "ports: [9090/tcp]")
    /// A third policy, fast to compile: web -> api on 7070.
    static let newerPolicy = ReconcilerTests.policyText.replacingOccurrences(of: "ports: [8080/tcp]", with: "ports: [7070/tcp]")

    /// Whether a compile held at the gate found its task cancelled once let through.
    static func slowCompile(_ gate: CompileGate, cancelled: Locked<[Bool]> = Locked([])) -> @Sendable (PolicyEvaluator) async throws -> CompiledRuleset {
        { evaluator in
            let held = gate.entered
            await gate.pass()
            if gate.entered > held { cancelled.withLock { $0.append(Task.isCancelled) } }
            // As in production: the compile stops between batches once cancelled.
            return try CompiledRuleset.cancellable(evaluator)
        }
    }

    @Test func eventsAreEnforcedWhileAPolicyCompilesAndANewerPolicySupersedesIt() async throws {
        let web = ReconcilerTests.container("web1", zone: "web", host: 2), api = ReconcilerTests.container("api1", zone: "api", host: 3)
        let gate = CompileGate()
        defer { gate.open() }
        let cancelled = Locked<[Bool]>([])
        let harness = ReconcilerTests.Harness(containers: [web, api], compile: Self.slowCompile(gate, cancelled: cancelled))
        harness.start()
        #expect(await ReconcilerTests.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        let before = harness.dataplane.transactions.count

        gate.arm()
        harness.policyText.withLock { $0 = Self.slowPolicy }
        #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
        #expect(await ReconcilerTests.eventually { gate.entered == 1 }, "the slow compile started")
        // While it compiles, a container starts: enforced at once with the policy in force.
        let second = ReconcilerTests.container("web2", zone: "web", host: 4)
        harness.engine.start(second)
        #expect(await ReconcilerTests.eventually { harness.dataplane.ruleset == (try? harness.expected([web, second, api])) },
                "a start during the compile is applied with the last good policy")
        #expect(gate.entered == 1 && harness.messages("ready").count == 1)
        #expect(harness.dataplane.transactions.count == before + 1)

        // A newer policy does not wait for the slow compile: it supersedes it.
        harness.policyText.withLock { $0 = Self.newerPolicy }
        #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
        #expect(await ReconcilerTests.eventually {
            harness.dataplane.ruleset == (try? harness.expected([web, second, api], policy: Self.newerPolicy))
        })
        #expect(!harness.messages("compile superseded by a newer policy").isEmpty)
        // The abandoned compile ends later; the reconciler hears of its end and drops its result.
        let applied = harness.dataplane.ruleset, transactions = harness.dataplane.transactions.count
        gate.open()
        #expect(await ReconcilerTests.eventually { cancelled.withLock { $0 } == [true] }, "the superseded compile's task was cancelled")
        #expect(await ReconcilerTests.eventually { !harness.messages("superseded compile ended; its result is dropped").isEmpty })
        #expect(harness.messages("superseded compile ended; its result is dropped").first?["policy"] as? String
                == (try PolicyParser.parse([PolicyFile(name: "p.yaml", text: Self.slowPolicy)])).digest)
        #expect(harness.dataplane.ruleset == applied && harness.dataplane.transactions.count == transactions,
                "the superseded policy never reaches the kernel")
        _ = await harness.stop()
    }

    @Test func gracefulShutdownEndsTheRunInTheMiddleOfACompile() async throws {
        let api = ReconcilerTests.container("api1", zone: "api", host: 3)
        let gate = CompileGate()
        defer { gate.open() }
        let harness = ReconcilerTests.Harness(containers: [api], compile: Self.slowCompile(gate))
        let stopped = Locked(false)
        try await testGracefulShutdown { trigger in
            let run = Task { try await harness.reconciler.run() }
            #expect(await ReconcilerTests.eventually { !harness.messages("ready").isEmpty })
            let good = harness.dataplane.ruleset
            gate.arm()
            harness.policyText.withLock { $0 = Self.slowPolicy }
            #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
            #expect(await ReconcilerTests.eventually { gate.entered == 1 })
            // The compile never ends (the gate stays shut) and never looks at its cancellation.
            trigger.triggerGracefulShutdown()
            try await run.value
            stopped.withLock { $0 = true }
            #expect(harness.dataplane.ruleset == good, "the rules in force stay in the kernel")
        }
        #expect(stopped.withLock { $0 })
        #expect(!harness.messages("stopped; zonegate's rules stay in the kernel until `zonegate teardown`").isEmpty)
    }

    @Test func aShutdownDuringTheFirstCompileEndsTheRunToo() async throws {
        let gate = CompileGate()
        gate.arm()
        defer { gate.open() }
        let harness = ReconcilerTests.Harness(containers: [], policy: Self.slowPolicy, compile: Self.slowCompile(gate))
        try await testGracefulShutdown { trigger in
            let run = Task { try await harness.reconciler.run() }
            #expect(await ReconcilerTests.eventually { gate.entered == 1 })
            trigger.triggerGracefulShutdown()
            try await run.value
        }
        #expect(harness.messages("ready").isEmpty)
        #expect(harness.dataplane.transactions.isEmpty)
    }

    // MARK: Short-lived containers

    /// What a bridge-port lookup says of a container that ended between its event and the look.
    enum Ending: Sendable { case processGone, racedButDockerSaysStopped, realFailure }

    @Test(arguments: [Ending.processGone, .racedButDockerSaysStopped, .realFailure])
    func aContainerGoneBeforeItIsEnforcedIsNoWarning(_ ending: Ending) async throws {
        let api = ReconcilerTests.container("api1", zone: "api", host: 3)
        let short = ReconcilerTests.container("short1", zone: "web", host: 7)
        let engine = Locked<FakeDockerEngine?>(nil)
        let harness = ReconcilerTests.Harness(containers: [api], bridgePorts: { container in
            guard container.id == short.id else { return "veth" + container.name }
            switch ending {
            case .processGone:
                throw VethResolver.Failure(description: "the process 107 of short1 is gone (the container ended)", containerGone: true)
            case .racedButDockerSaysStopped:
                // It ends just now: Docker, asked again, says so.
                engine.withLock { $0 }?.stop(id: container.id)
                throw VethResolver.Failure(description: "no interface with MAC 02:42:ac:11:00:07 in /proc/107/root/sys/class/net")
            case .realFailure:
                throw VethResolver.Failure(description: "cannot list /proc/107/root/sys/class/net: permission denied (zonegate needs root to look into containers)")
            }
        })
        engine.withLock { $0 = harness.engine }
        harness.start()
        #expect(await ReconcilerTests.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        harness.engine.start(short)
        let warned = { !harness.messages("container not enforced").isEmpty }
        let noted = { !harness.messages("container gone before it could be enforced").isEmpty }
        #expect(await ReconcilerTests.eventually { warned() || noted() })
        switch ending {
        case .processGone, .racedButDockerSaysStopped:
            #expect(noted() && !warned(), "\(harness.lines.withLock { $0 })")
            #expect(harness.messages("container gone before it could be enforced").first?["level"] as? String == "debug")
        case .realFailure:
            #expect(warned() && !noted())
            #expect((harness.messages("container not enforced").first?["reason"] as? String)?.contains("permission denied") == true)
        }
        // Either way it holds nothing: its address fails closed.
        #expect(harness.dataplane.ruleset == (try harness.expected([api])))
        _ = await harness.stop()
    }

    // MARK: The JSON log is typed

    @Test func everyJSONLogLineParsesWithNumbersListsAndStringsTyped() async throws {
        let web = ReconcilerTests.container("web1", zone: "web", host: 2), api = ReconcilerTests.container("api1", zone: "api", host: 3)
        let harness = ReconcilerTests.Harness(containers: [web, api])
        harness.start()
        #expect(await ReconcilerTests.eventually { !harness.messages("ready").isEmpty })
        #expect(await harness.engine.waitForStreams())
        harness.engine.start(ReconcilerTests.container("web2", zone: "web", host: 4))
        harness.policyText.withLock { $0 = ReconcilerRobustnessTests.newerPolicy }
        #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
        #expect(await ReconcilerTests.eventually { !harness.messages("policy loaded").isEmpty && harness.messages("applied").count >= 2 })
        let syn = LoggedFlow(kind: .deny, source: IPAddress("172.17.0.2")!, destination: IPAddress("172.17.0.3")!, transport: .tcp,
                             sourcePort: 40000, destinationPort: 9090)
        harness.flowLog.yield(.flow(syn))
        harness.flowLog.yield(.lost(2))
        #expect(await ReconcilerTests.eventually { !harness.messages("flow denied").isEmpty && !harness.messages("2 denied-flow events lost").isEmpty })
        _ = await harness.stop()

        let lines = harness.lines.withLock { $0 }
        #expect(lines.count >= 8)
        let numbers: Set = ["duration_ms", "containers", "zones", "rules", "port", "source_port", "lost", "ended_connections", "retry_in_ms", "suppressed", "errors"]
        var checked: Set<String> = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            for (key, value) in object {
                let lists = key == "addresses" || key.hasSuffix("_zones") || (key == "zones" && object["message"] as? String != "policy loaded")
                if lists {
                    #expect(value is [String], "\(key) in \(line)")
                } else if numbers.contains(key) {
                    // JSONSerialization gives NSNumber for numbers; a string would fail.
                    #expect(value is NSNumber && !(value is String), "\(key) in \(line)")
                } else {
                    #expect(value is String, "\(key) in \(line)")
                }
                checked.insert(key)
            }
        }
        #expect(checked.isSuperset(of: ["duration_ms", "containers", "zones", "rules", "port", "source_port", "lost", "from_zones", "addresses"]),
                "\(checked.sorted())")
        let ready = try #require(harness.messages("ready").first)
        // Measured on the reconciler's clock, which the test had not moved before "ready".
        #expect(ready["duration_ms"] as? Double == 0)
        #expect(harness.messages("flow denied").first?["port"] as? Int == 9090)
    }
}
