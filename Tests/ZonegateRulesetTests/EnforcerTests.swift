import Foundation
import Testing
import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset
import ZonegateTesting

/// A tracker that holds connections in memory.
final class FakeTracker: ConnectionTracker, @unchecked Sendable {
    var table: [TrackedConnection]
    init(_ table: [TrackedConnection]) { self.table = table }
    func connections() throws -> [TrackedConnection] { table }
    func end(_ connections: [TrackedConnection]) throws -> Int {
        let before = table.count
        table.removeAll { connections.contains($0) }
        return before - table.count
    }
}

/// Compile, diff, apply, revoke: in order, all or nothing.
@Suite struct EnforcerTests {
    static let webToApi = TrackedConnection(proto: 17, originalSource: IPAddress("172.18.0.2")!, originalDestination: IPAddress("172.18.0.3")!,
                                            originalSourcePort: 40000, originalDestinationPort: 53,
                                            replySource: IPAddress("172.18.0.3")!, replySourcePort: 53)

    @Test func stricterPolicyEndsRevokedConnections() throws {
        let fake = FakeDataplane()
        let tracker = FakeTracker([Self.webToApi])
        let enforcer = Enforcer(dataplane: fake, tracker: tracker, hostAddresses: { [] })
        try enforcer.enforce(try RulesetCompilerTests.evaluator())
        #expect(tracker.table == [Self.webToApi], "53/udp web -> api is allowed at first")
        let stricter = RulesetCompilerTests.policyText.replacingOccurrences(of: "ports: [8080/tcp, 53/udp]", with: "ports: [8080/tcp]")
        let report = try enforcer.enforce(try RulesetCompilerTests.evaluator(stricter))
        #expect(report.endedConnections == [Self.webToApi])
        #expect(tracker.table.isEmpty)
        #expect(try enforcer.enforce(try RulesetCompilerTests.evaluator(stricter)).transaction.isEmpty, "nothing left to do")
    }

    @Test func refusedTransactionChangesNothing() throws {
        let fake = FakeDataplane()
        let enforcer = Enforcer(dataplane: fake, tracker: nil, hostAddresses: { [] })
        try enforcer.enforce(try RulesetCompilerTests.evaluator())
        let before = fake.ruleset
        fake.refuseNextApply()
        let stricter = RulesetCompilerTests.policyText.replacingOccurrences(of: "ports: [8080/tcp, 53/udp]", with: "ports: [8080/tcp]")
        #expect(throws: FakeDataplane.Refused.self) { try enforcer.enforce(try RulesetCompilerTests.evaluator(stricter)) }
        #expect(fake.ruleset == before)
        try enforcer.enforce(try RulesetCompilerTests.evaluator(stricter))
        #expect(fake.ruleset == RulesetCompiler.ruleset(try RulesetCompilerTests.evaluator(stricter)), "the next try compares with the kernel")
    }

    @Test func resyncRepairsDrift() throws {
        let fake = FakeDataplane()
        let enforcer = Enforcer(dataplane: fake, tracker: nil, hostAddresses: { [] })
        let evaluator = try RulesetCompilerTests.evaluator()
        try enforcer.enforce(evaluator)
        // Someone deletes zonegate's bridge table behind its back.
        try fake.apply(try diff(from: fake.ruleset, to: Ruleset(tables: fake.ruleset.tables.filter { $0.family != .bridge })))
        #expect(try enforcer.enforce(evaluator).transaction.isEmpty, "without a resync, zonegate trusts what it wrote")
        enforcer.resync()
        let repair = try enforcer.enforce(evaluator)
        #expect(!repair.transaction.isEmpty)
        #expect(repair.drift?.operations.contains(.addTable(TableID(.bridge, "zonegate"), flags: 0)) == true, "reported as drift")
        #expect(fake.ruleset == RulesetCompiler.ruleset(evaluator))
        // A resync that finds a new container changes the kernel, but nothing had drifted.
        var grown = RulesetCompilerTests.inventory
        grown.containers.append(RulesetCompilerTests.attach("w2", "web", ["172.18.0.9"], port: "vethw2"))
        enforcer.resync()
        let found = try enforcer.enforce(try RulesetCompilerTests.evaluator(RulesetCompilerTests.policyText, grown))
        #expect(!found.transaction.isEmpty)
        #expect(found.drift == nil)
    }
}

/// The per-container path's failures are reported, not turned into a silent full compile.
@Suite struct EnforcerIncrementalFailureTests {
    /// A container whose name does not fit an element comment (127 bytes): the per-container
    /// compile builds an element its own set refuses, which is a bug, reported as one.
    @Test func aFailingPerContainerCompileIsThrownAndForgetsWhatWasWritten() throws {
        let fake = FakeDataplane()
        let enforcer = Enforcer(dataplane: fake, tracker: nil, hostAddresses: { [] })
        try enforcer.enforce(try RulesetCompilerTests.evaluator())
        let before = fake.ruleset
        let long = RulesetCompilerTests.attach(String(repeating: "w", count: 200), "web", ["172.18.0.9"], port: "vethw9")
        let failure = try #require(throws: IncrementalUpdateFailure.self) {
            try enforcer.enforce([ContainerChange(key: "long", container: long)])
        }
        #expect(failure.description.hasPrefix("bug: "), "\(failure)")
        #expect(failure.error.reason.contains("comment longer than 127 bytes"), "\(failure)")
        #expect(fake.ruleset == before, "nothing applied")
        let small = RulesetCompilerTests.attach("w2", "web", ["172.18.0.10"], port: "vethw2")
        #expect(try enforcer.enforce([ContainerChange(key: "w2", container: small)]) == nil,
                "what was written is forgotten: the next change needs a full compile")
    }
}
