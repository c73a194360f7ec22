import Foundation
import Testing
import ZonegateEngine
import ZonegatePolicy
@testable import ZonegateRuleset
import ZonegateTesting

/// The compiled tables, checked without a kernel: their verdict maps give the matrix's verdicts,
/// and changes become the small transactions the dataplane issue asks for.
@Suite struct RulesetCompilerTests {
    static let policyText = "defaults: {unzoned: restricted}\n" + shopZonesAndWorldRule + """
          - {name: web-api, from: web, to: api, ports: [8080/tcp, 53/udp]}
          - {name: api-out, from: api, to: {cidr: 198.51.100.0/24}, ports: [443/tcp]}
          - {name: host-api, from: host, to: api, ports: [9100/tcp]}
          - {name: api-host, from: api, to: host, ports: [53/udp]}
        """

    static func attach(_ name: String, _ zone: String?, _ addresses: [String], port: String) -> Container {
        let parsed = addresses.map { IPAddress($0)! }
        return Container(name: name, labels: zone.map { ["zonegate.zone": $0] } ?? [:], addresses: parsed,
                         ports: [ServicePort(443, .tcp), ServicePort(8080, .tcp), ServicePort(53, .udp), ServicePort(9100, .tcp)],
                         attachments: [BridgeAttachment(bridge: "br-zg", port: port, addresses: parsed)])
    }

    static let inventory = Inventory(containers: [
        attach("w", "web", ["172.18.0.2", "fd00::2"], port: "vethw"),
        attach("a", "api", ["172.18.0.3", "fd00::3"], port: "vetha"),
        attach("c", "corp", ["172.18.0.4"], port: "vethc"),
        attach("u", nil, ["172.18.0.5"], port: "vethu"),
    ], bridges: ["br-zg"])

    static func evaluator(_ policyText: String = policyText, _ inventory: Inventory = inventory) throws -> PolicyEvaluator {
        PolicyEvaluator(policy: try PolicyParser.parse([PolicyFile(name: "p.yaml", text: policyText)]), inventory: inventory)
    }

    /// What the inet table's maps answer for a flow, following the rules' structure: dispatch on
    /// the source, then the map of the source's identity (or the outside/host maps).
    static func lookup(_ table: Table, from: String, to: String, proto: UInt8, port: UInt16, evaluator: PolicyEvaluator) -> Verdict? {
        func isContainer(_ name: String) -> Bool { if case .container = evaluator.peer(named: name)! { true } else { false } }
        func address(_ name: String) -> [UInt8] {
            if let address = IPAddress(name) { return address.bytes }
            guard case .container(let index) = evaluator.peer(named: name)! else { return [] }
            return evaluator.inventory.containers[index].addresses[0].bytes
        }
        let family = address(from == "host" ? to : from).count == 4 ? "4" : "6"
        let tail: [[UInt8]] = [[proto], [UInt8(port >> 8), UInt8(port & 0xff)]]
        func find(_ set: String, _ fields: [[UInt8]]) -> Verdict? {
            for element in table.set(set)!.elements where fieldwise(element, fields) {
                if case .verdict(let verdict)? = element.data { return verdict }
            }
            return nil
        }
        if from == "host" { return find("host_ctr\(family)", [address(to)] + tail) }
        if to == "host" { return find("ctr_host\(family)", [address(from)] + tail) }
        switch (isContainer(from), isContainer(to)) {
        case (true, true):
            guard let dispatch = table.set("dispatch\(family)")!.elements.first(where: { $0.key == address(from) }),
                  case .verdict(.jump(let chain))? = dispatch.data else { return nil }
            return find("to\(family)_" + chain.dropFirst("from_".count), [address(to)] + tail)
        case (true, false): return find("ctr_out\(family)", [address(from), address(to)] + tail)
        case (false, true): return find("out_ctr\(family)", [address(from), address(to)] + tail)
        case (false, false): return nil
        }
    }

