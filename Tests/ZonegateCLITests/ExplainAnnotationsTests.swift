import Foundation
import Testing
@testable import ZonegateCLI
import ZonegateEngine
import ZonegatePolicy

/// `explain` shows each matching rule's owner, ticket and justification (issue 11), in the
/// table, Markdown and JSON alike.
@Suite struct ExplainAnnotationsTests {
    private func explanation(_ from: String, _ to: String, _ port: String) throws -> Explanation {
        let policy = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: """
            zones:
              - {name: api, ingress: open, egress: restricted, pci: connected}
              - {name: payments, pci: cde}
              - {name: web}
            rules:
              - name: api-to-payments
                from: api
                to: payments
                ports: [8443/tcp]
                owner: payments-platform
                ticket: CHG-1234
                justification: "card auth | the `checkout` API"
              - {name: web-to-api, from: web, to: api, ports: [8080/tcp], description: checkout calls}
            """)])
        #expect(CDEJustification(policy: policy).diagnostics == [])
        let inventory = Inventory(containers: [
            Container(name: "api-1", labels: ["zonegate.zone": "api"], addresses: [IPAddress("172.18.0.2")!], ports: []),
            Container(name: "pay-1", labels: ["zonegate.zone": "payments"], addresses: [IPAddress("172.18.0.3")!],
                      ports: [ServicePort.parse("8443/tcp")!]),
            Container(name: "web-1", labels: ["zonegate.zone": "web"], addresses: [IPAddress("172.18.0.4")!], ports: []),
        ])
        let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
        return evaluator.explain(from: evaluator.peer(named: from)!, to: evaluator.peer(named: to)!, port: ServicePort.parse(port)!)
    }

    @Test func theRuleAnnotationsInEachFormat() throws {
        let explained = try explanation("api-1", "pay-1", "8443/tcp")
        #expect(explained.matchingRules.map(\.name) == ["api-to-payments"])
        // Each end's zones with their PCI scope.
        #expect(Array(explained.reasons.prefix(2)) == ["source api-1 is a managed container in zone api (pci: connected)",
                                                            "destination pay-1 is a managed container in zone payments (pci: cde)"])
        let reason = "rule api-to-payments allows api-1 -> pay-1 on 8443/tcp (p.yaml:6:5) "
            + "[owner: payments-platform; ticket: CHG-1234; justification: card auth | the `checkout` API]"
        #expect(Render.explanationText(explained, markdown: false).contains("\n  - " + reason + "\n"), "\(Render.explanationText(explained, markdown: false))")
        // Markdown escapes what would break a table or code span.
        let markdown = Render.explanationText(explained, markdown: true)
        #expect(markdown.contains("\n- rule api-to-payments allows api-1 -> pay-1 on 8443/tcp (p.yaml:6:5) "
                                        + "[owner: payments-platform; ticket: CHG-1234; justification: card auth \\| the \\`checkout\\` API]\n"), "\(markdown)")
        let json = Render.explanationJSON(explained).rendered()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect((parsed["rules"] as? [String]) == ["api-to-payments"])
        #expect((parsed["reasons"] as? [String])?.contains(reason) == true, "\(json)")
        let rules = try #require(parsed["matchingRules"] as? [[String: Any]])
        #expect(rules.count == 1)
        #expect((rules[0]["name"] as? String) == "api-to-payments")
        #expect((rules[0]["allows"] as? Bool) == true)
        #expect((rules[0]["owner"] as? String) == "payments-platform")
        #expect((rules[0]["ticket"] as? String) == "CHG-1234")
        #expect((rules[0]["justification"] as? String) == "card auth | the `checkout` API")
        #expect((rules[0]["file"] as? String) == "p.yaml")
        #expect((rules[0]["line"] as? Int) == 6)
        #expect(rules[0]["description"] is NSNull)
    }

    @Test func aRuleWithoutAnnotationsAndADeniedFlow() throws {
        let explained = try explanation("web-1", "api-1", "8080/tcp")
        #expect(Render.explanationText(explained, markdown: false)
            .contains("rule web-to-api also covers web-1 -> api-1 on 8080/tcp (p.yaml:13:5) [checkout calls]"), "\(Render.explanationText(explained, markdown: false))")
        let rules = try #require((try JSONSerialization.jsonObject(with: Data(Render.explanationJSON(explained).rendered().utf8))
            as? [String: Any])?["matchingRules"] as? [[String: Any]])
        #expect((rules.first?["allows"] as? Bool) == false)
        #expect(rules.first?["owner"] is NSNull && rules.first?["justification"] is NSNull)
        let denied = try explanation("web-1", "pay-1", "8443/tcp")
        #expect(denied.matchingRules == [])
        #expect(Render.explanationJSON(denied).rendered().contains("\"matchingRules\": []"))
    }
}
