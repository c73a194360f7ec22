import Logging
import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset

/// The structured log event of one denied (or, in audit mode, would-be-denied) new flow,
/// policy.md step 7: both ends by container name and zones (or address), protocol, port, and
/// which side was restricted with no rule allowing the flow.
///
/// ```
/// flow denied from=web-1 from_zones=[web] to=pay-1 to_zones=[payments] proto=tcp port=8443
///   reason="ingress of pay-1 is restricted by zone payments and no rule allows web-1 -> pay-1 on 8443/tcp" …
/// ```
public enum DeniedFlowEvent {
    public static let deniedMessage = "flow denied"
    public static let auditMessage = "flow would be denied (audit)"

    /// The event for `flow` under the policy in force. Ends are judged as the ruleset judged them:
    /// an address of `hostAddresses` is `host`, any other address no container holds is outside.
    /// Metadata: `from`, `from_address`, `from_zones` (containers only; a list, empty for an
    /// unzoned container), the same for `to`, `proto`, `port` and `source_port` (numbers; absent
    /// for protocols without ports),
    /// `in`/`out` interfaces when known, and `reason`.
    public static func make(_ flow: LoggedFlow, evaluator: PolicyEvaluator,
                            hostAddresses: Set<IPAddress>) -> (message: String, metadata: Logger.Metadata) {
        func peer(_ address: IPAddress) -> Peer { hostAddresses.contains(address) ? .host : evaluator.peer(at: address) }
        let source = peer(flow.source), destination = peer(flow.destination)
        var metadata: Logger.Metadata = [
            "from": "\(evaluator.name(of: source))", "from_address": "\(flow.source)",
            "to": "\(evaluator.name(of: destination))", "to_address": "\(flow.destination)",
            "proto": "\(flow.transport)",
            "reason": "\(reason(flow, source, destination, evaluator))",
        ]
        if let zones = zones(of: source, evaluator) { metadata["from_zones"] = .list(zones) }
        if let zones = zones(of: destination, evaluator) { metadata["to_zones"] = .list(zones) }
        if flow.transport.hasPorts {
            metadata["port"] = .number(Int(flow.destinationPort))
            metadata["source_port"] = .number(Int(flow.sourcePort))
        }
        if let name = flow.inInterface { metadata["in"] = "\(name)" }
        if let name = flow.outInterface { metadata["out"] = "\(name)" }
        return (flow.kind == .deny ? deniedMessage : auditMessage, metadata)
    }

    /// The event for flows the kernel logged that never reached zonegate (its log socket
    /// overflowed): no flow to name, but the loss is not silent.
    public static func lost(_ count: Int) -> (message: String, metadata: Logger.Metadata) {
        ("\(count) denied-flow event\(count == 1 ? "" : "s") lost", ["lost": .number(count), "reason": "the flow log socket overflowed"])
    }

    /// The event for flows the rate limit kept out of the log: "3 denied-flow events suppressed".
    public static func suppressed(_ count: Int) -> (message: String, metadata: Logger.Metadata) {
        ("\(count) denied-flow event\(count == 1 ? "" : "s") suppressed", ["suppressed": .number(count)])
    }

    private static func zones(of peer: Peer, _ evaluator: PolicyEvaluator) -> [String]? {
        guard case .container(let index) = peer else { return nil }
        return evaluator.zoneNames(ofContainer: index)
    }

