import Testing
import ZonegateEngine
import ZonegatePolicy
import ZonegateTesting

/// The matrix of cli.md: which rows, in which order, and totals that agree with the rows.
@Suite struct MatrixTests {
    private let shopPolicy = policy("defaults: {unzoned: restricted}\n" + shopZonesAndWorldRule + """
          - {name: web-api, from: web, to: api, ports: [8080/tcp]}
          - {name: api-out, from: api, to: {cidr: 198.51.100.0/24}, ports: [443/tcp]}
        """)

    @Test func rowsCoverEverySourceDestinationAndPortInOrder() {
        let inventory = Inventory(containers: [
            container("w", ["zonegate.zone": "web"], ["172.18.0.2"], ports: ["443/tcp"]),
            container("a", ["zonegate.zone": "api"], ["172.18.0.3"], ports: ["8080/tcp", "9100/tcp"]),
            container("c", ["zonegate.zone": "corp"], ["172.18.0.4"], ports: []),
        ])
        let flows = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: inventory)).flows()
        let rows = flows.map { "\($0.from)>\($0.to) \($0.port) \($0.verdict.rawValue) \($0.rules.joined(separator: ","))" }
        #expect(rows == [
            "w>a 8080/tcp allow web-api", "w>a 9100/tcp deny ",
            "a>w 443/tcp deny ",
            "c>w 443/tcp deny ", "c>a 8080/tcp deny ", "c>a 9100/tcp deny ",
            "world>w 443/tcp allow world-web", "world>a 8080/tcp deny ", "world>a 9100/tcp deny ",
            "host>w 443/tcp deny ", "host>a 8080/tcp deny ", "host>a 9100/tcp deny ",
        ])
    }

    @Test func summaryAgreesWithTheRows() {
        // Several containers per identity, unzoned ones, audit ones, and CIDR-matched ones.
        var containers: [Container] = []
        for index in 0..<40 {
            let zone = ["web", "api", "corp", ""][index % 4]
            let address = index % 5 == 0 ? "198.51.100.\(index + 1)" : "172.18.1.\(index + 1)"
            containers.append(container("c\(index)", zone.isEmpty ? [:] : ["zonegate.zone": zone], [address],
                                        ports: index % 3 == 0 ? ["443/tcp", "8080/tcp"] : ["8080/tcp"]))
        }
        let matrix = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: Inventory(containers: containers)))
        let flows = matrix.flows()
        let summary = matrix.summary()
        #expect(summary.flows == flows.count)
        #expect(summary.allowed == flows.filter { $0.verdict == .allow }.count)
        #expect(summary.denied == flows.filter { $0.verdict == .deny }.count)
        #expect(summary.audited == flows.filter { $0.verdict == .audit }.count)
        #expect(summary.allowed > 0)
        #expect(summary.audited > 0)
        #expect(summary.identities == 8, "web, api, corp and unzoned, each with and without an address in the CIDR")
    }

    /// 10,000 containers and 1,000 rules: the summary reasons per identity (zones x CIDR blocks),
    /// so it stays cheap. `make bench` measures its time; here only the result is checked.
    @Test func summaryAtScale() {
        var yaml = "zones:\n"
        for zone in 0..<50 { yaml += "  - {name: z\(zone), egress: \(zone % 2 == 0 ? "restricted" : "open")}\n" }
        yaml += "rules:\n"
        for rule in 0..<1000 {
            yaml += "  - {from: z\(rule % 50), to: z\((rule * 7) % 50), ports: [\(8000 + rule % 100)/tcp]}\n"
        }
        let policy = policy(yaml)
        let containers = (0..<10_000).map { index in
            container("c\(index)", ["zonegate.zone": "z\(index % 50)"], ["10.\(index / 65536).\((index / 256) % 256).\(index % 256)"],
                      ports: ["\(8000 + index % 100)/tcp"])
        }
        let summary = ReachabilityMatrix(PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers))).summary()
        #expect(summary.identities == 50)
        #expect(summary.flows == 10_002 * 10_000 - 10_000, "every source (containers, world, host) to every other container")
        #expect(summary.allowed + summary.denied + summary.audited == summary.flows)
        #expect(summary.allowed > 0)
        #expect(summary.denied > 0)
    }

    /// Issue 10: 10,000 containers without ports took 48 s to give no row, a cost per (source,
    /// container) pair. A source now visits only containers with ports: time follows rows plus
    /// containers.
    @Test func containersWithoutPortsCostNothingPerPair() {
        let containers = (0..<10_000).map { index in
            container("c\(index)", ["zonegate.zone": ["web", "api", "corp"][index % 3]], ["10.\(index / 65536).\((index / 256) % 256).\(index % 256)"])
        }
        let matrix = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: Inventory(containers: containers)))
        let start = ContinuousClock.now
        var rows = 0
        matrix.forEachRow { _ in rows += 1 }
        #expect(rows == 0)
        #expect(ContinuousClock.now - start < .seconds(2), "debug build; it was 48 s")

        // One container with a port among them: one row per other source, still no per-pair cost.
        var withOne = containers
        withOne[5_000].ports = [ServicePort(443, .tcp)]
        let one = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: Inventory(containers: withOne)))
        let started = ContinuousClock.now
        var sources: Set<Int> = []
        one.forEachRow { row in
            #expect(row.destination == 5_000)
            sources.insert(row.source)
        }
        #expect(sources.count == 10_001, "every container but itself, world and host")
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// The walk gives the rows `flows()` collects, in the same order, with names resolved through
    /// `sourceNames`; the verdict cache may be emptied midway without changing a row.
    @Test func streamedRowsAreTheFlows() {
        var containers: [Container] = []
        for index in 0..<60 {
            let zone = ["web", "api", "corp", ""][index % 4]
            containers.append(container("c\(index)", zone.isEmpty ? [:] : ["zonegate.zone": zone], ["172.18.1.\(index + 1)"],
                                        ports: index % 3 == 0 ? ["443/tcp", "8080/tcp", "443/tcp"] : ["8080/tcp"]))
        }
        let evaluator = PolicyEvaluator(policy: shopPolicy, inventory: Inventory(containers: containers))
        let matrix = ReachabilityMatrix(evaluator)
        let names = matrix.sourceNames
        var streamed: [String] = []
        matrix.forEachRow { row in streamed.append("\(names[row.source])>\(names[row.destination]) \(row.port) \(row.verdict) \(row.rules)") }
        let collected = matrix.flows().map { "\($0.from)>\($0.to) \($0.port) \($0.verdict) \($0.rules)" }
        #expect(streamed == collected)
        // Outcomes forgotten every few sources (a memo of 7) change no row.
        var forgetful: [String] = []
        matrix.forEachRow(memoLimit: 7) { row in forgetful.append("\(names[row.source])>\(names[row.destination]) \(row.port) \(row.verdict) \(row.rules)") }
        #expect(forgetful == streamed)
        #expect(streamed.count == 62 * 60 - 60 + 20 * (62 - 1), "443/tcp listed twice counts once")
        // Each row agrees with a verdict computed on its own.
        var index = 0
        matrix.forEachRow { row in
            let source: Peer = row.source < 60 ? .container(row.source) : (row.source == 60 ? .world : .host)
            let decision = evaluator.decide(from: source, to: .container(row.destination), port: row.port)
            #expect(row.verdict == decision.verdict, "\(streamed[index])")
            index += 1
        }
    }

    /// Docker allows containers named `world`, `host`, `any` or like an address: each is shown
    /// as `container:NAME`, so no row repeats or contradicts another; `world`, `host` and
    /// addresses keep their meaning, and `container:NAME` finds the container.
    @Test func containersNamedLikeEndpointsAreShownUnambiguously() {
        let inventory = Inventory(containers: [
            container("world", ["zonegate.zone": "web"], ["172.18.0.2"], ports: ["443/tcp"]),
            container("host", ["zonegate.zone": "api"], ["172.18.0.3"], ports: ["8080/tcp"]),
            container("any", [:], ["172.18.0.4"]),
            container("172.18.0.3", [:], ["172.18.0.5"]),
            container("container:x", [:], ["172.18.0.6"]),
            container("web-1", ["zonegate.zone": "web"], ["172.18.0.7"]),
        ])
        let evaluator = PolicyEvaluator(policy: shopPolicy, inventory: inventory)
        let flows = ReachabilityMatrix(evaluator).flows()
        let rows = flows.map { "\($0.from)>\($0.to) \($0.verdict.rawValue)" }
        #expect(Set(rows).count == rows.count, "no repeated row: \(rows)")
        #expect(Set(flows.map(\.from)) == ["container:world", "container:host", "container:any", "container:172.18.0.3",
                                                "container:container:x", "web-1", "world", "host"])
        #expect(rows.filter { $0.hasPrefix("world>") } == ["world>container:world allow", "world>container:host deny"])
        #expect(evaluator.peer(named: "world") == .world)
        #expect(evaluator.peer(named: "host") == .host)
        #expect(evaluator.peer(named: "container:world") == .container(0))
        #expect(evaluator.peer(named: "container:host") == .container(1))
        #expect(evaluator.peer(named: "any") == .container(2), "any is no end of explain: the container")
        #expect(evaluator.peer(named: "172.18.0.3") == .container(1), "an address means the address: the container holding it")
        #expect(evaluator.peer(named: "container:172.18.0.3") == .container(3))
        #expect(evaluator.peer(named: "container:container:x") == .container(4))
        #expect(evaluator.peer(named: "web-1") == .container(5))
        #expect(evaluator.peer(named: "container:nobody") == nil)
        #expect(evaluator.explain(from: .world, to: .container(0), port: ServicePort(443, .tcp)).reasons.prefix(2) == ["source world is an outside address that no CIDR of the policy covers",
                        "destination container:world is a managed container in zone web"])
    }

    /// The host's own addresses (a bridge's gateway) are `host`, never `world`; an address a
    /// container holds stays the container's.
    @Test func hostAddressesAreTheHost() {
        let inventory = Inventory(containers: [container("w", ["zonegate.zone": "web"], ["172.17.0.2"], ports: ["443/tcp"])])
        let gateway = IPAddress("172.17.0.1")!
        let evaluator = PolicyEvaluator(policy: shopPolicy, inventory: inventory, hostAddresses: [gateway, IPAddress("172.17.0.2")!])
        #expect(evaluator.peer(named: "172.17.0.1") == .host)
        #expect(evaluator.peer(at: gateway) == .host)
        #expect(evaluator.peer(named: "172.17.0.2") == .container(0))
        #expect(evaluator.peer(named: "203.0.113.9") == .address(IPAddress("203.0.113.9")!))
        let fromGateway = evaluator.explain(from: evaluator.peer(named: "172.17.0.1")!, to: .container(0), port: ServicePort(443, .tcp))
        let fromHost = evaluator.explain(from: .host, to: .container(0), port: ServicePort(443, .tcp))
        #expect(fromGateway == fromHost)
        #expect(fromGateway.verdict == .deny, "world-web allows world, not the host")
        #expect(evaluator.explain(from: .world, to: .container(0), port: ServicePort(443, .tcp)).verdict == .allow)
    }

    /// At the policy limits (1,000 zones, 10,000 rules) and 10,000 containers without ports, the
    /// matrix has no row and costs the evaluator's set-up only: the rules each identity's zones
    /// name, not every rule per identity (8.9 s in release before).
    @Test func largePolicySetUpFollowsTheRulesThatNameEachZone() {
        var yaml = "zones:\n"
        for zone in 0..<1_000 { yaml += "  - {name: z\(zone), egress: \(zone % 2 == 0 ? "restricted" : "open")}\n" }
        yaml += "rules:\n"
        for rule in 0..<10_000 { yaml += "  - {from: z\(rule % 1_000), to: z\((rule * 7 + 3) % 1_000), ports: [\(8000 + rule % 100)/tcp]}\n" }
        let policy = policy(yaml)
        let containers = (0..<10_000).map { index in
            container("c\(index)", ["zonegate.zone": "z\(index % 1_000)"], ["10.\(index / 65536).\((index / 256) % 256).\(index % 256)"])
        }
        let start = ContinuousClock.now
        let evaluator = PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers))
        var rows = 0
        ReachabilityMatrix(evaluator).forEachRow { _ in rows += 1 }
        #expect(rows == 0)
        #expect(ContinuousClock.now - start < .seconds(60), "debug build, mostly parsing the policy")
        // The index agrees with the rules themselves: z0 -> z3 on 8000/tcp (rules 0, 1000, ...), and
        // z571 -> z0 on 8071/tcp (rule 571) is all that reaches z0.
        #expect(evaluator.verdict("c0", "c3", "8000/tcp") == .allow)
        #expect(evaluator.verdict("c0", "c3", "8001/tcp") == .deny)
        #expect(evaluator.verdict("c571", "c0", "8071/tcp") == .allow)
        #expect(evaluator.verdict("c1", "c0", "8071/tcp") == .deny)
        #expect(evaluator.verdict("world", "c0", "8071/tcp") == .deny)
    }
}