    /// Whether each field of `fields` lies within the element's range for that field.
    static func fieldwise(_ element: SetElement, _ fields: [[UInt8]]) -> Bool {
        var offset = 0
        let end = element.keyEnd ?? element.key
        for field in fields {
            let width = field.count + (4 - field.count % 4) % 4
            let low = Array(element.key[offset..<offset + field.count]), high = Array(end[offset..<offset + field.count])
            if field.lexicographicallyPrecedes(low) || high.lexicographicallyPrecedes(field) { return false }
            offset += width
        }
        return true
    }

    @Test func verdictMapsGiveTheMatrixVerdicts() throws {
        let evaluator = try Self.evaluator()
        let table = RulesetCompiler.ruleset(evaluator).table(.inet, "zonegate")!
        let peers = ["w", "a", "c", "u", "host", "203.0.113.7", "198.51.100.9", "fd00::2", "fd00::3", "2001:db8::1"]
        let ports: [(UInt8, UInt16, ServicePort)] = [(6, 443, ServicePort(443, .tcp)), (6, 8080, ServicePort(8080, .tcp)),
                                                     (17, 53, ServicePort(53, .udp)), (6, 9100, ServicePort(9100, .tcp)),
                                                     (1, 0, ServicePort(0, .icmp)), (47, 0, ServicePort(0, .icmp))]
        var checked: [VerdictKind: Int] = [:]
        for from in peers {
            for to in peers where from != to {
                let source = try #require(evaluator.peer(named: from)), destination = try #require(evaluator.peer(named: to))
                let fromFamily = from == "host" ? nil : (from.contains(":") ? 6 : 4)
                let toFamily = to == "host" ? nil : (to.contains(":") ? 6 : 4)
                if let fromFamily, let toFamily, fromFamily != toFamily { continue }
                for (proto, port, servicePort) in ports where proto != 47 {
                    let decision = evaluator.decide(from: source, to: destination, port: servicePort)
                    if decision.untouched { continue }
                    let expected: Verdict? = [.allow: .accept, .audit: .jump("audit"), .deny: nil][decision.verdict]!
                    let found = Self.lookup(table, from: from, to: to, proto: proto, port: port, evaluator: evaluator)
                    #expect(found == expected, "\(from) -> \(to) proto \(proto) port \(port)")
                    checked[decision.verdict, default: 0] += 1
                }
            }
        }
        // Every pair the loops reach is judged, and each verdict occurs: a change that made the
        // loops skip pairs (or all of them) fails here instead of passing on nothing.
        #expect(checked == [.allow: 67, .audit: 25, .deny: 138], "\(checked)")
        // Other IP protocols (GRE) pass only where no side is restricted, or as audit into corp.
        #expect(Self.lookup(table, from: "w", to: "a", proto: 47, port: 0, evaluator: evaluator) == nil)
        #expect(Self.lookup(table, from: "w", to: "c", proto: 47, port: 0, evaluator: evaluator) == .jump("audit"))
    }

