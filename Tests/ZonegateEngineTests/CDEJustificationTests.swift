import Foundation
import Testing
@testable import ZonegateEngine
import ZonegatePolicy

/// policy.md, "Rules": a rule that can allow a flow into or out of a `pci: cde` zone needs a
/// non-empty owner and justification, with the prover's "could be in" reasoning (issue 11).
@Suite struct CDEJustificationTests {
    /// payments is the CDE; shop can share a container with it (another key); web cannot (same key,
    /// another value).
    static let zones = """
        zones:
          - {name: payments, selector: {matchLabels: {tier: payments}}, pci: cde}
          - {name: shop, selector: {matchLabels: {team: shop}}, pci: connected}
          - {name: web, selector: {matchLabels: {tier: web}}, pci: out-of-scope}
        """

    /// The errors for a policy of `zones` and one rule (as a YAML flow mapping, named r).
    private func errors(_ rule: String, zones: String = CDEJustificationTests.zones,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [PolicyDiagnostic] {
        CDEJustification(policy: policy(zones + "\nrules:\n  - " + rule + "\n", sourceLocation: sourceLocation)).diagnostics
    }

    private static let needBoth = "; add a non-empty owner and justification (who owns the flow and its business need, PCI DSS 1.2.5)"

    static let theRuleTableCases: [(rule: String, error: String?)] = [
        // The CDE zone itself, on either side; world and host on the other side change nothing.
        ("{name: r, from: world, to: payments, ports: [443/tcp]}",
         "rule r can allow flows into a CDE zone: its to names payments (pci: cde)" + needBoth),
        ("{name: r, from: payments, to: host}",
         "rule r can allow flows out of a CDE zone: its from names payments (pci: cde)" + needBoth),
        ("{name: r, from: [web, payments], to: [world]}",
         "rule r can allow flows out of a CDE zone: its from names payments (pci: cde)" + needBoth),
        // any: every container, the CDE's included.
        ("{name: r, from: any, to: web}",
         "rule r can allow flows out of a CDE zone: its from names any, which includes payments (pci: cde)" + needBoth),
        ("{name: r, from: world, to: any}",
         "rule r can allow flows into a CDE zone: its to names any, which includes payments (pci: cde)" + needBoth),
        // The most direct reason is the one given.
        ("{name: r, from: any, to: [shop, payments]}",
         "rule r can allow flows into and out of a CDE zone: its to names payments (pci: cde)" + needBoth),
        // A zone that can share a container with the CDE zone (labels on another key).
        ("{name: r, from: shop, to: world}",
         "rule r can allow flows out of a CDE zone: its from names zone shop, which could share a container with payments (pci: cde)" + needBoth),
        // A CIDR: a CDE container may hold any address.
        ("{name: r, from: world, to: {cidr: 10.0.0.0/8}}",
         "rule r can allow flows into a CDE zone: its to names 10.0.0.0/8, which could cover a payments (pci: cde) container's address" + needBoth),
        ("{name: r, from: {cidr: \"2001:db8::/32\", except: [\"2001:db8::/33\"]}, to: web}",
         "rule r can allow flows out of a CDE zone: its from names 2001:db8::/32 except 2001:db8::/33, which could cover a payments (pci: cde) container's address" + needBoth),
        // One of the two fields is not enough; blanks are no justification.
        ("{name: r, from: web, to: payments, owner: payments-team}",
         "rule r can allow flows into a CDE zone: its to names payments (pci: cde); add a non-empty justification (who owns the flow and its business need, PCI DSS 1.2.5)"),
        ("{name: r, from: web, to: payments, justification: card auth, ticket: CHG-1}",
         "rule r can allow flows into a CDE zone: its to names payments (pci: cde); add a non-empty owner (who owns the flow and its business need, PCI DSS 1.2.5)"),
        ("{name: r, from: web, to: payments, owner: payments-team, justification: \"  \"}",
         "rule r can allow flows into a CDE zone: its to names payments (pci: cde); add a non-empty justification (who owns the flow and its business need, PCI DSS 1.2.5)"),
        // Accepted: justified, or not reaching the CDE.
        ("{name: r, from: web, to: payments, owner: payments-team, justification: card auth}", nil),
        ("{name: r, from: any, to: any, owner: platform, justification: break-glass}", nil),
        ("{name: r, from: web, to: world}", nil),           // contradicting selectors: web is never a CDE container
        ("{name: r, from: [world, host], to: web}", nil),   // world and host hold no container
        ("{name: r, from: host, to: world}", nil),
        ("{name: r, from: web, to: {cidr: 10.0.0.0/8, except: [10.0.0.0/9, 10.128.0.0/9]}}", nil),  // no address left
    ]

    @Test(arguments: theRuleTableCases)
    func theRuleTable(_ testCase: (rule: String, error: String?)) {
        let (rule, expected) = testCase
        let found = errors(rule)
        #expect(found.map(\.message) == (expected.map { [$0] } ?? []), "\(rule)")
    }

    @Test func theErrorIsAtTheRuleOnOneLine() throws {
        let found = errors("{name: \"web-to-pay\", from: web, to: payments, ports: [8443/tcp]}")
        #expect(found.count == 1)
        #expect(found.first?.location == ZonegatePolicy.SourceLocation(file: "policy.yaml", line: 6, column: 5))
        #expect(found.first.map { "\($0)" } == "policy.yaml:6:5: error: rule web-to-pay can allow flows into a CDE zone: its to names payments (pci: cde); "
                       + "add a non-empty owner and justification (who owns the flow and its business need, PCI DSS 1.2.5)")
        let error = #expect(throws: PolicyError.self) { try CDEJustification(policy: policy(Self.zones + "\nrules:\n  - {from: web, to: payments}\n")).validate() }
        #expect(error?.diagnostics.count == 1)
    }

