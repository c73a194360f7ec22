import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset

/// The outcome of one of verify's checks: a pass/fail line and what it found.
public struct VerifyCheck: Hashable, Sendable {
    public enum Result: String, Hashable, Sendable { case pass, fail }

    public var name: String
    public var result: Result
    /// One line each: a difference, a violation, a probe that disagrees, a note.
    public var details: [String]

    public init(name: String, result: Result, details: [String] = []) {
        self.name = name
        self.result = result
        self.details = details
    }
}

/// What a probe saw for one flow of the matrix (cli.md: `probe` and `probeNote` in `flows`).
public enum FlowProbe: String, Hashable, Sendable {
    case reached, blocked
    case notProbed = "not-probed"
}

/// One row of the matrix with its probe, as `evidence.json` lists it.
public struct EvidenceFlow: Hashable, Sendable {
    public var flow: MatrixFlow
    public var probe: FlowProbe
    public var probeNote: String?
    /// For an allowed flow that did not get through: the other layer that blocked it.
    public var blockedBy: String?

    public init(_ flow: MatrixFlow, probe: FlowProbe = .notProbed, probeNote: String? = nil, blockedBy: String? = nil) {
        self.flow = flow
        self.probe = probe
        self.probeNote = probeNote
        self.blockedBy = blockedBy
    }

    /// The matrix lets it through (`allow`, or `audit`: denied only in audit mode, so it passes).
    public var allowed: Bool { flow.verdict != .deny }

    /// Whether the probe contradicts the matrix: a denied flow that got through, or an allowed
    /// flow blocked with no other layer named. Not probed never agrees, but is no contradiction.
    public var disagreement: String? {
        switch probe {
        case .reached where !allowed:
            return "leak: \(flow.from) -> \(flow.to) \(flow.port) got through; the policy denies it"
        case .blocked where allowed && blockedBy == nil:
            return "\(flow.from) -> \(flow.to) \(flow.port) was blocked; the policy allows it (\(flow.rules.isEmpty ? "open zones" : flow.rules.joined(separator: ", ")))"
                + (probeNote.map { ": \($0)" } ?? "")
        default:
            return nil
        }
    }
}

/// An assertion checked against the current containers.
public struct AssertionOutcome: Hashable, Sendable {
    public var name: String
    public var holds: Bool
    /// The flows of current containers that break it, one line each (bounded).
    public var violations: [String]

    public init(name: String, holds: Bool, violations: [String]) {
        self.name = name
        self.holds = holds
        self.violations = violations
    }
}

/// verify's checks that need no kernel: pure functions over values, so that tests give them
/// fixed inputs.
public enum VerifyChecks {
    /// Violations listed per assertion, at most; the count of the rest follows.
    public static let violationLimit = 100
    /// Details listed per check, at most.
    public static let detailLimit = 1_000

    /// The ruleset check from the comparison's differences.
    public static func ruleset(_ differences: [RulesetDifference]) -> VerifyCheck {
        VerifyCheck(name: "ruleset", result: differences.isEmpty ? .pass : .fail,
                    details: bounded(differences.map(\.description), noun: "differences"))
    }

    /// Each assertion over the current containers (not every possible container: that is what
    /// `check` proves). A `deny` breaks when a current flow it covers is allowed (or passes in
    /// audit mode), an `allow` when one is denied. Flows to containers are the matrix's rows (a
    /// container's own ports); flows to `world` or `host` are evaluated from each container at a
    /// port of each stretch of the assertion's ports where no rule's range begins or ends, so
    /// every verdict those ports can have is seen.
    public static func assertions(_ evaluator: PolicyEvaluator, matrix flows: [MatrixFlow]) -> [AssertionOutcome] {
        let containers = evaluator.inventory.containers
        let names = containers.indices.map { evaluator.name(of: .container($0)) }
        var indexOf: [String: Int] = [:]
        for (index, name) in names.enumerated() { indexOf[name] = index }
        func peer(_ name: String) -> Peer {
            if let index = indexOf[name] { return .container(index) }
            return name == "world" ? .world : .host
        }
        func covers(_ endpoints: [Endpoint], _ peer: Peer) -> Bool {
            endpoints.contains { endpoint in
                switch (endpoint, peer) {
                case (.any, _): return true
                case (.zone(let zone), .container(let index)): return evaluator.zoneNames(ofContainer: index).contains(zone)
                case (.cidr(let block), .container(let index)): return containers[index].addresses.contains(where: block.contains)
                case (.world, .world), (.host, .host): return true
                default: return false
                }
            }
        }
        return evaluator.policy.assertions.map { assertion in
            var violations: [String] = []
            var count = 0
            func note(_ from: String, _ to: String, _ port: ServicePort, _ verdict: VerdictKind, _ rules: [String]) {
                let broken = assertion.kind == .deny ? verdict != .deny : verdict == .deny
                guard broken else { return }
                count += 1
                guard violations.count < violationLimit else { return }
                if assertion.kind == .deny {
                    let why = rules.isEmpty ? (verdict == .audit ? "passes in audit mode" : "open zones") : "rules \(rules.joined(separator: ", "))"
                    violations.append("\(from) -> \(to) \(port) is allowed (\(why))")
                } else {
                    violations.append("\(from) -> \(to) \(port) is denied")
                }
            }
            for flow in flows where covers(assertion.from, peer(flow.from)) && covers(assertion.to, peer(flow.to))
                && assertion.portRanges.contains(where: { $0.contains(flow.port) }) {
                note(flow.from, flow.to, flow.port, flow.verdict, flow.rules)
            }
            let outside = [Peer.world, .host].filter { covers(assertion.to, $0) }
            if !outside.isEmpty {
                let ports = representativePorts(assertion.portRanges, rules: evaluator.policy.rules)
                for index in containers.indices where covers(assertion.from, .container(index)) {
                    for destination in outside {
                        for port in ports {
                            let decision = evaluator.decide(from: .container(index), to: destination, port: port)
                            guard !decision.untouched else { continue }
                            note(names[index], evaluator.name(of: destination), port, decision.verdict, decision.rules)
                        }
                    }
                }
            }
            if count > violations.count { violations.append("... and \(count - violations.count) more") }
            return AssertionOutcome(name: assertion.name, holds: count == 0, violations: violations)
        }
    }

