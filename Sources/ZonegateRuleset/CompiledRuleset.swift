import ZonegateEngine
import ZonegatePolicy

/// A container that started, stopped or changed, as the inventory now has it: `container` is nil
/// once it is gone (or no longer managed). `key` is its Docker id, or its name without one.
public struct ContainerChange: Sendable {
    public var key: String
    public var container: Container?

    public init(key: String, container: Container?) {
        self.key = key
        self.container = container
    }
}

/// What containers starting and stopping changed: the element-only transaction, and the addresses
/// a container held before whose tracked connections the change may revoke.
public struct ContainerUpdate: Sendable {
    public var transaction: Transaction
    /// Held by no container any more: on a managed bridge they send and receive nothing.
    public var releasedAddresses: Set<IPAddress>
    /// Held by a container that changed, or by another one now: their connections are judged again.
    public var reassignedAddresses: Set<IPAddress>
}

/// zonegate's desired tables kept in parts: what the policy and the set of identities decide
/// (chains, rules, sets) and what each container adds to the sets. A container that starts or
/// stops is compiled alone, into element additions and deletions, at a cost that follows its own
/// elements and not the number of containers; the whole ruleset is assembled only for a full
/// comparison.
public struct CompiledRuleset: Sendable {
    public let policy: Policy
    private let skeleton: Ruleset
    private let elements: VerdictElements
    private let cidrBlocks: [CIDRBlock]
    /// The number of each container identity the table knows.
    private let identityNumbers: [Identity: UInt32]
    /// Bridges in the `bridges` set: a container on another one needs a full compile.
    private let bridges: Set<String>
    /// Sets with the interval flag, whose elements carry their range end.
    private let intervalSets: Set<SetAddress>
    private var members: [String: Member] = [:]
    private var nextSequence = 0
    /// How many containers add each element: two may add the same one (an address in `addrs4`).
    private var holders: [SetAddress: [SetElement: Int]] = [:]
    private var membersOfIdentity: [UInt32: Int] = [:]
    /// The key of the container holding each address.
    private var holderOfAddress: [IPAddress: String] = [:]
    /// The keys of the containers that publish ports: fixed, as `update` refuses their changes.
    private let publishing: [String]

    /// One container's part.
    private struct Member: Sendable {
        var container: Container
        var identity: UInt32
        /// Its place in the inventory, so the assembled ruleset lists elements in inventory order.
        var sequence: Int
        var elements: [SetAddress: [SetElement]]
    }

    public init(_ evaluator: PolicyEvaluator) {
        self.init(evaluator, checkpoint: {})
    }

    /// The compile that stops when its task is cancelled: it throws `CancellationError` between
    /// batches of work (each source identity's verdicts, every 64 containers' elements). For a
    /// compile run off the reconciler, so that a superseded or shut-down one ends soon.
    public static func cancellable(_ evaluator: PolicyEvaluator) throws -> CompiledRuleset {
        try CompiledRuleset(evaluator, checkpoint: { try Task.checkCancellation() })
    }

    /// `checkpoint` is called between batches of work; throwing from it abandons the compile.
    public init<Failure: Error>(_ evaluator: PolicyEvaluator, checkpoint: () throws(Failure) -> Void) throws(Failure) {
        let table = try VerdictTable(evaluator, checkpoint: checkpoint)
        let elements = VerdictElements(table, evaluator.inventory)
        policy = evaluator.policy
        cidrBlocks = evaluator.cidrBlocks
        self.elements = elements
        skeleton = RulesetCompiler.skeleton(elements, evaluator.inventory, defaults: evaluator.policy.defaults)
        identityNumbers = Dictionary(uniqueKeysWithValues: table.identities.compactMap { numbered in
            if case .container(let index) = numbered.peer.kind { return (evaluator.identities[index], numbered.id) }
            return nil
        })
        bridges = Set(RulesetCompiler.managedBridges(evaluator.inventory))
        intervalSets = Set(skeleton.tables.flatMap { table in
            table.sets.filter { $0.flags.contains(.interval) }.map { SetAddress(family: table.family, set: $0.name) }
        })
        publishing = evaluator.inventory.containers.filter { !$0.published.isEmpty }.map { $0.id ?? $0.name }
        for (index, container) in evaluator.inventory.containers.enumerated() {
            if index % 64 == 63 { try checkpoint() }
            let identity = identityNumbers[evaluator.identities[evaluator.identityOfContainer[index]]]!
            insert(member(container, identity: identity), key: container.id ?? container.name)
        }
    }

    /// The whole desired ruleset.
    public var ruleset: Ruleset {
        var added: [SetAddress: [SetElement]] = [:]
        var seen: [SetAddress: Set<SetElement>] = [:]
        for member in members.values.sorted(by: { $0.sequence < $1.sequence }) {
            for (address, elements) in member.elements {
                for element in elements where seen[address, default: []].insert(element).inserted {
                    added[address, default: []].append(element)
                }
            }
        }
        var ruleset = skeleton
        for tableIndex in ruleset.tables.indices {
            let family = ruleset.tables[tableIndex].family
            for setIndex in ruleset.tables[tableIndex].sets.indices {
                let address = SetAddress(family: family, set: ruleset.tables[tableIndex].sets[setIndex].name)
                ruleset.tables[tableIndex].sets[setIndex].elements += added[address] ?? []
            }
        }
        return ruleset
    }

