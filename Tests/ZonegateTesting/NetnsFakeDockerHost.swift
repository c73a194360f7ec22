import Foundation

/// A fake Docker network: a Linux bridge holding a /24 IPv4 and a /64 IPv6 subnet with
/// the gateway (host number 1) on the bridge, as `docker network create` would make it.
public struct FakeNetwork: Sendable, Hashable {
    public let bridge: String
    /// The first three IPv4 octets: "172.30.0" stands for 172.30.0.0/24.
    public let ipv4Prefix: String
    /// The /64 prefix ending in "::": "fd00:30::" stands for fd00:30::/64.
    public let ipv6Prefix: String

    public init(bridge: String, ipv4Prefix: String, ipv6Prefix: String) {
        self.bridge = bridge
        self.ipv4Prefix = ipv4Prefix
        self.ipv6Prefix = ipv6Prefix
    }

    /// A user-defined network: `br-zg0`, 172.30.0.0/24, fd00:30::/64.
    public static let primary = FakeNetwork(bridge: "br-zg0", ipv4Prefix: "172.30.0", ipv6Prefix: "fd00:30::")
    /// A second network: `br-zg1`, 172.31.0.0/24, fd00:31::/64.
    public static let secondary = FakeNetwork(bridge: "br-zg1", ipv4Prefix: "172.31.0", ipv6Prefix: "fd00:31::")

    public var ipv4Subnet: String { "\(ipv4Prefix).0/24" }
    public var ipv6Subnet: String { "\(ipv6Prefix)/64" }
    public var ipv4Gateway: String { ipv4Address(host: 1) }
    public var ipv6Gateway: String { ipv6Address(host: 1) }

    public func ipv4Address(host: Int) -> String { "\(ipv4Prefix).\(host)" }
    public func ipv6Address(host: Int) -> String { ipv6Prefix + String(host, radix: 16) }
}

/// A fake container: a network namespace whose `eth0` is one end of a veth pair, the
/// other end (`hostVeth`, named like Docker's) plugged into its network's bridge.
public struct FakeContainer: ProbeSite, Hashable {
    public let name: String
    public let namespace: String
    public let network: FakeNetwork
    public let hostVeth: String
    /// The MAC of `eth0`, derived from the IPv4 address as Docker does (02:42:ac:1e:00:02).
    public let mac: String
    public let ipv4: String
    public let ipv6: String

    public var netnsLocation: NetnsLocation { .named(namespace) }
}

/// The "outside world": a namespace on a routed veth link from the host, in
/// documentation ranges. Containers reach it through the host; it reaches published
/// ports at `hostIPv4` / `hostIPv6`.
public struct FakeOutsideWorld: ProbeSite, Hashable {
    public let namespace: String
    public let hostLink: String
    public let ipv4 = "198.51.100.2"
    public let ipv6 = "2001:db8:1::2"
    public let hostIPv4 = "198.51.100.1"
    public let hostIPv6 = "2001:db8:1::1"

    public var netnsLocation: NetnsLocation { .named(namespace) }
}

/// A fake Docker host built inside the test's private network namespace: bridges for
/// networks, containers as namespaces on veth pairs, an outside world, forwarding,
/// br_netfilter, and a stand-in for Docker's published-port NAT in the nft tables
/// `ip dockerstandin` and `ip6 dockerstandin`. Bridge and link names are fixed, so one
/// instance exists at a time per private namespace. `remove()` (or deinit) deletes
/// everything it made.
public final class FakeDockerHost: ProbeSite, @unchecked Sendable {
    /// The name of the nft tables standing in for Docker's NAT rules.
    public static let natTable = "dockerstandin"
    static let outsideLink = "zg-outside"

    public let networks: [FakeNetwork]
    public let outside: FakeOutsideWorld
    public var netnsLocation: NetnsLocation { .privateHost }

    /// Distinguishes this instance's namespaces ("zgt1a2b3c-web") from any other's.
    private let namespacePrefix: String
    private let lock = NSLock()
    private var createdNamespaces: [String] = []
    private var createdLinks: [String] = []
    private var createdTables = false
    private var servers: [ProbeServer] = []
    private var containersByName: [String: FakeContainer] = [:]
    private var nextHostNumber: [String: Int] = [:]