    /// "ingress of pay-1 is restricted by zone payments and no rule allows web-1 -> pay-1 on 8443/tcp".
    private static func reason(_ flow: LoggedFlow, _ source: Peer, _ destination: Peer, _ evaluator: PolicyEvaluator) -> String {
        let from = evaluator.name(of: source), to = evaluator.name(of: destination)
        guard let port = flow.servicePort else {
            return "no rule can allow \(flow.transport) (rules name tcp, udp, sctp and icmp): \(from) -> \(to) is denied"
        }
        let decision = evaluator.decide(from: source, to: destination, port: port)
        let sides = [side("ingress", of: to, decision.ingressRestrictions), side("egress", of: from, decision.egressRestrictions)]
            .compactMap { $0 }
        guard !sides.isEmpty, decision.rules.isEmpty else {
            // The rules that logged it were compiled from an earlier policy or inventory.
            let now = decision.untouched ? "no longer involves a managed container" : "now allows it"
            return "denied by the ruleset in force when it was sent; the current policy \(now): \(from) -> \(to) on \(port)"
        }
        return sides.joined(separator: ", ") + (sides.count > 1 ? "," : "") + " and no rule allows \(from) -> \(to) on \(port)"
    }

    /// "ingress of pay-1 is restricted by zone payments", "by zones a, b (audit)", "by defaults.unzoned".
    private static func side(_ side: String, of name: String, _ restrictions: [Restriction]?) -> String? {
        guard let restrictions, !restrictions.isEmpty else { return nil }
        let zones = restrictions.filter { $0.source != "defaults.unzoned" }
        var by: [String] = []
        if !zones.isEmpty {
            let audited = zones.allSatisfy { $0.mode == .audit } ? " (audit)" : ""
            by.append("zone\(zones.count == 1 ? "" : "s") \(zones.map(\.source).joined(separator: ", "))\(audited)")
        }
        if let unzoned = restrictions.first(where: { $0.source == "defaults.unzoned" }) {
            by.append("defaults.unzoned" + (unzoned.mode == .audit ? " (audit)" : ""))
        }
        return "\(side) of \(name) is restricted by \(by.joined(separator: ", "))"
    }
}

/// A token bucket for denied-flow events, on top of the kernel's own limit, so that a flood
/// cannot flood the log: `rate` events a second with bursts of `burst`; what it suppresses is
/// counted and reported as one "N denied-flow events suppressed" line at most once per
/// `summaryInterval`. A value: the caller passes the time, as an instant of its clock, and keeps
/// one per log stream.
public struct EventRateLimiter<Instant: InstantProtocol<Duration>>: Sendable {
    /// What to do with one event.
    public struct Admission: Equatable, Sendable {
        /// Log the event.
        public var log: Bool
        /// Log `DeniedFlowEvent.suppressed(count)` first: events suppressed since the last summary.
        public var suppressedSummary: Int?

        public init(log: Bool, suppressedSummary: Int?) {
            self.log = log
            self.suppressedSummary = suppressedSummary
        }
    }

    public let rate: Double
    public let burst: Int
    public let summaryInterval: Duration
    private var tokens: Double
    private var refilled: Instant?
    private var suppressed = 0
    /// When the first event since the last summary was suppressed.
    private var suppressingSince: Instant?

    public init(rate: Double = 20, burst: Int = 40, summaryInterval: Duration = .seconds(10)) {
        self.rate = rate
        self.burst = burst
        self.summaryInterval = summaryInterval
        tokens = Double(burst)
    }

    /// Takes a token for an event at `now`: logged if one was left, counted as suppressed if not.
    public mutating func admit(at now: Instant) -> Admission {
        if let refilled {
            let elapsed = Double(refilled.duration(to: now) / .microseconds(1)) / 1_000_000
            tokens = min(Double(burst), tokens + max(0, elapsed) * rate)
        }
        refilled = now
        let log = tokens >= 1
        if log {
            tokens -= 1
        } else {
            if suppressed == 0 { suppressingSince = now }
            suppressed += 1
        }
        return Admission(log: log, suppressedSummary: summary(at: now))
    }

    /// The count to report once events have been suppressed for `summaryInterval`; call it from
    /// a timer too, so that the end of a flood is reported without waiting for the next event.
    public mutating func summary(at now: Instant) -> Int? {
        guard suppressed > 0, let suppressingSince, suppressingSince.duration(to: now) >= summaryInterval else { return nil }
        defer { suppressed = 0 }
        return suppressed
    }
}