    /// Compiles containers starting, stopping or changing alone, and records them; nil, changing
    /// nothing, when they touch what only a full compile decides: an identity that appears or
    /// loses its last container (its chain and map come and go), published ports (every
    /// container's verdicts towards them change), or a bridge not yet managed. Throws only if
    /// what it built does not fit its own sets, which would be a bug; it is then of no further use.
    public mutating func update(_ changes: [ContainerChange]) throws(TransactionError) -> ContainerUpdate? {
        // The last change of each container is what it is now.
        var latest: [String: Int] = [:]
        for (index, change) in changes.enumerated() { latest[change.key] = index }
        let changes = latest.values.sorted().map { changes[$0] }
        var identities: [String: UInt32] = [:]
        var memberDelta: [UInt32: Int] = [:]
        for change in changes {
            let old = members[change.key]
            if let old {
                guard old.container.published.isEmpty else { return nil }
                memberDelta[old.identity, default: 0] -= 1
            }
            guard let container = change.container else { continue }
            guard container.published.isEmpty, container.attachments.allSatisfy({ bridges.contains($0.bridge) }),
                  let identity = identityNumbers[PolicyEvaluator.identity(of: container, policy: policy, cidrBlocks: cidrBlocks)]
            else { return nil }
            identities[change.key] = identity
            memberDelta[identity, default: 0] += 1
        }
        guard memberDelta.allSatisfy({ membersOfIdentity[$0.key, default: 0] + $0.value > 0 || $0.value == 0 }) else { return nil }

        var before: [SetAddress: [SetElement: Int]] = [:]  // the holder counts of the touched elements, before
        var heldBefore: Set<IPAddress> = []
        func note(_ contribution: [SetAddress: [SetElement]]) {
            for (address, elements) in contribution {
                for element in elements where before[address]?[element] == nil {
                    before[address, default: [:]][element] = holders[address]?[element] ?? 0
                }
            }
        }
        for change in changes {
            if let old = members[change.key] {
                note(old.elements)
                heldBefore.formUnion(old.container.addresses)
                remove(key: change.key)
            }
            guard let container = change.container, let identity = identities[change.key] else { continue }
            let member = member(container, identity: identity)
            note(member.elements)
            insert(member, key: change.key)
        }

        var deleted: [SetAddress: [SetElement]] = [:]
        var added: [SetAddress: [SetElement]] = [:]
        for (address, counts) in before {
            for (element, count) in counts {
                let now = holders[address]?[element] ?? 0
                if count > 0 && now == 0 { deleted[address, default: []].append(element) }
                if count == 0 && now > 0 { added[address, default: []].append(element) }
            }
        }
        // The transaction starts from the sets as far as it touches them: what it deletes is there.
        var base = skeleton
        for (address, list) in deleted {
            guard let table = base.tables.firstIndex(where: { $0.family == address.family }),
                  let set = base.tables[table].sets.firstIndex(where: { $0.name == address.set }) else { continue }
            base.tables[table].sets[set].elements = list
        }
        var transaction = Transaction(startingFrom: base)
        let order = { (a: SetAddress, b: SetAddress) in (a.family.rawValue, a.set) < (b.family.rawValue, b.set) }
        for address in deleted.keys.sorted(by: order) {
            try transaction.add(.deleteElements(TableID(address.family, RulesetCompiler.tableName), set: address.set, deleted[address]!))
        }
        for address in added.keys.sorted(by: order) {
            try transaction.add(.addElements(TableID(address.family, RulesetCompiler.tableName), set: address.set, added[address]!))
        }
        let released = heldBefore.filter { holderOfAddress[$0] == nil }
        return ContainerUpdate(transaction: transaction, releasedAddresses: released, reassignedAddresses: heldBefore.subtracting(released))
    }

    /// The containers the verdicts of connections between these addresses depend on: those holding
    /// them now, and those that publish ports (a connection to a published port is judged as the
    /// flow to the container behind it).
    public func containersDeciding(flowsOf addresses: Set<IPAddress>) -> [Container] {
        return Set(addresses.compactMap { holderOfAddress[$0] }).union(publishing).sorted().compactMap { members[$0]?.container }
    }

    /// A container's part, its elements as its sets store them, placed after every other.
    private func member(_ container: Container, identity: UInt32) -> Member {
        var contribution = elements.contribution(of: container, identity: identity)
        for (address, list) in contribution where intervalSets.contains(address) {
            contribution[address] = list.map { $0.asInterval() }
        }
        return Member(container: container, identity: identity, sequence: nextSequence, elements: contribution)
    }

    private mutating func insert(_ member: Member, key: String) {
        nextSequence += 1
        members[key] = member
        membersOfIdentity[member.identity, default: 0] += 1
        for (address, list) in member.elements {
            for element in list { holders[address, default: [:]][element, default: 0] += 1 }
        }
        for address in member.container.addresses where holderOfAddress[address] == nil { holderOfAddress[address] = key }
    }

    private mutating func remove(key: String) {
        guard let member = members.removeValue(forKey: key) else { return }
        membersOfIdentity[member.identity, default: 0] -= 1
        if membersOfIdentity[member.identity] == 0 { membersOfIdentity[member.identity] = nil }
        for (address, list) in member.elements {
            for element in list {
                let count = holders[address]?[element] ?? 0
                holders[address]?[element] = count > 1 ? count - 1 : nil
            }
        }
        for address in member.container.addresses where holderOfAddress[address] == key { holderOfAddress[address] = nil }
    }
}