    /// Builds the host. Throws (after removing what it made) if the process is not in a
    /// private network and mount namespace or any step fails.
    public init(networks: [FakeNetwork] = [.primary, .secondary]) throws {
        self.networks = networks
        namespacePrefix = "zgt" + String(format: "%06x", UInt32.random(in: 0..<0x100_0000))
        outside = FakeOutsideWorld(namespace: namespacePrefix + "-outside", hostLink: Self.outsideLink)
        try PrivateNetworkNamespace.prepareNamedNamespaceDirectory()
        do {
            try enableForwardingAndBridgeNetfilter()
            // `unshare --net` leaves the private namespace's loopback down; the host's own
            // processes reach Docker's userland proxy there.
            try NetnsCommand.check(["ip", "link", "set", "lo", "up"])
            try createBridges()
            try createOutsideWorld()
            try createNatStandIn()
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// The containers made so far.
    public var containers: [FakeContainer] {
        lock.withLock { containersByName.values.sorted { $0.name < $1.name } }
    }

    /// Creates a container on `network` (the first network by default) with the next
    /// free host number, IPv4 and IPv6 addresses (no DAD: usable at once) and default
    /// routes via the bridge's gateway addresses.
    public func addContainer(_ name: String, on network: FakeNetwork? = nil) throws -> FakeContainer {
        let network = network ?? networks[0]
        let (host, namespace, veth): (Int, String, String) = try lock.withLock {
            guard containersByName[name] == nil else { throw NetnsFixtureError("container \(name) exists already") }
            let host = nextHostNumber[network.bridge, default: 2]
            guard host < 255 else { throw NetnsFixtureError("network \(network.bridge) is full") }
            nextHostNumber[network.bridge] = host + 1
            let namespace = "\(namespacePrefix)-\(name)"
            var veth: String
            repeat {
                veth = "veth" + String(format: "%07x", UInt32.random(in: 0..<0x1000_0000))
            } while createdLinks.contains(veth)
            // Recorded before creation, so that a half-made container is still removed.
            createdNamespaces.append(namespace)
            createdLinks.append(veth)
            return (host, namespace, veth)
        }
        let ipv4 = network.ipv4Address(host: host)
        let container = FakeContainer(
            name: name, namespace: namespace, network: network, hostVeth: veth,
            mac: "02:42:" + ipv4.split(separator: ".").map { String(format: "%02x", Int($0) ?? 0) }.joined(separator: ":"),
            ipv4: ipv4, ipv6: network.ipv6Address(host: host))
        try addNamespace(namespace)
        // Hairpin lets a container reach itself through a published port (Docker sets it
        // when the userland proxy is off, which is what the NAT stand-in mimics).
        try NetnsCommand.check(["ip", "-batch", "-"], input: """
            link add \(veth) type veth peer name eth0 netns \(namespace) address \(container.mac)
            link set \(veth) master \(network.bridge)
            link set \(veth) type bridge_slave hairpin on
            link set \(veth) up
            """)
        try NetnsCommand.check(["ip", "-n", namespace, "-batch", "-"], input: """
            link set lo up
            link set eth0 up
            addr add \(container.ipv4)/24 dev eth0
            addr add \(container.ipv6)/64 dev eth0 nodad
            route add default via \(network.ipv4Gateway)
            route add default via \(network.ipv6Gateway)
            """)
        lock.withLock { containersByName[name] = container }
        return container
    }

    /// Publishes `container`'s port on every host address, IPv4 and IPv6, like
    /// `docker run -p hostPort:containerPort` with the userland proxy off: DNAT in
    /// prerouting and output, and masquerade for a container reaching itself.
    public func publish(
        hostPort: UInt16, to container: FakeContainer, containerPort: UInt16, transport: ProbeTransport = .tcp
    ) throws {
        let proto = transport.rawValue
        try NetnsCommand.check(["nft", "-f", "-"], input: """
            add rule ip \(Self.natTable) published \(proto) dport \(hostPort) dnat to \(container.ipv4):\(containerPort)
            add rule ip \(Self.natTable) postrouting ip saddr \(container.ipv4) ip daddr \(container.ipv4) \(proto) dport \(containerPort) masquerade
            add rule ip6 \(Self.natTable) published \(proto) dport \(hostPort) dnat to [\(container.ipv6)]:\(containerPort)
            add rule ip6 \(Self.natTable) postrouting ip6 saddr \(container.ipv6) ip6 daddr \(container.ipv6) \(proto) dport \(containerPort) masquerade
            """)
    }

    /// Starts a `ProbeServer` that `remove()` stops.
    public func startServer(in site: some ProbeSite, port: UInt16, lifetime: Duration = .seconds(30)) throws -> ProbeServer {
        let server = try ProbeServer(in: site, port: port, lifetime: lifetime)
        lock.withLock { servers.append(server) }
        return server
    }

    /// Deletes every namespace, link and nft table this host made and kills the processes
    /// left in its namespaces. Safe to call twice. Returns what could not be removed
    /// (empty when clean).
    @discardableResult
    public func remove() -> [String] {
        let (servers, namespaces, links, tables) = lock.withLock {
            defer {
                self.servers = []
                createdNamespaces = []
                createdLinks = []
                createdTables = false
                containersByName = [:]
            }
            return (self.servers, createdNamespaces, createdLinks, createdTables)
        }
        servers.forEach { $0.stop() }
        for namespace in namespaces { killProcesses(in: namespace) }
        if tables {
            for family in ["ip", "ip6"] {
                _ = try? NetnsCommand.run(["nft", "delete", "table", family, Self.natTable])
            }
        }
        // Deleting a host-side veth removes its peer at once; deleting only the namespace
        // would leave that to the kernel's asynchronous namespace cleanup.
        _ = try? NetnsCommand.run(
            ["ip", "-force", "-batch", "-"], input: links.reversed().map { "link del \($0)" }.joined(separator: "\n"))
        _ = try? NetnsCommand.run(
            ["ip", "-force", "-batch", "-"], input: namespaces.map { "netns delete \($0)" }.joined(separator: "\n"))
        return leftovers(namespaces: namespaces, links: links, tables: tables)
    }

    // MARK: - Building

    private func enableForwardingAndBridgeNetfilter() throws {
        let bridgeSysctls = "/proc/sys/net/bridge"
        if !FileManager.default.fileExists(atPath: bridgeSysctls) {
            _ = try? NetnsCommand.run(["modprobe", "br_netfilter"])
        }
        guard FileManager.default.fileExists(atPath: bridgeSysctls) else {
            throw NetnsFixtureError("br_netfilter is not available (no \(bridgeSysctls), modprobe br_netfilter failed)")
        }
        // All are per network namespace on this kernel: only the private one changes.
        for (sysctl, value) in [
            ("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/forwarding", "1"),
            ("net/bridge/bridge-nf-call-iptables", "1"), ("net/bridge/bridge-nf-call-ip6tables", "1"),
        ] + Self.noDuplicateAddressDetection {
            try "\(value)\n".write(toFile: "/proc/sys/" + sysctl, atomically: false, encoding: .utf8)
        }
    }

    /// Without DAD, link-local addresses are usable at once too: with it, they stay
    /// tentative for a second and neighbour discovery between host and container fails
    /// meanwhile (seen as a first IPv6 connection timing out).
    private static let noDuplicateAddressDetection = [
        ("net/ipv6/conf/all/accept_dad", "0"), ("net/ipv6/conf/default/accept_dad", "0"),
    ]

    /// Creates a named namespace whose interfaces will skip DAD.
    private func addNamespace(_ namespace: String) throws {
        try NetnsCommand.check(["ip", "netns", "add", namespace])
        try NetnsCommand.check(
            ["sysctl", "-q", "-w"] + Self.noDuplicateAddressDetection.map {
                $0.0.replacingOccurrences(of: "/", with: ".") + "=" + $0.1
            },
            in: .named(namespace))
    }

    private func createBridges() throws {
        for network in networks {
            // A fixed MAC, or the bridge would take its lowest port's MAC and change it
            // as containers come and go.
            let mac = "02:42:" + (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined(separator: ":")
            try addLink(network.bridge, "address", mac, "type", "bridge", "forward_delay", "0")
            try NetnsCommand.check(["ip", "-batch", "-"], input: """
                addr add \(network.ipv4Gateway)/24 dev \(network.bridge)
                addr add \(network.ipv6Gateway)/64 dev \(network.bridge) nodad
                link set \(network.bridge) up
                """)
        }
    }

    /// Creates a link with a fixed name and records it for removal only once it exists,
    /// so a name clash with another host's link never deletes that link.
    private func addLink(_ name: String, _ arguments: String...) throws {
        try NetnsCommand.check(["ip", "link", "add", name] + arguments)
        lock.withLock { createdLinks.append(name) }
    }

    private func createOutsideWorld() throws {
        let namespace = outside.namespace
        lock.withLock { createdNamespaces.append(namespace) }
        try addNamespace(namespace)
        try addLink(outside.hostLink, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        try NetnsCommand.check(["ip", "-batch", "-"], input: """
            addr add \(outside.hostIPv4)/24 dev \(outside.hostLink)
            addr add \(outside.hostIPv6)/64 dev \(outside.hostLink) nodad
            link set \(outside.hostLink) up
            """)
        try NetnsCommand.check(["ip", "-n", namespace, "-batch", "-"], input: """
            link set lo up
            link set eth0 up
            addr add \(outside.ipv4)/24 dev eth0
            addr add \(outside.ipv6)/64 dev eth0 nodad
            route add default via \(outside.hostIPv4)
            route add default via \(outside.hostIPv6)
            """)
    }

    /// Docker's NAT as nft: published ports DNAT for traffic to any local address
    /// (prerouting, and output for the host's own connections), and masquerade for
    /// traffic leaving a network's bridge for elsewhere.
    private func createNatStandIn() throws {
        lock.withLock { createdTables = true }
        var script: [String] = []
        for (family, loopback) in [("ip", "127.0.0.0/8"), ("ip6", "::1")] {
            let masquerade = networks.map { network in
                let subnet = family == "ip" ? network.ipv4Subnet : network.ipv6Subnet
                return "\(family) saddr \(subnet) oifname != \"\(network.bridge)\" masquerade"
            }
            script += [
                "table \(family) \(Self.natTable) {",
                "  chain published {",
                "  }",
                "  chain prerouting {",
                "    type nat hook prerouting priority dstnat; policy accept;",
                "    fib daddr type local jump published",
                "  }",
                "  chain output {",
                "    type nat hook output priority -100; policy accept;",
                "    \(family) daddr != \(loopback) fib daddr type local jump published",
                "  }",
                "  chain postrouting {",
                "    type nat hook postrouting priority srcnat; policy accept;",
            ] + masquerade.map { "    " + $0 } + [
                "  }",
                "}",
            ]
        }
        try NetnsCommand.check(["nft", "-f", "-"], input: script.joined(separator: "\n"))
    }

    // MARK: - Removing

    private func killProcesses(in namespace: String) {
        guard let pids = try? NetnsCommand.run(["ip", "netns", "pids", namespace]) else { return }
        for pid in pids.output.split(separator: "\n").compactMap({ pid_t($0) }) {
            kill(pid, SIGKILL)
        }
    }

    private func leftovers(namespaces: [String], links: [String], tables: Bool) -> [String] {
        var found: [String] = []
        let namespaceList = (try? NetnsCommand.run(["ip", "netns", "list"]).output) ?? ""
        let listed = Set(namespaceList.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        found += namespaces.filter(listed.contains).map { "netns \($0)" }
        let linkList = (try? NetnsCommand.run(["ip", "-o", "link", "show"]).output) ?? ""
        // Lines read "12: vethabc1234@if2: <...": the name sits between ": " and "@" or ":".
        let linkNames = Set(linkList.split(separator: "\n").compactMap { line in
            line.split(separator: ":", maxSplits: 2).dropFirst().first.map {
                String($0.trimmingCharacters(in: .whitespaces).split(separator: "@").first ?? "")
            }
        })
        found += links.filter(linkNames.contains).map { "link \($0)" }
        if tables {
            let tableList = (try? NetnsCommand.run(["nft", "list", "tables"]).output) ?? ""
            found += tableList.split(separator: "\n").filter { $0.hasSuffix(" \(Self.natTable)") }.map(String.init)
        }
        return found
    }
}
