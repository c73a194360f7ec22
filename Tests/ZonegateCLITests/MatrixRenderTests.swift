import Foundation
import XCTest
import ZonegateCLI
@testable import ZonegateEngine
import ZonegatePolicy

/// `matrix` output: the JSON rows as cli.md writes them, and what the table adds for people.
final class MatrixRenderTests: XCTestCase {
    func testMatrixRows() throws {
        let cases: [(String, MatrixFlow, String)] = [
            ("a TCP port", MatrixFlow(from: "x-a", to: "x-b", port: ServicePort(80, .tcp), verdict: .allow, rules: ["r1"]),
             #"{ "from": "x-a", "to": "x-b", "port": 80, "proto": "tcp", "verdict": "allow", "rules": ["r1"] }"#),
            ("SCTP, denied", MatrixFlow(from: "world", to: "x-b", port: ServicePort(3868, .sctp), verdict: .deny, rules: []),
             #"{ "from": "world", "to": "x-b", "port": 3868, "proto": "sctp", "verdict": "deny", "rules": [] }"#),
            ("ICMP has no port: null, not a made-up 0", MatrixFlow(from: "host", to: "x-b", port: ServicePort(0, .icmp), verdict: .audit, rules: []),
             #"{ "from": "host", "to": "x-b", "port": null, "proto": "icmp", "verdict": "audit", "rules": [] }"#),
        ]
        for (name, flow, expected) in cases {
            let rendered = Render.matrixJSON(digest: "sha256:00", flows: [flow]).rendered()
            XCTAssertTrue(rendered.contains("\n    " + expected + "\n"), "\(name):\n\(rendered)")
            let parsed = try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any]
            XCTAssertEqual(parsed?["policyDigest"] as? String, "sha256:00", name)
            XCTAssertEqual((parsed?["flows"] as? [Any])?.count, 1, name)
        }
    }

    func testTablesReportUnenforcedAttachments() {
        let flow = MatrixFlow(from: "a", to: "b", port: ServicePort(80, .tcp), verdict: .deny, rules: [])
        let unenforced = [UnenforcedAttachment(container: "metrics", network: "host", reason: "host network")]
        let line = "unenforced: metrics on host (host network): zonegate does not filter this attachment"
        let cases: [(String, Bool, [UnenforcedAttachment], String?)] = [
            ("table", false, unenforced, line), ("markdown", true, unenforced, "- " + line),
            ("table without any", false, [], nil), ("markdown without any", true, [], nil),
        ]
        for (name, markdown, attachments, expected) in cases {
            let text = Render.matrixTable(digest: "sha256:00", flows: [flow], markdown: markdown, unenforced: attachments)
            XCTAssertEqual(text.split(separator: "\n").last.map(String.init), expected ?? "1 flows: 0 allow, 1 deny, 0 audit", "\(name):\n\(text)")
        }
    }
}
