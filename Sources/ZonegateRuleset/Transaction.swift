/// One change to the kernel's ruleset; a `Transaction` applies a list of them atomically.
public enum Operation: Sendable, Hashable, Codable {
    /// `add table`: creates the table, or updates its flags.
    case addTable(TableID, flags: UInt32)
    case deleteTable(TableID)
    /// `add chain`: creates the chain, or updates a base chain's policy.
    case addChain(TableID, name: String, hook: BaseChainHook?)
    case flushChain(TableID, name: String)
    case deleteChain(TableID, name: String)
    /// `add rule`: appends to the chain.
    case addRule(TableID, chain: String, Rule)
    /// `add set` with the definition only; elements come in `addElements`.
    case addSet(TableID, NftSet)
    case deleteSet(TableID, name: String)
    case addElements(TableID, set: String, [SetElement])
    case deleteElements(TableID, set: String, [SetElement])
    /// `flush set`: deletes every element, those the packet path added included.
    case flushSet(TableID, name: String)
}

/// Why an operation cannot be part of a transaction.
public struct TransactionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Index of the refused operation in the transaction.
    public var operationIndex: Int
    public var reason: String

    public var description: String { "operation #\(operationIndex): \(reason)" }
}

/// A list of operations meant to be applied as one netlink batch. It starts from
/// what the caller believes the kernel holds (`base`), checks each operation
/// against the state the earlier ones produce, and prints itself as an nft script.
public struct Transaction: Sendable, CustomStringConvertible {
    public let base: Ruleset
    public private(set) var operations: [Operation] = []
    /// The state after every operation, if the kernel held `base` before.
    public private(set) var result: Ruleset
    /// One nft command per operation, rendered while the set and chain context was at hand.
    public private(set) var commands: [String] = []

    public init(startingFrom base: Ruleset = Ruleset()) {
        self.base = base
        result = base
    }

    public var isEmpty: Bool { operations.isEmpty }

    /// Appends `operation` if it is valid in the current state; throws otherwise
    /// and leaves the transaction unchanged.
    public mutating func add(_ operation: Operation) throws(TransactionError) {
        var state = RulesetEditor(ruleset: result)
        do {
            try state.apply(operation)
        } catch {
            throw TransactionError(operationIndex: operations.count, reason: error.reason)
        }
        commands.append(NftCommand.render(operation, in: state.ruleset, before: result))
        result = state.ruleset
        operations.append(operation)
    }

    /// The transaction as an nft script, one command per line, for logs.
    public var description: String { commands.joined(separator: "\n") }
}

/// A reason an operation does not fit the state it is applied to.
struct InvalidOperation: Error {
    var reason: String
}

/// Applies operations to a ruleset value with the kernel's checks.
struct RulesetEditor {
    var ruleset: Ruleset

