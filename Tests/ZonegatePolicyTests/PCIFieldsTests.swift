import Testing
@testable import ZonegatePolicy

/// `pci` on zones, `owner`, `ticket` and `justification` on rules (issue 11).
@Suite struct PCIFieldsTests {
    private func parse(_ text: String) throws -> Policy {
        try PolicyParser.parse([PolicyFile(name: "a.yaml", text: text)])
    }

    private func errors(_ text: String) -> [PolicyDiagnostic] {
        do {
            _ = try parse(text)
            return []
        } catch let error as PolicyError {
            return error.diagnostics
        } catch {
            Issue.record("\(error)")
            return []
        }
    }

    @Test func everyScopeParses() throws {
        let policy = try parse("""
            zones:
              - {name: payments, pci: cde}
              - {name: api, pci: connected}
              - {name: wiki, pci: out-of-scope}
              - {name: web}
            """)
        #expect(policy.zones.map(\.pci) == [.cde, .connected, .outOfScope, nil])
        #expect(PCIScope.outOfScope.rawValue == "out-of-scope")
    }

    @Test func ruleAnnotationsParse() throws {
        let policy = try parse("""
            zones: [{name: web}, {name: payments, pci: cde}]
            rules:
              - name: web-to-payments
                from: web
                to: payments
                ports: [8443/tcp]
                owner: payments-platform
                ticket: CHG-1234
                justification: "card authorisation API: web checkout calls it"
            """)
        #expect(policy.rules[0].annotations == RuleAnnotations(owner: "payments-platform", ticket: "CHG-1234",
                                       justification: "card authorisation API: web checkout calls it"))
    }

    @Test func unknownScopeIsRejectedAtItsValue() {
        let found = errors("zones:\n  - {name: payments, pci: CDE}\n  - name: web\n    pci: [cde]\n")
        #expect(found.count == 2, "\(found)")
        #expect(found.contains { $0.location == ZonegatePolicy.SourceLocation(file: "a.yaml", line: 2, column: 27)
            && $0.message.contains("pci must be one of: cde, connected, out-of-scope, not 'CDE'") }, "\(found)")
        #expect(found.contains { $0.location == ZonegatePolicy.SourceLocation(file: "a.yaml", line: 4, column: 10)
            && $0.message.contains("pci must be one of") }, "\(found)")
    }

    @Test func justificationMustBeNonEmptyBoundedText() {
        let long = String(repeating: "x", count: PolicyLimits.freeTextBytes + 1)
        let found = errors("""
            rules:
              - {from: any, to: any, justification: ""}
              - {from: any, to: any, justification: [a]}
              - {from: any, to: any, justification: \(long)}
              - {from: any, to: any, owner: ~}
            """)
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.location.line == 2 && $0.message.contains("justification must be non-empty free text") }, "\(found)")
        #expect(found.contains { $0.location.line == 3 && $0.message.contains("justification must be non-empty free text, not a list") }, "\(found)")
        #expect(found.contains { $0.location.line == 4 && $0.message.contains("justification is longer than") }, "\(found)")
        #expect(found.contains { $0.location.line == 5 && $0.message.contains("owner must be non-empty free text") }, "\(found)")
    }

    @Test func digestIsOverBytesNotFields() throws {
        let a = try parse("zones: [{name: payments, pci: cde}]\n")
        let b = try parse("zones: [{name: payments}]\n")
        #expect(a.digest != b.digest)
        #expect(try a.digest == parse("zones: [{name: payments, pci: cde}]\n").digest)
    }
}
