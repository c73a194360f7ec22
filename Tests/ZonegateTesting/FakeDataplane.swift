import Foundation
import ZonegateRuleset

/// An in-memory `Dataplane` for tests of code that programs the dataplane.
/// It applies a transaction all-or-nothing with the same checks `Transaction`
/// makes, records what was applied, and can be told to refuse the next apply.
public final class FakeDataplane: Dataplane, @unchecked Sendable {
    // @unchecked: every stored property is only touched under `lock`.
    private let lock = NSLock()
    private var state: Ruleset
    private var applied: [Transaction] = []
    private var refusal: (any Error)?

    /// An error the fake throws to stand for a kernel refusal.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public init(reason: String) { self.reason = reason }
        public var description: String { "fake dataplane refused the transaction: \(reason)" }
    }

    public init(_ initial: Ruleset = Ruleset()) {
        state = initial
    }

    /// What the fake holds now.
    public var ruleset: Ruleset { lock.withLock { state } }

    /// Every transaction applied successfully, oldest first.
    public var transactions: [Transaction] { lock.withLock { applied } }

    /// Makes the next `apply` throw `error` and change nothing.
    public func refuseNextApply(with error: any Error = Refused(reason: "test asked for it")) {
        lock.withLock { refusal = error }
    }

    public func apply(_ transaction: Transaction) throws {
        try lock.withLock {
            if let error = refusal {
                refusal = nil
                throw error
            }
            // Replayed against what the fake holds, not what the caller believed.
            var replay = Transaction(startingFrom: state)
            for operation in transaction.operations {
                do {
                    try replay.add(operation)
                } catch {
                    throw Refused(reason: "\(error)")
                }
            }
            state = replay.result
            applied.append(transaction)
        }
    }

    public func read(family: Family, name: String) throws -> Table? {
        lock.withLock { state.table(family, name) }
    }

    public func readAll(name: String) throws -> Ruleset {
        lock.withLock { Ruleset(tables: state.tables.filter { $0.name == name }) }
    }
}
