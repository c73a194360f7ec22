/// The smallest transaction that turns `actual` into `desired`.
///
/// Tables in neither ruleset are never touched. Sets whose definition is unchanged
/// keep their contents and get element-level adds and deletes; a chain whose rules
/// change is flushed and refilled in the same transaction. Throws when `desired`
/// is inconsistent (a rule names a missing set or chain, an element does not fit
/// its set), naming the operation that could not be built.
///
/// A transaction that changes anything also flushes the dynamic sets it keeps: what the packet
/// path wrote there (the userland proxy's grants) was decided under the old state.
public func diff(from actual: Ruleset, to desired: Ruleset) throws(TransactionError) -> Transaction {
    var plan = DiffPlan()
    for wanted in desired.tables {
        plan.compare(actual.table(wanted.family, wanted.name), wanted)
    }
    for existing in actual.tables where desired.table(existing.family, existing.name) == nil {
        plan.late.append(.deleteTable(existing.id))
    }
    if !plan.ordered.isEmpty { plan.elementDeletes += plan.keptDynamicSets }
    var transaction = Transaction(startingFrom: actual)
    for operation in plan.ordered {
        try transaction.add(operation)
    }
    return transaction
}

/// Operations grouped by the phase they must run in, so that nothing refers to an
/// object that is gone or not yet there when the kernel processes the batch.
private struct DiffPlan {
    var tables: [Operation] = []
    var flushes: [Operation] = []
    var elementDeletes: [Operation] = []
    var setDeletes: [Operation] = []
    var chainDeletes: [Operation] = []
    var chainAdds: [Operation] = []
    var setAdds: [Operation] = []
    var elementAdds: [Operation] = []
    var rules: [Operation] = []
    var late: [Operation] = []
    /// Flushes of the dynamic sets that stay as they are.
    var keptDynamicSets: [Operation] = []

    var ordered: [Operation] {
        tables + flushes + elementDeletes + setDeletes + chainDeletes + chainAdds + setAdds + elementAdds + rules + late
    }

    mutating func compare(_ actual: Table?, _ desired: Table) {
        let id = desired.id
        if actual == nil || actual?.flags != desired.flags {
            tables.append(.addTable(id, flags: desired.flags))
        }
        let existing = actual ?? Table(family: desired.family, name: desired.name)
        let redefinedSets = compareSets(existing, desired)

        for chain in existing.chains where desired.chain(chain.name) == nil {
            flushes.append(.flushChain(id, name: chain.name))
            chainDeletes.append(.deleteChain(id, name: chain.name))
        }
        for chain in desired.chains {
            let old = existing.chain(chain.name)
            let recreated = old != nil && old?.hook?.withoutPolicy != chain.hook?.withoutPolicy
            let rewritten = recreated || old?.rules != chain.rules || redefinedSets.contains(where: chain.looksUp)
            if let old, rewritten, !old.rules.isEmpty { flushes.append(.flushChain(id, name: chain.name)) }
            if recreated { chainDeletes.append(.deleteChain(id, name: chain.name)) }
            if old == nil || recreated || old?.hook != chain.hook {
                chainAdds.append(.addChain(id, name: chain.name, hook: chain.hook))
            }
            if old == nil || rewritten {
                rules += chain.rules.map { .addRule(id, chain: chain.name, $0) }
            }
        }
    }

    /// Adds set operations; returns the names of sets deleted and re-created.
    private mutating func compareSets(_ existing: Table, _ desired: Table) -> [String] {
        let id = desired.id
        var redefined: [String] = []
        for set in existing.sets where desired.set(set.name) == nil {
            setDeletes.append(.deleteSet(id, name: set.name))
        }
        for set in desired.sets {
            guard let old = existing.set(set.name), old.definition == set.definition else {
                if existing.set(set.name) != nil {
                    redefined.append(set.name)
                    setDeletes.append(.deleteSet(id, name: set.name))
                }
                setAdds.append(.addSet(id, set.definition))
                if !set.elements.isEmpty { elementAdds.append(.addElements(id, set: set.name, set.elements)) }
                continue
            }
            if set.flags.contains(.dynamic) { keptDynamicSets.append(.flushSet(id, name: set.name)) }
            // An element whose data or comment changed is deleted and added again.
            let oldElements = Set(old.elements), newElements = Set(set.elements)
            let removed = old.elements.filter { !newElements.contains($0) }
            let added = set.elements.filter { !oldElements.contains($0) }
            if !removed.isEmpty { elementDeletes.append(.deleteElements(id, set: set.name, removed)) }
            if !added.isEmpty { elementAdds.append(.addElements(id, set: set.name, added)) }
        }
        return redefined
    }
}

extension BaseChainHook {
    /// The parts of a hook that cannot change without re-creating the chain.
    var withoutPolicy: BaseChainHook {
        var copy = self
        copy.policy = .accept
        return copy
    }
}
