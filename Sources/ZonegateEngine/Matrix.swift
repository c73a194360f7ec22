import ZonegatePolicy

/// One row of the reachability matrix.
public struct MatrixFlow: Hashable, Sendable {
    public var from: String
    public var to: String
    public var port: ServicePort
    public var verdict: VerdictKind
    public var rules: [String]
}

/// One row as the streaming walk gives it: the ends by index, so that a renderer encodes each
/// name once rather than once per row.
public struct MatrixRow: Hashable, Sendable {
    /// An index of `ReachabilityMatrix.sourceNames`: the containers in inventory order, then
    /// `world`, then `host`.
    public var source: Int
    /// An index of the inventory's containers (and of `sourceNames`).
    public var destination: Int
    public var port: ServicePort
    public var verdict: VerdictKind
    /// The rules that allow it (empty when denied or allowed by open sides).
    public var rules: [String]

    public init(source: Int, destination: Int, port: ServicePort, verdict: VerdictKind, rules: [String]) {
        self.source = source
        self.destination = destination
        self.port = port
        self.verdict = verdict
        self.rules = rules
    }
}

/// Counts over the whole matrix, computed per identity rather than per container pair.
public struct MatrixSummary: Hashable, Sendable {
    public var containers: Int
    /// Distinct (zones, CIDR blocks) combinations: the unit the engine reasons in.
    public var identities: Int
    public var flows: Int
    public var allowed: Int
    public var denied: Int
    public var audited: Int
}

/// The reachability matrix of cli.md: every source (each container, `world`, `host`), every other
/// destination container, every port of the destination.
///
/// The rows are walked, not stored: `forEachRow` hands each row to its caller as it is computed,
/// so memory follows the number of containers (their names, classes and distinct ports) and a
/// bounded verdict cache, never the number of rows. Time is one step per row plus one per source
/// and per container: a source visits only the containers that have ports.
public struct ReachabilityMatrix: Sendable {
    /// The most containers a matrix covers (README, "Limits"): 10,000 containers with one port
    /// each are already 100 million rows.
    public static let maximumContainers = 10_000

    public let evaluator: PolicyEvaluator

    public init(_ evaluator: PolicyEvaluator) {
        self.evaluator = evaluator
    }

    /// Row sources' names as they are shown: each container (unambiguously, see
    /// `PolicyEvaluator.name(of:)`), then `world`, then `host`.
    public var sourceNames: [String] {
        evaluator.inventory.containers.indices.map { evaluator.name(of: .container($0)) } + ["world", "host"]
    }

    /// The number of sources: each container, `world` and `host`.
    public var sourceCount: Int { evaluator.inventory.containers.count + 2 }

    /// Every row, in inventory order (containers as sources first, then `world`, then `host`),
    /// handed to `body` as it is computed.
    ///
    /// A verdict depends only on (source class, destination identity, port). Each distinct
    /// (destination identity, port) is a slot, numbered once before the walk; a source class
    /// keeps one outcome per slot, so a row costs one array read once its class has met the slot.
    /// The outcomes kept are bounded (`memoLimit`): past it they are forgotten and recomputed.
    ///
    /// - Parameter memoLimit: outcomes kept at once (tests make it small to exercise forgetting).
    public func forEachRow(memoLimit: Int = Self.memoLimit, _ body: (MatrixRow) throws -> Void) rethrows {
        let containers = evaluator.inventory.containers
        let identities = evaluator.identityOfContainer
        // Only containers with ports are destinations of any row.
        var slotOf: [SlotKey: Int32] = [:]
        var slots: [(identity: Int, port: ServicePort)] = []
        var destinations: [(index: Int, ports: [ServicePort], slots: [Int32])] = []
        for index in containers.indices {
            let ports = Self.distinct(containers[index].ports)
            guard !ports.isEmpty else { continue }
            let numbers = ports.map { port -> Int32 in
                let key = SlotKey(identity: identities[index], port: port)
                if let known = slotOf[key] { return known }
                slots.append((identities[index], port))
                slotOf[key] = Int32(slots.count - 1)
                return Int32(slots.count - 1)
            }
            destinations.append((index, ports, numbers))
        }
        slotOf = [:]
        guard !destinations.isEmpty else { return }

        // Distinct outcomes, each once (most rows share a handful).
        var outcomes: [(verdict: VerdictKind, rules: [String])] = []
        var outcomeNumbers: [Outcome: Int] = [:]
        var memo: [Int: [Int32]] = [:]
        var remembered = 0
        for source in 0..<(containers.count + 2) {
            let sourceClass: PeerClass, sourceKey: Int
            if source < containers.count {
                sourceKey = identities[source]
                sourceClass = PeerClass(.container(identity: sourceKey))
            } else {
                sourceKey = source == containers.count ? -1 : -2
                sourceClass = source == containers.count ? .world : .host
            }
            var known: [Int32]
            if let kept = memo.removeValue(forKey: sourceKey) {
                known = kept
            } else {
                if remembered + slots.count > memoLimit {
                    memo.removeAll()
                    outcomes.removeAll(keepingCapacity: true)
                    outcomeNumbers.removeAll(keepingCapacity: true)
                    remembered = 0
                }
                known = [Int32](repeating: -1, count: slots.count)
                remembered += slots.count
            }
            for destination in destinations where destination.index != source {
                for (port, slot) in zip(destination.ports, destination.slots) {
                    var outcome = Int(known[Int(slot)])
                    if outcome < 0 {
                        let decision = evaluator.decide(from: sourceClass, to: PeerClass(.container(identity: slots[Int(slot)].identity)), port: port)
                        let found = Outcome(verdict: decision.verdict, rules: decision.verdict == .allow ? decision.rules : [])
                        outcome = outcomeNumbers[found] ?? {
                            outcomes.append((found.verdict, found.rules))
                            outcomeNumbers[found] = outcomes.count - 1
                            return outcomes.count - 1
                        }()
                        known[Int(slot)] = Int32(outcome)
                    }
                    try body(MatrixRow(source: source, destination: destination.index, port: port,
                                       verdict: outcomes[outcome].verdict, rules: outcomes[outcome].rules))
                }
            }
            memo[sourceKey] = known
        }
    }

