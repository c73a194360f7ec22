import ZonegatePolicy

/// Decides whether some set of Docker labels matches every selector of one list and none of
/// another: the question "can a container be in zones A and B but not C?" asked over every
/// possible container, not just the ones running now.
///
/// Requirements on different keys are independent, and on one key a requirement only tells apart
/// the values it mentions, "absent" and "any other value": so each key's possible values are a
/// `ValueSet` (finite or cofinite, with or without "absent"), never an enumeration. The required
/// selectors narrow each key's domain; each excluded selector becomes a clause (one of its
/// requirements fails). Clauses are simplified against the domains, unit clauses narrow them
/// (propagation), a clause with a key no other clause uses is satisfied on its own, clauses that
/// share no key are solved apart, and only what is left is branched on (DPLL). See docs/prover.md.
public enum LabelSatisfiability {
    public static func satisfiable(matching required: [LabelSelector], notMatching excluded: [LabelSelector]) -> Bool {
        satisfiable(matching: required.map(CompiledSelector.init), notMatching: excluded.map(CompiledSelector.init))
    }

    /// The same question over selectors compiled once (the prover asks it many times per zone).
    static func satisfiable(matching required: [CompiledSelector], notMatching excluded: [CompiledSelector]) -> Bool {
        var domains: [String: ValueSet] = [:]
        for selector in required {
            guard let parts = selector.parts else { return false }
            for (key, set) in parts {
                let narrowed = domains[key].map { $0.intersection(set) } ?? set
                if narrowed.isEmpty { return false }
                domains[key] = narrowed
            }
        }
        var clauses: [[Literal]] = []
        for selector in excluded {
            // A selector that matches nothing is never matched; one with no requirement always is.
            guard let parts = selector.parts else { continue }
            if parts.isEmpty { return false }
            // Nor is one that the required selectors already contradict (most of them, in a large
            // policy): no clause to build.
            if parts.contains(where: { part in domains[part.key].map { !$0.intersects(part.set) } ?? false }) { continue }
            clauses.append(parts.map { Literal(key: $0.key, allowed: $0.set.complement) })
        }
        return solve(domains, clauses)
    }

    /// One literal of a clause: the key's value lies in `allowed`.
    struct Literal {
        var key: String
        var allowed: ValueSet
    }

    private typealias State = (domains: [String: ValueSet], clauses: [[Literal]])

    /// Propagation first; then the clauses left fall into components that share no key, each
    /// decided by its own search.
    private static func solve(_ domains: [String: ValueSet], _ clauses: [[Literal]]) -> Bool {
        guard let state = propagate((domains, clauses)) else { return false }
        return components(state.clauses).allSatisfy { search((state.domains, $0)) }
    }

    /// Depth-first search with an explicit stack (no recursion, whatever the number of clauses):
    /// propagate, then branch on the most mentioned key of a shortest clause. The key's domain is
    /// split into classes that decide every literal on it: "a value no literal names" first
    /// (it satisfies every literal that excludes values, which is how most clauses read), then
    /// "absent", then each named value; past a few named values, the named ones together, split
    /// later on one literal at a time (holds, fails), so that a key of a thousand named values
    /// never makes a thousand branches at once.
    private static func search(_ start: State) -> Bool {
        var stack = [start]
        while let state = stack.popLast() {
            guard let state = propagate(state) else { continue }
            if state.clauses.isEmpty { return true }
            let clause = state.clauses.min { $0.count < $1.count }!
            var occurrences: [String: Int] = [:]
            for clause in state.clauses { for literal in clause { occurrences[literal.key, default: 0] += 1 } }
            let literal = clause.max { occurrences[$0.key]! < occurrences[$1.key]! }!
            let key = literal.key
            let domain = state.domains[key] ?? .everything
            var named: Set<String> = []
            for clause in state.clauses { for other in clause where other.key == key { named.formUnion(other.allowed.values) } }
            named = named.filter { domain.contains($0) }
            let unnamed = domain.intersection(ValueSet(values: named, cofinite: true, absent: false))
            let absent = domain.intersection(ValueSet(values: [], cofinite: false, absent: true))
            var classes: [ValueSet]
            if named.count <= 8 {
                classes = [unnamed, absent] + named.sorted().map { ValueSet(values: [$0], cofinite: false, absent: false) }
            } else if !unnamed.isEmpty || !absent.isEmpty {
                classes = [unnamed, absent, ValueSet(values: named, cofinite: false, absent: false)]
            } else {
                classes = [domain.intersection(literal.allowed), domain.intersection(literal.allowed.complement)]
            }
            // Pushed in reverse: the first class is tried first.
            for narrowed in classes.reversed() where !narrowed.isEmpty {
                var domains = state.domains
                domains[key] = narrowed
                stack.append((domains, state.clauses))
            }
        }
        return false
    }