    /// Through Docker's userland proxy a connection to a published port arrives from the
    /// container at the host: its element carries the verdict of the flow to the container
    /// behind the port, for every container and port, and its absence means deny.
    @Test func publishedPortsThroughTheProxyGetTheDirectFlowsVerdict() throws {
        var inventory = Self.inventory
        inventory.containers[1].published = [HostPortMapping(hostPort: 18080, port: ServicePort(8080, .tcp)),
                                             HostPortMapping(hostPort: 19100, port: ServicePort(9100, .tcp))]
        inventory.containers[0].published = [HostPortMapping(hostPort: 10443, port: ServicePort(443, .tcp))]
        let evaluator = try Self.evaluator(Self.policyText, inventory)
        let table = RulesetCompiler.ruleset(evaluator).table(.inet, "zonegate")!
        let publishedKeys: Set<[UInt8]> = Set(([18080, 19100, 10443] as [UInt16]).map { port -> [UInt8] in [6, 0, 0, 0, UInt8(port >> 8), UInt8(port & 0xff), 0, 0] })
        #expect(Set(table.set("published")!.elements.map(\.key)) == publishedKeys)
        let behind: [(hostPort: UInt16, container: String, port: ServicePort)] = [
            (18080, "a", ServicePort(8080, .tcp)), (19100, "a", ServicePort(9100, .tcp)), (10443, "w", ServicePort(443, .tcp))]
        var allowed = 0, denied = 0
        for (family, isV4) in [("4", true), ("6", false)] {
            for (index, source) in inventory.containers.enumerated() {
                for address in source.addresses where address.isIPv4 == isV4 {
                    for target in behind {
                        let element = table.set("ctr_proxy\(family)")!.elements.first {
                            // Each field of the concatenation padded to 4 bytes.
                            $0.key == address.bytes + [6, 0, 0, 0, UInt8(target.hostPort >> 8), UInt8(target.hostPort & 0xff), 0, 0]
                        }
                        let decision = evaluator.decide(from: .container(index), to: evaluator.peer(named: target.container)!, port: target.port)
                        // Allowed and audited flows pass through a chain that leaves the proxy's grant.
                        let expected: Verdict? = [.allow: .jump("proxy_allowed"), .audit: .jump("proxy_audited"), .deny: nil][decision.verdict]!
                        var found: Verdict?
                        if case .verdict(let verdict)? = element?.data { found = verdict }
                        #expect(found == expected, "\(source.name) (\(address)) -> host:\(target.hostPort) (\(target.container) \(target.port))")
                        if expected == nil { denied += 1 } else { allowed += 1 }
                    }
                }
            }
        }
        // Both kinds occur: web reaches api on 8080 only; corp and the unzoned container do not.
        #expect(allowed > 0 && denied > 0, "allowed \(allowed), denied \(denied)")
    }

