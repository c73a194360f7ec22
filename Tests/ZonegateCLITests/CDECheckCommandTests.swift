import Foundation
import Testing
import ZonegateTesting

/// `zonegate check` on CDE policies, as a user runs it (issue 11): an unjustified rule into or out
/// of a `pci: cde` zone is an error at the rule (exit 1), in table and JSON; a justified policy passes.
@Suite struct CDECheckCommandTests {
    private let scratch: ScratchDirectory

    init() throws {
        scratch = try binaryScratch("zonegate-cde")
    }

    private func check(_ policy: String, _ arguments: [String] = []) throws -> Run {
        let directory = try scratch.directory(["a.yaml": policy])
        var run = try zonegate(["check", "--policies", directory] + arguments)
        run.stderr = run.stderr.replacingOccurrences(of: directory + "/", with: "")
        return run
    }

    private let policy = """
        zones:
          - {name: payments, pci: cde}
          - {name: shop, selector: {matchLabels: {team: shop}}, pci: connected}
        rules:
          - {name: web-to-pay, from: world, to: payments, ports: [8443/tcp]}
          - {name: shop-out, from: shop, to: world, owner: shop-team}
        """

    @Test func anUnjustifiedCDERuleIsAnErrorAtTheRule() throws {
        let run = try check(policy)
        #expect(run.status == 1)
        #expect(run.stderr == """
            a.yaml:5:5: error: rule web-to-pay can allow flows into a CDE zone: its to names payments (pci: cde); add a non-empty owner and justification (who owns the flow and its business need, PCI DSS 1.2.5)
            a.yaml:6:5: error: rule shop-out can allow flows out of a CDE zone: its from names zone shop, which could share a container with payments (pci: cde); add a non-empty justification (who owns the flow and its business need, PCI DSS 1.2.5)
            zonegate: error: policy rejected: 2 errors

            """)
        let json = try check(policy, ["--format", "json"])
        #expect(json.status == 1)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((parsed["valid"] as? Bool) == false)
        let errors = try #require(parsed["errors"] as? [[String: Any]])
        #expect(errors.map { $0["line"] as? Int } == [5, 6])
        #expect(errors.map { $0["column"] as? Int } == [5, 5])
        #expect((errors.first?["message"] as? String)?.hasPrefix("rule web-to-pay can allow flows into a CDE zone") == true)
    }

    @Test func aJustifiedPolicyPasses() throws {
        let justified = policy
            .replacingOccurrences(of: "ports: [8443/tcp]}", with: "ports: [8443/tcp], owner: payments, ticket: CHG-1, justification: card auth}")
            .replacingOccurrences(of: "owner: shop-team}", with: "owner: shop-team, justification: order export}")
        let run = try check(justified)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("valid policy: 2 zones, 2 rules"), "\(run.stdout)")
    }
}
