import ZonegateEngine
import ZonegatePolicy

/// Finds the bridge port (the host side of the veth) through which `endpoint` of a container is
/// plugged into `bridge`; throws, saying why, when it cannot. `VethResolver` is the real one.
public typealias BridgePortResolver = (_ container: DockerContainer, _ endpoint: DockerEndpoint, _ bridge: String) throws -> String

/// Docker's view of a host (inspected containers, networks) -> zonegate's inventory. Pure, given
/// the resolver: what it reads is a snapshot taken before.
public enum DockerInventory {
    /// Every running container with an address on a managed bridge network becomes a `Container`,
    /// bound to its bridge ports; `bridges` holds every managed network's bridge, with or without
    /// containers; what zonegate cannot enforce goes to `unenforced`, one entry per container and
    /// network, never dropped silently.
    ///
    /// - Parameter managedNetworks: the policy's `defaults.networks`: nil manages every bridge
    ///   network, otherwise the bridge networks of those names.
    public static func build(containers: [DockerContainer], networks: [DockerNetwork], managedNetworks: [String]?,
                             bridgePort: BridgePortResolver) -> Inventory {
        let networksByID = Dictionary(networks.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let networksByName = Dictionary(networks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let namesByID = Dictionary(containers.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        func isManaged(_ network: DockerNetwork) -> Bool {
            network.bridgeDevice != nil && (managedNetworks.map { $0.contains(network.name) } ?? true)
        }

        var managed: [Container] = []
        var unenforced: [UnenforcedAttachment] = []
        for container in containers.sorted(by: { $0.name < $1.name }) where container.running {
            func report(_ network: String, _ reason: String) {
                unenforced.append(UnenforcedAttachment(container: container.name, network: network, reason: reason))
            }
            if container.networkMode.hasPrefix("container:") {
                let otherID = String(container.networkMode.dropFirst("container:".count))
                let other = namesByID[otherID] ?? namesByID.first { $0.key.hasPrefix(otherID) }?.value ?? String(otherID.prefix(12))
                report("container:\(other)",
                       "shares the network namespace of \(other): its packets carry that container's addresses and get that container's verdicts")
                continue
            }
            var attachments: [BridgeAttachment] = []
            for endpoint in container.endpoints {
                guard let network = networksByID[endpoint.networkID] ?? networksByName[endpoint.networkName] else {
                    report(endpoint.networkName, "network not among Docker's networks when listed; the next resynchronisation sees it")
                    continue
                }
                switch network.driver {
                case "null":
                    // `--network none`: only a loopback interface, so no traffic that leaves the
                    // container for zonegate to judge.
                    continue
                case "host":
                    report(network.name, "host network: it sends with the host's own addresses, so its traffic is judged as the host's")
                    continue
                case "bridge":
                    break
                default:
                    report(network.name, "\(network.driver) network: its traffic bypasses the Linux bridges zonegate enforces on")
                    continue
                }
                // Reported rather than left out: a container here bypasses its zones only
                // because the operator chose so, and `inventory` should show it.
                guard isManaged(network), let bridge = network.bridgeDevice else {
                    report(network.name, "network not managed by policy defaults.networks")
                    continue
                }
                let addresses = [endpoint.ipv4, endpoint.ipv6].compactMap { $0 }
                // No address (an IPAM without any): nothing to classify, and the bridge drops
                // whatever address it would send from as unclassified.
                guard !addresses.isEmpty else { continue }
                do {
                    let port = try bridgePort(container, endpoint, bridge)
                    attachments.append(BridgeAttachment(bridge: bridge, port: port, addresses: addresses))
                } catch {
                    // Fail closed: an address not bound to its port could be sent from any
                    // port. Left out of the inventory, it is an address on a managed bridge that
                    // no container holds, so it sends and receives nothing; the other networks
                    // of the container are unaffected.
                    report(network.name, "bridge port not found (\(error)): its addresses on \(bridge) send and receive nothing until it is")
                }
            }
            guard !attachments.isEmpty else { continue }
            attachments.sort { ($0.bridge, $0.port) < ($1.bridge, $1.port) }
            let ports = Set(container.exposedPorts).union(container.publishedPorts.map(\.containerPort))
            // Docker binds each published port on 0.0.0.0 and on ::, one mapping for both.
            let published = Set(container.publishedPorts.map { HostPortMapping(hostPort: $0.hostPort, port: $0.containerPort) })
            managed.append(Container(name: container.name, id: container.id, labels: container.labels,
                                     addresses: attachments.flatMap(\.addresses), ports: ports.sorted(),
                                     attachments: attachments, published: published.sorted()))
        }
        let bridges = Set(networks.filter(isManaged).compactMap(\.bridgeDevice)).sorted()
        unenforced.sort { ($0.container, $0.network) < ($1.container, $1.network) }
        return Inventory(containers: managed, bridges: bridges, unenforced: unenforced)
    }
}