    /// Simplifies the clauses against the domains, narrows domains by unit clauses and drops
    /// clauses that a key of their own satisfies, until nothing changes; nil on a contradiction.
    /// Left: clauses of two or more undecided literals, each sharing every key with another clause.
    private static func propagate(_ state: State) -> State? {
        var (domains, clauses) = state
        while true {
            var changed = false
            var kept: [[Literal]] = []
            kept.reserveCapacity(clauses.count)
            for clause in clauses {
                var literals: [Literal] = []
                var satisfied = false
                for literal in clause {
                    let domain = domains[literal.key] ?? .everything
                    if !domain.intersects(literal.allowed) { continue }           // this literal cannot hold
                    if domain.isSubset(of: literal.allowed) { satisfied = true; break }  // it always holds
                    literals.append(literal)
                }
                if satisfied { continue }
                if literals.isEmpty { return nil }
                if literals.count == 1 {
                    // Unit: the key must take a value in `allowed`.
                    let literal = literals[0]
                    let narrowed = (domains[literal.key] ?? .everything).intersection(literal.allowed)
                    if narrowed.isEmpty { return nil }
                    domains[literal.key] = narrowed
                    changed = true
                    continue
                }
                kept.append(literals)
            }
            clauses = kept
            if changed { continue }  // simplify against the narrowed domains first
            // Once the domains are settled: a clause with a literal on a key that no other clause
            // mentions is satisfied by that key alone (its domain meets `allowed`, or the literal
            // would have been dropped), whatever the other clauses need.
            var occurrences: [String: Int] = [:]
            for clause in clauses { for literal in clause { occurrences[literal.key, default: 0] += 1 } }
            let before = clauses.count
            clauses.removeAll { clause in clause.contains { occurrences[$0.key] == 1 } }
            if clauses.count != before { changed = true }
            if clauses.isEmpty || !changed { return (domains, clauses) }
        }
    }

    /// Groups clauses connected through shared keys.
    private static func components(_ clauses: [[Literal]]) -> [[[Literal]]] {
        var parent = Array(clauses.indices)
        func find(_ index: Int) -> Int {
            var index = index
            while parent[index] != index { parent[index] = parent[parent[index]]; index = parent[index] }
            return index
        }
        var owner: [String: Int] = [:]
        for (index, clause) in clauses.enumerated() {
            for literal in clause {
                if let other = owner[literal.key] {
                    let a = find(index), b = find(other)
                    if a != b { parent[a] = b }
                } else {
                    owner[literal.key] = index
                }
            }
        }
        var groups: [Int: [[Literal]]] = [:]
        var order: [Int] = []
        for (index, clause) in clauses.enumerated() {
            let root = find(index)
            if groups[root] == nil { order.append(root) }
            groups[root, default: []].append(clause)
        }
        return order.map { groups[$0]! }
    }
}

/// A selector reduced to one value set per key (the intersection of its requirements on that
/// key); `parts` nil when two of them contradict, so that it matches no labels at all.
struct CompiledSelector: Hashable, Sendable {
    var parts: [(key: String, set: ValueSet)]?

    init(_ selector: LabelSelector) {
        var sets: [String: ValueSet] = [:]
        var order: [String] = []
        for requirement in selector.requirements {
            let set = ValueSet(requirement)
            if let known = sets[requirement.key] {
                sets[requirement.key] = known.intersection(set)
            } else {
                sets[requirement.key] = set
                order.append(requirement.key)
            }
        }
        if sets.values.contains(where: \.isEmpty) {
            parts = nil
        } else {
            parts = order.map { ($0, sets[$0]!) }
        }
    }

    /// Whether the selector matches no labels at all.
    var isUnsatisfiable: Bool { parts == nil }

    static func == (a: CompiledSelector, b: CompiledSelector) -> Bool {
        switch (a.parts, b.parts) {
        case (nil, nil): return true
        case (let x?, let y?): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.set == $1.set }
        default: return false
        }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(parts == nil)
        for part in parts ?? [] {
            hasher.combine(part.key)
            hasher.combine(part.set)
        }
    }
}

/// A set of label values of one key, "absent" included or not: either the finite set `values`,
/// or (when `cofinite`) every value except `values`. Closed under intersection and complement,
/// so every selector requirement, and every combination of them, is one.
struct ValueSet: Hashable, Sendable {
    var values: Set<String>
    var cofinite: Bool
    var absent: Bool

    static let everything = ValueSet(values: [], cofinite: true, absent: true)

    init(values: Set<String>, cofinite: Bool, absent: Bool) {
        self.values = values
        self.cofinite = cofinite
        self.absent = absent
    }

    init(_ requirement: LabelSelector.Requirement) {
        switch requirement.op {
        case .in: self.init(values: Set(requirement.values), cofinite: false, absent: false)
        case .notIn: self.init(values: Set(requirement.values), cofinite: true, absent: true)
        case .exists: self.init(values: [], cofinite: true, absent: false)
        case .doesNotExist: self.init(values: [], cofinite: false, absent: true)
        }
    }

    var isEmpty: Bool { !absent && !cofinite && values.isEmpty }

    func contains(_ value: String?) -> Bool {
        guard let value else { return absent }
        return values.contains(value) != cofinite
    }

    var complement: ValueSet { ValueSet(values: values, cofinite: !cofinite, absent: !absent) }

    func intersection(_ other: ValueSet) -> ValueSet {
        let absent = self.absent && other.absent
        switch (cofinite, other.cofinite) {
        case (false, false):
            let (small, large) = values.count <= other.values.count ? (values, other.values) : (other.values, values)
            return ValueSet(values: small.filter(large.contains), cofinite: false, absent: absent)
        case (false, true): return ValueSet(values: values.subtracting(other.values), cofinite: false, absent: absent)
        case (true, false): return ValueSet(values: other.values.subtracting(values), cofinite: false, absent: absent)
        case (true, true): return ValueSet(values: values.union(other.values), cofinite: true, absent: absent)
        }
    }

    /// Whether the two share a value (or both hold "absent"), without building the intersection.
    func intersects(_ other: ValueSet) -> Bool {
        if absent && other.absent { return true }
        switch (cofinite, other.cofinite) {
        case (false, false):
            let (small, large) = values.count <= other.values.count ? (values, other.values) : (other.values, values)
            return small.contains(where: large.contains)
        case (false, true): return values.contains { !other.values.contains($0) }
        case (true, false): return other.values.contains { !values.contains($0) }
        case (true, true): return true  // both leave out finitely many of infinitely many values
        }
    }

    func isSubset(of other: ValueSet) -> Bool { !intersects(other.complement) }
}
