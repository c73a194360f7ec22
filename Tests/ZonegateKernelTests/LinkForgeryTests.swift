import Foundation
import Testing
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
@testable import ZonegateRuleset
import ZonegateTesting

/// A container with CAP_NET_RAW (which Docker grants by default) forging link-level messages:
/// router advertisements, redirects, neighbour advertisements and ARP replies, written frame by
/// frame onto its own veth. Each forgery is first shown to work with no zonegate tables (so the
/// test cannot pass by sending nothing that matters), then shown to change nothing in the other
/// containers once zonegate enforces, while neighbour discovery between containers still works.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct LinkForgeryTests {
    /// Sends `count` Ethernet frames built by `kind`, from the namespace's eth0 (AF_PACKET: any
    /// source address and hop limit). The ICMPv6 checksum is computed here.
    static let forge = #"""
        import socket, struct, sys, time
        def mac(text): return bytes(int(x, 16) for x in text.split(":"))
        def ip6(text): return socket.inet_pton(socket.AF_INET6, text)
        def checksum(data):
            if len(data) % 2: data += b"\0"
            total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
            while total >> 16: total = (total & 0xffff) + (total >> 16)
            return (~total) & 0xffff
        def icmp6(src, dst, body, dst_mac, src_mac):
            pseudo = ip6(src) + ip6(dst) + struct.pack("!I3xB", len(body), 58)
            body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
            header = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + ip6(src) + ip6(dst)
            return mac(dst_mac) + mac(src_mac) + b"\x86\xdd" + header + body
        kind, own_mac = sys.argv[1], sys.argv[2]
        args = sys.argv[3:]
        if kind == "ra":            # source link-local: a default route via it, high preference, 9000 s
            src, = args
            body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0x08, 9000, 0, 0) + struct.pack("!BB", 1, 1) + mac(own_mac)
            frame = icmp6(src, "ff02::1", body, "33:33:00:00:00:01", own_mac)
        elif kind == "redirect":    # from the router's link-local (forged): go to `target` for `destination`
            router, target, destination, victim, victim_mac = args
            body = struct.pack("!BBHI", 137, 0, 0, 0) + ip6(target) + ip6(destination) + struct.pack("!BB", 2, 1) + mac(own_mac)
            frame = icmp6(router, victim, body, victim_mac, own_mac)
        elif kind == "na":          # unsolicited, override: `target` is at own_mac
            src, target, victim, victim_mac = args
            body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ip6(target) + struct.pack("!BB", 2, 1) + mac(own_mac)
            frame = icmp6(src, victim, body, victim_mac, own_mac)
        elif kind == "arp":         # reply: `claimed` is at own_mac
            claimed, victim, victim_mac = args
            frame = mac(victim_mac) + mac(own_mac) + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) \
                + mac(own_mac) + socket.inet_aton(claimed) + mac(victim_mac) + socket.inet_aton(victim)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("eth0", 0))
        for _ in range(3):
            s.send(frame)
            time.sleep(0.05)
        """#

    static let policy = """
        zones:
          - {name: web}
          - {name: api, egress: restricted}
          - {name: lab, ingress: open}
        rules:
          - {name: web-api, from: web, to: api, ports: [8080/tcp, icmp]}
        """

    final class Host: @unchecked Sendable {
        let docker: FakeDockerHost
        let enforcer: Enforcer
        let web: FakeContainer, api: FakeContainer, rogue: FakeContainer

        init() throws {
            docker = try FakeDockerHost()
            enforcer = Enforcer(dataplane: try NetlinkDataplane(), tracker: nil, hostAddresses: { [] })
            _ = try HostNetwork.ensureBridgeNetfilter()
            web = try docker.addContainer("web1")
            api = try docker.addContainer("api1")
            rogue = try docker.addContainer("rogue")
        }

        func evaluator() throws -> PolicyEvaluator {
            let zones = ["web1": "web", "api1": "api", "rogue": "lab"]
            let inventory = Inventory(containers: [web, api, rogue].map { container in
                let addresses = [IPAddress(container.ipv4)!, IPAddress(container.ipv6)!]
                return Container(name: container.name, labels: ["zonegate.zone": zones[container.name]!], addresses: addresses,
                                 attachments: [BridgeAttachment(bridge: container.network.bridge, port: container.hostVeth, addresses: addresses)])
            }, bridges: docker.networks.map(\.bridge))
            return PolicyEvaluator(policy: try PolicyParser.parse([PolicyFile(name: "p.yaml", text: LinkForgeryTests.policy)]), inventory: inventory)
        }

        func forge(_ arguments: [String]) throws {
            try NetnsCommand.check(["python3", "-c", LinkForgeryTests.forge, arguments[0], rogue.mac] + Array(arguments.dropFirst()),
                                   in: rogue.netnsLocation)
            Thread.sleep(forTimeInterval: 0.3)
        }

        /// A namespace's link-local address on `device`.
        func linkLocal(_ device: String, in location: NetnsLocation) throws -> String {
            let output = try NetnsCommand.check(["ip", "-6", "-o", "addr", "show", "dev", device, "scope", "link"], in: location)
            let word = output.split(separator: " ").first { $0.hasPrefix("fe80:") }
            try #require(word != nil, "no link-local address on \(device): \(output)")
            return String(word!.split(separator: "/")[0])
        }

        /// What decides where `container` sends traffic: its IPv6 routes (the cached redirects
        /// among them), the route to the outside world, and its neighbours' link-layer addresses.
        func routing(of container: FakeContainer) throws -> (routes: String, toWorld: String) {
            let location = container.netnsLocation
            let routes = try NetnsCommand.check(["ip", "-6", "route", "show", "table", "all"], in: location)
                + (try NetnsCommand.check(["ip", "-6", "route", "show", "cache"], in: location))
            return (routes, try NetnsCommand.check(["ip", "-6", "route", "get", docker.outside.ipv6], in: location))
        }

        func neighbour(_ address: String, of container: FakeContainer) throws -> String {
            try NetnsCommand.check(["ip", "neigh", "show", address], in: container.netnsLocation)
        }

        /// Puts back what a forgery changed in `container` (only before zonegate enforces).
        func heal(_ container: FakeContainer, routerLinkLocal: String) throws {
            try NetnsCommand.check(["ip", "-6", "-batch", "-"], in: container.netnsLocation, input: """
                route flush proto ra
                route flush cache
                route replace default via \(routerLinkLocal) dev eth0
                """)
            try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: container.netnsLocation)
        }

        deinit {
            _ = docker.remove()
            try? NetlinkDataplane().apply(try diff(from: NetlinkDataplane().readAll(name: RulesetCompiler.tableName), to: Ruleset()))
        }
    }

    @Test func routerAdvertisementsAndRedirectsFromAContainerChangeNoRoutes() throws {
        let host = try Host()
        let router = try host.linkLocal(FakeNetwork.primary.bridge, in: .privateHost)
        let rogueAddress = try host.linkLocal("eth0", in: host.rogue.netnsLocation)
        let world = host.docker.outside.ipv6
        // The victims route through the bridge's link-local address, as a router advertisement
        // would have them: a redirect is only taken from the current router's link-local address.
        for victim in [host.web, host.api] { try host.heal(victim, routerLinkLocal: router) }
        let redirect = { (victim: FakeContainer) in ["redirect", router, rogueAddress, world, victim.ipv6, victim.mac] }

        // Without zonegate the forgeries work: the rogue becomes the next hop to the world, and a default router.
        try host.forge(redirect(host.web))
        let redirected = try host.routing(of: host.web)
        #expect(redirected.toWorld.contains("via \(rogueAddress)"), "the forged redirect had no effect: \(redirected.toWorld)")
        try host.heal(host.web, routerLinkLocal: router)
        try host.forge(["ra", rogueAddress])
        let advertised = try host.routing(of: host.web)
        #expect(advertised.routes.contains("default via \(rogueAddress)"), "the forged advertisement had no effect: \(advertised.routes)")
        for victim in [host.web, host.api] { try host.heal(victim, routerLinkLocal: router) }

        try host.enforcer.enforce(try host.evaluator())
        let before = try [host.web, host.api].map { try host.routing(of: $0) }
        try host.forge(["ra", rogueAddress])
        for victim in [host.web, host.api] { try host.forge(redirect(victim)) }
        let after = try [host.web, host.api].map { try host.routing(of: $0) }
        for (index, name) in ["web1", "api1"].enumerated() {
            #expect(after[index].routes == before[index].routes, "\(name)'s routes changed")
            #expect(after[index].toWorld == before[index].toWorld, "\(name)'s route to the world changed")
            #expect(!after[index].routes.contains(rogueAddress))
        }
        let counters = try NetnsCommand.check(["nft", "list", "chain", "bridge", "zonegate", "prerouting"])
        #expect(counters.split(separator: "\n").contains { $0.contains("type nd-router-advert") && !$0.contains("packets 0 ") }, "\(counters)")
        #expect(counters.split(separator: "\n").contains { $0.contains("type nd-redirect") && !$0.contains("packets 0 ") }, "\(counters)")

        // Neighbour discovery between containers still works: web may ping api, over IPv6.
        for container in [host.web, host.api] { try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: container.netnsLocation) }
        #expect(try Probe.ping(from: host.web, to: host.api.ipv6, timeout: .seconds(3)))
        #expect(try host.neighbour(host.api.ipv6, of: host.web).contains(host.api.mac))
    }

    @Test func neighbourAndARPClaimsFromAContainerAreOnlyForItsOwnAddresses() throws {
        let host = try Host()
        let gateway4 = FakeNetwork.primary.ipv4Gateway, gateway6 = FakeNetwork.primary.ipv6Gateway
        /// web knows api and the gateway (IPv4 and IPv6): the entries a forgery would overwrite.
        func learn() throws {
            try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: host.web.netnsLocation)
            for address in [host.api.ipv6, host.api.ipv4, gateway6, gateway4] {
                _ = try Probe.ping(from: host.web, to: address, timeout: .seconds(2))
                #expect(!(try host.neighbour(address, of: host.web)).contains(host.rogue.mac))
            }
            // ARP takes no override within a second (locktime) of an entry's update.
            Thread.sleep(forTimeInterval: 1.2)
        }
        let forgeries = [["na", host.rogue.ipv6, host.api.ipv6, host.web.ipv6, host.web.mac],   // another container's address
                         ["na", host.rogue.ipv6, gateway6, host.web.ipv6, host.web.mac],       // the gateway's
                         ["arp", gateway4, host.web.ipv4, host.web.mac]]

        // Without zonegate they work (an unsolicited advertisement with override, a gratuitous reply).
        try learn()
        for forgery in forgeries { try host.forge(forgery) }
        for address in [host.api.ipv6, gateway6, gateway4] {
            #expect(try host.neighbour(address, of: host.web).contains(host.rogue.mac), "the forgery for \(address) had no effect")
        }

        try host.enforcer.enforce(try host.evaluator())
        try learn()
        for forgery in forgeries { try host.forge(forgery) }
        for address in [host.api.ipv6, gateway6, gateway4] {
            let entry = try host.neighbour(address, of: host.web)
            #expect(!entry.contains(host.rogue.mac), "web sends \(address)'s traffic to the rogue: \(entry)")
        }
        // The rogue's own claims still pass: web resolves it, and allowed traffic flows.
        try NetnsCommand.check(["ip", "neigh", "flush", "all"], in: host.web.netnsLocation)
        #expect(try Probe.ping(from: host.web, to: host.rogue.ipv6, timeout: .seconds(3)))
        #expect(try Probe.ping(from: host.web, to: host.rogue.ipv4, timeout: .seconds(3)))
    }
}
