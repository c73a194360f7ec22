import ZonegatePolicy

/// Why one rule can allow a flow into or out of a `pci: cde` zone (policy.md, "Rules"): the
/// endpoint that reaches it, on which side, and which CDE zone.
public struct CDEReach: Hashable, Sendable {
    /// How the endpoint reaches the CDE zone, most direct first.
    public enum Kind: Int, Hashable, Sendable, Comparable {
        /// The endpoint is the CDE zone itself.
        case names
        /// `any`: every container, the CDE zone's included.
        case any
        /// A zone whose selector can match a container the CDE zone's selector also matches.
        case sharedZone
        /// A CIDR block with addresses left after its exceptions: a CDE container may hold any address.
        case cidr

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public var rule: String
    /// The CDE zone the reason names.
    public var cdeZone: String
    /// Every CDE zone the rule can reach, through either side (policy order).
    public var cdeZones: [String]
    public var kind: Kind
    /// The rule endpoint that reaches the CDE zone.
    public var endpoint: Endpoint
    /// true: the endpoint is in `to`, so the rule lets flows into the CDE; false: in `from`, out of it.
    public var into: Bool
    /// Whether some endpoint of `to` reaches a CDE zone (flows into the CDE), and of `from` (out of it).
    public var reachesInto = false
    public var reachesOutOf = false

    /// "its to names payments (pci: cde)", "its from names zone shop, which could share a
    /// container with payments (pci: cde)", "its from names any, which includes payments (pci:
    /// cde)", "its to names 10.0.0.0/8, which could cover a payments (pci: cde) container's address".
    public var why: String {
        let side = into ? "to" : "from"
        let zone = "\(cdeZone) (pci: cde)"
        switch kind {
        case .names: return "its \(side) names \(zone)"
        case .any: return "its \(side) names any, which includes \(zone)"
        case .sharedZone: return "its \(side) names zone \(endpoint), which could share a container with \(zone)"
        case .cidr: return "its \(side) names \(endpoint), which could cover a \(zone) container's address"
        }
    }

    /// "into", "out of", or "into and out of" when endpoints of both sides reach a CDE zone.
    public var direction: String {
        reachesInto && reachesOutOf ? "into and out of" : reachesInto || into ? "into" : "out of"
    }
}

/// policy.md: "A rule that can allow a flow into or out of a `pci: cde` zone must carry a
/// non-empty `owner` and `justification`; otherwise `check` rejects the policy with an error at
/// the rule." "Can allow" is the prover's "could be in" (`ProverModel`), over every container
/// that could ever run, not the ones running now: a rule reaches a CDE zone when one of its
/// endpoints, on either side, is
/// - the CDE zone itself (always, even when its selector matches nothing: the rule says it is
///   meant to reach the CDE, and the selector is what is likely wrong);
/// - `any`, when some container can be in the CDE zone;
/// - a zone whose selector and the CDE zone's can match one container together
///   (`LabelSatisfiability`); a zone whose selector contradicts it (one key, different values)
///   does not count;
/// - a CIDR block with addresses left after its exceptions, when some container can be in the
///   CDE zone: a container may hold any address, so its block could cover a CDE container's.
/// `world` and `host` never hold a container; the other side of the rule does not matter
/// (`from: world, to: payments` reaches the CDE through `to`), nor do its ports (never empty).
///
/// Part of a policy's validity: `check`, the other commands that read a policy, and the daemon
/// (start and reload) reject a policy that fails it, whole.
public struct CDEJustification: Sendable {
    public let policy: Policy
    /// Per rule (policy order), why it can reach a CDE zone; nil when it cannot.
    public let reaches: [CDEReach?]