    mutating func apply(_ operation: Operation) throws(InvalidOperation) {
        switch operation {
        case .addTable(let id, let flags):
            if let index = tableIndex(id) {
                ruleset.tables[index].flags = flags
            } else {
                ruleset.tables.append(Table(family: id.family, name: id.name, flags: flags))
            }
        case .deleteTable(let id):
            ruleset.tables.remove(at: try existingTable(id))
        case .addChain(let id, let name, let hook):
            try addChain(id, name: name, hook: hook)
        case .flushChain(let id, let name):
            let (table, chain) = try existingChain(id, name)
            ruleset.tables[table].chains[chain].rules = []
        case .deleteChain(let id, let name):
            let (table, chain) = try existingChain(id, name)
            if let referrer = ruleset.tables[table].referrer(of: name) {
                throw InvalidOperation(reason: "chain \(name) is still the target of a jump in \(referrer)")
            }
            ruleset.tables[table].chains.remove(at: chain)
        case .addRule(let id, let chainName, let rule):
            let (table, chain) = try existingChain(id, chainName)
            try checkComment(rule.comment)
            try checkReferences(of: rule, in: ruleset.tables[table])
            ruleset.tables[table].chains[chain].rules.append(rule)
        case .addSet(let id, let set):
            try addSet(id, set)
        case .deleteSet(let id, let name):
            let (table, set) = try existingSet(id, name)
            if let user = ruleset.tables[table].chains.first(where: { $0.looksUp(name) }) {
                throw InvalidOperation(reason: "set \(name) is still used by a rule in chain \(user.name)")
            }
            ruleset.tables[table].sets.remove(at: set)
        case .addElements(let id, let setName, let elements):
            let (table, set) = try existingSet(id, setName)
            var current = ruleset.tables[table].sets[set]
            var keys = Set(current.elements.map(ElementKey.init))
            for element in current.normalized(elements) {
                try check(element, fits: current, in: ruleset.tables[table])
                guard keys.insert(ElementKey(element)).inserted else {
                    throw InvalidOperation(reason: "set \(setName) already has element \(NftValue.element(element, of: current))")
                }
                current.elements.append(element)
            }
            ruleset.tables[table].sets[set] = current
        case .deleteElements(let id, let setName, let elements):
            let (table, set) = try existingSet(id, setName)
            var current = ruleset.tables[table].sets[set]
            var doomed = Set<ElementKey>()
            for element in current.normalized(elements) {
                doomed.insert(ElementKey(element))
            }
            let kept = current.elements.filter { !doomed.contains(ElementKey($0)) }
            guard kept.count + doomed.count == current.elements.count else {
                let missing = current.normalized(elements).first { element in
                    !current.elements.contains { ElementKey($0) == ElementKey(element) }
                }
                throw InvalidOperation(
                    reason: "set \(setName) lacks element \(missing.map { NftValue.element($0, of: current) } ?? "listed twice")")
            }
            current.elements = kept
            ruleset.tables[table].sets[set] = current
        case .flushSet(let id, let name):
            let (table, set) = try existingSet(id, name)
            ruleset.tables[table].sets[set].elements = []
        }
    }

    private func tableIndex(_ id: TableID) -> Int? {
        ruleset.tables.firstIndex { $0.id == id }
    }

    private func existingTable(_ id: TableID) throws(InvalidOperation) -> Int {
        guard let index = tableIndex(id) else { throw InvalidOperation(reason: "no table \(id)") }
        return index
    }

    private func existingChain(_ id: TableID, _ name: String) throws(InvalidOperation) -> (Int, Int) {
        let table = try existingTable(id)
        guard let chain = ruleset.tables[table].chains.firstIndex(where: { $0.name == name }) else {
            throw InvalidOperation(reason: "no chain \(name) in table \(id)")
        }
        return (table, chain)
    }

    private func existingSet(_ id: TableID, _ name: String) throws(InvalidOperation) -> (Int, Int) {
        let table = try existingTable(id)
        guard let set = ruleset.tables[table].sets.firstIndex(where: { $0.name == name }) else {
            throw InvalidOperation(reason: "no set \(name) in table \(id)")
        }
        return (table, set)
    }

    private mutating func addChain(_ id: TableID, name: String, hook: BaseChainHook?) throws(InvalidOperation) {
        if let hook, hook.isForeign {
            throw InvalidOperation(reason: "chain \(name) { \(NftValue.hook(hook)) } holds values zonegate does not know; it never writes them")
        }
        let table = try existingTable(id)
        guard let index = ruleset.tables[table].chains.firstIndex(where: { $0.name == name }) else {
            ruleset.tables[table].chains.append(Chain(name: name, hook: hook))
            return
        }
        var updated = ruleset.tables[table].chains[index].hook
        updated?.policy = hook?.policy ?? .accept
        guard updated == hook else {
            throw InvalidOperation(reason: "chain \(name) exists with another hook; only the policy can change")
        }
        ruleset.tables[table].chains[index].hook = hook
    }

    private mutating func addSet(_ id: TableID, _ set: NftSet) throws(InvalidOperation) {
        let table = try existingTable(id)
        try checkComment(set.comment)
        guard set.elements.isEmpty else {
            throw InvalidOperation(reason: "add set \(set.name) carries elements; add them with addElements")
        }
        guard !set.keyType.isEmpty, set.keyLength <= 64 else {
            throw InvalidOperation(reason: "set \(set.name) needs a key of 1 to 64 bytes")
        }
        if let existing = ruleset.tables[table].set(set.name) {
            guard existing.definition == set else {
                throw InvalidOperation(reason: "set \(set.name) exists with another definition")
            }
            return
        }
        ruleset.tables[table].sets.append(set)
    }

