import Foundation
import Testing
import ZonegateDaemon
import ZonegatePolicy

/// The daemon and the CDE justification rule (policy.md, "Rules"; issue 11): a policy with a rule
/// into or out of a `pci: cde` zone that lacks an owner or a justification is invalid, so a reload
/// of one is rejected whole and the last good policy stays; each CDE rule of a policy loaded is
/// logged once with its owner, ticket and justification.
@Suite struct CDEPolicyReloadTests {
    static let justified = """
        zones:
          - name: web
          - {name: api, pci: cde}
        rules:
          - name: web-to-api
            from: web
            to: api
            ports: [8080/tcp]
            owner: payments-platform
            ticket: CHG-1
            justification: card authorisation API
        """

    @Test func aReloadFailingTheCDECheckIsRejectedAndTheLastGoodPolicyStays() async throws {
        let web = ReconcilerTests.container("web1", zone: "web", host: 2), api = ReconcilerTests.container("api1", zone: "api", host: 3)
        let harness = ReconcilerTests.Harness(containers: [web, api], policy: Self.justified)
        harness.start()
        #expect(await ReconcilerTests.eventually { !harness.messages("ready").isEmpty })
        let good = harness.dataplane.ruleset
        #expect(good == (try harness.expected([web, api], policy: Self.justified)))

        // Once per policy loaded: the CDE rule with who owns it and why.
        let logged = harness.messages("rule reaches the CDE")
        #expect(logged.count == 1, "\(harness.lines.withLock { $0 })")
        #expect(logged.first?["rule"] as? String == "web-to-api" && logged.first?["cde_zones"] as? [String] == ["api"])
        #expect(logged.first?["owner"] as? String == "payments-platform" && logged.first?["ticket"] as? String == "CHG-1")
        #expect(logged.first?["justification"] as? String == "card authorisation API")
        #expect(logged.first?["direction"] as? String == "into" && logged.first?["location"] as? String == "p.yaml:5:5")

        // A new rule opens more ports into the CDE without a justification: rejected whole, even
        // the rule that would have been fine.
        let unjustified = Self.justified + "\n  - {name: web-to-api-admin, from: web, to: api, ports: [9443/tcp], owner: someone}\n"
        harness.policyText.withLock { $0 = unjustified }
        #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
        #expect(await ReconcilerTests.eventually { !harness.messages("policy rejected; still enforcing the last good policy").isEmpty },
                "\(harness.lines.withLock { $0 })")
        let errors = harness.entries.filter { ($0["location"] as? String) == "p.yaml:12:5" }
        #expect(errors.count == 1)
        #expect((errors.first?["message"] as? String)?.contains("rule web-to-api-admin can allow flows into a CDE zone: its to names api (pci: cde); add a non-empty justification") == true,
                "\(errors)")
        // Rejected in the pass that read it, which then ends: nothing was compiled or applied.
        #expect(harness.dataplane.ruleset == good)
        #expect(harness.messages("policy loaded").isEmpty)

        // Justified, it is loaded, and both CDE rules are logged for it.
        let fixed = unjustified.replacingOccurrences(of: "owner: someone}", with: "owner: someone, justification: operators' admin port}")
        harness.policyText.withLock { $0 = fixed }
        #expect(await harness.advance(by: ReconcilerTests.timing.policyPollInterval))
        #expect(await ReconcilerTests.eventually { harness.dataplane.ruleset == (try? harness.expected([web, api], policy: fixed)) })
        #expect(await ReconcilerTests.eventually { harness.messages("rule reaches the CDE").count == 3 })
        #expect(harness.messages("rule reaches the CDE").last?["rule"] as? String == "web-to-api-admin")
        _ = await harness.stop()
    }

    @Test func aStartWithAnUnjustifiedCDERuleChangesNothing() async throws {
        let harness = ReconcilerTests.Harness(containers: [], policy: Self.justified.replacingOccurrences(of: "    justification: card authorisation API", with: ""))
        let outcome = await Task { try await harness.reconciler.run() }.result
        guard case .failure(let error as StartupFailure) = outcome else {
            Issue.record("expected a startup failure, got \(outcome)")
            return
        }
        #expect(error.kind == .invalidPolicy)
        #expect(error.description.contains("p.yaml:5:5: error: rule web-to-api can allow flows into a CDE zone"), "\(error)")
        #expect(harness.dataplane.transactions.isEmpty)
    }
}
