import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// Prover cases found by checking `zonegate check` against a brute-force prover that enumerates
/// every kind of container (labels and addresses), outside address and port: each row is a case
/// the prover once got wrong.
@Suite struct ProverSoundnessTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var policy: String
        var holds: Bool
        var rules: [String] = []
        var zones: [String] = []
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "a container holds addresses on several networks: a v6 rule reaches a v4 CIDR's containers",
             policy: """
                 zones: [{name: api, selector: {matchExpressions: [{key: tier, operator: Exists}]}}]
                 rules: [{name: v6-api, from: {cidr: "fd00:1::/64"}, to: api, ports: [81/sctp]}]
                 assertions: [{name: a, deny: {from: {cidr: 10.1.0.0/16, except: [10.1.2.0/24]}, to: api, ports: [81/sctp]}}]
                 """,
             holds: false, rules: ["v6-api"]),
        Case(name: "a zone no labels can match reaches no one, even through a CIDR rule",
             policy: """
                 zones: [{name: ghost, selector: {matchLabels: {a: "1"}, matchExpressions: [{key: a, operator: DoesNotExist}]}}]
                 rules: [{name: all-v4, from: {cidr: 0.0.0.0/0}, to: {cidr: 0.0.0.0/0}}]
                 assertions: [{name: a, deny: {from: ghost, to: ghost}}]
                 """,
             holds: true),
        Case(name: "every member of an empty zone is allowed (vacuously)",
             policy: """
                 zones:
                   - {name: ghost, selector: {matchLabels: {a: "1"}, matchExpressions: [{key: a, operator: DoesNotExist}]}}
                   - {name: all, selector: {}}
                 assertions: [{name: a, allow: {from: ghost, to: any, ports: [80/tcp]}}]
                 """,
             holds: true),
        Case(name: "a CIDR its exceptions empty holds no one",
             policy: """
                 zones: [{name: web, ingress: open}]
                 assertions: [{name: a, deny: {from: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}, to: web}}]
                 """,
             holds: true),
        Case(name: "an open deny names zones, not sentences",
             policy: """
                 zones: [{name: corp}, {name: payments, ingress: open}]
                 assertions: [{name: a, deny: {from: corp, to: payments}}]
                 """,
             holds: false, zones: ["corp", "payments"]),
        Case(name: "an open deny through unzoned containers names unzoned",
             policy: """
                 zones: [{name: web}]
                 assertions: [{name: a, deny: {from: web, to: {cidr: 10.0.0.0/8}}}]
                 """,
             holds: false, zones: ["web", "unzoned"]),
        Case(name: "a failed allow into unzoned containers names defaults.unzoned's restriction",
             policy: """
                 defaults: {unzoned: restricted}
                 zones: [{name: web, ingress: open}]
                 assertions: [{name: a, allow: {from: web, to: {cidr: 10.0.0.0/8}, ports: [80/tcp]}}]
                 """,
             holds: false, zones: ["unzoned"]),
        Case(name: "allow from world: outside destinations are never touched, containers need the rule",
             policy: """
                 zones: [{name: all, selector: {}}]
                 rules: [{name: in, from: any, to: [all, host]}]
                 assertions: [{name: a, allow: {from: world, to: {cidr: 0.0.0.0/0}, ports: [tcp, udp]}}]
                 """,
             holds: true),
        Case(name: "allow: one rule may cover containers through a zone and outside addresses through world",
             policy: """
                 zones: [{name: all, selector: {}}]
                 rules: [{name: r, from: any, to: [all, world], ports: [80-81/tcp]}]
                 assertions: [{name: a, allow: {from: {cidr: 10.1.0.0/16}, to: {cidr: "fd00:1::/64"}, ports: [81/tcp]}}]
                 """,
             holds: true),
        Case(name: "allow: a block inside a rule's CIDR once its exceptions are taken out",
             policy: """
                 zones: [{name: payments}]
                 rules: [{name: r, from: {cidr: 10.0.0.0/9}, to: payments, ports: [443/tcp]}]
                 assertions: [{name: a, allow: {from: {cidr: 10.0.0.0/8, except: [10.128.0.0/9]}, to: payments, ports: [443/tcp]}}]
                 """,
             holds: true),
        Case(name: "deny: world cannot be in a CIDR its exceptions empty, containers cannot be world",
             policy: """
                 zones: [{name: payments, egress: restricted}]
                 rules: [{name: r, from: {cidr: 10.0.0.0/8, except: [10.0.0.0/9, 10.128.0.0/9]}, to: payments}]
                 assertions: [{name: a, deny: {from: world, to: payments}}]
                 """,
             holds: true),
    ]

    @Test(arguments: cases)
    func provesTheCase(_ testCase: Case) throws {
        let result = try #require(AssertionProver(policy: policy(testCase.policy)).prove().first, "no assertion")
        #expect(result.holds == testCase.holds, "\(result.failures)")
        #expect(result.responsibleRules == testCase.rules)
        #expect(result.responsibleZones == testCase.zones, "\(result.failures)")
        #expect(result.failures.isEmpty == testCase.holds)
    }
}

/// Exact address-set arithmetic on CIDR blocks with exceptions.
@Suite struct AddressRangesTests {
    private static func block(_ cidr: String, _ except: [String] = []) -> AddressRanges {
        AddressRanges(CIDRBlock(try! CIDR.parse(cidr).get(), except: except.map { try! CIDR.parse($0).get() }))
    }

    static let cases: [(name: String, a: AddressRanges, b: AddressRanges, intersects: Bool, inside: Bool)] = [
        ("nested prefixes", block("10.1.0.0/16"), block("10.0.0.0/8"), true, true),
        ("disjoint prefixes", block("10.0.0.0/8"), block("11.0.0.0/8"), false, false),
        ("families never meet", block("0.0.0.0/0"), block("::/0"), false, false),
        ("inside the part an exception leaves", block("10.1.0.0/16"), block("10.0.0.0/8", ["10.2.0.0/16"]), true, true),
        ("an exception cuts the block out", block("10.1.0.0/16"), block("10.0.0.0/8", ["10.1.0.0/16"]), false, false),
        ("exceptions that cover the block together", block("10.0.0.0/8"), block("10.0.0.0/8", ["10.0.0.0/9", "10.128.0.0/9"]), false, false),
        ("the block's own exceptions make it fit", block("10.0.0.0/8", ["10.128.0.0/9"]), block("10.0.0.0/9"), true, true),
        ("partly inside", block("10.0.0.0/8"), block("10.0.0.0/9"), true, false),
        ("IPv6 with an exception", block("fd00::/8", ["fd00::/9"]), block("fd80::/9"), true, true),
        ("the whole space", block("255.255.255.255/32"), block("0.0.0.0/0"), true, true),
    ]

    @Test(arguments: cases)
    func intersectsAndInside(_ testCase: (name: String, a: AddressRanges, b: AddressRanges, intersects: Bool, inside: Bool)) {
        #expect(testCase.a.intersects(testCase.b) == testCase.intersects, "intersects")
        #expect(testCase.b.intersects(testCase.a) == testCase.intersects, "intersects, reversed")
        #expect(testCase.a.isInside(testCase.b) == testCase.inside, "inside")
    }

    @Test func exceptionsCanEmptyABlock() {
        #expect(Self.block("10.0.0.0/8", ["10.0.0.0/9", "10.128.0.0/9"]).isEmpty)
        #expect(!Self.block("10.0.0.0/8", ["10.0.0.0/9"]).isEmpty)
    }
}
