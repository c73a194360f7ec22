/// One way the kernel's tables differ from what the policy and the containers call for, named in
/// nft syntax (`verify`'s ruleset check). Unlike `diff`, which gives the transaction that repairs
/// the tables, a comparison names each difference once, as an auditor reads it:
/// `missing element: add element inet zonegate bound4 { 172.18.0.2 . "veth1" }`,
/// `extra rule in chain inet zonegate forward: ip saddr 10.0.0.1 accept`.
public struct RulesetDifference: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case missingTable = "missing table", extraTable = "extra table", changedTable = "changed table"
        case missingChain = "missing chain", extraChain = "extra chain", changedChain = "changed chain"
        case missingRule = "missing rule", extraRule = "extra rule", reorderedRules = "rules out of order"
        case missingSet = "missing set", extraSet = "extra set", changedSet = "changed set"
        case missingElement = "missing element", extraElement = "extra element"
    }

    public var kind: Kind
    /// The object, in nft syntax.
    public var text: String

    public init(_ kind: Kind, _ text: String) {
        self.kind = kind
        self.text = text
    }

    public var description: String { "\(kind.rawValue): \(text)" }
}

public enum RulesetComparison {
    /// Every difference between `actual` (read back from the kernel) and `desired`, tables in
    /// `desired`'s order then the extra ones. Elements of dynamic sets (the userland proxy's
    /// grants, written by the packet path) are not differences; their definitions are.
    public static func compare(actual: Ruleset, desired: Ruleset) -> [RulesetDifference] {
        var found: [RulesetDifference] = []
        for wanted in desired.tables {
            guard let table = actual.table(wanted.family, wanted.name) else {
                found.append(.init(.missingTable, "table \(wanted.id)"))
                continue
            }
            found += compare(table, wanted)
        }
        for table in actual.tables where desired.table(table.family, table.name) == nil {
            found.append(.init(.extraTable, "table \(table.id)"))
        }
        return found
    }

    private static func compare(_ actual: Table, _ desired: Table) -> [RulesetDifference] {
        var found: [RulesetDifference] = []
        let id = desired.id
        if actual.flags != desired.flags {
            found.append(.init(.changedTable, "table \(id): flags \(actual.flags), expected \(desired.flags)"))
        }
        for set in desired.sets {
            guard let old = actual.set(set.name) else {
                found.append(.init(.missingSet, "add \(set.dataType == .none ? "set" : "map") \(id) \(set.name) { \(NftValue.setBody(set).joined(separator: " ")) }"))
                continue
            }
            if old.definition != set.definition {
                found.append(.init(.changedSet, "set \(id) \(set.name) is { \(NftValue.setBody(old).joined(separator: " ")) }, expected { \(NftValue.setBody(set).joined(separator: " ")) }"))
                continue
            }
            if set.flags.contains(.dynamic) { continue }
            let have = Set(old.elements), want = Set(set.elements)
            for element in set.elements where !have.contains(element) {
                found.append(.init(.missingElement, "add element \(id) \(set.name) { \(NftValue.element(element, of: set)) }"))
            }
            for element in old.elements where !want.contains(element) {
                found.append(.init(.extraElement, "element \(id) \(set.name) { \(NftValue.element(element, of: old)) }"))
            }
        }
        for set in actual.sets where desired.set(set.name) == nil {
            found.append(.init(.extraSet, "set \(id) \(set.name) { \(NftValue.setBody(set).joined(separator: " ")) }"))
        }
        for chain in desired.chains {
            let wanted = "add chain \(id) \(chain.name)" + (chain.hook.map { " { \(NftValue.hook($0)) }" } ?? "")
            guard let old = actual.chain(chain.name) else {
                found.append(.init(.missingChain, wanted))
                found += chain.rules.map { .init(.missingRule, "add rule \(id) \(chain.name) \(RuleRenderer(table: desired).render($0))") }
                continue
            }
            if old.hook != chain.hook {
                let foreign = old.hook?.isForeign == true ? " (<foreign>: values zonegate does not know)" : ""
                found.append(.init(.changedChain, "chain \(id) \(chain.name) has { \(old.hook.map(NftValue.hook) ?? "no hook") }\(foreign), expected { \(chain.hook.map(NftValue.hook) ?? "no hook") }"))
            }
            found += compareRules(old, chain, actualTable: actual, desiredTable: desired)
        }
        for chain in actual.chains where desired.chain(chain.name) == nil {
            found.append(.init(.extraChain, "chain \(id) \(chain.name)" + (chain.hook.map { " { \(NftValue.hook($0)) }" } ?? "")))
            found += chain.rules.map { .init(.extraRule, "in chain \(id) \(chain.name): \(RuleRenderer(table: actual).render($0))") }
        }
        return found
    }

    /// Rules are a sequence: a rule missing or extra is named with its position; the same rules
    /// in another order (which changes what a packet meets first) are one difference.
    private static func compareRules(_ actual: Chain, _ desired: Chain, actualTable: Table, desiredTable: Table) -> [RulesetDifference] {
        guard actual.rules != desired.rules else { return [] }
        let id = desiredTable.id
        var remaining: [Rule: Int] = [:]
        for rule in actual.rules { remaining[rule, default: 0] += 1 }
        var found: [RulesetDifference] = []
        var missing = 0
        for (index, rule) in desired.rules.enumerated() {
            if let count = remaining[rule], count > 0 {
                remaining[rule] = count - 1
            } else {
                missing += 1
                found.append(.init(.missingRule, "add rule \(id) \(desired.name) \(RuleRenderer(table: desiredTable).render(rule)) (expected at position \(index + 1))"))
            }
        }
        var extra = 0
        for (index, rule) in actual.rules.enumerated() where (remaining[rule] ?? 0) > 0 {
            remaining[rule]! -= 1
            extra += 1
            found.append(.init(.extraRule, "in chain \(id) \(actual.name) at position \(index + 1): \(RuleRenderer(table: actualTable).render(rule))"))
        }
        if missing == 0 && extra == 0 {
            found.append(.init(.reorderedRules, "chain \(id) \(desired.name) holds the expected rules in another order"))
        }
        return found
    }

    /// The canonical rendering `verify` hashes into `rulesetDigest`: the nft text of the tables,
    /// sorted by family and name, each table's sets and chains sorted by name and each set's
    /// elements sorted by their text; rules keep their order (it matters). Elements of dynamic
    /// sets are left out (the packet path writes them), so the digest changes only when what
    /// zonegate wrote changes.
    public static func canonicalText(_ ruleset: Ruleset) -> String {
        let tables = ruleset.tables.sorted { ($0.family.description, $0.name) < ($1.family.description, $1.name) }
        return tables.map { table -> String in
            var sorted = table
            sorted.sets = table.sets.sorted { $0.name < $1.name }.map { set in
                var copy = set
                copy.elements = set.flags.contains(.dynamic) ? [] : set.elements.sorted {
                    NftValue.element($0, of: set) < NftValue.element($1, of: set)
                }
                return copy
            }
            sorted.chains = table.chains.sorted { $0.name < $1.name }
            return sorted.nftScript
        }.joined(separator: "\n") + "\n"
    }
}
