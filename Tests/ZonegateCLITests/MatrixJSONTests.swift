import Foundation
import XCTest
import ZonegateCLI
@testable import ZonegateEngine
import ZonegatePolicy

/// The JSON of `matrix --format json`, row by row, as cli.md writes it.
final class MatrixJSONTests: XCTestCase {
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
}
