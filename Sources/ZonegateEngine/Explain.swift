import ZonegatePolicy

/// The verdict of one flow with the reasons, in the order cli.md gives: zones of each end,
/// restriction of each side, matching rules, the default that applied.
public struct Explanation: Hashable, Sendable {
    public var verdict: VerdictKind
    public var rules: [String]
    public var reasons: [String]
    /// The rules that cover the flow, with what they carry for people (owner, ticket,
    /// justification): who answers for the flow and why it is allowed (PCI DSS 1.2.5).
    public var matchingRules: [ExplainedRule] = []
}

/// A rule that covers an explained flow, with its location and annotations.
public struct ExplainedRule: Hashable, Sendable {
    public var name: String
    public var location: SourceLocation?
    public var owner: String?
    public var ticket: String?
    public var justification: String?
    public var description: String?
    /// true when the rule is what allows the flow; false when the flow needs no rule (no side
    /// restricted) and the rule covers it as well.
    public var allows: Bool

    public init(_ rule: Rule, allows: Bool) {
        name = rule.name
        location = rule.location
        owner = rule.annotations.owner
        ticket = rule.annotations.ticket
        justification = rule.annotations.justification
        description = rule.annotations.description
        self.allows = allows
    }

    /// "owner: payments-platform; ticket: CHG-1234; justification: card auth API; node-exporter metrics".
    public var notes: String {
        [owner.map { "owner: \($0)" }, ticket.map { "ticket: \($0)" }, justification.map { "justification: \($0)" }, description]
            .compactMap { $0 }.joined(separator: "; ")
    }
}

extension PolicyEvaluator {
    public func explain(from source: Peer, to destination: Peer, port: ServicePort) -> Explanation {
        let decision = decide(from: source, to: destination, port: port)
        var reasons = [describe(source, as: "source"), describe(destination, as: "destination")]
        if source == destination, source.isContainer {
            reasons.append("a container's traffic to itself never leaves it: zonegate does not filter it")
            return Explanation(verdict: .allow, rules: [], reasons: reasons)
        }
        if decision.untouched {
            reasons.append("neither end is a managed container: zonegate never touches this flow")
            return Explanation(verdict: .allow, rules: [], reasons: reasons)
        }
        if let (address, scope) = linkScoped(source, destination) {
            // No classified container holds such an address, so the fail-closed step drops it (step 2).
            reasons.append("\(address) is a \(scope) address: it names no container, so it has no identity to judge by;"
                + " broadcast, multicast and link-local traffic of containers is dropped whatever the zones"
                + " (ARP and IPv6 neighbour discovery for a container's own addresses pass)")
            return Explanation(verdict: .deny, rules: [], reasons: reasons)
        }
        reasons.append(describeSide("ingress", of: destination, decision.ingressRestrictions))
        reasons.append(describeSide("egress", of: source, decision.egressRestrictions))
        let flowText = "\(name(of: source)) -> \(name(of: destination)) on \(port)"
        if decision.matchingRules.isEmpty {
            reasons.append("no rule allows \(flowText)")
        }
        var matching: [ExplainedRule] = []
        for ruleName in decision.matchingRules {
            guard let rule = policy.rules.first(where: { $0.name == ruleName }) else { continue }
            let explained = ExplainedRule(rule, allows: !decision.rules.isEmpty)
            matching.append(explained)
            var text = "rule \(rule.name) \(explained.allows ? "allows" : "also covers") \(flowText)"
            if let location = rule.location { text += " (\(location))" }
            if !explained.notes.isEmpty { text += " [\(explained.notes)]" }
            reasons.append(text)
        }
        switch decision.verdict {
        case .allow where decision.rules.isEmpty:
            reasons.append("allowed: no side of the flow is restricted, so it needs no rule")
        case .allow:
            reasons.append("allowed by rule")
        case .deny:
            let action = policy.defaults.action == .drop ? "dropped" : "rejected"
            reasons.append("denied: \(action) (defaults.action: \(policy.defaults.action.rawValue))")
        case .audit:
            let zones = ((decision.ingressRestrictions ?? []) + (decision.egressRestrictions ?? [])).map(\.source)
            reasons.append("would be denied, but only by \(zones.joined(separator: ", ")) in audit mode: it passes and is logged as would-be-denied")
        }
        return Explanation(verdict: decision.verdict, rules: decision.verdict == .allow ? decision.rules : [], reasons: reasons,
                           matchingRules: matching)
    }

    /// The end of a flow with a container that is a broadcast, multicast or link-local address.
    private func linkScoped(_ source: Peer, _ destination: Peer) -> (IPAddress, String)? {
        for (end, other) in [(destination, source), (source, destination)] where other.isContainer {
            if case .address(let address) = end, let scope = address.linkScope { return (address, scope) }
        }
        return nil
    }

    private func describe(_ peer: Peer, as role: String) -> String {
        switch peer {
        case .container(let index):
            let zones = zoneNames(ofContainer: index)
            let name = name(of: peer)
            // Each zone's PCI DSS scope where the policy gives one: "in zone payments (pci: cde)".
            let shown = zones.map { zone in policy.zone(named: zone)?.pci.map { "\(zone) (pci: \($0.rawValue))" } ?? zone }
            return zones.isEmpty
                ? "\(role) \(name) is a managed container in no zone (unzoned)"
                : "\(role) \(name) is a managed container in zone\(zones.count == 1 ? "" : "s") \(shown.joined(separator: ", "))"
        case .world:
            return "\(role) world is an outside address that no CIDR of the policy covers"
        case .host:
            return "\(role) host is the Docker host itself (any of its own addresses, the bridges' gateways among them)"
        case .address(let address):
            let blocks = cidrBlocks.filter { $0.contains(address) }.map(\.description)
            return "\(role) \(address) is an outside address (no container holds it)"
                + (blocks.isEmpty ? "" : " inside \(blocks.joined(separator: "; "))")
        }
    }

    private func describeSide(_ side: String, of peer: Peer, _ restrictions: [Restriction]?) -> String {
        guard let restrictions else { return "\(side): \(name(of: peer)) is not a managed container, so its \(side) is not checked" }
        if restrictions.isEmpty { return "\(side) of \(name(of: peer)) is open" }
        let by = restrictions.map { "\($0.source) (\($0.mode.rawValue))" }.joined(separator: ", ")
        return "\(side) of \(name(of: peer)) is restricted by \(by)"
    }
}
