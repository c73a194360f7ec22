import ZonegatePolicy

/// The outcome of one assertion, proved over every possible set of containers.
public struct AssertionResult: Hashable, Sendable {
    public var assertion: Assertion
    public var holds: Bool
    /// Rules that make a `deny` fail (they allow the flow).
    public var responsibleRules: [String]
    /// Zones whose open side (or audit mode) makes the assertion fail.
    public var responsibleZones: [String]
    /// One line per way the assertion fails, empty when it holds.
    public var failures: [String]
}

/// Proves assertions from the policy alone. Zone selectors may overlap: a container "could be" in
/// zone A and zone B unless their label requirements contradict (see `LabelSatisfiability`), and a
/// CIDR may hold any container's address.
public struct AssertionProver: Sendable {
    public let policy: Policy

    public init(policy: Policy) {
        self.policy = policy
    }

    public func prove() -> [AssertionResult] { policy.assertions.map(prove) }

    public func prove(_ assertion: Assertion) -> AssertionResult {
        var result = AssertionResult(assertion: assertion, holds: true, responsibleRules: [], responsibleZones: [], failures: [])
        for from in assertion.from {
            for to in assertion.to {
                let source = Party(from, policy), destination = Party(to, policy)
                // A party no container or address can be in has no flows: the assertion holds for it.
                if source.isEmpty || destination.isEmpty { continue }
                switch assertion.kind {
                case .deny: proveDeny(from: source, to: destination, assertion.portRanges, into: &result)
                case .allow: proveAllow(from: source, to: destination, assertion.portRanges, into: &result)
                }
            }
        }
        result.holds = result.failures.isEmpty
        result.responsibleRules = unique(result.responsibleRules)
        result.responsibleZones = unique(result.responsibleZones)
        return result
    }

    // MARK: - deny: no member of `from` can reach a member of `to` on those ports

    private func proveDeny(from source: Party, to destination: Party, _ ports: [PortRange], into result: inout AssertionResult) {
        let flow = "\(source) -> \(destination)"
        for rule in policy.rules {
            let shared = rule.portRanges.flatMap { range in ports.compactMap { range.intersection($0) } }
            guard !shared.isEmpty,
                  rule.from.contains(where: { source.canMeet($0, policy) }),
                  rule.to.contains(where: { destination.canMeet($0, policy) }) else { continue }
            result.responsibleRules.append(rule.name)
            let place = rule.location.map { " (\($0))" } ?? ""
            result.failures.append("rule \(rule.name)\(place) allows \(flow) on \(shared.map(\.description).joined(separator: ", "))")
        }
        // Without a rule the flow still passes when neither side is restricted by an enforcing zone.
        guard let sourceOpen = source.canBeOpen(.egress, policy, enforcedOnly: true),
              let destinationOpen = destination.canBeOpen(.ingress, policy, enforcedOnly: true) else { return }
        let open = sourceOpen + destinationOpen
        result.responsibleZones += open.map(\.zone)
        result.failures.append("\(flow) needs no rule: \(open.isEmpty ? "neither side is restricted" : open.map(\.text).joined(separator: "; "))")
    }

    // MARK: - allow: every member of `from` reaches every member of `to` on those ports

    private func proveAllow(from source: Party, to destination: Party, _ ports: [PortRange], into result: inout AssertionResult) {
        let flow = "\(source) -> \(destination)"
        // Kind by kind (a CIDR holds containers and outside addresses; `any` also the host), so
        // that each kind needs only the rules that apply to it.
        var uncovered = PortSet([])
        for sender in source.members {
            for receiver in destination.members {
                if !sender.isContainers && !receiver.isContainers { continue }  // never touched: it passes
                if sender.isSurelyOpen(.egress, policy) && receiver.isSurelyOpen(.ingress, policy) { continue }
                let covering = policy.rules.filter { rule in
                    rule.from.contains { sender.isSurelyIn($0, policy) }.or(sender.isSurelyInAny(rule.from, policy))
                        && rule.to.contains { receiver.isSurelyIn($0, policy) }.or(receiver.isSurelyInAny(rule.to, policy))
                }
                uncovered = PortSet(uncovered.ranges + PortSet(ports).subtracting(PortSet(covering.flatMap(\.portRanges))).ranges)
            }
        }
        guard !uncovered.isEmpty else { return }
        let restricted = [source.restrictedSide(.egress, policy), destination.restrictedSide(.ingress, policy)].compactMap { $0 }
        result.responsibleZones += restricted.map(\.zone)
        result.failures.append("no rule allows all of \(flow) on \(uncovered.ranges.map(\.description).joined(separator: ", "))"
            + (restricted.isEmpty ? "" : " (\(restricted.map(\.text).joined(separator: "; ")))"))
    }