    /// The proxy's onward connection finds the grant its first leg left: the mark of a host port
    /// (in `proxy_ports`) is the mark of the container port behind it (in `proxy_backends`). Host
    /// ports that lead to one container port share its mark; a host port with two containers
    /// behind it gives none (their proxy's connections are judged as the host's).
    @Test func proxyGrantsLeadFromAHostPortToTheContainerPortBehindIt() throws {
        var inventory = Self.inventory
        // a: 18080 and 28080 both lead to its 8080; 19100 to its 9100. 18443 leads to w's 443 and
        // (on another host address) to u's 443; 10443 to w's 443 alone.
        inventory.containers[1].published = [HostPortMapping(hostPort: 18080, port: ServicePort(8080, .tcp)),
                                             HostPortMapping(hostPort: 28080, port: ServicePort(8080, .tcp)),
                                             HostPortMapping(hostPort: 19100, port: ServicePort(9100, .tcp))]
        inventory.containers[0].published = [HostPortMapping(hostPort: 18443, port: ServicePort(443, .tcp)),
                                             HostPortMapping(hostPort: 10443, port: ServicePort(443, .tcp))]
        inventory.containers[3].published = [HostPortMapping(hostPort: 18443, port: ServicePort(443, .tcp))]
        let table = RulesetCompiler.ruleset(try Self.evaluator(Self.policyText, inventory)).table(.inet, "zonegate")!
        func mark(_ data: SetElement.Data?) -> UInt32? {
            guard case .value(let bytes)? = data, bytes.count == 4 else { return nil }
            return bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        let hostPorts = Dictionary(uniqueKeysWithValues: table.set("proxy_ports")!.elements.map {
            (UInt16($0.key[4]) << 8 | UInt16($0.key[5]), mark($0.data))
        })
        // The first protocol . host port to the container port: tcp (6) . 18080 is 0x000646a0.
        #expect(hostPorts == [18080: 0x0006_46a0, 28080: 0x0006_46a0, 19100: 0x0006_4a9c, 10443: 0x0006_28cb])
        var backends: [String: UInt32?] = [:]
        for family in ["4", "6"] {
            for element in table.set("proxy_backends\(family)")!.elements {
                let address = IPAddress(bytes: Array(element.key.prefix(family == "4" ? 4 : 16)))!
                let port = UInt16(element.key[element.key.count - 4]) << 8 | UInt16(element.key[element.key.count - 3])
                backends["\(address) \(port)"] = mark(element.data)
            }
        }
        #expect(backends == ["172.18.0.3 8080": 0x0006_46a0, "fd00::3 8080": 0x0006_46a0, "172.18.0.3 9100": 0x0006_4a9c, "fd00::3 9100": 0x0006_4a9c,
                             "172.18.0.2 443": 0x0006_28cb, "fd00::2 443": 0x0006_28cb])
        let grants = table.set("proxy_grants")!
        #expect(grants.flags == [.dynamic, .timeout] && grants.timeout == RulesetCompiler.proxyGrantLifetime)
        let render = { (chain: String) in table.chain(chain)!.rules.map { RuleRenderer(table: table).render($0).components(separatedBy: " comment ")[0] } }
        #expect(render("proxy_allowed") == ["ct state new meta mark 0x00000000 jump proxy_grant", "accept"])
        #expect(render("proxy_audited") == ["ct state new meta mark 0x00000000 jump proxy_grant", "jump audit"])
        #expect(render("proxy_grant") == ["meta mark set meta l4proto . th dport map @proxy_ports update @proxy_grants { meta mark }", "meta mark set 0x00000000"])
        #expect(render("proxy_onward") == ["meta skuid 0 meta mark @proxy_grants meta mark set 0x00000000 accept", "meta mark set 0x00000000"])
        #expect(render("output").contains("meta nfproto ipv4 meta mark 0x00000000 meta mark set ip daddr . meta l4proto . th dport map @proxy_backends4 jump proxy_onward"))
        // The host's own and outside addresses' connections to the proxy are judged too: host ->
        // a 9100 is allowed (host-api); the world reaches w's 443 (world-web) but not u's.
        let hostProxy = table.set("host_proxy")!.elements.map { UInt16($0.key[4]) << 8 | UInt16($0.key[5]) }
        #expect(hostProxy == [19100])
        #expect(render("input").contains("iifname \"lo\" meta l4proto . th dport @published meta l4proto . th dport vmap @host_proxy"))
        let outside = table.set("out_proxy4")!.elements.map { element -> String in
            "\(UInt16(element.key[8]) << 8 | UInt16(element.key[9]))"
        }
        #expect(!outside.isEmpty && Set(outside) == ["10443"], "\(outside)")
    }

    @Test func containerStartIsElementsOnlyAndOneTransaction() throws {
        let fake = FakeDataplane()
        try fake.apply(try diff(from: fake.ruleset, to: RulesetCompiler.ruleset(try Self.evaluator())))
        var grown = Self.inventory
        grown.containers.append(Self.attach("w2", "web", ["172.18.0.9"], port: "vethw2"))
        let transaction = try diff(from: fake.ruleset, to: RulesetCompiler.ruleset(try Self.evaluator(Self.policyText, grown)))
        // Elements only (the proxy's grants are flushed: they were granted under the old state).
        #expect(transaction.operations.allSatisfy {
            switch $0 {
            case .addElements, .flushSet(_, "proxy_grants"): true
            default: false
            }
        }, "\(transaction)")
        try fake.apply(transaction)
        #expect(fake.transactions.count == 2)
    }

    @Test func policyChangeWithTheSameZonesIsElementsOnly() throws {
        let fake = FakeDataplane()
        try fake.apply(try diff(from: fake.ruleset, to: RulesetCompiler.ruleset(try Self.evaluator())))
        let stricter = Self.policyText.replacingOccurrences(of: "ports: [8080/tcp, 53/udp]", with: "ports: [8080/tcp]")
        let transaction = try diff(from: fake.ruleset, to: RulesetCompiler.ruleset(try Self.evaluator(stricter)))
        #expect(!transaction.isEmpty)
        #expect(transaction.operations.allSatisfy {
            switch $0 {
            case .addElements, .deleteElements, .flushSet(_, "proxy_grants"): true
            default: false
            }
        }, "\(transaction)")
    }

    @Test func addressesAreBoundToTheirBridgePorts() throws {
        let bridge = RulesetCompiler.ruleset(try Self.evaluator()).table(.bridge, "zonegate")!
        let bound4 = bridge.set("bound4")!.elements.map(\.comment)
        #expect(Set(bound4.compactMap { $0 }) == ["w", "a", "c", "u"])
        #expect(bridge.set("bound6")!.elements.count == 2)
        #expect(bridge.chain("prerouting")!.rules.count == 11,
                "containers' router advertisements, redirects and link claims, neighbour advertisements, ARP, then for IPv4 and IPv6 the port's own addresses and the rest")
        #expect(bridge.set("ctr_ports")!.elements.count == 4, "one port per container")
    }

    /// Containers are not routers: router advertisements and redirects from a container's port
    /// are dropped in the bridge table before any rule accepts them, and the inet table lets
    /// through early only neighbour solicitations and advertisements from classified addresses.
    @Test func containersSendNoRouterAdvertisementsOrRedirects() throws {
        let ruleset = RulesetCompiler.ruleset(try Self.evaluator())
        let prerouting = ruleset.table(.bridge, "zonegate")!.chain("prerouting")!.rules
        func icmpv6Type(_ rule: ZonegateRuleset.Rule) -> [UInt8]? {
            guard let index = rule.expressions.firstIndex(of: .payload(base: .transport, offset: 0, length: 1, dreg: .reg1)),
                  index + 1 < rule.expressions.count else { return nil }
            switch rule.expressions[index + 1] {
            case .cmp(.eq, _, let data): return data
            case .range(.eq, _, let from, let to): return Array(from[0]...to[0])
            default: return nil
            }
        }
        let firstAccept = prerouting.firstIndex { $0.expressions.last == .verdict(.accept) }!
        for type: UInt8 in [134, 137] {
            let drop = prerouting.firstIndex { icmpv6Type($0) == [type] && $0.expressions.last == .verdict(.drop) }
            #expect(drop != nil && drop! < firstAccept, "type \(type) dropped before any accept")
            let fromContainers = Expression.lookup(set: "ctr_ports", sreg: .reg1, dreg: nil, invert: false)
            #expect(drop.map { prerouting[$0].expressions.contains(fromContainers) } == true,
                    "only from containers' ports: other bridges keep their routers")
        }
        let inet = ruleset.table(.inet, "zonegate")!
        for chain in ["forward", "input"] {
            let early = inet.chain(chain)!.rules.filter { icmpv6Type($0) != nil && $0.expressions.last == .verdict(.accept) }
            #expect(early.count == 1 && icmpv6Type(early[0]) == [135, 136], "\(chain): only neighbour solicitation and advertisement pass early")
            let classified = Expression.lookup(set: "ctr6", sreg: .reg1, dreg: nil, invert: false)
            #expect(early.allSatisfy { $0.expressions.contains(classified) },
                    "\(chain): from classified addresses only")
        }
    }

    @Test func rejectAndLoggingFollowDefaults() throws {
        let quiet = try Self.evaluator("defaults: {action: reject, logDenied: false}\nzones: [{name: web}]")
        let deny = RulesetCompiler.ruleset(quiet).table(.inet, "zonegate")!.chain("deny")!
        #expect(deny.rules.map(\.comment) == ["defaults.action: reject (TCP reset)", "defaults.action: reject (ICMP error)"])
        let loud = RulesetCompiler.ruleset(try Self.evaluator()).table(.inet, "zonegate")!.chain("deny")!
        #expect(loud.rules.first?.expressions.contains(.log(prefix: "zonegate deny ", group: RulesetCompiler.logGroup, level: nil)) == true)
    }
}

