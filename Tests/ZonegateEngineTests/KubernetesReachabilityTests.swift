import Testing
import ZonegateEngine
import ZonegatePolicy

/// Cases from the Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol), translated into
/// zones and rules. The model is theirs: namespaces x, y, z, each with pods a, b, c (labels `ns`
/// and `pod`), serving 80 and 81 over TCP, UDP and SCTP, and a truth table of who reaches whom.
///
/// Translation: a NetworkPolicy's podSelector becomes a zone whose restricted side is the policy's
/// type (Ingress and/or Egress); its peers become rules. Zones that only name peers are declared
/// with both sides open, since in Kubernetes a peer selector does not isolate the peers.
@Suite struct KubernetesReachabilityTests {
    static let namespaces = ["x", "y", "z"]
    static let pods = ["a", "b", "c"]
    static let ports = ["80/tcp", "81/tcp", "80/udp", "81/udp", "80/sctp", "81/sctp"]
    /// Pod names as Kubernetes prints them, `x/a`.
    static let all = namespaces.flatMap { ns in pods.map { "\(ns)/\($0)" } }

    static let inventory = Inventory(containers: namespaces.enumerated().flatMap { nsIndex, ns in
        pods.enumerated().map { podIndex, pod in
            container("\(ns)/\(pod)", ["ns": ns, "pod": pod], ["10.0.\(nsIndex + 1).\(podIndex + 1)"], ports: ports)
        }
    })

    /// The expected truth table, built as the e2e suite builds it: a default, then exceptions.
    struct Reachability {
        private var table: [String: [String: Bool]]

        init(_ allowed: Bool) {
            table = Dictionary(uniqueKeysWithValues: all.map { from in (from, Dictionary(uniqueKeysWithValues: all.map { ($0, allowed) })) })
        }

        mutating func expect(_ from: String, _ to: String, _ allowed: Bool) { table[from]![to] = allowed }
        mutating func expectAllIngress(_ to: String, _ allowed: Bool) { for from in all { expect(from, to, allowed) } }
        mutating func expectAllEgress(_ from: String, _ allowed: Bool) { for to in all { expect(from, to, allowed) } }
        mutating func expectPeers(from: (String) -> Bool, to: (String) -> Bool, _ allowed: Bool) {
            for source in all where from(source) { for destination in all where to(destination) { expect(source, destination, allowed) } }
        }

        subscript(from: String, to: String) -> Bool { table[from]![to]! }
    }