    private func unique(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }
}

private extension Bool {
    func or(_ other: @autoclosure () -> Bool) -> Bool { self || other() }
}

/// Ingress or egress.
enum Side: String { case ingress, egress }

/// An endpoint of an assertion read as the set of peers it may stand for.
private enum Party: CustomStringConvertible {
    /// Containers whose labels match all these selectors (and, when set, with an address in the block).
    case containers(zone: String?, selectors: [LabelSelector], block: CIDRBlock?)
    /// Outside addresses (within the block when set).
    case outside(block: CIDRBlock?)
    case host
    /// A CIDR endpoint: the containers with an address in it, and the outside addresses in it.
    case cidr(CIDRBlock)
    /// `any`: containers, outside addresses and the host.
    case everything

    init(_ endpoint: Endpoint, _ policy: Policy) {
        switch endpoint {
        case .zone(let name): self = .containers(zone: name, selectors: [policy.zone(named: name)!.selector], block: nil)
        case .world: self = .outside(block: nil)
        case .host: self = .host
        case .any: self = .everything
        case .cidr(let block): self = .cidr(block)
        }
    }

    var description: String {
        switch self {
        case .containers(let zone, _, let block): return zone ?? block.map(\.description) ?? "containers"
        case .outside(let block): return block.map(\.description) ?? "world"
        case .host: return "host"
        case .cidr(let block): return block.description
        case .everything: return "any"
        }
    }

    /// The concrete kinds this party stands for (containers, outside addresses, the host), each
    /// its own only member. None for a zone no labels can match, or a block its exceptions empty:
    /// such a party is no one.
    var members: [Party] {
        switch self {
        case .everything: return [.containers(zone: nil, selectors: [], block: nil), .outside(block: nil), .host]
        case .cidr(let block):
            return AddressRanges(block).isEmpty ? [] : [.containers(zone: nil, selectors: [], block: block), .outside(block: block)]
        case .containers(_, let selectors, _) where !LabelSatisfiability.satisfiable(matching: selectors, notMatching: []):
            return []
        default: return [self]
        }
    }

    var isContainers: Bool {
        if case .containers = self { return true }
        return false
    }

    var isEmpty: Bool { members.isEmpty }

    /// Whether some peer of this party can match a rule endpoint.
    func canMeet(_ endpoint: Endpoint, _ policy: Policy) -> Bool {
        members.contains { member in
            switch (member, endpoint) {
            case (_, .any): return true
            case (.containers(_, let selectors, _), .zone(let name)):
                return LabelSatisfiability.satisfiable(matching: selectors + [policy.zone(named: name)!.selector], notMatching: [])
            case (.containers, .cidr(let other)):
                // A container may be on several networks: one of its addresses can be in any block.
                return !AddressRanges(other).isEmpty
            case (.outside(let block), .cidr(let other)):
                return block.map { AddressRanges($0).intersects(AddressRanges(other)) } ?? !AddressRanges(other).isEmpty
            case (.outside, .world), (.host, .host): return true
            default: return false
            }
        }
    }

    /// Whether every peer of this party matches the endpoint.
    func isSurelyIn(_ endpoint: Endpoint, _ policy: Policy) -> Bool {
        members.allSatisfy { member in
            switch (member, endpoint) {
            case (_, .any): return true
            case (.containers(_, let selectors, _), .zone(let name)):
                return !LabelSatisfiability.satisfiable(matching: selectors, notMatching: [policy.zone(named: name)!.selector])
            case (.containers(_, _, let block?), .cidr(let other)), (.outside(let block?), .cidr(let other)):
                return AddressRanges(block).isInside(AddressRanges(other))
            case (.outside, .world), (.host, .host): return true
            default: return false
            }
        }
    }

