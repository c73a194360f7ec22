import Foundation
import Testing
@testable import ZonegateCLI
@testable import ZonegateEngine
import ZonegatePolicy

/// `matrix` output: the JSON rows as cli.md writes them, and what the table adds for people.
@Suite struct MatrixRenderTests {
    static let matrixRowsCases: [(String, MatrixFlow, String)] = [
        ("a TCP port", MatrixFlow(from: "x-a", to: "x-b", port: ServicePort(80, .tcp), verdict: .allow, rules: ["r1"]),
         #"{ "from": "x-a", "to": "x-b", "port": 80, "proto": "tcp", "verdict": "allow", "rules": ["r1"] }"#),
        ("SCTP, denied", MatrixFlow(from: "world", to: "x-b", port: ServicePort(3868, .sctp), verdict: .deny, rules: []),
         #"{ "from": "world", "to": "x-b", "port": 3868, "proto": "sctp", "verdict": "deny", "rules": [] }"#),
        ("ICMP has no port: null, not a made-up 0", MatrixFlow(from: "host", to: "x-b", port: ServicePort(0, .icmp), verdict: .audit, rules: []),
         #"{ "from": "host", "to": "x-b", "port": null, "proto": "icmp", "verdict": "audit", "rules": [] }"#),
    ]

    @Test(arguments: matrixRowsCases)
    func matrixRows(_ testCase: (String, MatrixFlow, String)) throws {
        let (name, flow, expected) = testCase
        let rendered = Render.matrix(.json, digest: "sha256:00", flows: [flow])
        #expect(rendered.contains("\n    " + expected + "\n"), "\(name):\n\(rendered)")
        let parsed = try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any]
        #expect((parsed?["policyDigest"] as? String) == "sha256:00", "\(name)")
        #expect((parsed?["flows"] as? [Any])?.count == 1, "\(name)")
    }

    @Test func tablesReportUnenforcedAttachments() {
        let flow = MatrixFlow(from: "a", to: "b", port: ServicePort(80, .tcp), verdict: .deny, rules: [])
        let unenforced = [UnenforcedAttachment(container: "metrics", network: "host", reason: "host network")]
        let line = "unenforced: metrics on host (host network): zonegate does not filter this attachment"
        let cases: [(String, Bool, [UnenforcedAttachment], String?)] = [
            ("table", false, unenforced, line), ("markdown", true, unenforced, "- " + line),
            ("table without any", false, [], nil), ("markdown without any", true, [], nil),
        ]
        for (name, markdown, attachments, expected) in cases {
            let text = Render.matrix(markdown ? .markdown : .table, digest: "sha256:00", flows: [flow], unenforced: attachments)
            #expect(text.split(separator: "\n").last.map(String.init) == (expected ?? "1 flows: 0 allow, 1 deny, 0 audit"), "\(name):\n\(text)")
        }
    }

    /// The streamed JSON is the document `JSONValue` renders at once: the same bytes, rows or none.
    @Test func streamedJSONIsTheWholeDocument() throws {
        let flows = [MatrixFlow(from: "a\"b", to: "c\n\u{1B}", port: ServicePort(80, .tcp), verdict: .allow,
                                rules: (0..<30).map { "rule-\($0)" }),
                     MatrixFlow(from: "world", to: "c\n\u{1B}", port: ServicePort(0, .icmp), verdict: .deny, rules: [])]
        for rows in [flows, []] {
            let whole = JSONValue.object([
                ("policyDigest", .string("sha256:00")),
                ("flows", .array(rows.map { flow in
                    .object([("from", .string(flow.from)), ("to", .string(flow.to)),
                             ("port", flow.port.proto.hasPorts ? .number(Int(flow.port.number)) : .null),
                             ("proto", .string(flow.port.proto.rawValue)), ("verdict", .string(flow.verdict.rawValue)),
                             ("rules", .strings(flow.rules))])
                })),
            ]).rendered() + "\n"
            #expect(Render.matrix(.json, digest: "sha256:00", flows: rows) == whole)
            let parsed = try JSONSerialization.jsonObject(with: Data(whole.utf8)) as? [String: Any]
            #expect(((parsed?["flows"] as? [[String: Any]])?.first?["to"] as? String) == rows.first?.to)
        }
    }

    /// Column widths come from the names, not the rows, and are capped: one very long name
    /// overflows its own cell and pads nothing else.
    @Test func tableWidthsAreBounded() {
        let long = String(repeating: "x", count: 200)
        let flows = [MatrixFlow(from: long, to: "b", port: ServicePort(80, .tcp), verdict: .deny, rules: []),
                     MatrixFlow(from: "a", to: "b", port: ServicePort(80, .tcp), verdict: .allow, rules: ["r"])]
        let lines = Render.matrix(.table, digest: "sha256:00", flows: flows).split(separator: "\n").map(String.init)
        #expect(lines[1] == "FROM" + String(repeating: " ", count: MatrixRenderer.maximumColumnWidth - 4) + "  TO  PORT    VERDICT  RULES")
        #expect(lines[2] == long + "  b   80/tcp  deny")
        #expect(lines[3] == "a" + String(repeating: " ", count: MatrixRenderer.maximumColumnWidth - 1) + "  b   80/tcp  allow    r")
    }

    static let escapesCases: [(String, Bool, String)] = [
        ("plain-name_1.2", false, "plain-name_1.2"),
        ("a\nb\r\tc", false, #"a\nb\r\tc"#),
        ("\u{1B}[2J", false, #"\u{1b}[2J"#),
        ("bidi\u{202E}x\u{200B}", false, #"bidi\u{202e}x\u{200b}"#),
        ("a|b`c", false, "a|b`c"),
        ("a|b`c", true, #"a\|b\`c"#),
        ("é 名前", true, "é 名前"),
    ]

    @Test(arguments: escapesCases)
    func escapes(_ testCase: (String, Bool, String)) {
        let (input, markdown, expected) = testCase
        #expect(Escape.text(input, markdown: markdown) == expected, "\(input.debugDescription)")
    }
}

/// The matrix's container limit, met by a live host's inventory (an inventory file meets its own,
/// the same number, first).
@Suite struct InventoryLimitTests {
    @Test func matrixRefusesMoreContainersThanItsLimit() throws {
        let limit = ReachabilityMatrix.maximumContainers
        #expect(limit == 10_000)
        let atLimit = Inventory(containers: (0..<limit).map { Container(name: "c\($0)") })
        #expect(throws: Never.self) { try InventoryOptions.refuse(atLimit, beyond: limit, for: "matrix") }
        let beyond = Inventory(containers: atLimit.containers + [Container(name: "one-more")])
        let error = try #require(throws: (any Error).self) { try InventoryOptions.refuse(beyond, beyond: limit, for: "matrix") }
        let failure = error as? CommandFailure
        #expect(failure?.code == 2)
        #expect(failure?.message == "the inventory has 10001 containers; a matrix covers at most 10000")
    }
}
