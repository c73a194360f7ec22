import Testing
import ZonegateEngine
import ZonegatePolicy

/// Assertions proved over every possible set of containers.
@Suite struct ProverTests {
    private func prove(_ yaml: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String: AssertionResult] {
        let results = AssertionProver(policy: policy(yaml, sourceLocation: sourceLocation)).prove()
        return Dictionary(uniqueKeysWithValues: results.map { ($0.assertion.name, $0) })
    }

    @Test func resultsAreTheSameInPolicyOrderWhateverTheWorkers() {
        // Two threads, each with its own model, in batches: the same results, in policy order,
        // as one thread (more assertions than one batch, so batches follow each other).
        var yaml = """
            zones:
              - {name: web, selector: {matchLabels: {tier: web}}}
              - {name: db, selector: {matchLabels: {tier: db}}, ingress: restricted}
              - {name: all, egress: restricted}
            rules: [{name: web-db, from: web, to: db, ports: [5432/tcp]}]
            assertions:

            """
        for index in 0..<70 {
            yaml += index % 2 == 0 ? "  - {name: a\(index), deny: {from: all, to: db}}\n"
                                   : "  - {name: a\(index), allow: {from: web, to: db, ports: [5432/tcp]}}\n"
        }
        let prover = AssertionProver(policy: policy(yaml))
        var one: [AssertionResult] = [], two: [AssertionResult] = []
        prover.prove(workers: 1) { one.append($0) }
        prover.prove(workers: 2) { two.append($0) }
        #expect(one.map(\.assertion.name) == (0..<70).map { "a\($0)" })
        #expect(one == two)
        #expect(prover.prove() == one)
    }

    @Test func denyHoldsWhenZonesCannotOverlap() {
        let results = prove("""
            zones: [{name: corp}, {name: web}, {name: payments, egress: restricted}]
            rules:
              - {name: corp-web, from: corp, to: web, ports: [443/tcp]}
              - {name: web-pay, from: web, to: payments, ports: [8443/tcp]}
            assertions:
              - {name: corp-not-cde, deny: {from: corp, to: payments}}
              - {name: cde-not-out, deny: {from: payments, to: world}}
            """)
        #expect(results["corp-not-cde"]!.holds, "\(results["corp-not-cde"]!.failures)")
        #expect(results["cde-not-out"]!.holds)
    }

    @Test func denyFailsThroughOverlappingSelectors() {
        // A container labelled team=corp and tier=web is in both zones, so corp reaches payments
        // through the web rule although no rule names corp.
        let results = prove("""
            zones:
              - {name: corp, selector: {matchLabels: {team: corp}}}
              - {name: web, selector: {matchLabels: {tier: web}}}
              - {name: payments, selector: {matchLabels: {tier: payments}}}
            rules: [{name: web-pay, from: web, to: payments, ports: [8443/tcp]}]
            assertions: [{name: corp-not-cde, deny: {from: corp, to: payments}}]
            """)
        let result = results["corp-not-cde"]!
        #expect(!result.holds)
        #expect(result.responsibleRules == ["web-pay"])
        #expect(result.failures.count == 1)
        #expect(result.failures[0].contains("rule web-pay (policy.yaml:5:9) allows corp -> payments on 8443/tcp"), "\(result.failures[0])")
    }

    @Test func contradictingExpressionsProveDisjointness() {
        let results = prove("""
            zones:
              - name: corp
                selector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}
              - {name: web, selector: {matchLabels: {tier: web}}}
              - {name: payments, selector: {matchExpressions: [{key: tier, operator: In, values: [payments]}]}}
            rules: [{name: web-pay, from: web, to: payments, ports: [8443/tcp]}]
            assertions:
              - {name: corp-not-cde, deny: {from: corp, to: payments}}
              - {name: web-only-8443, deny: {from: web, to: payments, ports: [1-8442/tcp, 8444-65535/tcp, udp]}}
              - {name: web-on-8443, deny: {from: web, to: payments, ports: [8443/tcp]}}
            """)
        #expect(results["corp-not-cde"]!.holds, "\(results["corp-not-cde"]!.failures)")
        #expect(results["web-only-8443"]!.holds, "\(results["web-only-8443"]!.failures)")
        #expect(!(results["web-on-8443"]!.holds))
    }

