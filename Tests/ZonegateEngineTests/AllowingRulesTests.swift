import Testing
import ZonegateEngine
import ZonegatePolicy

/// cli.md: a matrix row's `rules` names the rules that allow the flow, "empty when denied or when
/// allowed by open ingress/egress", even where a rule also matches.
@Suite struct AllowingRulesTests {
    private let evaluator = PolicyEvaluator(policy: policy("""
        zones:
          - {name: web}
          - {name: batch}
          - {name: shop, ingress: open}
          - {name: vault, ingress: open, egress: restricted}
          - {name: lab, ingress: restricted, mode: audit}
        rules:
          - {name: web-shop, from: web, to: shop, ports: [443/tcp]}
          - {name: batch-any, from: batch, to: any}
          - {name: vault-shop, from: vault, to: shop, ports: [443/tcp]}
          - {name: web-lab, from: web, to: lab, ports: [22/tcp]}
        """), inventory: Inventory(containers: [
            container("web1", ["zonegate.zone": "web"]),
            container("batch1", ["zonegate.zone": "batch"]),
            container("shop1", ["zonegate.zone": "shop"], ports: ["443/tcp", "443/tcp"]),
            container("vault1", ["zonegate.zone": "vault"]),
            container("lab1", ["zonegate.zone": "lab"]),
            container("loose1"),
        ]))

    static let rulesOfAllowedFlowsCases: [(String, String, String, String, VerdictKind, rules: [String], matching: [String])] = [
        ("both sides open: the open sides allow it, not the rule", "web1", "shop1", "443/tcp", .allow, [], ["web-shop"]),
        ("`to: any` into an open unzoned container", "batch1", "loose1", "80/tcp", .allow, [], ["batch-any"]),
        ("`to: any` into a restricted zone: the rule allows it", "batch1", "web1", "80/tcp", .allow, ["batch-any"], ["batch-any"]),
        ("restricted egress, open ingress: the rule allows it", "vault1", "shop1", "443/tcp", .allow, ["vault-shop"], ["vault-shop"]),
        ("restricted egress without a rule", "vault1", "shop1", "80/tcp", .deny, [], []),
        ("audit-restricted ingress opened by a rule", "web1", "lab1", "22/tcp", .allow, ["web-lab"], ["web-lab"]),
        ("audit-restricted ingress without a rule", "web1", "lab1", "23/tcp", .audit, [], []),
        ("open sides without any rule", "loose1", "shop1", "443/tcp", .allow, [], []),
    ]

    @Test(arguments: rulesOfAllowedFlowsCases)
    func rulesOfAllowedFlows(_ testCase: (String, String, String, String, VerdictKind, rules: [String], matching: [String])) {
        let (name, from, to, port, verdict, rules, matching) = testCase
        let decision = evaluator.decide(from: evaluator.peer(named: from)!, to: evaluator.peer(named: to)!, port: ServicePort.parse(port)!)
        #expect(decision.verdict == verdict, "\(name)")
        #expect(decision.rules == rules, "\(name)")
        #expect(decision.matchingRules == matching, "\(name)")
    }

    @Test func matrixRowsAndExplainAgree() {
        let flows = ReachabilityMatrix(evaluator).flows()
        let rows = flows.filter { $0.from == "web1" && $0.to == "shop1" }
        #expect(rows.count == 1, "a port listed twice is one row: \(rows)")
        #expect(rows.first?.rules == [])
        #expect(ReachabilityMatrix(evaluator).summary().flows == flows.count)
        let explanation = evaluator.explain(from: evaluator.peer(named: "web1")!, to: evaluator.peer(named: "shop1")!, port: ServicePort(443, .tcp))
        #expect(explanation.verdict == .allow)
        #expect(explanation.rules == [])
        #expect(explanation.reasons.contains { $0.hasPrefix("rule web-shop also covers web1 -> shop1 on 443/tcp") }, "\(explanation.reasons)")
        #expect(explanation.reasons.last == "allowed: no side of the flow is restricted, so it needs no rule")
    }
}