    /// Compares the verdicts with the truth table on the given ports; a pod's traffic to itself is
    /// not filtered, so the diagonal is skipped as the e2e suite's loopback is.
    private func assertReachability(_ name: String, _ yaml: String, ports: [String], _ expected: Reachability,
                                    sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let evaluator = PolicyEvaluator(policy: policy(yaml, sourceLocation: sourceLocation), inventory: Self.inventory)
        var wrong: [String] = []
        for port in ports {
            for from in Self.all {
                for to in Self.all where from != to {
                    let allowed = evaluator.verdict(from, to, port) == .allow
                    if allowed != expected[from, to] { wrong.append("\(from) -> \(to) \(port): got \(allowed ? "allow" : "deny")") }
                }
            }
        }
        #expect(wrong.isEmpty, "\(name):\n\(wrong.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    private func inNamespace(_ ns: String) -> (String) -> Bool { { $0.hasPrefix("\(ns)/") } }
    private func pod(_ name: String) -> (String) -> Bool { { $0.hasSuffix("/\(name)") } }

    @Test func defaultDenyIngress() {
        var expected = Reachability(true)
        expected.expectPeers(from: { _ in true }, to: inNamespace("x"), false)
        assertReachability("should support a 'default-deny-ingress' policy",
                           "zones: [{name: x-pods, selector: {matchLabels: {ns: x}}, ingress: restricted}]",
                           ports: ["80/tcp", "81/udp"], expected)
    }

    @Test func defaultDenyAll() {
        var expected = Reachability(true)
        expected.expectPeers(from: { _ in true }, to: inNamespace("x"), false)
        expected.expectPeers(from: inNamespace("x"), to: { _ in true }, false)
        assertReachability("should support a 'default-deny-all' policy",
                           "zones: [{name: x-pods, selector: {matchLabels: {ns: x}}, ingress: restricted, egress: restricted}]",
                           ports: Self.ports, expected)
    }

    @Test func allowFromPodWithinNamespaceByPodSelector() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expect("x/b", "x/a", true)
        assertReachability("should enforce policy to allow traffic from pods within server namespace based on PodSelector", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: x-b, selector: {matchLabels: {ns: x, pod: b}}, ingress: open}
            rules: [{from: x-b, to: x-a}]
            """, ports: ["80/tcp", "81/tcp"], expected)
    }

    @Test func allowOnlyFromOtherNamespaceByNamespaceSelector() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expectPeers(from: inNamespace("y"), to: { $0 == "x/a" }, true)
        assertReachability("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: ns-y, selector: {matchLabels: {ns: y}}, ingress: open}
            rules: [{from: ns-y, to: x-a}]
            """, ports: ["80/tcp"], expected)
    }

    @Test func podSelectorWithMatchExpressions() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expect("x/b", "x/a", true)
        assertReachability("should enforce policy based on PodSelector with MatchExpressions", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - name: x-peers
                selector: {matchLabels: {ns: x}, matchExpressions: [{key: pod, operator: In, values: [b]}]}
                ingress: open
            rules: [{from: x-peers, to: x-a}]
            """, ports: ["80/tcp"], expected)
    }

    @Test func namespaceSelectorWithMatchExpressions() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expectPeers(from: inNamespace("y"), to: { $0 == "x/a" }, true)
        assertReachability("should enforce policy based on NamespaceSelector with MatchExpressions", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: peers, selector: {matchExpressions: [{key: ns, operator: In, values: [y]}]}, ingress: open}
            rules: [{from: peers, to: x-a}]
            """, ports: ["80/tcp"], expected)
    }

    @Test func podSelectorAndNamespaceSelectorWithNotIn() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expectPeers(from: { !$0.hasPrefix("x/") && !$0.hasSuffix("/a") }, to: { $0 == "x/a" }, true)
        assertReachability("should enforce policy based on PodSelector and NamespaceSelector (NotIn)", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - name: peers
                selector:
                  matchExpressions:
                    - {key: pod, operator: NotIn, values: [a]}
                    - {key: ns, operator: NotIn, values: [x]}
                ingress: open
            rules: [{from: peers, to: x-a}]
            """, ports: ["80/tcp"], expected)
    }

    @Test func ports() {
        var port80 = Reachability(true)
        port80.expectAllIngress("x/a", false)
        var port81 = port80
        port81.expectPeers(from: inNamespace("y"), to: { $0 == "x/a" }, true)
        let yaml = """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: ns-y, selector: {matchLabels: {ns: y}}, ingress: open}
            rules: [{from: ns-y, to: x-a, ports: [81/tcp]}]
            """
        assertReachability("should enforce policy based on Ports (80 closed)", yaml, ports: ["80/tcp"], port80)
        assertReachability("should enforce policy based on Ports (81 open to y)", yaml, ports: ["81/tcp"], port81)
    }

    @Test func multipleStackedPolicies() {
        var expected = Reachability(true)
        expected.expectAllIngress("x/a", false)
        expected.expectPeers(from: inNamespace("y"), to: { $0 == "x/a" }, true)
        assertReachability("should enforce multiple, stacked policies with overlapping podSelectors", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: ns-y, selector: {matchLabels: {ns: y}}, ingress: open}
            rules:
              - {name: allow-81, from: ns-y, to: x-a, ports: [81/tcp]}
              - {name: allow-80, from: ns-y, to: x-a, ports: [80/tcp]}
            """, ports: ["80/tcp", "81/tcp"], expected)
    }

    @Test func egressToPodInOtherNamespace() {
        var expected = Reachability(true)
        expected.expectAllEgress("x/a", false)
        expected.expect("x/a", "y/b", true)
        assertReachability("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector", """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}, ingress: open, egress: restricted}
              - {name: y-b, selector: {matchLabels: {ns: y, pod: b}}, ingress: open}
            rules: [{from: x-a, to: y-b, ports: [80/tcp]}]
            """, ports: ["80/tcp"], expected)
    }

    @Test func denyIngressFromOtherNamespaces() {
        var expected = Reachability(true)
        expected.expectPeers(from: { !$0.hasPrefix("x/") }, to: inNamespace("x"), false)
        assertReachability("should deny ingress from pods on other namespaces", """
            zones: [{name: x-pods, selector: {matchLabels: {ns: x}}}]
            rules: [{from: x-pods, to: x-pods}]
            """, ports: ["80/tcp", "81/udp"], expected)
    }

    @Test func uDPOnlyPolicyDoesNotAllowTCP() {
        var tcp = Reachability(true)
        tcp.expectAllIngress("x/a", false)
        let udp = Reachability(true)
        let yaml = "zones: [{name: x-a, selector: {matchLabels: {ns: x, pod: a}}}]\nrules: [{from: any, to: x-a, ports: [81/udp]}]"
        assertReachability("should not allow access by TCP when a policy specifies only UDP", yaml, ports: ["81/tcp"], tcp)
        assertReachability("should allow UDP 81 when a policy specifies it", yaml, ports: ["81/udp"], udp)
        assertReachability("UDP 80 stays closed", yaml, ports: ["80/udp"], tcp)
    }

    @Test func anyPortOfOneProtocol() {
        var closed = Reachability(true)
        closed.expectAllIngress("x/a", false)
        let yaml = "zones: [{name: x-a, selector: {matchLabels: {ns: x, pod: a}}}]\nrules: [{from: any, to: x-a, ports: [sctp]}]"
        assertReachability("should enforce ingress policy allowing any port traffic to a server on a specific protocol",
                           yaml, ports: ["80/sctp", "81/sctp"], Reachability(true))
        assertReachability("... and no other protocol", yaml, ports: ["80/tcp", "81/udp"], closed)
    }

    @Test func ingressAndEgressTogether() {
        var port80 = Reachability(true)
        port80.expectAllIngress("x/a", false)
        port80.expectPeers(from: pod("b"), to: { $0 == "x/a" }, true)
        var port81 = port80
        port81.expectAllEgress("x/a", false)
        let yaml = """
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}, ingress: restricted, egress: restricted}
              - {name: pod-b, selector: {matchLabels: {pod: b}}, ingress: open}
            rules:
              - {name: ingress-from-b, from: pod-b, to: x-a}
              - {name: egress-on-80, from: x-a, to: any, ports: [80/tcp]}
            """
        assertReachability("should work with Ingress, Egress specified together", yaml, ports: ["80/tcp"], port80)
        assertReachability("should work with Ingress, Egress specified together (81)", yaml, ports: ["81/tcp"], port81)
    }

    @Test func egressToCIDRWithExcept() {
        var expected = Reachability(true)
        expected.expectAllEgress("x/a", false)
        expected.expect("x/a", "y/a", true)
        expected.expect("x/a", "y/c", true)
        assertReachability("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is denied", """
            zones: [{name: x-a, selector: {matchLabels: {ns: x, pod: a}}, ingress: open, egress: restricted}]
            rules: [{from: x-a, to: {cidr: 10.0.2.0/24, except: [10.0.2.2/32]}}]
            """, ports: ["80/tcp", "81/udp"], expected)
    }

    @Test func allowAll() {
        assertReachability("should support allow-all policy", """
            zones: [{name: x-pods, selector: {matchLabels: {ns: x}}}]
            rules: [{from: any, to: x-pods}]
            """, ports: Self.ports, Reachability(true))
    }

    @Test func matrixRowsFollowTheTruthTable() {
        // The same case through `zonegate matrix`: every (source, destination, port) row.
        let evaluator = PolicyEvaluator(policy: policy("""
            zones:
              - {name: x-a, selector: {matchLabels: {ns: x, pod: a}}}
              - {name: ns-y, selector: {matchLabels: {ns: y}}, ingress: open}
            rules: [{name: r1, from: ns-y, to: x-a, ports: [81/tcp]}]
            """), inventory: Self.inventory)
        let flows = ReachabilityMatrix(evaluator).flows()
        #expect(flows.count == (9 * 8 + 2 * 9) * Self.ports.count, "8 peers + world + host per destination, 6 ports each")
        for flow in flows where flow.to == "x/a" {
            let allowed = flow.from.hasPrefix("y/") && flow.port == ServicePort(81, .tcp)
            #expect(flow.verdict == (allowed ? .allow : .deny), "\(flow)")
            #expect(flow.rules == (allowed ? ["r1"] : []))
        }
        #expect(flows.filter { $0.to != "x/a" }.allSatisfy { $0.verdict == .allow && $0.rules.isEmpty })
    }
}
