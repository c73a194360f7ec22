import Foundation
import Testing
import ZonegateTesting

/// The engine's verdicts hold for real connections under `zonegate run`: between containers on
/// a user-defined network (IPv4 and IPv6) and on the default bridge, from the host, from an
/// outside namespace to published ports, and from a container to another's published port
/// through the host, with Docker's userland proxy on and off.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct VerdictTests {
    /// One probe: where it runs, where it goes, and which matrix row must decide it (`port` is
    /// the destination container's own port, behind a published one).
    struct Case: CustomStringConvertible {
        let label: String
        let site: any ProbeSite
        let target: ProbeTarget
        let from: String
        let to: String
        var port: UInt16? = nil
        /// Docker's userland proxy relays it (proxy on: on the source's own bridge Docker does not
        /// NAT, and across bridges its isolation drops the NATed path, so what connects goes
        /// through docker-proxy): both the container's connection and the proxy's own are judged
        /// as the flow to the container behind the port, whatever the host itself may reach.
        var relayedByProxy = false
        var matrixPort: UInt16 { port ?? target.port }
        var description: String { "\(label) -> \(target) (judged as \(from) -> \(to) \(matrixPort)/tcp)" }
    }

    @Test(arguments: [false, true])
    func realConnectionsFollowTheMatrix(userlandProxy: Bool) throws {
        let host = try EndToEndHost(userlandProxy: userlandProxy)
        defer { host.close() }
        let bridge = PrivateDocker.defaultNetwork
        let layout: [(name: String, zone: String, network: String, publish: [(host: UInt16, container: UInt16)])] = [
            ("web-1", "web", userNetwork, []),
            // 9100 is open to the host only: through the userland proxy a container must not
            // borrow the host's rule.
            ("api-1", "api", userNetwork, [(18080, 8080), (19100, 9100)]),
            ("db-1", "db", userNetwork, [(15432, 5432)]),
            ("misc-1", "", userNetwork, []),
            ("web-2", "web", bridge, [(18000, 80)]),
            ("api-2", "api", bridge, []),
        ]
        for entry in layout {
            try host.add(entry.name, zone: entry.zone, network: entry.network, publish: entry.publish)
        }
        let outside = try host.docker.addOutsideWorld()
        let published: [(port: UInt16, container: String, containerPort: UInt16)] = [
            (18080, "api-1", 8080), (19100, "api-1", 9100), (15432, "db-1", 5432), (18000, "web-2", 80),
        ]
        let gateways = [userNetwork: "172.30.0.1", bridge: "172.17.0.1"]

        var cases: [Case] = []
        for source in layout {
            let site = host.containers[source.name]!
            // Direct: every other container on a network they share, at each of its addresses there.
            for target in layout where target.name != source.name && target.network == source.network {
                for address in host.containers[target.name]!.addresses[target.network] ?? [] {
                    for port in zonePorts[target.zone] ?? [] {
                        cases.append(Case(label: source.name, site: site, target: ProbeTarget(address, port), from: source.name, to: target.name))
                    }
                }
            }
            // Through the host: its own gateway address and each published port.
            for port in published where port.container != source.name {
                cases.append(Case(label: source.name, site: site, target: ProbeTarget(gateways[source.network]!, port.port),
                                  from: source.name, to: port.container, port: port.containerPort, relayedByProxy: userlandProxy))
            }
        }
        for target in layout {
            for address in host.containers[target.name]!.addresses[target.network] ?? [] {
                for port in zonePorts[target.zone] ?? [] {
                    cases.append(Case(label: "host", site: NetnsLocation.privateHost, target: ProbeTarget(address, port), from: "host", to: target.name))
                }
            }
        }
        for port in published {
            cases.append(Case(label: "outside", site: outside, target: ProbeTarget(outside.hostIPv4, port.port), from: "world", to: port.container,
                              port: port.containerPort))
        }

        // What Docker itself lets through before zonegate runs: the paths a verdict can open.
        let before = try probe(cases)
        let open = Set(cases.indices.filter { before[$0] })
        #expect(open.count > cases.count / 2, "Docker connected only \(open.count) of \(cases.count) probes without zonegate")

        try host.startZonegate()
        let inventory = try host.inventory()
        try checkInventory(inventory, of: host)
        let flows = try host.matrix(inventory: inventory)
        #expect(Set(try host.liveMatrix()) == Set(flows), "the live matrix differs from the one over `zonegate inventory`")
        let verdicts = Dictionary(flows.map { ("\($0.from)|\($0.to)|\($0.port)", $0) }, uniquingKeysWith: { a, _ in a })
        let after = try probe(cases)
        var allowed = 0, denied = 0, relayedBeyondTheHost = 0
        for index in open {
            let item = cases[index]
            guard let flow = verdicts["\(item.from)|\(item.to)|\(item.matrixPort)"] else {
                Issue.record("the matrix has no row for \(item)")
                continue
            }
            let passes = flow.passes
            if passes { allowed += 1 } else { denied += 1 }
            if passes, item.relayedByProxy, verdicts["host|\(item.to)|\(item.matrixPort)"]?.passes == false { relayedBeyondTheHost += 1 }
            #expect(after[index] == passes, "\(item): matrix says \(flow.verdict)\(item.relayedByProxy ? " (relayed by docker-proxy)" : ""), the connection \(after[index] ? "went through" : "did not")")
        }
        // The cases include an allowed flow the proxy relays to a container the host itself may not
        // reach (web -> api 8080), whose check above is what the grant makes pass.
        #expect(!userlandProxy || relayedBeyondTheHost > 0, "no case relays a flow where the host may not go")
        for index in cases.indices where !open.contains(index) {
            #expect(!after[index], "\(cases[index]) was closed without zonegate and opened with it")
        }
        // Busybox nc run inside the containers (docker exec) sees what the namespace probes saw.
        let direct = cases.indices.filter { cases[$0].site is PrivateContainer && cases[$0].port == nil }
        let bySource = Dictionary(grouping: direct, by: { cases[$0].label })
        let sources = bySource.keys.sorted()
        let execAnswers = try inParallel(sources.map { source in
            let targets = bySource[source]!.map { cases[$0].target }
            return { [docker = host.docker] in try docker.execProbe(from: source, to: targets) }
        })
        for (source, answers) in zip(sources, execAnswers) {
            for index in bySource[source]! {
                let inside: Bool? = answers[cases[index].target]
                let seen: Bool = after[index]
                let message = "\(cases[index]): nc inside the container says \(inside.map(String.init) ?? "nothing"), the namespace probe \(seen)"
                #expect(inside == seen, Comment(rawValue: message))
            }
        }
        // Both kinds occur, so neither a blanket drop nor a blanket accept passes.
        #expect(allowed >= 5 && denied >= 10, "allowed \(allowed), denied \(denied)")
    }

    /// The inventory of cli.md: every container with its id, labels, addresses on every network
    /// and its exposed ports.
    private func checkInventory(_ text: String, of host: EndToEndHost) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let listed = try #require(object["containers"] as? [[String: Any]], "no containers in \(text.prefix(300))")
        let byName = Dictionary(listed.compactMap { entry in (entry["name"] as? String).map { ($0, entry) } }, uniquingKeysWith: { a, _ in a })
        for (name, container) in host.containers {
            guard let entry = byName[name] else {
                Issue.record("zonegate inventory misses \(name)")
                continue
            }
            #expect((entry["id"] as? String).map { container.id.hasPrefix($0) || $0.hasPrefix(container.id) } == true, "\(name): id \(entry["id"] ?? "none")")
            let addresses = Set((entry["addresses"] as? [String]) ?? [])
            #expect(addresses == Set(container.addresses.values.joined()), "\(name): addresses \(addresses), Docker says \(container.addresses)")
            let zone = (entry["labels"] as? [String: String])?["zonegate.zone"] ?? ""
            #expect(Set((entry["ports"] as? [String]) ?? []) == Set((zonePorts[zone] ?? []).map { "\($0)/tcp" }), "\(name): ports \(entry["ports"] ?? "none")")
        }
    }

    /// Runs every case once, the sources in parallel, the host's own first (a flow relayed by
    /// docker-proxy leaves a grant that lets root on the host reach that container port for a few
    /// seconds: README, "Published ports"); answers in case order.
    private func probe(_ cases: [Case]) throws -> [Bool] {
        var result = Array(repeating: false, count: cases.count)
        for hostsOwn in [true, false] {
            let groups = Dictionary(grouping: cases.indices.filter { (cases[$0].label == "host") == hostsOwn }, by: { cases[$0].label })
            let labels = groups.keys.sorted()
            let answers = try BatchProbe.tcp(labels.map { label in
                (site: cases[groups[label]![0]].site, targets: groups[label]!.map { cases[$0].target })
            })
            for (label, answer) in zip(labels, answers) {
                for index in groups[label]! { result[index] = answer[cases[index].target] ?? false }
            }
        }
        return result
    }
}