    /// nft keeps at most 127 bytes of a comment (`NFTNL_UDATA_COMMENT_MAXLEN`).
    private func checkComment(_ comment: String?) throws(InvalidOperation) {
        guard let comment, comment.utf8.count > 127 else { return }
        throw InvalidOperation(reason: "comment longer than 127 bytes: \(comment.prefix(20))...")
    }

    private func checkReferences(of rule: Rule, in table: Table) throws(InvalidOperation) {
        for expression in rule.expressions {
            switch expression {
            case .verdict(let verdict):
                try checkTarget(of: verdict, in: table)
            case .lookup(let name, _, let dreg, _):
                guard let set = table.set(name) else { throw InvalidOperation(reason: "rule looks up missing set \(name)") }
                switch (set.dataType, dreg) {
                // A data map can also be asked only whether it holds the key.
                case (.none, nil), (.value, nil): break
                case (.value, .some(let register)) where register != .verdict: break
                case (.verdict, .some(let register)) where register == .verdict: break
                default: throw InvalidOperation(reason: "lookup of \(name) does not fit its set's data type")
                }
            case .dynset(_, let name, _):
                guard let set = table.set(name) else { throw InvalidOperation(reason: "rule adds to missing set \(name)") }
                guard set.flags.contains(.dynamic), set.dataType == .none else {
                    throw InvalidOperation(reason: "rule adds to set \(name), which is not a dynamic set")
                }
            default:
                break
            }
        }
    }

    private func checkTarget(of verdict: Verdict, in table: Table) throws(InvalidOperation) {
        guard let target = verdict.targetChain else { return }
        guard let chain = table.chain(target) else { throw InvalidOperation(reason: "\(verdict) to a missing chain") }
        guard chain.hook == nil else { throw InvalidOperation(reason: "\(verdict): a base chain cannot be a target") }
    }

    private func check(_ element: SetElement, fits set: NftSet, in table: Table) throws(InvalidOperation) {
        var shown: String { NftValue.element(element, of: set) }
        try checkComment(element.comment)
        guard element.key.count == set.keyLength, (element.keyEnd?.count ?? Int(set.keyLength)) == set.keyLength else {
            throw InvalidOperation(reason: "element \(shown) does not have the \(set.keyLength)-byte key of set \(set.name)")
        }
        guard (element.keyEnd != nil) == set.flags.contains(.interval) else {
            throw InvalidOperation(reason: "element \(shown) is a range but set \(set.name) is not an interval set")
        }
        switch (set.dataType, element.data) {
        case (.none, nil):
            break
        case (.verdict, .verdict(let verdict)?):
            try checkTarget(of: verdict, in: table)
        case (.value(let field), .value(let bytes)?) where bytes.count == field.length:
            break
        default:
            throw InvalidOperation(reason: "element \(shown) does not carry the data type of set \(set.name)")
        }
    }
}

/// What identifies an element within its set: its key range, not data or comment.
struct ElementKey: Hashable {
    var key: [UInt8]
    var keyEnd: [UInt8]?

    init(_ element: SetElement) {
        key = element.key
        keyEnd = element.keyEnd
    }
}

extension Table {
    /// A chain or verdict map that jumps to chain `target`, if any.
    func referrer(of target: String) -> String? {
        let targeting: (Verdict) -> Bool = { $0.targetChain == target }
        if let chain = chains.first(where: { chain in
            chain.rules.contains { $0.expressions.contains { if case .verdict(let verdict) = $0 { targeting(verdict) } else { false } } }
        }) {
            return "chain \(chain.name)"
        }
        if let map = sets.first(where: { set in
            set.elements.contains { if case .verdict(let verdict)? = $0.data { targeting(verdict) } else { false } }
        }) {
            return "map \(map.name)"
        }
        return nil
    }
}

extension Chain {
    func looksUp(_ set: String) -> Bool {
        rules.contains { rule in
            rule.expressions.contains { $0.referencedSet == set }
        }
    }
}
