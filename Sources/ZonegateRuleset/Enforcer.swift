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
    /// When the kernel was read: what it held that zonegate had not written, as the transaction
    /// that undoes it; nil when it held what was written (or nothing was known to be written).
    public var drift: Transaction? = nil
}

/// The per-container compile built a transaction that does not fit its own sets
/// (`CompiledRuleset.update` threw): a bug in zonegate, not a refusal by the kernel. Nothing was
/// applied and what was written is forgotten, so a full `enforce` reads the kernel and repairs
/// everything; the caller falls back to one and reports this as the bug it is.
public struct IncrementalUpdateFailure: Error, CustomStringConvertible {
    /// What the transaction refused.
    public var error: TransactionError

    public var description: String {
        "bug: the per-container compile built a change that does not fit its own sets (\(error)); a full compile takes over"
    }
}

/// Brings the kernel in line with a policy applied to an inventory: compile, diff against what
/// the kernel holds, apply as one transaction, then end the connections the change revoked.
/// Containers starting and stopping take a shorter path: compiled alone, into element additions
/// and deletions, against what was last written. Nothing is half-applied: a refused transaction
/// leaves the previous state, and is thrown.
public final class Enforcer: @unchecked Sendable {
    // @unchecked: driven by one reconciler at a time.
    private let dataplane: Dataplane
    private let tracker: ConnectionTracker?
    private let hostAddresses: @Sendable () -> Set<IPAddress>
    /// What zonegate last wrote, in parts; nil when unknown (nothing yet, or a refused transaction).
    private var written: CompiledRuleset?
    /// The next full enforcement compares with the kernel itself, not with what was written.
    private var readsKernel = true

    public init(dataplane: Dataplane, tracker: ConnectionTracker?, hostAddresses: @escaping @Sendable () -> Set<IPAddress>) {
        self.dataplane = dataplane
        self.tracker = tracker
        self.hostAddresses = hostAddresses
    }

    /// Makes the next `enforce` compare with the kernel itself: what differs from what was written
    /// is drift, repaired and reported.
    public func resync() { readsKernel = true }

    @discardableResult
    public func enforce(_ evaluator: PolicyEvaluator) throws -> EnforcementReport {
        try enforce(CompiledRuleset(evaluator), under: evaluator)
    }

    /// `enforce(_:)` with the compile done beforehand: the daemon compiles off its reconciler, so
    /// that a long compile blocks neither events nor shutdown. `compiled` must come from `evaluator`.
    @discardableResult
    public func enforce(_ compiled: CompiledRuleset, under evaluator: PolicyEvaluator) throws -> EnforcementReport {
        let desired = compiled.ruleset
        var actual = written?.ruleset
        var drift: Transaction?
        if readsKernel || actual == nil {
            let kernel = try dataplane.readAll(name: RulesetCompiler.tableName)
            if let actual, case let repair = try diff(from: kernel, to: actual), !repair.isEmpty { drift = repair }
            actual = kernel
        }
        let transaction = try diff(from: actual!, to: desired)
        try apply(transaction)
        written = compiled
        readsKernel = false
        // After the new rules are in: a packet of a revoked flow can no longer re-create its entry.
        var ended: [TrackedConnection] = []
        if let tracker, !transaction.isEmpty {
            ended = Revocation.connectionsToEnd(try tracker.connections(), under: evaluator, hostAddresses: hostAddresses())
            try tracker.end(ended)
        }
        return EnforcementReport(transaction: transaction, endedConnections: ended, drift: drift)
    }

    /// Containers that started, stopped or changed under the policy last enforced, compiled alone.
    /// nil, with nothing done, when they need a full `enforce` (see `CompiledRuleset.update`) or
    /// nothing is known to be written; throws `IncrementalUpdateFailure`, with nothing done, when
    /// the compile fails its own checks. A container that only starts, on addresses nobody held,
    /// revokes nothing, so costs no look at the tracked connections; one that stops takes its
    /// connections with it (its addresses now send and receive nothing, and a container that
    /// reuses one inherits none); the connections of an address that changed hands are judged again.
    public func enforce(_ changes: [ContainerChange]) throws -> EnforcementReport? {
        guard written != nil else { return nil }
        let update: ContainerUpdate?
        do {
            update = try written!.update(changes)
        } catch {
            written = nil
            throw IncrementalUpdateFailure(error: error)
        }
        guard let update, let compiled = written else { return nil }
        try apply(update.transaction)
        var ended: [TrackedConnection] = []
        let affected = update.releasedAddresses.union(update.reassignedAddresses)
        if let tracker, !update.transaction.isEmpty, !affected.isEmpty {
            let touches = { (addresses: Set<IPAddress>, connection: TrackedConnection) in
                addresses.contains(connection.originalSource) || addresses.contains(connection.replySource)
            }
            let touching = try tracker.connections().filter { touches(affected, $0) }
            ended = touching.filter { touches(update.releasedAddresses, $0) }
            let reassigned = touching.filter { !touches(update.releasedAddresses, $0) }
            if !reassigned.isEmpty {
                let ends = Set(reassigned.flatMap { [$0.originalSource, $0.replySource] })
                let inventory = Inventory(containers: compiled.containersDeciding(flowsOf: ends))
                let evaluator = PolicyEvaluator(policy: compiled.policy, inventory: inventory)
                ended += Revocation.connectionsToEnd(reassigned, under: evaluator, hostAddresses: hostAddresses())
            }
            try tracker.end(ended)
        }
        return EnforcementReport(transaction: update.transaction, endedConnections: ended)
    }

    private func apply(_ transaction: Transaction) throws {
        guard !transaction.isEmpty else { return }
        do {
            try dataplane.apply(transaction)
        } catch {
            written = nil
            throw error
        }
    }
}
