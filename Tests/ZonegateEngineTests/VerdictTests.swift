import Testing
import ZonegateEngine
import ZonegatePolicy

/// Step 4 and 5 of policy.md's verdict, audit mode, endpoints, ports and address families.
@Suite struct VerdictTests {
    /// (description, policy, containers, [(from, to, port, expected verdict)])
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var policy: String
        var containers: [Container]
        var flows: [(String, String, String, VerdictKind)]
        var testDescription: String { name }
    }

    private static let web = container("web1", ["zonegate.zone": "web"], ["172.18.0.2", "fd00:18::2"])
    private static let api = container("api1", ["zonegate.zone": "api"], ["172.18.0.3", "fd00:18::3"])
    private static let db = container("db1", ["zonegate.zone": "db"], ["172.18.0.4"])
    private static let loose = container("loose", [:], ["172.18.0.9"])

    static var cases: [Case] {
        [
            Case(name: "restricted ingress admits only what a rule allows",
                 policy: "zones: [{name: web}, {name: api}]\nrules: [{name: r, from: web, to: api, ports: [8080/tcp]}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "8080/tcp", .allow), ("web1", "api1", "8081/tcp", .deny),
                         ("web1", "api1", "8080/udp", .deny), ("api1", "web1", "80/tcp", .deny)]),
            Case(name: "open ingress admits every peer",
                 policy: "zones: [{name: web, ingress: open}, {name: api}]",
                 containers: [web, api],
                 flows: [("api1", "web1", "80/tcp", .allow), ("world", "web1", "80/tcp", .allow), ("host", "web1", "22/tcp", .allow),
                         ("web1", "api1", "80/tcp", .deny)]),
            Case(name: "restricted egress lets out only what a rule allows",
                 policy: "zones: [{name: web, ingress: open, egress: restricted}, {name: api, ingress: open}]\nrules: [{from: web, to: world, ports: [443/tcp]}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "80/tcp", .deny), ("web1", "198.51.100.1", "443/tcp", .allow),
                         ("web1", "198.51.100.1", "80/tcp", .deny), ("web1", "world", "443/tcp", .allow), ("api1", "web1", "80/tcp", .allow)]),
            Case(name: "one rule serves both ends",
                 policy: "zones: [{name: web, egress: restricted}, {name: api, egress: restricted}]\nrules: [{name: r, from: web, to: api, ports: [tcp]}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "1/tcp", .allow), ("web1", "api1", "65535/tcp", .allow), ("api1", "web1", "80/tcp", .deny)]),
            Case(name: "a container in several zones is restricted if any zone restricts",
                 policy: "zones: [{name: open-side, selector: {matchLabels: {tier: a}}, ingress: open}, {name: closed-side, selector: {matchLabels: {pci: \"true\"}}}]",
                 containers: [container("both", ["tier": "a", "pci": "true"], ["10.0.0.2"]), container("openonly", ["tier": "a"], ["10.0.0.3"])],
                 flows: [("openonly", "both", "80/tcp", .deny), ("both", "openonly", "80/tcp", .allow)]),
            Case(name: "unzoned containers are open by default",
                 policy: "zones: [{name: web}]",
                 containers: [web, loose],
                 flows: [("web1", "loose", "80/tcp", .allow), ("world", "loose", "80/tcp", .allow), ("loose", "web1", "80/tcp", .deny)]),
            Case(name: "defaults.unzoned restricted closes unzoned ingress, not egress",
                 policy: "defaults: {unzoned: restricted}\nzones: [{name: web, ingress: open}]",
                 containers: [web, loose],
                 flows: [("web1", "loose", "80/tcp", .deny), ("world", "loose", "80/tcp", .deny), ("loose", "web1", "80/tcp", .allow)]),
            Case(name: "world means outside addresses, not containers or the host",
                 policy: "zones: [{name: web}, {name: api}]\nrules: [{from: world, to: web, ports: [443/tcp]}]",
                 containers: [web, api],
                 flows: [("world", "web1", "443/tcp", .allow), ("203.0.113.9", "web1", "443/tcp", .allow),
                         ("api1", "web1", "443/tcp", .deny), ("host", "web1", "443/tcp", .deny)]),
            Case(name: "host means the Docker host only",
                 policy: "zones: [{name: web}]\nrules: [{from: host, to: web, ports: [9100/tcp]}]",
                 containers: [web],
                 flows: [("host", "web1", "9100/tcp", .allow), ("world", "web1", "9100/tcp", .deny)]),
            Case(name: "any matches containers, world and host",
                 policy: "zones: [{name: web}, {name: api}]\nrules: [{from: any, to: web, ports: [80/tcp]}]",
                 containers: [web, api],
                 flows: [("api1", "web1", "80/tcp", .allow), ("world", "web1", "80/tcp", .allow), ("host", "web1", "80/tcp", .allow),
                         ("api1", "web1", "81/tcp", .deny)]),
            Case(name: "a CIDR with except matches addresses and containers inside it",
                 policy: "zones: [{name: db}]\nrules: [{from: {cidr: 172.18.0.0/16, except: [172.18.0.3/32]}, to: db, ports: [5432/tcp]}]",
                 containers: [web, api, db],
                 flows: [("web1", "db1", "5432/tcp", .allow), ("api1", "db1", "5432/tcp", .deny),
                         ("172.18.5.5", "db1", "5432/tcp", .allow), ("172.19.0.1", "db1", "5432/tcp", .deny),
                         ("world", "db1", "5432/tcp", .deny), ("host", "db1", "5432/tcp", .deny)]),
            Case(name: "an IPv6 CIDR matches a container by its IPv6 address",
                 policy: "zones: [{name: db}]\nrules: [{from: {cidr: \"fd00:18::/64\"}, to: db, ports: [5432/tcp]}]",
                 containers: [web, db],
                 flows: [("web1", "db1", "5432/tcp", .allow), ("fd00:18::77", "db1", "5432/tcp", .allow), ("fd00:19::1", "db1", "5432/tcp", .deny)]),
            Case(name: "IPv6 address of a container is the container",
                 policy: "zones: [{name: web}, {name: api}]\nrules: [{from: web, to: api, ports: [8080/tcp]}]",
                 containers: [web, api],
                 flows: [("fd00:18::2", "fd00:18::3", "8080/tcp", .allow), ("fd00:18::3", "fd00:18::2", "8080/tcp", .deny)]),
            Case(name: "port ranges are inclusive",
                 policy: "zones: [{name: api}]\nrules: [{from: any, to: api, ports: [9000-9100/tcp, 53/udp]}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "8999/tcp", .deny), ("web1", "api1", "9000/tcp", .allow), ("web1", "api1", "9100/tcp", .allow),
                         ("web1", "api1", "9101/tcp", .deny), ("web1", "api1", "53/udp", .allow), ("web1", "api1", "53/tcp", .deny)]),
            Case(name: "a bare protocol covers all its ports; icmp is its own protocol",
                 policy: "zones: [{name: api}]\nrules: [{from: any, to: api, ports: [sctp, icmp]}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "1/sctp", .allow), ("web1", "api1", "3868/sctp", .allow), ("web1", "api1", "icmp", .allow),
                         ("web1", "api1", "3868/tcp", .deny)]),
            Case(name: "omitted ports cover every protocol",
                 policy: "zones: [{name: web}, {name: api}]\nrules: [{from: web, to: api}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "1/tcp", .allow), ("web1", "api1", "65535/udp", .allow), ("web1", "api1", "9/sctp", .allow),
                         ("web1", "api1", "icmp", .allow), ("api1", "web1", "icmp", .deny)]),
            Case(name: "audit zone: denied only by audit zones passes as audit",
                 policy: "zones: [{name: web, mode: audit}, {name: api}]\nrules: [{from: web, to: api, ports: [8080/tcp]}]",
                 containers: [web, api],
                 flows: [("api1", "web1", "80/tcp", .audit), ("web1", "api1", "8080/tcp", .allow), ("web1", "api1", "22/tcp", .deny)]),
            Case(name: "audit and enforce together deny",
                 policy: "zones: [{name: web, egress: restricted, mode: audit}, {name: api}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "80/tcp", .deny), ("web1", "203.0.113.1", "80/tcp", .audit)]),
            Case(name: "defaults.mode audit makes every zone audit unless it says enforce",
                 policy: "defaults: {mode: audit}\nzones: [{name: web}, {name: api, mode: enforce}]",
                 containers: [web, api],
                 flows: [("api1", "web1", "80/tcp", .audit), ("web1", "api1", "80/tcp", .deny)]),
            Case(name: "reject changes the action, not the verdict",
                 policy: "defaults: {action: reject}\nzones: [{name: web}]",
                 containers: [web, api],
                 flows: [("api1", "web1", "80/tcp", .deny), ("web1", "api1", "80/tcp", .allow)]),
            Case(name: "flows with no managed container are never touched",
                 policy: "zones: [{name: web, egress: restricted}]",
                 containers: [web],
                 flows: [("world", "host", "22/tcp", .allow), ("203.0.113.1", "198.51.100.1", "80/tcp", .allow)]),
            Case(name: "a container's traffic to itself is not filtered",
                 policy: "zones: [{name: web, egress: restricted}]",
                 containers: [web],
                 flows: [("web1", "web1", "80/tcp", .allow)]),
            Case(name: "order of rules and files does not matter",
                 policy: "rules: [{from: web, to: api, ports: [80/tcp]}]\nzones: [{name: api}, {name: web}]",
                 containers: [web, api],
                 flows: [("web1", "api1", "80/tcp", .allow)]),
        ]
    }

    @Test(arguments: cases)
    func verdicts(_ testCase: Case) {
        let evaluator = PolicyEvaluator(policy: policy(testCase.policy), inventory: Inventory(containers: testCase.containers))
        for (from, to, port, expected) in testCase.flows {
            #expect(evaluator.verdict(from, to, port) == expected, "\(from) -> \(to) \(port)")
        }
    }

    @Test func allowingRulesAreNamedOnlyWhenTheyMatch() {
        let evaluator = PolicyEvaluator(policy: policy("""
            zones: [{name: web}, {name: api}]
            rules:
              - {name: a, from: web, to: api, ports: [80/tcp]}
              - {name: b, from: any, to: api, ports: [80-90/tcp]}
              - {name: c, from: api, to: web}
            """), inventory: Inventory(containers: [Self.web, Self.api]))
        #expect(evaluator.rules("web1", "api1", "80/tcp") == ["a", "b"], "every matching rule, in policy order")
        #expect(evaluator.rules("web1", "api1", "85/tcp") == ["b"])
        #expect(evaluator.rules("web1", "api1", "95/tcp") == [])
        #expect(evaluator.rules("api1", "web1", "1/udp") == ["c"])
    }

    @Test func zonesOfContainers() {
        let evaluator = PolicyEvaluator(policy: policy("""
            zones:
              - {name: all, selector: {}, ingress: open}
              - {name: web}
              - {name: prod, selector: {matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}, ingress: open}
            """), inventory: Inventory(containers: [Self.web, container("dev", ["env": "dev"])]))
        #expect(evaluator.zoneNames(ofContainer: 0) == ["all", "web", "prod"])
        #expect(evaluator.zoneNames(ofContainer: 1) == ["all"])
    }

    @Test func explainGivesReasonsInOrder() {
        let evaluator = PolicyEvaluator(policy: policy("""
            zones: [{name: web}, {name: payments, egress: restricted}]
            rules:
              - {name: web-to-payments, from: web, to: payments, ports: [8443/tcp], owner: team-pay, ticket: CHG-1}
            """), inventory: Inventory(containers: [Self.web, container("pay1", ["zonegate.zone": "payments"], ["172.18.0.8"])]))
        let allowed = evaluator.explain(from: evaluator.peer(named: "web1")!, to: evaluator.peer(named: "pay1")!, port: ServicePort(8443, .tcp))
        #expect(allowed.verdict == .allow)
        #expect(allowed.rules == ["web-to-payments"])
        #expect(allowed.reasons == [
            "source web1 is a managed container in zone web",
            "destination pay1 is a managed container in zone payments",
            "ingress of pay1 is restricted by payments (enforce)",
            "egress of web1 is open",
            "rule web-to-payments allows web1 -> pay1 on 8443/tcp (policy.yaml:3:5) [owner: team-pay; ticket: CHG-1]",
            "allowed by rule",
        ])
        let denied = evaluator.explain(from: evaluator.peer(named: "pay1")!, to: evaluator.peer(named: "203.0.113.5")!, port: ServicePort(443, .tcp))
        #expect(denied.verdict == .deny)
        #expect(denied.rules == [])
        #expect(denied.reasons == [
            "source pay1 is a managed container in zone payments",
            "destination 203.0.113.5 is an outside address (no container holds it)",
            "ingress: 203.0.113.5 is not a managed container, so its ingress is not checked",
            "egress of pay1 is restricted by payments (enforce)",
            "no rule allows pay1 -> 203.0.113.5 on 443/tcp",
            "denied: dropped (defaults.action: drop)",
        ])
    }

    /// policy.md: broadcast, multicast and link-local traffic of containers has no identity to
    /// judge by and is dropped whatever the zones, even between open zones; explain says so.
    @Test func explainDropsLinkScopedAddressesWhateverTheZones() {
        let evaluator = PolicyEvaluator(policy: policy("zones: [{name: web, ingress: open}]"), inventory: Inventory(containers: [Self.web]))
        let cases: [(String, String)] = [("224.0.0.251", "multicast"), ("255.255.255.255", "broadcast"), ("169.254.1.1", "link-local"),
                                         ("ff02::1", "multicast"), ("fe80::1", "link-local")]
        for (address, scope) in cases {
            for (from, to) in [("web1", address), (address, "web1")] {
                let explanation = evaluator.explain(from: evaluator.peer(named: from)!, to: evaluator.peer(named: to)!, port: ServicePort(5353, .udp))
                #expect(explanation.verdict == .deny, "\(from) -> \(to)")
                #expect(explanation.reasons.last == "\(address) is a \(scope) address: it names no container, so it has no identity to judge by;"
                    + " broadcast, multicast and link-local traffic of containers is dropped whatever the zones"
                    + " (ARP and IPv6 neighbour discovery for a container's own addresses pass)")
            }
        }
        // An ordinary outside address is judged as before.
        #expect(evaluator.explain(from: .container(0), to: evaluator.peer(named: "203.0.113.5")!, port: ServicePort(53, .udp)).verdict == .allow)
    }
}