    /// Whether every container of this party is in one of the zones among `endpoints`.
    func isSurelyInAny(_ endpoints: [Endpoint], _ policy: Policy) -> Bool {
        let zones = endpoints.compactMap { endpoint -> LabelSelector? in
            if case .zone(let name) = endpoint { return policy.zone(named: name)!.selector }
            return nil
        }
        return members.allSatisfy { member in
            guard case .containers(_, let selectors, _) = member, !zones.isEmpty else { return false }
            return !LabelSatisfiability.satisfiable(matching: selectors, notMatching: zones)
        }
    }

    /// nil when every container of the party is restricted on that side by an enforcing zone (or
    /// by any zone, when `enforcedOnly` is false); otherwise the zone (or `unzoned`) that lets one
    /// be open and why (empty: the party holds peers zonegate does not manage).
    func canBeOpen(_ side: Side, _ policy: Policy, enforcedOnly: Bool) -> [(zone: String, text: String)]? {
        for member in members {
            guard case .containers(let zone, let selectors, _) = member else { return [] }
            let restricting = policy.zones.filter {
                $0.access(side) == .restricted && (!enforcedOnly || policy.mode(of: $0) == .enforce)
            }
            // The party's own zone first, so the message names it when it is the open one.
            let unrestricted = policy.zones.filter { !restricting.contains($0) }
            let candidates = unrestricted.filter { $0.name == zone } + unrestricted.filter { $0.name != zone }
            if let open = candidates.first(where: {
                LabelSatisfiability.satisfiable(matching: selectors + [$0.selector], notMatching: restricting.map(\.selector))
            }) {
                return [(open.name, open.access(side) == .restricted ? "\(open.name) is in audit mode, so its \(side) is not enforced"
                                                                      : "\(open.name) has open \(side)")]
            }
            let unzonedRestricted = side == .ingress && policy.defaults.unzoned == .restricted
                && !(enforcedOnly && policy.defaults.mode == .audit)
            if !unzonedRestricted, LabelSatisfiability.satisfiable(matching: selectors, notMatching: policy.zones.map(\.selector)) {
                return [("unzoned", "unzoned containers have open \(side)")]
            }
        }
        return nil
    }

    /// Whether every peer of the party is open on that side (or not managed at all).
    func isSurelyOpen(_ side: Side, _ policy: Policy) -> Bool {
        members.allSatisfy { member in
            guard case .containers(_, let selectors, _) = member else { return true }
            let restricted = policy.zones.filter { $0.access(side) == .restricted }
            if restricted.contains(where: { LabelSatisfiability.satisfiable(matching: selectors + [$0.selector], notMatching: []) }) {
                return false
            }
            let unzonedRestricted = side == .ingress && policy.defaults.unzoned == .restricted
            return !(unzonedRestricted && LabelSatisfiability.satisfiable(matching: selectors, notMatching: policy.zones.map(\.selector)))
        }
    }

    /// The zone (or `unzoned`, under `defaults.unzoned: restricted`) that can restrict this side
    /// for the party, for a failure message.
    func restrictedSide(_ side: Side, _ policy: Policy) -> (zone: String, text: String)? {
        for case .containers(_, let selectors, _) in members {
            if let restricting = policy.zones.first(where: {
                $0.access(side) == .restricted && LabelSatisfiability.satisfiable(matching: selectors + [$0.selector], notMatching: [])
            }) {
                return (restricting.name, "\(self) \(side) can be restricted by \(restricting.name)")
            }
            if side == .ingress, policy.defaults.unzoned == .restricted,
               LabelSatisfiability.satisfiable(matching: selectors, notMatching: policy.zones.map(\.selector)) {
                return ("unzoned", "\(self) ingress can be restricted by defaults.unzoned")
            }
        }
        return nil
    }
}

private extension Zone {
    func access(_ side: Side) -> Access { side == .ingress ? ingress : egress }
}