/// Step 6: which tracked connections a new policy ends.
@Suite struct RevocationTests {
    @Test func deniedFlowsAreEndedAndOthersKept() throws {
        let evaluator = try RulesetCompilerTests.evaluator()
        func connection(_ proto: UInt8, _ from: String, _ to: String, _ port: UInt16, via published: (String, UInt16)? = nil) -> TrackedConnection {
            TrackedConnection(proto: proto, originalSource: IPAddress(from)!, originalDestination: IPAddress(published?.0 ?? to)!,
                              originalSourcePort: 40000, originalDestinationPort: published?.1 ?? port,
                              replySource: IPAddress(to)!, replySourcePort: port)
        }
        let allowed = connection(6, "172.18.0.2", "172.18.0.3", 8080)                 // web -> api 8080: rule web-api
        let revoked = connection(17, "172.18.0.2", "172.18.0.3", 5353)                // web -> api 5353/udp: no rule
        let published = connection(6, "203.0.113.9", "172.18.0.2", 443, via: ("192.0.2.1", 8443)) // world -> web via DNAT
        let publishedDenied = connection(6, "203.0.113.9", "172.18.0.3", 8080, via: ("192.0.2.1", 8080))
        let audited = connection(6, "172.18.0.2", "172.18.0.4", 22)                   // into corp: audit
        let fromHost = connection(6, "192.0.2.1", "172.18.0.3", 9100)                 // host -> api: rule host-api
        let fromHostDenied = connection(6, "192.0.2.1", "172.18.0.3", 22)
        let untouched = connection(6, "192.0.2.1", "203.0.113.9", 22)
        let ended = Revocation.connectionsToEnd([allowed, revoked, published, publishedDenied, audited, fromHost, fromHostDenied, untouched],
                                                under: evaluator, hostAddresses: [IPAddress("192.0.2.1")!])
        #expect(ended == [revoked, publishedDenied, fromHostDenied])
    }

