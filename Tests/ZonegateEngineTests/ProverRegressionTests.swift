import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// Inputs that once took exponential (or quadratic) time or got a wrong answer. Each asserts the
/// answer; all of them together run in well under a second.
@Suite struct ProverRegressionTests {
    private func results(_ policy: Policy) -> [String: AssertionResult] {
        Dictionary(uniqueKeysWithValues: AssertionProver(policy: policy).prove().map { ($0.assertion.name, $0) })
    }

    private func values(_ prefix: String, _ range: Range<Int>) -> [String] { range.map { "\(prefix)\($0)" } }

    @Test func aDozenMatchLabelsNextToAnUnlabelledZone() {
        // Once ×3 per label: a minute for a dozen.
        let labels = Dictionary(uniqueKeysWithValues: (0..<16).map { ("key\($0)", "value\($0)") })
        let policy = Policy(zones: [
            Zone(name: "big", selector: LabelSelector(matchLabels: labels), egress: .restricted),
            Zone(name: "plain"),
            Zone(name: "open", selector: LabelSelector(matchLabels: ["key3": "value3", "key7": "other"]), ingress: .open),
        ], rules: [Rule(name: "big-plain", from: [.zone("big")], to: [.zone("plain")], ports: [PortRange(.tcp, 443, 443)])],
        assertions: [
            Assertion(name: "plain-not-big", kind: .deny, from: [.zone("plain")], to: [.zone("big")], ports: [PortRange(.tcp, 80, 80)]),
            Assertion(name: "plain-not-big-443", kind: .deny, from: [.zone("plain")], to: [.zone("big")], ports: [PortRange(.tcp, 443, 443)]),
            Assertion(name: "big-not-open", kind: .deny, from: [.zone("big")], to: [.zone("open")], ports: [PortRange(.tcp, 80, 80)]),
            Assertion(name: "big-plain", kind: .allow, from: [.zone("big")], to: [.zone("plain")], ports: [PortRange(.tcp, 443, 443)]),
            Assertion(name: "big-plain-80", kind: .allow, from: [.zone("big")], to: [.zone("plain")], ports: [PortRange(.tcp, 80, 80)]),
        ])
        let results = results(policy)
        #expect(results["plain-not-big"]!.holds)
        #expect(results["plain-not-big-443"]!.responsibleRules == ["big-plain"], "a container may be in plain and big at once")
        #expect(results["big-not-open"]!.holds, "big's egress is restricted, and no rule allows 80")
        #expect(results["big-plain"]!.holds)
        #expect(!results["big-plain-80"]!.holds)
        #expect(results["big-plain-80"]!.responsibleZones == ["big", "plain"])
    }

