import Testing
import ZonegateDocker
import ZonegateEngine
import ZonegatePolicy

/// Docker's containers and networks -> zonegate's inventory.
struct DockerInventoryTests {
    static let networks = [
        DockerNetwork(id: "d0d0d0d0d0d0d0d0", name: "bridge", driver: "bridge", bridgeNameOption: "docker0"),
        DockerNetwork(id: "a1a1a1a1a1a1a1a1", name: "zg-web", driver: "bridge"),
        DockerNetwork(id: "b2b2b2b2b2b2b2b2", name: "zg-pay", driver: "bridge", bridgeNameOption: "zg-br-pay"),
        DockerNetwork(id: "c3c3c3c3c3c3c3c3", name: "zg-empty", driver: "bridge"),
        DockerNetwork(id: "e4e4e4e4e4e4e4e4", name: "zg-mac", driver: "macvlan"),
        DockerNetwork(id: "f5f5f5f5f5f5f5f5", name: "zg-ovl", driver: "overlay"),
        DockerNetwork(id: "1111111111111111", name: "host", driver: "host"),
        DockerNetwork(id: "2222222222222222", name: "none", driver: "null"),
    ]

    static func endpoint(_ network: String, _ ipv4: String?, _ ipv6: String? = nil, mac: String = "02:42:00:00:00:01") -> DockerEndpoint {
        let id = networks.first { $0.name == network }?.id ?? "unknown"
        return DockerEndpoint(networkID: id, networkName: network, ipv4: ipv4.flatMap(IPAddress.init), ipv6: ipv6.flatMap(IPAddress.init), macAddress: mac)
    }

    static let web = DockerContainer(
        id: "web1web1web1web1", name: "web-1", labels: ["zonegate.zone": "web"], pid: 100, networkMode: "zg-web",
        endpoints: [endpoint("zg-web", "172.31.0.2")],
        exposedPorts: [ServicePort(8080, .tcp), ServicePort(80, .tcp)],
        publishedPorts: [PublishedPort(hostAddress: "0.0.0.0", hostPort: 9090, containerPort: ServicePort(9090, .udp)),
                         PublishedPort(hostAddress: "::", hostPort: 9090, containerPort: ServicePort(9090, .udp)),
                         PublishedPort(hostAddress: "127.0.0.1", hostPort: 8081, containerPort: ServicePort(80, .tcp))])
    static let pay = DockerContainer(
        id: "pay1pay1pay1pay1", name: "pay-1", labels: ["zonegate.zone": "payments"], pid: 101, networkMode: "zg-pay",
        endpoints: [endpoint("zg-pay", "172.30.0.2", "fd00:30::2"), endpoint("zg-web", "172.31.0.3")],
        exposedPorts: [ServicePort(8443, .tcp)])
    static let def = DockerContainer(id: "def1def1def1def1", name: "def-1", pid: 102, endpoints: [endpoint("bridge", "172.17.0.2")])
    static let hostNet = DockerContainer(id: "host1host1host1h", name: "hostnet-1", pid: 103, networkMode: "host",
                                         endpoints: [endpoint("host", nil, mac: "")])
    static let side = DockerContainer(id: "side1side1side1s", name: "side-1", pid: 104, networkMode: "container:web1web1web1web1")
    static let none = DockerContainer(id: "none1none1none1n", name: "none-1", pid: 105, networkMode: "none",
                                      endpoints: [endpoint("none", nil, mac: "")])
    static let mac = DockerContainer(id: "mac1mac1mac1mac1", name: "mac-1", pid: 106, networkMode: "zg-mac",
                                     endpoints: [endpoint("zg-mac", "10.99.0.2")])
    static let overlay = DockerContainer(id: "ovl1ovl1ovl1ovl1", name: "ovl-1", pid: 107, networkMode: "zg-ovl",
                                         endpoints: [endpoint("zg-ovl", "10.0.9.2")])
    static let stopped = DockerContainer(id: "stop1stop1stop1s", name: "stopped-1", running: false, endpoints: [endpoint("bridge", nil, mac: "")])
    static let all = [web, pay, def, hostNet, side, none, mac, overlay, stopped]

    /// Names the port after the container and bridge, and fails for the pairs given.
    static func resolver(failing: Set<String> = []) -> BridgePortResolver {
        { container, endpoint, bridge in
            if failing.contains("\(container.name)@\(endpoint.networkName)") { throw VethResolver.Failure(description: "no such veth") }
            return "veth-\(container.name)-\(bridge)"
        }
    }

