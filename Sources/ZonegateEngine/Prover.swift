import Foundation
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

/// Proves assertions from the policy alone, exactly: over every possible container (any labels,
/// any addresses on any number of networks), outside address and the host, not only the ones
/// running now. Zone selectors may overlap; `LabelSatisfiability` decides which zone memberships a
/// container can have, and `ProverModel` which address regions. See docs/prover.md.
public struct AssertionProver: Sendable {
    public let policy: Policy

    public init(policy: Policy) {
        self.policy = policy
    }

    public func prove() -> [AssertionResult] {
        var results: [AssertionResult] = []
        results.reserveCapacity(policy.assertions.count)
        prove { results.append($0) }
        return results
    }

    /// Each assertion's result in policy order, handed over as soon as it is proved: a caller
    /// that prints and drops them holds one result at a time (a `deny` over wide zones can name
    /// thousands of rules, and a thousand such assertions millions of lines).
    ///
    /// Assertions are independent: they are proved on up to `workers` threads (each with its own
    /// `ProverModel`, whose caches are not shared), a batch at a time, and handed over in order.
    public func prove(workers: Int = AssertionProver.defaultWorkers,
                      each body: (AssertionResult) throws -> Void) rethrows {
        let assertions = policy.assertions
        let workers = max(1, min(workers, assertions.count))
        if workers == 1 {
            let model = ProverModel(policy: policy)
            for assertion in assertions {
                let result = prove(assertion, model)
                model.forgetSearches()
                try body(result)
            }
            return
        }
        let models = (0..<workers).map { _ in ProverModel(policy: policy) }
        let batch = 16 * workers
        var start = 0
        while start < assertions.count {
            let end = min(start + batch, assertions.count)
            let slots = UnsafeMutableBufferPointer<AssertionResult?>.allocate(capacity: end - start)
            slots.initialize(repeating: nil)
            defer { slots.deinitialize(); slots.deallocate() }
            let shared = UncheckedBox((models, slots, start, end))
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let (models, slots, start, end) = shared.value
                let model = models[worker]
                // Interleaved, so that neighbouring assertions (often alike in cost) spread out.
                for index in stride(from: start + worker, to: end, by: workers) {
                    slots[index - start] = prove(assertions[index], model)
                    model.forgetSearches()
                }
            }
            for slot in slots { try body(slot!) }
            start = end
        }
    }

    /// Two on this project's 2-core hosts; never more than the processors there are.
    public static var defaultWorkers: Int { min(2, ProcessInfo.processInfo.activeProcessorCount) }

    public func prove(_ assertion: Assertion) -> AssertionResult {
        prove(assertion, ProverModel(policy: policy, also: [assertion]))
    }

    private func prove(_ assertion: Assertion, _ model: ProverModel) -> AssertionResult {
        var result = AssertionResult(assertion: assertion, holds: true, responsibleRules: [], responsibleZones: [], failures: [])
        for from in assertion.from {
            for to in assertion.to {
                // A party no container or address can be in has no flows: the assertion holds for it.
                guard model.satisfiable(PeerConstraint(party: from)), model.satisfiable(PeerConstraint(party: to)) else { continue }
                switch assertion.kind {
                case .deny: proveDeny(from: from, to: to, assertion.portRanges, model, into: &result)
                case .allow: proveAllow(from: from, to: to, assertion.portRanges, model, into: &result)
                }
            }
        }
        result.holds = result.failures.isEmpty
        result.responsibleRules = unique(result.responsibleRules)
        result.responsibleZones = unique(result.responsibleZones)
        return result
    }

    // MARK: - deny: no member of `from` can reach a member of `to` on those ports

    /// A flow passes through a rule, or without one when neither end is restricted by an
    /// enforcing zone. The sender and the receiver are different peers chosen independently, so
    /// "some sender in the rule's `from`" and "some receiver in its `to`" decide each rule exactly.
    private func proveDeny(from: Endpoint, to: Endpoint, _ ports: [PortRange], _ model: ProverModel,
                           into result: inout AssertionResult) {
        let flow = "\(from) -> \(to)"
        // A flow between two peers that are not containers is never touched: no rule is what
        // lets it through, so one end of a responsible rule's flow is a container.
        let senders = model.rules(.from, meeting: from), receivers = model.rules(.to, meeting: to)
        let meeting = senders.any & receivers.any & (senders.containers | receivers.containers)
        for index in meeting.indices {
            let rule = policy.rules[index]
            let shared = rule.portRanges.flatMap { range in ports.compactMap { range.intersection($0) } }
            guard !shared.isEmpty else { continue }
            result.responsibleRules.append(rule.name)
            let place = rule.location.map { " (\($0))" } ?? ""
            result.failures.append("rule \(rule.name)\(place) allows \(flow) on \(shared.map(\.description).joined(separator: ", "))")
        }
        // Without a rule the flow still passes when neither side is restricted by an enforcing zone.
        guard let sourceOpen = model.openSide(.egress, of: from), let destinationOpen = model.openSide(.ingress, of: to) else { return }
        let open = sourceOpen + destinationOpen
        result.responsibleZones += open.map(\.zone)
        result.failures.append("\(flow) needs no rule: \(open.isEmpty ? "neither side is restricted" : open.map(\.text).joined(separator: "; "))")
    }

    // MARK: - allow: every member of `from` reaches every member of `to` on those ports

    /// The assertion fails on a port when some sender and receiver exist with the sender's egress
    /// or the receiver's ingress restricted (audit counts: it would be denied once enforced) and
    /// no rule covering that port with the sender in `from` and the receiver in `to`. The ports
    /// are cut where the covering rules change; each piece is one search (`search`), each side
    /// (egress, ingress) its own case.
    private func proveAllow(from: Endpoint, to: Endpoint, _ ports: [PortRange], _ model: ProverModel,
                            into result: inout AssertionResult) {
        let flow = "\(from) -> \(to)"
        let asserted = PortSet(ports)
        let source = PeerConstraint(party: from), destination = PeerConstraint(party: to)
        // Only rules that some sender and some receiver of the parties can match matter.
        let relevant = (model.rules(.from, meeting: from).any & model.rules(.to, meeting: to).any).indices.filter { index in
            policy.rules[index].portRanges.contains { range in asserted.ranges.contains(where: range.overlaps) }
        }
        let segments = portSegments(asserted, relevant)
        var failing: [PortRange] = []
        var restricted: [(zone: String, text: String)] = []
        for side in [Side.egress, .ingress] {
            let sender = side == .egress ? PeerConstraint(party: from, restricted: .egress) : source
            let receiver = side == .ingress ? PeerConstraint(party: to, restricted: .ingress) : destination
            guard model.satisfiable(side == .egress ? sender : receiver) else { continue }
            var known: [[Int]: Witness?] = [:]
            var witness: Witness?
            for segment in segments {
                let found: Witness?
                if let answer = known[segment.rules] {
                    found = answer
                } else {
                    found = search(sender, receiver, segment.rules, model)
                    known[segment.rules] = found
                }
                guard let found else { continue }
                failing.append(segment.range)
                witness = witness ?? found
            }
            guard let witness else { continue }
            let party = side == .egress ? from : to
            switch model.restrictingZone(side, for: side == .egress ? witness.sender : witness.receiver) {
            case "unzoned"?: restricted.append(("unzoned", "\(party) ingress can be restricted by defaults.unzoned"))
            case let zone?: restricted.append((zone, "\(party) \(side) can be restricted by \(zone)"))
            case nil: break
            }
        }
        guard !failing.isEmpty else { return }
        let uncovered = PortSet(failing)
        result.responsibleZones += restricted.map(\.zone)
        result.failures.append("no rule allows all of \(flow) on \(uncovered.ranges.map(\.description).joined(separator: ", "))"
            + (restricted.isEmpty ? "" : " (\(restricted.map(\.text).joined(separator: "; ")))"))
    }

    /// A sender and a receiver whose flow no rule allows.
    private struct Witness {
        var sender: PeerConstraint
        var receiver: PeerConstraint
    }

    /// Is there a sender and a receiver (meeting the constraints) that none of `rules` covers,
    /// i.e. for each rule the sender is outside its `from` or the receiver outside its `to`?
    /// Each rule is such a two-way clause. Rules neither peer can match any more are dropped; a
    /// rule one peer cannot avoid forces the other out of its side (unit propagation); only the
    /// rules left are branched on, depth first with an explicit stack.
    private func search(_ sender: PeerConstraint, _ receiver: PeerConstraint, _ rules: [Int], _ model: ProverModel) -> Witness? {
        var stack = [(sender: sender, receiver: receiver, rules: rules[...])]
        next: while let state = stack.popLast() {
            var (sender, receiver, remaining) = state
            guard model.satisfiable(sender), model.satisfiable(receiver) else { continue }
            var changed = true
            while changed {
                changed = false
                var open: [Int] = []
                for index in remaining {
                    let rule = policy.rules[index]
                    guard !sender.excludesAll(of: rule.from, model), !receiver.excludesAll(of: rule.to, model),
                          model.satisfiable(sender, matchingAnyOf: rule.from),
                          model.satisfiable(receiver, matchingAnyOf: rule.to) else { continue }  // no longer covers anyone
                    let senderOut = sender.excluding(rule.from, model), receiverOut = receiver.excluding(rule.to, model)
                    switch (model.satisfiable(senderOut), model.satisfiable(receiverOut)) {
                    case (false, false): continue next
                    case (false, true): receiver = receiverOut; changed = true
                    case (true, false): sender = senderOut; changed = true
                    case (true, true): open.append(index)
                    }
                }
                remaining = open[...]
            }
            guard let first = remaining.first else { return Witness(sender: sender, receiver: receiver) }
            // Before branching, the two ends of the search tree: the sender avoids every rule
            // left, or the receiver does (either is a witness; most searches end here).
            let allFrom = remaining.flatMap { policy.rules[$0].from }, allTo = remaining.flatMap { policy.rules[$0].to }
            let senderAvoidsAll = sender.excluding(allFrom, model)
            if model.satisfiable(senderAvoidsAll) { return Witness(sender: senderAvoidsAll, receiver: receiver) }
            let receiverAvoidsAll = receiver.excluding(allTo, model)
            if model.satisfiable(receiverAvoidsAll) { return Witness(sender: sender, receiver: receiverAvoidsAll) }
            let rule = policy.rules[first], rest = remaining.dropFirst()
            // Popped first: the sender avoids the rule; then the receiver does.
            stack.append((sender, receiver.excluding(rule.to, model), rest))
            stack.append((sender.excluding(rule.from, model), receiver, rest))
        }
        return nil
    }

    /// The asserted ports cut where the covering rules change, each piece with the rules
    /// (indices, ascending) whose ports cover it.
    private func portSegments(_ asserted: PortSet, _ rules: [Int]) -> [(range: PortRange, rules: [Int])] {
        var segments: [(range: PortRange, rules: [Int])] = []
        for range in asserted.ranges {
            var events: [Int: [(rule: Int, delta: Int)]] = [Int(range.low): []]
            for rule in rules {
                for covered in policy.rules[rule].portRanges {
                    guard let shared = covered.intersection(range) else { continue }
                    events[Int(shared.low), default: []].append((rule, 1))
                    events[Int(shared.high) + 1, default: []].append((rule, -1))
                }
            }
            let points = events.keys.filter { $0 <= Int(range.high) }.sorted()
            var depth: [Int: Int] = [:]
            for (position, point) in points.enumerated() {
                for event in events[point]! { depth[event.rule, default: 0] += event.delta }
                let end = position + 1 < points.count ? points[position + 1] - 1 : Int(range.high)
                let covering = depth.filter { $0.value > 0 }.keys.sorted()
                segments.append((PortRange(range.proto, UInt16(point), UInt16(end)), covering))
            }
        }
        return segments
    }

    private func unique(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }
}

/// Hands values to worker threads that only read them (the models each go to one worker, the
/// result slots each to one index).
private struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
