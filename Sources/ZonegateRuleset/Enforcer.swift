import ZonegateEngine
import ZonegatePolicy

/// Reads and ends tracked connections (ctnetlink in production, a fake in tests).
public protocol ConnectionTracker: Sendable {
    func connections() throws -> [TrackedConnection]
    /// Ends the connections; returns how many existed.
    @discardableResult func end(_ connections: [TrackedConnection]) throws -> Int
}

/// What one enforcement changed.
public struct EnforcementReport: Sendable {
    /// The transaction applied (empty when the kernel already matched).
    public var transaction: Transaction
    /// Tracked connections ended because the change revoked their flow.
    public var endedConnections: [TrackedConnection]
}

/// Brings the kernel in line with a policy applied to an inventory: compile, diff against what
/// the kernel holds, apply as one transaction, then end the connections the change revoked.
/// Nothing is half-applied: a refused transaction leaves the previous state, and is thrown.
public final class Enforcer: @unchecked Sendable {
    // @unchecked: driven by one reconciler at a time.
    private let dataplane: Dataplane
    private let tracker: ConnectionTracker?
    private let hostAddresses: @Sendable () -> Set<IPAddress>
    /// What zonegate last wrote; nil makes the next enforcement read the kernel (drift repair).
    private var known: Ruleset?

    public init(dataplane: Dataplane, tracker: ConnectionTracker?, hostAddresses: @escaping @Sendable () -> Set<IPAddress>) {
        self.dataplane = dataplane
        self.tracker = tracker
        self.hostAddresses = hostAddresses
    }

    /// Forget what was written, so the next `enforce` compares with the kernel itself.
    public func resync() { known = nil }

    @discardableResult
    public func enforce(_ evaluator: PolicyEvaluator) throws -> EnforcementReport {
        let desired = RulesetCompiler.ruleset(evaluator)
        let actual = try known ?? dataplane.readAll(name: RulesetCompiler.tableName)
        let transaction = try diff(from: actual, to: desired)
        if !transaction.isEmpty {
            do {
                try dataplane.apply(transaction)
            } catch {
                known = nil
                throw error
            }
        }
        known = desired
        // After the new rules are in: a packet of a revoked flow can no longer re-create its entry.
        var ended: [TrackedConnection] = []
        if let tracker, !transaction.isEmpty {
            ended = Revocation.connectionsToEnd(try tracker.connections(), under: evaluator, hostAddresses: hostAddresses())
            try tracker.end(ended)
        }
        return EnforcementReport(transaction: transaction, endedConnections: ended)
    }
}