    static func address(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test func everyBridgeNetworkManagedByDefault() {
        let inventory = DockerInventory.build(containers: Self.all, networks: Self.networks, managedNetworks: nil, bridgePort: Self.resolver())
        #expect(inventory.containers.map(\.name) == ["def-1", "pay-1", "web-1"])
        #expect(inventory.bridges == ["br-a1a1a1a1a1a1", "br-c3c3c3c3c3c3", "docker0", "zg-br-pay"])
        let web = inventory.containers[2]
        #expect(web == Container(
            name: "web-1", id: "web1web1web1web1", labels: ["zonegate.zone": "web"], addresses: [Self.address("172.31.0.2")],
            // Exposed and published (container side), each once, sorted.
            ports: [ServicePort(80, .tcp), ServicePort(8080, .tcp), ServicePort(9090, .udp)],
            attachments: [BridgeAttachment(bridge: "br-a1a1a1a1a1a1", port: "veth-web-1-br-a1a1a1a1a1a1", addresses: [Self.address("172.31.0.2")])],
            // Host port -> own port, once for Docker's 0.0.0.0 and :: bindings.
            published: [HostPortMapping(hostPort: 8081, port: ServicePort(80, .tcp)), HostPortMapping(hostPort: 9090, port: ServicePort(9090, .udp))]))
        let pay = inventory.containers[1]
        #expect(pay.addresses == [Self.address("172.31.0.3"), Self.address("172.30.0.2"), Self.address("fd00:30::2")])
        #expect(pay.attachments == [
            BridgeAttachment(bridge: "br-a1a1a1a1a1a1", port: "veth-pay-1-br-a1a1a1a1a1a1", addresses: [Self.address("172.31.0.3")]),
            BridgeAttachment(bridge: "zg-br-pay", port: "veth-pay-1-zg-br-pay", addresses: [Self.address("172.30.0.2"), Self.address("fd00:30::2")]),
        ])
        #expect(inventory.containers[0].attachments.map(\.bridge) == ["docker0"])
        // `none` has nothing to enforce and `stopped-1` no network: neither is reported.
        #expect(inventory.unenforced.map(\.description) == [
            "hostnet-1 on host: unenforced (host network: it sends with the host's own addresses, so its traffic is judged as the host's)",
            "mac-1 on zg-mac: unenforced (macvlan network: its traffic bypasses the Linux bridges zonegate enforces on)",
            "ovl-1 on zg-ovl: unenforced (overlay network: its traffic bypasses the Linux bridges zonegate enforces on)",
            "side-1 on container:web-1: unenforced (shares the network namespace of web-1: its packets carry that container's addresses and get that container's verdicts)",
        ])
        #expect(throws: Never.self) { try inventory.validate() }
    }

    @Test func onlyTheNamedNetworksAreManaged() {
        let inventory = DockerInventory.build(containers: Self.all, networks: Self.networks, managedNetworks: ["zg-pay", "zg-mac"],
                                              bridgePort: Self.resolver())
        #expect(inventory.bridges == ["zg-br-pay"])
        #expect(inventory.containers.map(\.name) == ["pay-1"])
        #expect(inventory.containers[0].attachments.map(\.bridge) == ["zg-br-pay"])
        #expect(inventory.containers[0].addresses == [Self.address("172.30.0.2"), Self.address("fd00:30::2")])
        let unmanaged = inventory.unenforced.filter { $0.reason == "network not managed by policy defaults.networks" }
        #expect(unmanaged.map { "\($0.container)@\($0.network)" } == ["def-1@bridge", "pay-1@zg-web", "web-1@zg-web"])
        // Naming a macvlan network does not make it enforceable.
        #expect(inventory.unenforced.contains { $0.container == "mac-1" && $0.reason.hasPrefix("macvlan network") })
    }

    @Test func anUnresolvedPortLeavesItsAddressesOut() {
        let inventory = DockerInventory.build(containers: Self.all, networks: Self.networks, managedNetworks: nil,
                                              bridgePort: Self.resolver(failing: ["pay-1@zg-pay", "def-1@bridge"]))
        // pay-1 keeps its other network; def-1, with no port at all, is not classified.
        #expect(inventory.containers.map(\.name) == ["pay-1", "web-1"])
        #expect(inventory.containers[0].addresses == [Self.address("172.31.0.3")])
        #expect(inventory.containers[0].attachments.map(\.bridge) == ["br-a1a1a1a1a1a1"])
        let unresolved = inventory.unenforced.filter { $0.reason.hasPrefix("bridge port not found") }
        #expect(unresolved.map(\.description) == [
            "def-1 on bridge: unenforced (bridge port not found (no such veth): its addresses on docker0 send and receive nothing until it is)",
            "pay-1 on zg-pay: unenforced (bridge port not found (no such veth): its addresses on zg-br-pay send and receive nothing until it is)",
        ])
        // The bridge stays managed, so the left-out addresses are dropped there.
        #expect(inventory.bridges.contains("zg-br-pay") && inventory.bridges.contains("docker0"))
    }

    @Test func outputDoesNotDependOnInputOrder() {
        let forward = DockerInventory.build(containers: Self.all, networks: Self.networks, managedNetworks: nil, bridgePort: Self.resolver())
        var shuffledContainers = Self.all.reversed().map { container in
            var container = container
            container.endpoints.reverse()
            return container
        }
        shuffledContainers.swapAt(0, 3)
        let backward = DockerInventory.build(containers: shuffledContainers, networks: Self.networks.reversed(), managedNetworks: nil,
                                             bridgePort: Self.resolver())
        #expect(forward == backward)
    }

    @Test func anEndpointOnAnUnknownNetworkIsReported() {
        var late = Self.def
        late.name = "late-1"
        late.endpoints = [DockerEndpoint(networkID: "9999", networkName: "zg-new", ipv4: Self.address("172.40.0.2"), ipv6: nil, macAddress: "02:42:00:00:00:09")]
        let inventory = DockerInventory.build(containers: [late], networks: Self.networks, managedNetworks: nil, bridgePort: Self.resolver())
        #expect(inventory.containers.isEmpty)
        #expect(inventory.unenforced.map(\.network) == ["zg-new"])
    }

    @Test func sharingANamespaceOfAnUnknownContainerNamesItsID() {
        var orphan = Self.side
        orphan.networkMode = "container:0123456789abcdef0123"
        let inventory = DockerInventory.build(containers: [orphan], networks: Self.networks, managedNetworks: nil, bridgePort: Self.resolver())
        #expect(inventory.unenforced.map(\.network) == ["container:0123456789ab"])
    }
}