    @Test func everyRuleIsReportedInOrder() {
        let found = CDEJustification(policy: policy(Self.zones + """

            rules:
              - {name: a, from: web, to: payments}
              - {name: b, from: web, to: world}
              - {name: c, from: payments, to: shop, owner: x}
            """)).diagnostics
        #expect(found.map(\.location.line) == [6, 8])
        #expect(found[1].message.hasPrefix("rule c can allow flows into and out of a CDE zone: its from names payments"), "\(found[1].message)")
    }

    @Test func withoutACDEZoneNothingIsRequired() {
        let found = CDEJustification(policy: policy("""
            zones: [{name: payments, pci: connected}, {name: web, pci: out-of-scope}, {name: api}]
            rules: [{from: any, to: any}, {from: {cidr: 0.0.0.0/0}, to: payments}]
            """))
        #expect(found.diagnostics == [])
        #expect(found.reaches == [nil, nil])
    }

    /// A CDE zone whose selector matches nothing holds no container: only a rule naming it
    /// needs the fields (it says it is meant to reach the CDE); `any`, zones and CIDRs do not reach it.
    @Test func aCDEZoneWithoutPossibleMembers() {
        let zones = """
            zones:
              - name: vault
                pci: cde
                selector:
                  matchLabels: {tier: vault}
                  matchExpressions: [{key: tier, operator: DoesNotExist}]
              - {name: shop, selector: {matchLabels: {team: shop}}}
            """
        #expect(errors("{name: r, from: web, to: vault}", zones: zones + "\n  - {name: web}").count == 1)
        for rule in ["{name: r, from: any, to: any}", "{name: r, from: shop, to: world}", "{name: r, from: world, to: {cidr: 0.0.0.0/0}}"] {
            #expect(errors(rule, zones: zones) == [], "\(rule)")
        }
    }

    /// Every CDE zone counts; the reach names the first (policy order) a zone can share a container with.
    @Test func severalCDEZones() {
        let justification = CDEJustification(policy: policy("""
            zones:
              - {name: payments, selector: {matchLabels: {tier: payments}}, pci: cde}
              - {name: vault, selector: {matchLabels: {store: cards}}, pci: cde}
              - {name: web, selector: {matchLabels: {tier: web}}}
            rules:
              - {name: r1, from: web, to: world}
              - {name: r2, from: world, to: vault, owner: o, justification: j}
            """))
        // web contradicts payments, but a web container can carry store=cards too.
        #expect(justification.reaches[0]?.cdeZone == "vault")
        #expect(justification.reaches[0]?.kind == .sharedZone)
        #expect(justification.reaches[1]?.kind == .names)
        #expect(justification.reachingRules.map(\.rule.name) == ["r1", "r2"])
        // A vault container can be a payments one too.
        #expect(justification.reaches.map { $0?.cdeZones } == [["vault"], ["payments", "vault"]])
        #expect(justification.diagnostics.map(\.location.line) == [6])
    }

    /// Every CDE zone a rule reaches is listed, whichever reason is given.
    @Test func everyCDEZoneReached() {
        let justification = CDEJustification(policy: policy("""
            zones:
              - {name: payments, selector: {matchLabels: {tier: payments}}, pci: cde}
              - {name: vault, selector: {matchLabels: {store: cards}}, pci: cde}
              - {name: db, selector: {matchLabels: {tier: db}}, pci: cde}
            rules:
              - {name: r1, from: payments, to: db, owner: o, justification: j}
              - {name: r2, from: any, to: world, owner: o, justification: j}
              - {name: r3, from: {cidr: 10.0.0.0/8}, to: world, owner: o, justification: j}
            """))
        #expect(justification.reaches.map { $0?.cdeZones } == [["payments", "vault", "db"], ["payments", "vault", "db"], ["payments", "vault", "db"]])
        #expect(justification.reaches.map { $0?.cdeZone } == ["payments", "payments", "payments"])
        #expect(justification.diagnostics == [])
    }