    public init(policy: Policy) {
        self.policy = policy
        let cdeZones = policy.zones.filter { $0.pci == .cde }.map(\.name)
        guard !cdeZones.isEmpty else {
            reaches = Array(repeating: nil, count: policy.rules.count)
            return
        }
        let cdeNames = Set(cdeZones)
        // The prover's questions about one peer (`ProverModel.containerSatisfiable`), asked
        // directly: a container can be in zones A and B when their selectors can match one set of
        // labels together; it can hold an address in a block when the block has one left after its
        // exceptions (a container may hold any address).
        let selectors = Dictionary(policy.zones.map { ($0.name, CompiledSelector($0.selector)) }, uniquingKeysWith: { a, _ in a })
        func together(_ zones: String...) -> Bool {
            LabelSatisfiability.satisfiable(matching: zones.map { selectors[$0] ?? .never }, notMatching: [])
        }
        // The CDE zones some container can be in: only they can be reached through another endpoint.
        let inhabited = cdeZones.filter { together($0) }
        // Per distinct endpoint: how it reaches the CDE and which CDE zones (empty: it does not).
        var answers: [Endpoint: (kind: CDEReach.Kind, zones: [String])] = [:]
        func reach(_ endpoint: Endpoint) -> (kind: CDEReach.Kind, zones: [String]) {
            if let known = answers[endpoint] { return known }
            let answer: (kind: CDEReach.Kind, zones: [String])
            switch endpoint {
            case .zone(let name) where cdeNames.contains(name):
                // The zone itself, and the CDE zones that can share a container with it.
                answer = (.names, [name] + inhabited.filter { $0 != name && together($0, name) })
            case .zone(let name):
                answer = (.sharedZone, inhabited.filter { together($0, name) })
            case .cidr(let block):
                answer = (.cidr, AddressRanges(block).isEmpty ? [] : inhabited)
            case .any:
                answer = (.any, inhabited)
            case .world, .host:
                answer = (.any, [])
            }
            answers[endpoint] = answer
            return answer
        }
        let order = Dictionary(cdeZones.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        reaches = policy.rules.map { rule in
            var best: CDEReach?
            var zones: Set<String> = []
            var sides: Set<Bool> = []
            for (endpoints, into) in [(rule.from, false), (rule.to, true)] {
                for endpoint in endpoints {
                    let found = reach(endpoint)
                    guard let first = found.zones.first else { continue }
                    zones.formUnion(found.zones)
                    sides.insert(into)
                    guard best.map({ found.kind < $0.kind }) ?? true else { continue }
                    best = CDEReach(rule: rule.name, cdeZone: first, cdeZones: [], kind: found.kind, endpoint: endpoint, into: into)
                }
            }
            best?.cdeZones = zones.sorted { order[$0]! < order[$1]! }
            best?.reachesInto = sides.contains(true)
            best?.reachesOutOf = sides.contains(false)
            return best
        }
    }

    /// The rules that can reach a CDE zone, in policy order, with why.
    public var reachingRules: [(rule: Rule, reach: CDEReach)] {
        zip(policy.rules, reaches).compactMap { rule, reach in reach.map { (rule, $0) } }
    }

    /// One error per rule that reaches a CDE zone without a non-empty owner and justification,
    /// at the rule; past `PolicyLimits.diagnostics`, one last one says that more were left out
    /// (as the parser does).
    public var diagnostics: [PolicyDiagnostic] {
        var found: [PolicyDiagnostic] = []
        for (rule, reach) in reachingRules {
            let missing = Self.missingFields(rule.annotations)
            guard !missing.isEmpty else { continue }
            let location = rule.location ?? SourceLocation(file: "policy", line: 1, column: 1)
            guard found.count < PolicyLimits.diagnostics else {
                found.append(PolicyDiagnostic(location, "more than \(PolicyLimits.diagnostics) errors; the rest are not reported"))
                break
            }
            found.append(PolicyDiagnostic(location, "rule \(rule.name) can allow flows \(reach.direction) a CDE zone: \(reach.why); "
                + "add a non-empty \(missing.joined(separator: " and ")) (who owns the flow and its business need, PCI DSS 1.2.5)"))
        }
        return found
    }

    /// Throws the policy's CDE errors, if any, as a rejected policy.
    public func validate() throws(PolicyError) {
        let diagnostics = diagnostics
        if !diagnostics.isEmpty { throw PolicyError(diagnostics) }
    }

    /// `owner` and `justification` when absent or only blanks.
    static func missingFields(_ annotations: RuleAnnotations) -> [String] {
        func blank(_ text: String?) -> Bool { text.map { $0.allSatisfy(\.isWhitespace) } ?? true }
        return [blank(annotations.owner) ? "owner" : nil, blank(annotations.justification) ? "justification" : nil].compactMap { $0 }
    }
}
