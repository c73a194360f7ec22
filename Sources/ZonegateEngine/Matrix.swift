import ZonegatePolicy

/// One row of the reachability matrix.
public struct MatrixFlow: Hashable, Sendable {
    public var from: String
    public var to: String
    public var port: ServicePort
    public var verdict: VerdictKind
    public var rules: [String]
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
public struct ReachabilityMatrix: Sendable {
    public let evaluator: PolicyEvaluator

    public init(_ evaluator: PolicyEvaluator) {
        self.evaluator = evaluator
    }

    /// Every row, in inventory order: containers as sources first, then `world`, then `host`.
    /// Verdicts are computed once per (source identity, destination identity, port) and reused.
    public func flows() -> [MatrixFlow] {
        let containers = evaluator.inventory.containers
        var cache: [VerdictKey: Decision] = [:]
        var rows: [MatrixFlow] = []
        let sources: [Peer] = containers.indices.map(Peer.container) + [.world, .host]
        for source in sources {
            let sourceClass = PeerClass(source, evaluator)
            for (index, destination) in containers.enumerated() where source != .container(index) {
                let destinationClass = PeerClass(.container(index), evaluator)
                for port in Self.distinct(destination.ports) {
                    let key = VerdictKey(source: sourceClass, destination: destinationClass, port: port)
                    let decision = cache[key] ?? evaluator.decide(from: sourceClass, to: destinationClass, port: port)
                    cache[key] = decision
                    rows.append(MatrixFlow(from: evaluator.name(of: source), to: destination.name, port: port,
                                           verdict: decision.verdict, rules: decision.verdict == .allow ? decision.rules : []))
                }
            }
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