    /// Errors are bounded as the parser's are: a policy of many unjustified rules is not thousands of lines.
    @Test func errorsAreBounded() {
        let rules = (1...(PolicyLimits.diagnostics + 5)).map { _ in "  - {from: payments, to: world}" }.joined(separator: "\n")
        let found = CDEJustification(policy: policy(Self.zones + "\nrules:\n" + rules + "\n")).diagnostics
        #expect(found.count == PolicyLimits.diagnostics + 1)
        #expect(found.last?.message == "more than \(PolicyLimits.diagnostics) errors; the rest are not reported")
    }

    /// The example policy of the repository passes: every rule into or out of its CDE is justified.
    @Test func theExamplePolicyPasses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = try PolicyDirectory.load(root.appendingPathComponent("policies").path)
        let justification = CDEJustification(policy: example)
        #expect(justification.diagnostics.map(\.description) == [])
        #expect(Set(example.zones.filter { $0.pci == .cde }.map(\.name)) == ["payments", "database"])
        #expect(example.zones.allSatisfy { $0.pci != nil }, "every zone of the example says its scope")
        // The VPN's CIDR could cover a CDE container's address: it is justified too.
        #expect(justification.reachingRules.map(\.rule.name) == ["api-to-payments", "payments-to-database", "payments-to-processor", "cde-dns", "monitoring-scrapes", "vpn-to-api-admin"])
        let directions = Dictionary(uniqueKeysWithValues: justification.reachingRules.map { ($0.rule.name, $0.reach.direction) })
        #expect(directions["payments-to-database"] == "into and out of")
        #expect(directions["api-to-payments"] == "into")
        #expect(directions["cde-dns"] == "out of")
        #expect(justification.reachingRules.first { $0.rule.name == "cde-dns" }?.reach.cdeZones == ["payments", "database"])
    }
}

/// The CDE check against the prover's own answer to "which rules can a member of this zone meet,
/// as a container" (`ProverModel.rules(_:meeting:)`), on seeded random policies: a rule reaches a
/// CDE zone exactly when a container of it can match the rule's `from` or `to`, or the rule names it.
@Suite struct CDEJustificationDifferentialTests {
    private struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        mutating func pick<T>(_ items: [T]) -> T { items[next(items.count)] }
    }

    @Test func agreesWithTheProver() throws {
        var random = Generator(state: 11)
        var kinds: [CDEReach.Kind: Int] = [:]
        var unreached = 0
        for round in 0..<150 {
            var yaml = "zones:\n"
            let zoneCount = 2 + random.next(4)
            for index in 0..<zoneCount {
                var labels: [String] = []
                for key in ["tier", "team"] where random.next(3) == 0 { labels.append("\(key): \(random.pick(["a", "b"]))") }
                var expressions: [String] = []
                if random.next(3) == 0 {
                    let op = random.pick(["In", "NotIn", "Exists", "DoesNotExist"])
                    let values = op == "In" || op == "NotIn" ? ", values: [\(random.pick(["a", "b", "a, b"]))]" : ""
                    expressions.append("{key: \(random.pick(["tier", "team"])), operator: \(op)\(values)}")
                }
                let pci = random.next(3) == 0 ? "cde" : random.pick(["connected", "out-of-scope"])
                yaml += "  - {name: z\(index), pci: \(pci), selector: {matchLabels: {\(labels.joined(separator: ", "))}, "
                    + "matchExpressions: [\(expressions.joined(separator: ", "))]}}\n"
            }
            let endpoints = (0..<zoneCount).map { "z\($0)" } + ["any", "world", "host", "{cidr: 10.0.0.0/8}",
                                                                  "{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}"]
            yaml += "rules:\n"
            for index in 0..<(1 + random.next(5)) {
                let from = (0...random.next(2)).map { _ in random.pick(endpoints) }, to = (0...random.next(2)).map { _ in random.pick(endpoints) }
                yaml += "  - {name: r\(index), from: [\(from.joined(separator: ", "))], to: [\(to.joined(separator: ", "))]}\n"
            }
            let parsed = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: yaml)])
            let model = ProverModel(policy: parsed)
            let cde = parsed.zones.filter { $0.pci == .cde }.map(\.name)
            let checked = CDEJustification(policy: parsed)
            for (index, rule) in parsed.rules.enumerated() {
                let expected = cde.filter { zone in
                    rule.from.contains(.zone(zone)) || rule.to.contains(.zone(zone))
                        || model.rules(.from, meeting: .zone(zone)).containers.indices.contains(index)
                        || model.rules(.to, meeting: .zone(zone)).containers.indices.contains(index)
                }
                #expect((checked.reaches[index]?.cdeZones ?? []) == expected, "round \(round), \(rule.name) of\n\(yaml)")
                #expect(checked.diagnostics.contains { $0.message.hasPrefix("rule \(rule.name) ") } == !expected.isEmpty)
                if let kind = checked.reaches[index]?.kind { kinds[kind, default: 0] += 1 } else if !cde.isEmpty { unreached += 1 }
            }
        }
        // Every kind of reason, and rules that reach no CDE zone of a policy that has one, came up.
        #expect(Set(kinds.keys) == [.names, .any, .sharedZone, .cidr], "\(kinds)")
        #expect(unreached > 10)
    }
}
