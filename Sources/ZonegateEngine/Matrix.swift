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
    /// handed to `body` as it is computed. Verdicts are computed once per (source identity,
    /// destination identity, port) and kept in a cache of bounded size.
    public func forEachRow(_ body: (MatrixRow) throws -> Void) rethrows {
        let containers = evaluator.inventory.containers
        let classes = containers.indices.map { PeerClass(.container($0), evaluator) }
        // Only containers with ports are destinations of any row.
        let destinations = containers.indices.compactMap { index -> (index: Int, ports: [ServicePort])? in
            let ports = Self.distinct(containers[index].ports)
            return ports.isEmpty ? nil : (index, ports)
        }
        guard !destinations.isEmpty else { return }
        var cache: [VerdictKey: (verdict: VerdictKind, rules: [String])] = [:]
        for source in 0..<(containers.count + 2) {
            let sourceClass = source < containers.count ? classes[source] : (source == containers.count ? .world : .host)
            for destination in destinations where destination.index != source {
                let destinationClass = classes[destination.index]
                for port in destination.ports {
                    let key = VerdictKey(source: sourceClass, destination: destinationClass, port: port)
                    let outcome: (verdict: VerdictKind, rules: [String])
                    if let cached = cache[key] {
                        outcome = cached
                    } else {
                        let decision = evaluator.decide(from: sourceClass, to: destinationClass, port: port)
                        outcome = (decision.verdict, decision.verdict == .allow ? decision.rules : [])
                        // Bounded: identities x identities x ports can exceed the rows' own scale.
                        if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
                        cache[key] = outcome
                    }
                    try body(MatrixRow(source: source, destination: destination.index, port: port,
                                       verdict: outcome.verdict, rules: outcome.rules))
                }
            }
        }
    }

    /// Verdicts remembered at once while walking the rows.
    static let cacheLimit = 1 << 16

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

    private struct VerdictKey: Hashable {
        var source: PeerClass
        var destination: PeerClass
        var port: ServicePort
    }

    private struct DestinationGroup: Hashable {
        var identity: Int
        var ports: [ServicePort]
    }
}
