import Foundation
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateProbe
import ZonegateRuleset

/// Fake containers (a `FakeDockerHost`) in zones, zonegate's enforcer over them, and the
/// matrix's flows as a probe plan: what `verify --probe`'s engine is run against, by the kernel
/// tests and by `make bench`. Needs root in private network and mount namespaces; deinit
/// removes the containers, bridges and zonegate's tables.
public final class ProbeTestHost: @unchecked Sendable {
    public let docker: FakeDockerHost
    public private(set) var containers: [String: FakeContainer] = [:]
    /// Each container's zone label (nil: none).
    public private(set) var zones: [String: String] = [:]
    public let enforcer: Enforcer

    public init(_ layout: [(name: String, zone: String?, network: FakeNetwork)]) throws {
        docker = try FakeDockerHost()
        enforcer = Enforcer(dataplane: try NetlinkDataplane(), tracker: try ConntrackTable(),
                            hostAddresses: { (try? HostNetwork.addresses()) ?? [] })
        _ = try HostNetwork.ensureBridgeNetfilter()
        for (name, zone, network) in layout {
            containers[name] = try docker.addContainer(name, on: network)
            zones[name] = zone
        }
    }

    public func inventory(ports: [ServicePort]) -> Inventory {
        Inventory(containers: containers.keys.sorted().map { name in
            let container = containers[name]!
            let addresses = [IPAddress(container.ipv4)!, IPAddress(container.ipv6)!]
            return Container(name: name, labels: zones[name].map { ["zonegate.zone": $0] } ?? [:], addresses: addresses, ports: ports,
                             attachments: [BridgeAttachment(bridge: container.network.bridge, port: container.hostVeth, addresses: addresses)])
        }, bridges: docker.networks.map(\.bridge))
    }

    public func evaluator(_ policyText: String, ports: [ServicePort]) throws -> PolicyEvaluator {
        PolicyEvaluator(policy: try PolicyParser.parse([PolicyFile(name: "p.yaml", text: policyText)]), inventory: inventory(ports: ports))
    }

    /// The matrix's rows as a probe plan: every source (each container, host, world), every
    /// other container, every port.
    public func plan(_ evaluator: PolicyEvaluator, ports: [ServicePort], layers: OtherLayers = OtherLayers()) -> ProbePlan {
        let names = containers.keys.sorted()
        var flows: [ProbeFlow] = []
        for from in names.map(ProbeSource.container) + [.host, .world] {
            let peer: Peer = switch from {
            case .container(let name): evaluator.peer(named: name)!
            case .host: .host
            case .world: .world
            }
            for to in names where ProbeSource.container(to) != from {
                for port in ports {
                    let verdict = evaluator.decide(from: peer, to: evaluator.peer(named: to)!, port: port).verdict
                    flows.append(ProbeFlow(from: from, to: to, port: port, allowed: verdict != .deny))
                }
            }
        }
        let probeContainers = names.map { name in
            let container = containers[name]!
            return ProbeContainer(name: name, addresses: [IPAddress(container.ipv4)!, IPAddress(container.ipv6)!],
                                  namespace: .path("/run/netns/\(container.namespace)"), bridges: [container.network.bridge])
        }
        return ProbePlan(containers: probeContainers, flows: flows, avoid: PolicyEvaluator.cidrBlocks(of: evaluator.policy).map(\.cidr),
                         otherLayers: layers)
    }

    /// The throughput case (issue 11's `make bench` row and its kernel test): 50 containers in
    /// five zones over two bridges, 2 TCP ports each, zonegate's ruleset enforced; the plan has
    /// every flow of the matrix (containers, host, world), most of them denied.
    public static func fiftyContainersWithTwoPortsEach() throws -> (host: ProbeTestHost, plan: ProbePlan) {
        let zones = ["web", "api", "payments", "corp", "monitoring"]
        let policy = """
            zones:
              - {name: web}
              - {name: api, ingress: restricted}
              - {name: payments, ingress: restricted, egress: restricted}
              - {name: corp, ingress: restricted}
              - {name: monitoring}
            rules:
              - {name: web-api, from: web, to: api, ports: [8080/tcp]}
              - {name: api-payments, from: api, to: payments, ports: [8443/tcp]}
              - {name: monitoring-all, from: monitoring, to: any, ports: [8080/tcp, 8443/tcp]}
              - {name: world-web, from: world, to: web, ports: [8080/tcp]}
            """
        let layout = (0..<50).map { index in
            (name: "c\(index)", zone: Optional(zones[index % zones.count]), network: index % 2 == 0 ? FakeNetwork.primary : .secondary)
        }
        let host = try ProbeTestHost(layout)
        let ports = [ServicePort(8080, .tcp), ServicePort(8443, .tcp)]
        let evaluator = try host.evaluator(policy, ports: ports)
        try host.enforcer.enforce(evaluator)
        return (host, host.plan(evaluator, ports: ports))
    }

    deinit {
        _ = docker.remove()
        try? NetlinkDataplane().apply(try diff(from: NetlinkDataplane().readAll(name: RulesetCompiler.tableName), to: Ruleset()))
    }
}