    /// Outcomes remembered at once (slots x source classes) while walking the rows: 2 million
    /// (8 MB of indices; the distinct outcomes among them are no more).
    public static let memoLimit = 1 << 21

    private struct Outcome: Hashable {
        var verdict: VerdictKind
        var rules: [String]
    }

    private struct SlotKey: Hashable {
        var identity: Int
        var port: ServicePort
    }

    /// Every row with its names, collected: for tests and small inventories; `forEachRow` for
    /// output.
    public func flows() -> [MatrixFlow] {
        let names = sourceNames
        var rows: [MatrixFlow] = []
        forEachRow { row in
            rows.append(MatrixFlow(from: names[row.source], to: names[row.destination], port: row.port,
                                   verdict: row.verdict, rules: row.rules))
        }
        return rows
    }

    /// The totals of `flows()` without listing them: sources grouped by identity, destinations by
    /// identity and ports, so the cost follows the number of identities, not containers squared.
    public func summary() -> MatrixSummary {
        let containers = evaluator.inventory.containers
        var sourceCounts: [PeerClass: Int] = [.world: 1, .host: 1]
        var destinationGroups: [DestinationGroup: Int] = [:]
        for index in containers.indices {
            let identity = evaluator.identityOfContainer[index]
            sourceCounts[PeerClass(.container(identity: identity)), default: 0] += 1
            destinationGroups[DestinationGroup(identity: identity, ports: Self.distinct(containers[index].ports)), default: 0] += 1
        }
        var summary = MatrixSummary(containers: containers.count, identities: evaluator.identities.count,
                                    flows: 0, allowed: 0, denied: 0, audited: 0)
        for (source, sourceCount) in sourceCounts {
            for (group, destinationCount) in destinationGroups {
                // A container is no destination of its own flows.
                let pairs = sourceCount * destinationCount - (source.identity == group.identity ? destinationCount : 0)
                guard pairs > 0 else { continue }
                for port in group.ports {
                    let verdict = evaluator.decide(from: source, to: PeerClass(.container(identity: group.identity)), port: port).verdict
                    summary.flows += pairs
                    switch verdict {
                    case .allow: summary.allowed += pairs
                    case .deny: summary.denied += pairs
                    case .audit: summary.audited += pairs
                    }
                }
            }
        }
        return summary
    }

    /// A container's ports, each once (an inventory may list a port both exposed and published).
    private static func distinct(_ ports: [ServicePort]) -> [ServicePort] {
        var seen: Set<ServicePort> = []
        return ports.filter { seen.insert($0).inserted }
    }

    private struct DestinationGroup: Hashable {
        var identity: Int
        var ports: [ServicePort]
    }
}