    /// One port of each stretch of `ranges` on which every rule's ports either all match or none do.
    static func representativePorts(_ ranges: [PortRange], rules: [ZonegatePolicy.Rule]) -> [ServicePort] {
        var ports: Set<ServicePort> = []
        for range in ranges {
            guard range.proto.hasPorts else {
                ports.insert(ServicePort(0, range.proto))
                continue
            }
            var points: Set<Int> = [Int(range.low)]
            for rule in rules {
                for other in rule.portRanges where other.proto == range.proto {
                    for point in [Int(other.low), Int(other.high) + 1] where point >= Int(range.low) && point <= Int(range.high) {
                        points.insert(point)
                    }
                }
            }
            for point in points { ports.insert(ServicePort(UInt16(point), range.proto)) }
        }
        return ports.sorted()
    }

    public static func assertionsCheck(_ outcomes: [AssertionOutcome]) -> VerifyCheck {
        let broken = outcomes.filter { !$0.holds }
        let details = broken.flatMap { outcome in ["assertion \(outcome.name) fails:"] + outcome.violations.map { "  " + $0 } }
        return VerifyCheck(name: "assertions", result: broken.isEmpty ? .pass : .fail, details: bounded(details, noun: "lines"))
    }

    /// The probe check: fails on a contradiction; not-probed flows are counted in the details
    /// (with their reasons), never as agreeing and never as failing.
    public static func probes(_ flows: [EvidenceFlow], ran: Bool) -> VerifyCheck {
        guard ran else {
            return VerifyCheck(name: "probes", result: .pass, details: ["not run (without --probe): no flow was probed"])
        }
        let contradictions = flows.compactMap(\.disagreement)
        var details: [String] = []
        let reached = flows.count { $0.probe == .reached }, blocked = flows.count { $0.probe == .blocked }
        let notProbed = flows.filter { $0.probe == .notProbed }
        let otherLayer = flows.filter { $0.probe == .blocked && $0.allowed && $0.blockedBy != nil }
        details.append("\(flows.count) flows: \(reached) reached, \(blocked) blocked, \(notProbed.count) not probed")
        if !otherLayer.isEmpty {
            var layers: [String: Int] = [:]
            for flow in otherLayer { layers[flow.blockedBy!, default: 0] += 1 }
            details += layers.sorted { $0.key < $1.key }.map { "\($0.value) allowed flows blocked by another layer: \($0.key)" }
        }
        if !notProbed.isEmpty {
            var reasons: [String: Int] = [:]
            for flow in notProbed { reasons[flow.probeNote ?? "no reason given", default: 0] += 1 }
            details += reasons.sorted { $0.key < $1.key }.map { "\($0.value) flows not probed (they do not count as agreeing): \($0.key)" }
        }
        return VerifyCheck(name: "probes", result: contradictions.isEmpty ? .pass : .fail, details: bounded(details + contradictions, noun: "lines"))
    }

    static func bounded(_ lines: [String], noun: String) -> [String] {
        lines.count <= detailLimit ? lines : Array(lines.prefix(detailLimit)) + ["... and \(lines.count - detailLimit) more \(noun)"]
    }
}
