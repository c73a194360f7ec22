import Foundation
import Testing
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateTesting

/// Real packets against the compiled ruleset in the kernel: containers are network namespaces on
/// veth pairs in bridges, the outside world a routed namespace, Docker's published-port DNAT a
/// stand-in table. For every flow, what gets through must equal the engine's verdict.
/// Everything runs inside the test's private network and mount namespaces.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct PacketVerdictTests {
    static let policyText = """
        zones:
          - {name: web}
          - {name: api, egress: restricted}
          - {name: payments, egress: restricted}
          - {name: corp, mode: audit}
        rules:
          - {name: web-api, from: web, to: api, ports: [8080/tcp, 5353/udp, icmp]}
          - {name: api-payments, from: api, to: payments, ports: [8443/tcp]}
          - {name: world-web, from: world, to: web, ports: [8080/tcp]}
          - {name: host-api, from: host, to: api, ports: [9100/tcp]}
          - {name: payments-processor, from: payments, to: {cidr: 198.51.100.0/24}, ports: [8080/tcp]}
        """
    static let ports: [UInt16] = [8080, 8443, 9100, 5353]

    /// The fake host, its containers by name, and the enforcer programming the private namespace.
    final class Host: @unchecked Sendable {
        let docker: FakeDockerHost
        var containers: [String: FakeContainer] = [:]
        var zones: [String: String] = [:]
        /// Ports published through Docker's userland proxy (no DNAT), by container name.
        var published: [String: [HostPortMapping]] = [:]
        /// Echo servers by container name and port; they stop by themselves after `serverLifetime`.
        var servers: [String: [UInt16: ProbeServer]] = [:]
        static let serverLifetime: Duration = .seconds(300)
        let enforcer: Enforcer
        let conntrack: ConntrackTable

        init(_ layout: [(name: String, zone: String?, network: FakeNetwork)]) throws {
            docker = try FakeDockerHost()
            conntrack = try ConntrackTable()
            enforcer = Enforcer(dataplane: try NetlinkDataplane(), tracker: conntrack, hostAddresses: { (try? HostNetwork.addresses()) ?? [] })
            _ = try HostNetwork.ensureBridgeNetfilter()
            for (name, zone, network) in layout {
                containers[name] = try docker.addContainer(name, on: network)
                zones[name] = zone
                for port in PacketVerdictTests.ports {
                    servers[name, default: [:]][port] = try docker.startServer(in: containers[name]!, port: port, lifetime: Self.serverLifetime)
                }
            }
            _ = try docker.startServer(in: docker.outside, port: 8080, lifetime: Self.serverLifetime)
            _ = try docker.startServer(in: docker, port: 7070, lifetime: Self.serverLifetime)
        }

        /// The inventory zonegate would read from Docker: `hide` leaves containers out (unclassified).
        func inventory(hiding hidden: Set<String> = []) -> Inventory {
            Inventory(containers: containers.keys.sorted().filter { !hidden.contains($0) }.map { name in
                let container = containers[name]!
                let addresses = [IPAddress(container.ipv4)!, IPAddress(container.ipv6)!]
                return Container(name: name, labels: zones[name].map { ["zonegate.zone": $0] } ?? [:], addresses: addresses,
                                 ports: PacketVerdictTests.ports.map { ServicePort($0, .tcp) },
                                 attachments: [BridgeAttachment(bridge: container.network.bridge, port: container.hostVeth, addresses: addresses)],
                                 published: published[name] ?? [])
            }, bridges: docker.networks.map(\.bridge))
        }

        func evaluator(_ policyText: String = PacketVerdictTests.policyText, hiding hidden: Set<String> = []) throws -> PolicyEvaluator {
            PolicyEvaluator(policy: try PolicyParser.parse([PolicyFile(name: "p.yaml", text: policyText)]), inventory: inventory(hiding: hidden))
        }

        deinit {
            _ = docker.remove()
            try? NetlinkDataplane().apply(try diff(from: NetlinkDataplane().readAll(name: RulesetCompiler.tableName), to: Ruleset()))
        }
    }

    /// Sends one probe and compares what got through with the engine's verdict.
    private func expectVerdict(_ host: Host, _ evaluator: PolicyEvaluator, from: some ProbeSite, fromName: String, to address: String,
                               port: ServicePort, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let source = fromName == "host" ? Peer.host : (evaluator.peer(named: fromName) ?? evaluator.peer(at: IPAddress(fromName)!))
        let destination = evaluator.peer(at: IPAddress(address)!)
        let verdict = evaluator.decide(from: source, to: destination, port: port).verdict
        let passed: Bool
        switch port.proto {
        case .tcp: passed = try Probe.tcpConnect(from: from, to: address, port: port.number, timeout: .seconds(1))
        case .udp: passed = try Probe.udpExchange(from: from, to: address, port: port.number, timeout: .seconds(1))
        default: passed = try Probe.ping(from: from, to: address, timeout: .seconds(1))
        }
        #expect(passed == (verdict != .deny), "\(fromName) -> \(address) \(port): engine says \(verdict), packets \(passed ? "passed" : "were stopped")",
                sourceLocation: sourceLocation)
    }

    @Test func containersOutsideAndHostGetTheEngineVerdicts() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary), ("pay1", "payments", .secondary),
                             ("corp1", "corp", .primary), ("loose", nil, .primary)])
        let evaluator = try host.evaluator()
        try host.enforcer.enforce(evaluator)
        let probes = [ServicePort(8080, .tcp), ServicePort(8443, .tcp), ServicePort(9100, .tcp), ServicePort(5353, .udp), ServicePort(0, .icmp)]
        let names = host.containers.keys.sorted()
        for from in names {
            for to in names where from != to {
                for port in probes {
                    try expectVerdict(host, evaluator, from: host.containers[from]!, fromName: from, to: host.containers[to]!.ipv4, port: port)
                }
                try expectVerdict(host, evaluator, from: host.containers[from]!, fromName: from, to: host.containers[to]!.ipv6, port: ServicePort(8080, .tcp))
            }
            // Egress to the outside world, and to the host itself.
            try expectVerdict(host, evaluator, from: host.containers[from]!, fromName: from, to: host.docker.outside.ipv4, port: ServicePort(8080, .tcp))
            try expectVerdict(host, evaluator, from: host.containers[from]!, fromName: from, to: host.docker.outside.ipv6, port: ServicePort(8080, .tcp))
            try expectVerdict(host, evaluator, from: host.containers[from]!, fromName: from, to: host.containers[from]!.network.ipv4Gateway,
                              port: ServicePort(7070, .tcp))
            // Ingress from the outside world (routed) and from the host.
            try expectVerdict(host, evaluator, from: host.docker.outside, fromName: host.docker.outside.ipv4, to: host.containers[from]!.ipv4,
                              port: ServicePort(8080, .tcp))
            try expectVerdict(host, evaluator, from: host.docker, fromName: "host", to: host.containers[from]!.ipv4, port: ServicePort(9100, .tcp))
            try expectVerdict(host, evaluator, from: host.docker, fromName: "host", to: host.containers[from]!.ipv6, port: ServicePort(8443, .tcp))
        }
    }

    @Test func publishedPortsAreJudgedAsTheDirectFlow() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary), ("corp1", "corp", .primary)])
        try host.docker.publish(hostPort: 18080, to: host.containers["web1"]!, containerPort: 8080)
        try host.docker.publish(hostPort: 18443, to: host.containers["api1"]!, containerPort: 8443)
        let evaluator = try host.evaluator()
        try host.enforcer.enforce(evaluator)
        // world -> web 8080 is allowed; world -> api 8443 is not, published or not.
        #expect(try Probe.tcpConnect(from: host.docker.outside, to: host.docker.outside.hostIPv4, port: 18080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: host.docker.outside, to: host.docker.outside.hostIPv4, port: 18443, timeout: .seconds(1)))
        #expect(try Probe.tcpConnect(from: host.docker.outside, to: host.docker.outside.hostIPv6, port: 18080, timeout: .seconds(1)))
        // A container reaching another's published port through the host (NAT hairpin): web -> api 8443 is denied.
        #expect(try !Probe.tcpConnect(from: host.containers["web1"]!, to: host.docker.outside.hostIPv4, port: 18443, timeout: .seconds(1)))
        // corp -> web 8080 has no rule, but web's ingress... is restricted: denied directly and through the host.
        #expect(try !Probe.tcpConnect(from: host.containers["corp1"]!, to: host.docker.outside.hostIPv4, port: 18080, timeout: .seconds(1)))
    }

    /// With Docker's userland proxy a published port is not NATed: docker-proxy on the host accepts
    /// the connection and opens its own to the container behind the port (here a stand-in relay).
    /// The pair is judged as the flow to that container: relayed when it is allowed, although the
    /// host itself may not reach the container; stopped at the proxy's door when it is denied.
    @Test func theUserlandProxyRelaysExactlyTheAllowedFlows() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary), ("pay1", "payments", .secondary)])
        host.published["api1"] = [HostPortMapping(hostPort: 18080, port: ServicePort(8080, .tcp)), HostPortMapping(hostPort: 19100, port: ServicePort(9100, .tcp))]
        host.published["web1"] = [HostPortMapping(hostPort: 18081, port: ServicePort(8080, .tcp))]
        let evaluator = try host.evaluator()
        try host.enforcer.enforce(evaluator)
        let web = host.containers["web1"]!, api = host.containers["api1"]!, pay = host.containers["pay1"]!
        let apiPort = ServicePort(8080, .tcp)
        #expect(evaluator.decide(from: .host, to: evaluator.peer(named: "api1")!, port: apiPort).verdict == .deny)
        #expect(evaluator.decide(from: evaluator.peer(named: "web1")!, to: evaluator.peer(named: "api1")!, port: apiPort).verdict == .allow)
        #expect(evaluator.decide(from: evaluator.peer(named: "pay1")!, to: evaluator.peer(named: "api1")!, port: apiPort).verdict == .deny)
        // No flow relayed yet: the host's own connection to api 8080 is denied.
        #expect(try !Probe.tcpConnect(from: host.docker, to: api.ipv4, port: 8080, timeout: .seconds(1)))
        let relay = try ProbeRelay(in: host.docker, port: 18080, to: api.ipv4, port: 8080)
        let relays = [relay, try ProbeRelay(in: host.docker, port: 19100, to: api.ipv4, port: 9100),
                      try ProbeRelay(in: host.docker, port: 18081, to: web.ipv4, port: 8080)]
        defer { relays.forEach { $0.stop() } }
        // web -> api 8080 is allowed: relayed, from IPv4 and from IPv6 (the proxy goes on over IPv4).
        #expect(try Probe.tcpConnect(from: web, to: web.network.ipv4Gateway, port: 18080, timeout: .seconds(2)))
        #expect(try Probe.tcpConnect(from: web, to: web.network.ipv6Gateway, port: 18080, timeout: .seconds(2)))
        #expect(host.servers["api1"]![8080]!.waitForPeer(web.network.ipv4Gateway, transport: .tcp), "the relay's connection came from the host")
        // While the grant lives, a host process that is not root (docker-proxy is) is still the host.
        #expect(try !Probe.tcpConnect(from: host.docker, to: api.ipv4, port: 8080, timeout: .seconds(1), user: 65534))
        #expect(try Probe.tcpConnect(from: host.docker, to: api.ipv4, port: 9100, timeout: .seconds(1), user: 65534), "host -> api 9100 is allowed")
        // payments -> api 8080 is denied: it never reaches the proxy.
        let relayedBefore = relay.outcomes.relayed
        #expect(try !Probe.tcpConnect(from: pay, to: pay.network.ipv4Gateway, port: 18080, timeout: .seconds(1)))
        #expect(relay.outcomes.relayed == relayedBefore)
        // The host's own connections through the proxy are judged as host -> the container behind
        // it: api 8080 is denied, root or not, though a grant for it lives; api 9100 is allowed.
        #expect(try !Probe.tcpConnect(from: host.docker, to: "127.0.0.1", port: 18080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: host.docker, to: "127.0.0.1", port: 18080, timeout: .seconds(1), user: 65534))
        #expect(try Probe.tcpConnect(from: host.docker, to: "127.0.0.1", port: 19100, timeout: .seconds(2), user: 65534))
        #expect(relay.outcomes.relayed == relayedBefore)
        // An outside address that reaches the proxy without NAT (IPv6 here): world -> web 8080 is
        // allowed, world -> api 8080 is not.
        let outside = host.docker.outside
        #expect(try Probe.tcpConnect(from: outside, to: outside.hostIPv6, port: 18081, timeout: .seconds(2)))
        #expect(try !Probe.tcpConnect(from: outside, to: outside.hostIPv6, port: 18080, timeout: .seconds(1)))
        #expect(relay.outcomes.relayed == relayedBefore)

        // A relayed connection lives through a policy change that keeps web -> api 8080 (the
        // proxy's own connection is kept with the one it relays) and dies when that flow is revoked.
        let held = try LongLivedConnection(from: web, to: web.network.ipv4Gateway, port: 18080, duration: .seconds(15))
        defer { held.stop() }
        #expect(held.waitUntilEstablished())
        // Past the grant's lifetime, only conntrack keeps the proxy's connection up.
        Thread.sleep(forTimeInterval: Double(RulesetCompiler.proxyGrantLifetime) / 1000 + 0.5)
        try host.enforcer.enforce(try host.evaluator(Self.policyText + "\n  - {name: extra, from: api, to: web, ports: [9000/tcp]}"))
        let afterChange = held.waitForCut(timeout: .seconds(2))
        guard case .alive = afterChange else {
            Issue.record("a relayed allowed connection was cut by an unrelated policy change: \(afterChange)")
            return
        }
        // A fresh grant, then the revocation: the change flushes the grants made under the old policy.
        #expect(try Probe.tcpConnect(from: web, to: web.network.ipv4Gateway, port: 18080, timeout: .seconds(2)))
        let revoked = Self.policyText.replacingOccurrences(of: "ports: [8080/tcp, 5353/udp, icmp]", with: "ports: [5353/udp, icmp]")
        let enforcement = try host.enforcer.enforce(try host.evaluator(revoked))
        #expect(try !Probe.tcpConnect(from: host.docker, to: api.ipv4, port: 8080, timeout: .seconds(1)), "a grant outlived the revocation")
        #expect(enforcement.endedConnections.contains { $0.originalDestinationPort == 18080 })
        #expect(enforcement.endedConnections.contains { $0.originalDestinationPort == 8080 && $0.originalSource == IPAddress(web.network.ipv4Gateway)! })
        guard case .cut = held.waitForCut() else {
            Issue.record("the revoked relayed connection lived on: \(held.state)")
            return
        }
    }

    @Test func unclassifiedContainersSendAndReceiveNothing() throws {
        let host = try Host([("web1", "web", .primary), ("loose", nil, .primary), ("newcomer", nil, .primary)])
        // `loose` is unzoned and so open both ways; `newcomer` started but is not in the inventory yet.
        try host.enforcer.enforce(try host.evaluator(hiding: ["newcomer"]))
        let newcomer = host.containers["newcomer"]!, loose = host.containers["loose"]!
        #expect(try Probe.tcpConnect(from: host.containers["web1"]!, to: loose.ipv4, port: 8080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: newcomer, to: loose.ipv4, port: 8080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: loose, to: newcomer.ipv4, port: 8080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: newcomer, to: loose.ipv6, port: 8080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: host.docker.outside, to: newcomer.ipv4, port: 8080, timeout: .seconds(1)))
        // Once classified, it is reachable exactly as its (lack of) zones say.
        try host.enforcer.enforce(try host.evaluator())
        #expect(try Probe.tcpConnect(from: newcomer, to: loose.ipv4, port: 8080, timeout: .seconds(1)))
        #expect(try Probe.tcpConnect(from: loose, to: newcomer.ipv4, port: 8080, timeout: .seconds(1)))
    }

    @Test func spoofedAndReusedAddressesAreDropped() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary), ("loose", nil, .primary)])
        try host.enforcer.enforce(try host.evaluator())
        let web = host.containers["web1"]!, loose = host.containers["loose"]!
        let server = host.servers["api1"]![5353]!
        // loose claims web's address (web may reach api on 5353/udp): dropped at loose's bridge port.
        try Probe.sendSpoofedUDP(from: loose, spoofedSource: web.ipv4, to: host.containers["api1"]!.ipv4, port: 5353)
        try Probe.sendSpoofedUDP(from: loose, spoofedSource: web.ipv6, to: host.containers["api1"]!.ipv6, port: 5353)
        // An address no container holds: dropped (fail closed).
        try Probe.sendSpoofedUDP(from: loose, spoofedSource: loose.network.ipv4Address(host: 200), to: host.containers["api1"]!.ipv4, port: 5353)
        // The real web reaches the same server: the probe works.
        try Probe.sendSpoofedUDP(from: web, spoofedSource: web.ipv4, to: host.containers["api1"]!.ipv4, port: 5353)
        #expect(server.waitForPeer(web.ipv4, transport: .udp))
        #expect(!server.receivedPeers.contains { $0.address == loose.network.ipv4Address(host: 200) })
        #expect(server.receivedPeers.filter { $0.address == web.ipv4 }.count == 1, "only web's own datagram arrived: \(server.receivedPeers)")
        #expect(!server.receivedPeers.contains { $0.address == web.ipv6 }, "\(server.receivedPeers)")
    }

    @Test func aReusedAddressInheritsNothing() throws {
        let host = try Host([("api1", "api", .primary), ("newcomer", nil, .primary)])
        let newcomer = host.containers["newcomer"]!, api = host.containers["api1"]!
        // Docker gave a departed web container's address to `newcomer`; zonegate has not seen the
        // change yet, so its inventory still binds the address to the departed one's bridge port.
        var stale = try host.evaluator(hiding: ["newcomer"]).inventory
        let addresses = [IPAddress(newcomer.ipv4)!, IPAddress(newcomer.ipv6)!]
        stale.containers.append(Container(name: "departed-web", labels: ["zonegate.zone": "web"], addresses: addresses,
                                          attachments: [BridgeAttachment(bridge: newcomer.network.bridge, port: "vethgone00", addresses: addresses)]))
        let policy = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: Self.policyText)])
        try host.enforcer.enforce(PolicyEvaluator(policy: policy, inventory: stale))
        // web may reach api on 8080, but the new holder of the address is not web.
        #expect(try !Probe.tcpConnect(from: newcomer, to: api.ipv4, port: 8080, timeout: .seconds(1)))
        #expect(try !Probe.tcpConnect(from: newcomer, to: api.ipv6, port: 8080, timeout: .seconds(1)))
        // Classified for what it is (web here), it gets exactly its own verdicts.
        host.zones["newcomer"] = "web"
        try host.enforcer.enforce(try host.evaluator())
        // Neighbour entries failed while ARP from the address was dropped; start them afresh
        // rather than wait out the kernel's retry timers.
        for site in [newcomer.netnsLocation, api.netnsLocation] { try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: site) }
        #expect(try Probe.tcpConnect(from: newcomer, to: api.ipv4, port: 8080, timeout: .seconds(2)))
    }

    @Test func rejectAnswersDeniedFlows() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary)])
        try host.enforcer.enforce(try host.evaluator("defaults: {action: reject}\n" + Self.policyText))
        #expect(try !Probe.tcpConnect(from: host.containers["api1"]!, to: host.containers["web1"]!.ipv4, port: 8443, timeout: .seconds(1)))
        #expect(try !Probe.udpExchange(from: host.containers["api1"]!, to: host.containers["web1"]!.ipv4, port: 5353, timeout: .seconds(1)))
        // Both were answered by the reject rules (TCP reset, ICMP error), not silently dropped.
        let deny = try NetnsCommand.check(["nft", "list", "chain", "inet", "zonegate", "deny"])
        let counts = deny.split(separator: "\n").filter { $0.contains("reject") }.map { line -> Int in
            let words = line.split(separator: " ")
            return words.firstIndex(of: "packets").flatMap { Int(words[$0 + 1]) } ?? 0
        }
        #expect(counts.count == 2 && counts.allSatisfy { $0 > 0 }, "\(deny)")
    }

    @Test func revokedConnectionsDieAndAllowedTrafficFlowsThroughChanges() throws {
        let host = try Host([("web1", "web", .primary), ("api1", "api", .primary)])
        try host.enforcer.enforce(try host.evaluator())
        let api = host.containers["api1"]!
        let held = try LongLivedConnection(from: host.containers["web1"]!, to: api.ipv4, port: 8080, duration: .seconds(8))
        defer { held.stop() }
        #expect(held.waitUntilEstablished())
        // Policy changes that keep web -> api 5353/udp allowed: no request of the steady flow is lost.
        let steady = try SteadyTraffic(from: host.containers["web1"]!, to: api.ipv4, port: 5353, transport: .udp, count: 100,
                                       interval: .milliseconds(10))
        for round in 0..<5 {
            let extra = "\n  - {name: extra-\(round), from: api, to: web, ports: [\(9000 + round)/tcp]}"
            try host.enforcer.enforce(try host.evaluator(Self.policyText + extra))
        }
        let report = try steady.finish()
        #expect(report.unanswered.isEmpty, "\(report)")
        // Revoke web -> api 8080: the established connection is cut.
        let revoked = Self.policyText.replacingOccurrences(of: "ports: [8080/tcp, 5353/udp, icmp]", with: "ports: [5353/udp, icmp]")
        let enforcement = try host.enforcer.enforce(try host.evaluator(revoked))
        #expect(!enforcement.endedConnections.isEmpty)
        guard case .cut = held.waitForCut() else {
            Issue.record("the revoked connection lived on: \(held.state)")
            return
        }
    }
}