    @Test func denyFailsOnOpenIngressNamingTheZone() {
        let results = prove("""
            zones: [{name: corp}, {name: payments, ingress: open}]
            assertions: [{name: corp-not-cde, deny: {from: corp, to: payments}}]
            """)
        let result = results["corp-not-cde"]!
        #expect(!result.holds)
        #expect(result.responsibleRules == [])
        #expect(result.failures == ["corp -> payments needs no rule: corp has open egress; payments has open ingress"])
    }

    @Test func denyFailsWhenTheDestinationIsOnlyAudited() {
        let results = prove("""
            zones: [{name: corp}, {name: payments, mode: audit}]
            assertions: [{name: corp-not-cde, deny: {from: corp, to: payments}}]
            """)
        #expect(!(results["corp-not-cde"]!.holds))
        #expect(results["corp-not-cde"]!.failures[0].contains("payments is in audit mode"), "\(results["corp-not-cde"]!.failures)")
    }

    @Test func denyFailsWhenAnOverlappingZoneHasOpenIngress() {
        // payments restricts ingress, and any container in payments is restricted by it: holds.
        // With an empty selector zone of open ingress, nothing changes: restriction wins.
        let results = prove("""
            zones: [{name: everyone, selector: {}, ingress: open}, {name: corp}, {name: payments}]
            assertions: [{name: corp-not-cde, deny: {from: corp, to: payments}}]
            """)
        #expect(results["corp-not-cde"]!.holds, "\(results["corp-not-cde"]!.failures)")
    }

    @Test func denyFailsThroughAnyAndCIDRRules() {
        let results = prove("""
            zones: [{name: corp}, {name: payments}]
            rules:
              - {name: from-any, from: any, to: payments, ports: [icmp]}
              - {name: from-office, from: {cidr: 10.20.0.0/16}, to: payments, ports: [22/tcp]}
              - {name: from-host, from: host, to: payments, ports: [9100/tcp]}
            assertions:
              - {name: corp-not-cde, deny: {from: corp, to: payments}}
              - {name: host-not-ssh, deny: {from: host, to: payments, ports: [22/tcp]}}
            """)
        #expect(results["corp-not-cde"]!.responsibleRules == ["from-any", "from-office"], "a corp container may hold an address in the office CIDR; host is not a container")
        #expect(results["host-not-ssh"]!.holds, "\(results["host-not-ssh"]!.failures)")
    }

    @Test func denyAgainstWorldCountsCIDRRules() {
        let results = prove("""
            zones: [{name: payments, egress: restricted}]
            rules: [{name: processor, from: payments, to: {cidr: 198.51.100.0/24}, ports: [443/tcp]}]
            assertions:
              - {name: cde-not-out, deny: {from: payments, to: world}}
              - {name: cde-not-out-80, deny: {from: payments, to: world, ports: [80/tcp]}}
            """)
        #expect(results["cde-not-out"]!.responsibleRules == ["processor"])
        #expect(results["cde-not-out-80"]!.holds)
    }

    @Test func allowHoldsWhenRulesCoverEveryPort() {
        let results = prove("""
            zones: [{name: web}, {name: api, egress: restricted}]
            rules:
              - {name: low, from: web, to: api, ports: [8000-8099/tcp]}
              - {name: high, from: web, to: api, ports: [8100-8199/tcp]}
            assertions:
              - {name: whole-range, allow: {from: web, to: api, ports: [8050-8150/tcp]}}
              - {name: too-wide, allow: {from: web, to: api, ports: [8190-8210/tcp, 53/udp]}}
              - {name: reverse, allow: {from: api, to: web, ports: [80/tcp]}}
            """)
        #expect(results["whole-range"]!.holds, "\(results["whole-range"]!.failures)")
        #expect(!(results["too-wide"]!.holds))
        #expect(results["too-wide"]!.failures == ["no rule allows all of web -> api on 8200-8210/tcp, 53/udp (api ingress can be restricted by api)"])
        #expect(!(results["reverse"]!.holds))
        #expect(results["reverse"]!.responsibleZones == ["api", "web"])
    }

