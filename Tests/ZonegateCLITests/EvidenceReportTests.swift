import Foundation
import Testing
@testable import ZonegateCLI
@testable import ZonegateEngine
import ZonegatePolicy
import ZonegateRuleset

/// The evidence report as a pure function of values: golden files from a fixed policy
/// (Tests/Fixtures/evidence/policy, a copy of the example policy), the PCI host inventory, a fixed
/// time, host and probe outcomes. `ZONEGATE_UPDATE_GOLDEN=1` rewrites the golden files.
@Suite struct EvidenceReportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func input(leak: Bool) throws -> EvidenceInput {
        let policy = try PolicyDirectory.load(Self.fixtures.appendingPathComponent("evidence/policy").path)
        let inventory = try Inventory.load(file: Self.fixtures.appendingPathComponent("pci-host-inventory.json").path)
        let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
        let matrix = ReachabilityMatrix(evaluator).flows()
        // Probes as a host would give them: allowed flows reached, denied ones blocked; world
        // rows to ports Docker does not publish blocked by Docker; one leak when asked.
        var flows = matrix.map { flow -> EvidenceFlow in
            if flow.from == "world" && flow.verdict != .deny {
                return EvidenceFlow(flow, probe: .blocked, probeNote: "no answer in 1 s", blockedBy: "Docker publishes no such port")
            }
            return EvidenceFlow(flow, probe: flow.verdict == .deny ? .blocked : .reached)
        }
        if leak, let index = flows.firstIndex(where: { $0.flow.from == "wiki" && $0.flow.to == "payments-1" }) {
            flows[index].probe = .reached
        }
        let outcomes = VerifyChecks.assertions(evaluator, matrix: matrix)
        let differences = leak ? [RulesetDifference(.extraRule, "in chain inet zonegate forward at position 1: ip saddr 172.20.0.2 accept")] : []
        let checks = [VerifyChecks.ruleset(differences), VerifyChecks.assertionsCheck(outcomes), VerifyChecks.probes(flows, ran: true)]
        return EvidenceInput(time: Date(timeIntervalSince1970: 1_796_464_800), zonegateVersion: "test",
                             host: HostFacts(hostname: "pci-host-1", kernel: "Linux 6.1.0-test", dockerVersion: "20.10.24 (API 1.41)"),
                             evaluator: evaluator, rulesetDigest: "sha256:" + String(repeating: "ab", count: 32),
                             checks: checks, flows: flows, assertions: outcomes)
    }

    func golden(_ name: String, _ text: String) throws {
        let url = Self.fixtures.appendingPathComponent("evidence/\(name)")
        if ProcessInfo.processInfo.environment["ZONEGATE_UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text == expected, "\(name) differs from its golden file; ZONEGATE_UPDATE_GOLDEN=1 rewrites it")
    }

    @Test func passingReportMatchesGoldenFiles() throws {
        let input = try input(leak: false)
        #expect(input.result == .pass, "\(input.checks)")
        let files = EvidenceReport.files(input)
        #expect(files.map(\.name) == ["evidence.json", "evidence.md", "SHA256SUMS"])
        try golden("pass-evidence.json", String(decoding: files[0].contents, as: UTF8.self))
        try golden("pass-evidence.md", String(decoding: files[1].contents, as: UTF8.self))
    }

    @Test func failingReportMatchesGoldenFilesAndNamesTheLeak() throws {
        let input = try input(leak: true)
        #expect(input.result == .fail)
        let files = EvidenceReport.files(input)
        let json = String(decoding: files[0].contents, as: UTF8.self)
        #expect(json.contains("\"result\": \"fail\""))
        #expect(json.contains("leak: wiki -> payments-1"), "\(json)")
        let markdown = String(decoding: files[1].contents, as: UTF8.self)
        #expect(markdown.contains("| wiki | payments-1 |"), "the leak is among the first probe rows")
        try golden("fail-evidence.md", markdown)
    }

    @Test func jSONHasCliMdFields() throws {
        let input = try input(leak: false)
        let object = try JSONSerialization.jsonObject(with: EvidenceReport.files(input)[0].contents) as! [String: Any]
        for key in ["result", "time", "zonegateVersion", "host", "policyDigest", "rulesetDigest", "checks", "zones", "flows", "assertions", "unenforced"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect((object["time"] as? String) == "2026-12-05T10:00:00Z")
        #expect((object["host"] as? [String: String])?.keys.sorted() == ["dockerVersion", "hostname", "kernel"])
        #expect((object["checks"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["ruleset", "assertions", "probes"])
        let zones = object["zones"] as! [[String: Any]]
        let payments = zones.first { $0["name"] as? String == "payments" }!
        #expect((payments["pci"] as? String) == "cde")
        #expect((payments["members"] as? [String]) == ["payments-1"])
        let flows = object["flows"] as! [[String: Any]]
        #expect(flows.count == ReachabilityMatrix(input.evaluator).flows().count)
        #expect(flows.allSatisfy { ["reached", "blocked", "not-probed"].contains($0["probe"] as? String ?? "") })
        let assertions = object["assertions"] as! [[String: Any]]
        #expect(assertions.allSatisfy { ["hold", "fail"].contains($0["result"] as? String ?? "") })
    }

    @Test func checksumsAreSha256sumFormat() throws {
        let files = EvidenceReport.files(try input(leak: false))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-evidence-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for file in files { try file.contents.write(to: directory.appendingPathComponent(file.name)) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = ["-c", "--quiet", "SHA256SUMS"]
        process.currentDirectoryURL = directory
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "sha256sum -c")
        #expect(ReportCheck.check(directory: directory.path, publicKey: nil).ok)
        try Data("tampered\n".utf8).write(to: directory.appendingPathComponent("evidence.md"))
        let check = ReportCheck.check(directory: directory.path, publicKey: nil)
        #expect(!check.ok)
        #expect(check.lines.contains { $0.hasPrefix("evidence.md: FAILED") }, "\(check.lines)")
    }

    @Test func signatureFromAnOpenSSLKey() throws {
        // openssl genpkey -algorithm ed25519; openssl pkey -pubout (RFC 8410's example key).
        let privatePEM = """
            -----BEGIN PRIVATE KEY-----
            MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
            -----END PRIVATE KEY-----
            """
        let publicPEM = """
            -----BEGIN PUBLIC KEY-----
            MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
            -----END PUBLIC KEY-----
            """
        let key = try EvidenceSigning.privateKey(pem: privatePEM)
        let publicKey = try EvidenceSigning.publicKey(pem: publicPEM)
        #expect(key.publicKey.rawRepresentation == publicKey.rawRepresentation)
        let sums = Data("abc  evidence.json\n".utf8)
        let signature = try EvidenceSigning.sign(sums, with: key)
        #expect(EvidenceSigning.verify(signature, of: sums, with: publicKey))
        #expect(!EvidenceSigning.verify(signature, of: Data("abd  evidence.json\n".utf8), with: publicKey))
        #expect(throws: (any Error).self) { try EvidenceSigning.privateKey(pem: publicPEM) }
    }

    @Test func mermaidLabelsNeedingQuotesStayValid() throws {
        let policy = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: """
            zones: [{name: a, pci: cde}, {name: b}]
            rules: [{from: b, to: a, ports: [80/tcp]}, {from: world, to: b, ports: [443/tcp]}]
            """)])
        let inventory = Inventory(containers: [
            Container(name: "x\"];y-->z[\"", labels: ["zonegate.zone": "a"], addresses: [IPAddress("10.0.0.2")!], ports: [ServicePort(80, .tcp)]),
            Container(name: "b<1>|#;`", labels: ["zonegate.zone": "b"], addresses: [IPAddress("10.0.0.3")!], ports: [ServicePort(443, .tcp)]),
            Container(name: "loose", addresses: [IPAddress("10.0.0.4")!], ports: [ServicePort(8080, .tcp)]),
        ])
        let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
        let flows = ReachabilityMatrix(evaluator).flows().map { EvidenceFlow($0) }
        let input = EvidenceInput(time: Date(timeIntervalSince1970: 0), host: HostFacts(hostname: "h", kernel: "k", dockerVersion: "d"),
                                  evaluator: evaluator, rulesetDigest: "sha256:0", checks: [], flows: flows, assertions: [])
        let text = EvidenceReport.mermaid(input)
        #expect(text == """
            flowchart LR
                z0["a (CDE)"]
                z1["b"]
                z2["containers in no zone"]
                z3["world"]
                z4["host"]
                z0 -->|"8080/tcp"| z2
                z1 -->|"80/tcp"| z0
                z1 -->|"8080/tcp"| z2
                z3 -->|"443/tcp"| z1
                z3 -->|"8080/tcp"| z2
                z4 -->|"8080/tcp"| z2
                classDef cde fill:#fde0e0,stroke:#c00000,stroke-width:2px
                class z0 cde
            """)
        #expect(EvidenceReport.mermaidText("x\"];y-->z[\"<|>#`") == "x#quot;]#59;y--#gt;z[#quot;#lt;#124;#gt;#35;#96;")
        // Every label is one quoted string with no raw quote inside; ids are generated.
        for line in text.split(separator: "\n").dropFirst() where line.contains("[\"") || line.contains("|\"") {
            #expect(line.filter { $0 == "\"" }.count == 2, "\(String(line))")
        }
        let markdown = EvidenceReport.markdown(input)
        #expect(markdown.contains("b&lt;1&gt;\\|#;\\`"), "names escaped in Markdown tables")
    }

    @Test func assertionsOverTheRunningContainersNameThem() throws {
        let policy = try PolicyParser.parse([PolicyFile(name: "p.yaml", text: """
            zones: [{name: a}, {name: b, egress: restricted}]
            rules: [{from: b, to: a, ports: [80/tcp]}, {from: b, to: world, ports: [1000-2000/tcp]}]
            assertions:
              - {name: b-never-a, deny: {from: b, to: a}}
              - {name: b-reaches-a-81, allow: {from: b, to: a, ports: [80-81/tcp]}}
              - {name: b-not-world-1500, deny: {from: b, to: world, ports: [1500/tcp]}}
              - {name: a-never-b, deny: {from: a, to: b}}
            """)])
        let inventory = Inventory(containers: [
            Container(name: "a-1", labels: ["zonegate.zone": "a"], addresses: [IPAddress("10.0.0.2")!], ports: [ServicePort(80, .tcp), ServicePort(81, .tcp)]),
            Container(name: "b-1", labels: ["zonegate.zone": "b"], addresses: [IPAddress("10.0.0.3")!], ports: [ServicePort(80, .tcp)]),
        ])
        let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
        let outcomes = VerifyChecks.assertions(evaluator, matrix: ReachabilityMatrix(evaluator).flows())
        #expect(outcomes.map(\.holds) == [false, false, false, true])
        #expect(outcomes[0].violations == ["b-1 -> a-1 80/tcp is allowed (rules p.yaml#1)"])
        #expect(outcomes[1].violations == ["b-1 -> a-1 81/tcp is denied"])
        #expect(outcomes[2].violations == ["b-1 -> world 1500/tcp is allowed (rules p.yaml#2)"])
    }

    @Test func probeCheckFailsOnLeaksAndUnexplainedBlocksOnly() {
        func flow(_ verdict: VerdictKind) -> MatrixFlow { MatrixFlow(from: "a", to: "b", port: ServicePort(80, .tcp), verdict: verdict, rules: []) }
        #expect(VerifyChecks.probes([EvidenceFlow(flow(.deny), probe: .reached)], ran: true).result == .fail)
        #expect(VerifyChecks.probes([EvidenceFlow(flow(.allow), probe: .blocked)], ran: true).result == .fail)
        #expect(VerifyChecks.probes([EvidenceFlow(flow(.allow), probe: .blocked, blockedBy: "Docker")], ran: true).result == .pass)
        #expect(VerifyChecks.probes([EvidenceFlow(flow(.audit), probe: .reached)], ran: true).result == .pass)
        let notProbed = VerifyChecks.probes([EvidenceFlow(flow(.deny), probe: .notProbed, probeNote: "no SCTP")], ran: true)
        #expect(notProbed.result == .pass)
        #expect(notProbed.details.contains { $0.contains("not probed (they do not count as agreeing): no SCTP") }, "\(notProbed.details)")
    }
}