    /// Through docker-proxy a flow is two connections: the container's to the published port on a
    /// host address (judged as the flow to the container behind it), and the proxy's from the host
    /// to that container (kept while a kept connection to its published port may be relayed by it).
    @Test func userlandProxyLegsAreJudgedAsTheFlowTheyRelay() throws {
        var inventory = RulesetCompilerTests.inventory
        inventory.containers[1].published = [HostPortMapping(hostPort: 18080, port: ServicePort(8080, .tcp))]
        inventory.containers[0].published = [HostPortMapping(hostPort: 10443, port: ServicePort(443, .tcp))]
        let evaluator = try RulesetCompilerTests.evaluator(RulesetCompilerTests.policyText, inventory)
        let gateway = IPAddress("172.18.0.1")!
        func connection(_ from: String, _ to: String, _ port: UInt16) -> TrackedConnection {
            TrackedConnection(proto: 6, originalSource: IPAddress(from)!, originalDestination: IPAddress(to)!, originalSourcePort: 40000,
                              originalDestinationPort: port, replySource: IPAddress(to)!, replySourcePort: port)
        }
        // web -> api 8080 is allowed (web-api); host -> api 8080 is denied (host-api is 9100 only).
        let webLeg = connection("172.18.0.2", "172.18.0.1", 18080)
        let onwardLeg = connection("172.18.0.1", "172.18.0.3", 8080)
        let ended = { (connections: [TrackedConnection]) in
            Revocation.connectionsToEnd(connections, under: evaluator, hostAddresses: [gateway])
        }
        #expect(ended([webLeg, onwardLeg]).isEmpty)
        // Alone, the host's connection is the host's own: denied. One relayed connection covers
        // one of the host's, not a second.
        #expect(ended([onwardLeg]) == [onwardLeg])
        var secondOnward = onwardLeg
        secondOnward.originalSourcePort = 40001
        #expect(ended([webLeg, onwardLeg, secondOnward]) == [secondOnward])
        // An outside address reaching the proxy (world -> w 443 is allowed; host -> w 443 is not).
        let worldLeg = connection("203.0.113.9", "172.18.0.1", 10443)
        let onwardToWeb = connection("172.18.0.1", "172.18.0.2", 443)
        #expect(ended([worldLeg, onwardToWeb]).isEmpty)
        #expect(ended([onwardToWeb]) == [onwardToWeb])
        // Once web may no longer reach api 8080, both legs end.
        let stricter = try RulesetCompilerTests.evaluator(RulesetCompilerTests.policyText.replacingOccurrences(of: "8080/tcp, ", with: ""), inventory)
        #expect(Revocation.connectionsToEnd([webLeg, onwardLeg], under: stricter, hostAddresses: [gateway]) == [webLeg, onwardLeg])
    }
}