    @Test func twentyNotInExpressions() {
        let expressions = (0..<24).map { LabelSelector.Requirement(key: "k\($0)", op: .notIn, values: values("v", 0..<5)) }
        let contradicting = (0..<24).map { LabelSelector.Requirement(key: "k\($0)", op: .in, values: ["v\($0 % 5)"]) }
        let policy = Policy(zones: [
            Zone(name: "many", selector: LabelSelector(matchExpressions: expressions), ingress: .open),
            Zone(name: "other", selector: LabelSelector(matchExpressions: contradicting), ingress: .open),
            Zone(name: "any-k0", selector: LabelSelector(matchExpressions: [.init(key: "k0", op: .exists)]), egress: .restricted),
            Zone(name: "db"),
        ], rules: [Rule(name: "many-db", from: [.zone("many")], to: [.zone("db")], ports: [PortRange(.tcp, 5432, 5432)])],
        assertions: [
            Assertion(name: "other-not-many", kind: .deny, from: [.zone("other")], to: [.zone("many")], ports: [PortRange(.tcp, 22, 22)]),
            Assertion(name: "many-reaches-db", kind: .allow, from: [.zone("many")], to: [.zone("db")], ports: [PortRange(.tcp, 5432, 5432)]),
            Assertion(name: "db-not-many", kind: .deny, from: [.zone("db")], to: [.zone("many")]),
        ])
        let results = results(policy)
        #expect(results["other-not-many"]!.holds, "every `other` container has k0, so any-k0 restricts its egress")
        #expect(results["many-reaches-db"]!.holds)
        #expect(!results["db-not-many"]!.holds)
        // The label question alone, both ways.
        let many = LabelSelector(matchExpressions: expressions), other = LabelSelector(matchExpressions: contradicting)
        #expect(!LabelSatisfiability.satisfiable(matching: [many, other], notMatching: []))
        #expect(LabelSatisfiability.satisfiable(matching: [LabelSelector()], notMatching: [many, other]))
        #expect(LabelSatisfiability.satisfiable(matching: [many], notMatching: (0..<24).map {
            LabelSelector(matchExpressions: [.init(key: "k\($0)", op: .in, values: ["w"])])
        }))
    }

    @Test func inListsOfAThousandValues() {
        let policy = Policy(zones: [
            Zone(name: "a", selector: LabelSelector(matchExpressions: [.init(key: "app", op: .in, values: values("x", 0..<1000))])),
            Zone(name: "b", selector: LabelSelector(matchExpressions: [.init(key: "app", op: .in, values: values("x", 1000..<2000))])),
            Zone(name: "c", selector: LabelSelector(matchExpressions: [.init(key: "app", op: .notIn, values: values("x", 0..<2000)),
                                                                          .init(key: "team", op: .in, values: values("t", 0..<1000))]),
                 egress: .restricted),
            Zone(name: "d", selector: LabelSelector(matchExpressions: [.init(key: "team", op: .notIn, values: values("t", 0..<999))]),
                 ingress: .open),
        ], rules: [
            Rule(name: "a-b", from: [.zone("a")], to: [.zone("b")], ports: [PortRange(.tcp, 80, 80)]),
            Rule(name: "c-b", from: [.zone("c")], to: [.zone("b")], ports: [PortRange(.tcp, 81, 81)]),
        ], assertions: [
            Assertion(name: "a-not-c", kind: .deny, from: [.zone("a")], to: [.zone("c")]),
            Assertion(name: "c-not-a", kind: .deny, from: [.zone("c")], to: [.zone("a")]),
            Assertion(name: "c-b-81", kind: .allow, from: [.zone("c")], to: [.zone("b")], ports: [PortRange(.tcp, 81, 81)]),
            Assertion(name: "c-b-80", kind: .allow, from: [.zone("c")], to: [.zone("b")], ports: [PortRange(.tcp, 80, 80)]),
            Assertion(name: "a-not-d", kind: .deny, from: [.zone("a")], to: [.zone("d")]),
        ])
        let results = results(policy)
        #expect(results["a-not-c"]!.holds)
        #expect(results["c-not-a"]!.holds)
        #expect(results["c-b-81"]!.holds)
        #expect(!results["c-b-80"]!.holds)
        #expect(!results["a-not-d"]!.holds, "an `a` container without a team label is in d, whose ingress is open")
    }

    @Test func aSelectorOfFiveThousandValues() {
        let many = values("v", 0..<5000)
        let inMany = LabelSelector(matchExpressions: [.init(key: "k", op: .in, values: many)])
        let notInMost = LabelSelector(matchExpressions: [.init(key: "k", op: .notIn, values: Array(many.dropLast()))])
        let notInAll = LabelSelector(matchExpressions: [.init(key: "k", op: .notIn, values: many)])
        #expect(LabelSatisfiability.satisfiable(matching: [inMany, notInMost], notMatching: []))
        #expect(!LabelSatisfiability.satisfiable(matching: [inMany, notInAll], notMatching: []))
        let inMost = LabelSelector(matchExpressions: [.init(key: "k", op: .in, values: Array(many.dropLast()))])
        #expect(!LabelSatisfiability.satisfiable(matching: [inMany], notMatching: [notInMost, inMost]))
        #expect(LabelSatisfiability.satisfiable(matching: [inMany], notMatching: [notInMost, LabelSelector(matchLabels: ["k": "v4999"])]))
        #expect(inMany.matches(["k": "v4321"]) && !notInAll.matches(["k": "v17"]))
    }

    @Test func allowThroughAZoneOfRestrictedEgressThatMayOverlapTheSource() {
        // A web container may also be in `batch` (restricted egress); batch's rule to api then
        // carries it. The prover once asked "is every web container surely in the rule's from?"
        // and reported a failure.
        let policy = Policy(zones: [
            Zone(name: "web", selector: LabelSelector(matchLabels: ["tier": "web"])),
            Zone(name: "batch", selector: LabelSelector(matchLabels: ["team": "batch"]), ingress: .open, egress: .restricted),
            Zone(name: "api", selector: LabelSelector(matchLabels: ["tier": "api"]), ingress: .open),
        ], rules: [
            Rule(name: "batch-api", from: [.zone("batch")], to: [.zone("api")], ports: [PortRange(.tcp, 8080, 8080)]),
        ], assertions: [
            Assertion(name: "web-api", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 8080, 8080)]),
            Assertion(name: "web-api-9090", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 9090, 9090)]),
        ])
        let results = results(policy)
        #expect(results["web-api"]!.holds, "\(results["web-api"]!.failures)")
        #expect(!results["web-api-9090"]!.holds)
        #expect(results["web-api-9090"]!.failures == ["no rule allows all of web -> api on 9090/tcp (web egress can be restricted by batch)"])
        #expect(results["web-api-9090"]!.responsibleZones == ["batch"])
    }

    @Test func allowNeedsBothRulesWhenTheSenderMayBeInEither() {
        // Restricted egress from either zone; a sender in both is carried by either rule, a sender
        // in one only by its own rule: holds on 443 (both rules), fails on 80 (only one).
        let policy = Policy(zones: [
            Zone(name: "web", selector: LabelSelector(matchLabels: ["tier": "web"]), ingress: .open),
            Zone(name: "x", selector: LabelSelector(matchLabels: ["x": "1"]), ingress: .open, egress: .restricted),
            Zone(name: "y", selector: LabelSelector(matchLabels: ["y": "1"]), ingress: .open, egress: .restricted),
            Zone(name: "api", ingress: .open),
        ], rules: [
            Rule(name: "x-api", from: [.zone("x")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443), PortRange(.tcp, 80, 80)]),
            Rule(name: "y-api", from: [.zone("y")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443)]),
        ], assertions: [
            Assertion(name: "443", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443)]),
            Assertion(name: "80", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 80, 80)]),
            Assertion(name: "80-443", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 80, 443)]),
        ])
        let results = results(policy)
        #expect(results["443"]!.holds)
        #expect(!results["80"]!.holds)
        #expect(results["80"]!.responsibleZones == ["y"])
        #expect(results["80-443"]!.failures == ["no rule allows all of web -> api on 80-442/tcp (web egress can be restricted by y)"])
    }

    @Test func manyRulesOfOneSegmentStayFast() {
        // 150 zones of restricted egress that may all overlap the sender, each with its rule: a
        // search over which zones the sender is in. Propagation settles it without branching.
        let zones = (0..<150).map { Zone(name: "z\($0)", selector: LabelSelector(matchLabels: ["k\($0)": "1"]), egress: .restricted) }
        let rules = (0..<150).map { Rule(name: "r\($0)", from: [.zone("z\($0)")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443)]) }
        let policy = Policy(zones: zones + [Zone(name: "web", selector: LabelSelector(matchLabels: ["tier": "web"])), Zone(name: "api")],
                            rules: rules, assertions: [
                                Assertion(name: "web-api", kind: .allow, from: [.zone("web")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443)]),
                                Assertion(name: "z0-api", kind: .allow, from: [.zone("z0")], to: [.zone("api")], ports: [PortRange(.tcp, 443, 443)]),
                            ])
        let results = results(policy)
        #expect(!results["web-api"]!.holds, "a web container in no z zone meets api's restricted ingress")
        #expect(results["web-api"]!.responsibleZones == ["api"])
        #expect(results["z0-api"]!.holds)
    }
}

/// Label questions the differential test once caught.
@Suite struct LabelSatisfiabilityRegressionTests {
    typealias R = LabelSelector.Requirement

    @Test func aClauseIsDroppedForAPrivateKeyOnlyAfterTheDomainsSettle() {
        // Units narrow a (to "not 2") and b (to "present") in the same pass that kept the clause
        // "a is 2 or b is absent"; it must be simplified against them before it counts as free.
        let required = [LabelSelector(matchExpressions: [R(key: "a", op: .exists)])]
        let excluded = [
            LabelSelector(matchExpressions: [R(key: "c", op: .notIn, values: ["1"])]),
            LabelSelector(matchExpressions: [R(key: "a", op: .notIn, values: ["2"]), R(key: "b", op: .exists)]),
            LabelSelector(matchExpressions: [R(key: "b", op: .doesNotExist)]),
            LabelSelector(matchExpressions: [R(key: "a", op: .in, values: ["2"])]),
        ]
        #expect(!LabelSatisfiability.satisfiable(matching: required, notMatching: excluded))
        #expect(LabelSatisfiability.satisfiable(matching: required, notMatching: Array(excluded.dropLast())))
    }
}
