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
    public var cdeZone: String
    public var kind: Kind
    /// The rule endpoint that reaches the CDE zone.
    public var endpoint: Endpoint
    /// true: the endpoint is in `to`, so the rule lets flows into the CDE; false: in `from`, out of it.
    public var into: Bool

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

    /// "into" or "out of".
    public var direction: String { into ? "into" : "out of" }
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
        let model = ProverModel(policy: policy)
        // The CDE zones some container can be in: only they can be reached through another endpoint.
        let inhabited = cdeZones.filter { model.containerSatisfiable(PeerConstraint(party: .zone($0))) }
        var answers: [Endpoint: (kind: CDEReach.Kind, zone: String)?] = [:]
        func reach(_ endpoint: Endpoint) -> (kind: CDEReach.Kind, zone: String)? {
            if let known = answers[endpoint] { return known }
            let answer: (kind: CDEReach.Kind, zone: String)?
            switch endpoint {
            case .zone(let name) where cdeNames.contains(name):
                answer = (.names, name)
            case .zone, .cidr:
                let kind: CDEReach.Kind = endpoint.isZone ? .sharedZone : .cidr
                answer = inhabited.first { model.containerSatisfiable(PeerConstraint(party: .zone($0)), matching: endpoint) }
                    .map { (kind, $0) }
            case .any:
                answer = inhabited.first.map { (.any, $0) }
            case .world, .host:
                answer = nil
            }
            answers[endpoint] = answer
            return answer
        }
        reaches = policy.rules.map { rule in
            var best: CDEReach?
            for (endpoints, into) in [(rule.from, false), (rule.to, true)] {
                for endpoint in endpoints {
                    guard let found = reach(endpoint), best.map({ found.kind < $0.kind }) ?? true else { continue }
                    best = CDEReach(rule: rule.name, cdeZone: found.zone, kind: found.kind, endpoint: endpoint, into: into)
                }
            }
            return best
        }
    }

    /// The rules that can reach a CDE zone, in policy order, with why.
    public var reachingRules: [(rule: Rule, reach: CDEReach)] {
        zip(policy.rules, reaches).compactMap { rule, reach in reach.map { (rule, $0) } }
    }

    /// One error per rule that reaches a CDE zone without a non-empty owner and justification,
    /// at the rule.
    public var diagnostics: [PolicyDiagnostic] {
        reachingRules.compactMap { rule, reach in
            let missing = Self.missingFields(rule.annotations)
            guard !missing.isEmpty else { return nil }
            let location = rule.location ?? SourceLocation(file: "policy", line: 1, column: 1)
            return PolicyDiagnostic(location, "rule \(rule.name) can allow flows \(reach.direction) a CDE zone: \(reach.why); "
                + "add a non-empty \(missing.joined(separator: " and ")) (who owns the flow and its business need, PCI DSS 1.2.5)")
        }
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

extension Endpoint {
    fileprivate var isZone: Bool {
        if case .zone = self { return true }
        return false
    }
}