    @Test func allowNeedsTheRuleToCoverEveryContainerOfTheZone() {
        // `web` may hold containers outside `frontend` (no env=prod label), so a rule from
        // frontend does not prove that every web container reaches api.
        let results = prove("""
            zones:
              - {name: web, selector: {matchLabels: {tier: web}}, ingress: open}
              - {name: frontend, selector: {matchLabels: {tier: web, env: prod}}, ingress: open}
              - {name: every-web, selector: {matchExpressions: [{key: tier, operator: In, values: [web, edge]}]}, ingress: open}
              - {name: api, selector: {matchLabels: {tier: api}}}
            rules:
              - {name: frontend-api, from: frontend, to: api, ports: [8080/tcp]}
              - {name: every-web-api, from: every-web, to: api, ports: [9090/tcp]}
            assertions:
              - {name: web-api-8080, allow: {from: web, to: api, ports: [8080/tcp]}}
              - {name: web-api-9090, allow: {from: web, to: api, ports: [9090/tcp]}}
            """)
        #expect(!(results["web-api-8080"]!.holds))
        #expect(results["web-api-9090"]!.holds, "\(results["web-api-9090"]!.failures)")
    }

    @Test func allowThroughOpenSidesAndFailsUnderAudit() {
        let results = prove("""
            zones: [{name: web, ingress: open}, {name: corp, ingress: open}, {name: api, mode: audit}]
            assertions:
              - {name: corp-web, allow: {from: corp, to: web}}
              - {name: corp-api, allow: {from: corp, to: api, ports: [80/tcp]}}
            """)
        #expect(results["corp-web"]!.holds, "\(results["corp-web"]!.failures)")
        #expect(!(results["corp-api"]!.holds), "an audited flow would be denied once enforced")
    }
}

/// "Can a container be in these zones and not those?", decided exactly.
@Suite struct LabelSatisfiabilityTests {
    typealias R = LabelSelector.Requirement

    static let web = LabelSelector(matchLabels: ["tier": "web"])
    static let api = LabelSelector(matchLabels: ["tier": "api"])
    static let prod = LabelSelector(matchExpressions: [R(key: "env", op: .in, values: ["prod"])])
    static let notProd = LabelSelector(matchExpressions: [R(key: "env", op: .notIn, values: ["prod"])])
    static let hasEnv = LabelSelector(matchExpressions: [R(key: "env", op: .exists)])
    static let noEnv = LabelSelector(matchExpressions: [R(key: "env", op: .doesNotExist)])

    static let cases: [(String, [LabelSelector], [LabelSelector], Bool)] = [
        ("one selector alone", [web], [], true),
        ("two values of one key contradict", [web, api], [], false),
        ("different keys overlap", [web, prod], [], true),
        ("In and NotIn of the same value contradict", [prod, notProd], [], false),
        ("Exists and DoesNotExist contradict", [hasEnv, noEnv], [], false),
        ("NotIn holds when the key is absent", [notProd, noEnv], [], true),
        ("a selector minus itself is empty", [web], [web], false),
        ("minus every case of a key is empty", [web], [prod, notProd], false),
        ("minus some cases leaves others", [web], [prod], true),
        ("nothing is outside the empty selector", [], [LabelSelector()], false),
        ("In with several values minus one", [LabelSelector(matchExpressions: [R(key: "tier", op: .in, values: ["web", "edge"])])], [web], true),
        ("In with several values minus both", [LabelSelector(matchExpressions: [R(key: "tier", op: .in, values: ["web", "edge"])])],
         [web, LabelSelector(matchLabels: ["tier": "edge"])], false),
        ("a fresh value escapes NotIn-based exclusions", [hasEnv], [prod, LabelSelector(matchLabels: ["env": "dev"])], true),
        ("zonegate.zone defaults never overlap", [.zoneLabel("a"), .zoneLabel("b")], [], false),
    ]

    @Test(arguments: cases)
    func decidesSatisfiability(_ testCase: (String, [LabelSelector], [LabelSelector], Bool)) {
        let (name, required, excluded, expected) = testCase
        #expect(LabelSatisfiability.satisfiable(matching: required, notMatching: excluded) == expected, "\(name)")
    }
}
