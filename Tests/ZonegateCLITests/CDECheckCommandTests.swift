import Foundation
import XCTest

/// `zonegate check` on CDE policies, as a user runs it (issue 11): an unjustified rule into or out
/// of a `pci: cde` zone is an error at the rule (exit 1), in table and JSON; a justified policy passes.
final class CDECheckCommandTests: XCTestCase {
    private static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let binary = packageRoot.appendingPathComponent(".build/debug/zonegate")
    private var scratch: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the zonegate product first (make test does)")
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-cde-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func check(_ policy: String, _ arguments: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        let directory = scratch.appendingPathComponent("policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try policy.write(to: directory.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["check", "--policies", directory.path] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self),
                String(decoding: stderr, as: UTF8.self).replacingOccurrences(of: directory.path + "/", with: ""))
    }

    private let policy = """
        zones:
          - {name: payments, pci: cde}
          - {name: shop, selector: {matchLabels: {team: shop}}, pci: connected}
        rules:
          - {name: web-to-pay, from: world, to: payments, ports: [8443/tcp]}
          - {name: shop-out, from: shop, to: world, owner: shop-team}
        """

    func testAnUnjustifiedCDERuleIsAnErrorAtTheRule() throws {
        let run = try check(policy)
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stderr, """
            a.yaml:5:5: error: rule web-to-pay can allow flows into a CDE zone: its to names payments (pci: cde); add a non-empty owner and justification (who owns the flow and its business need, PCI DSS 1.2.5)
            a.yaml:6:5: error: rule shop-out can allow flows out of a CDE zone: its from names zone shop, which could share a container with payments (pci: cde); add a non-empty justification (who owns the flow and its business need, PCI DSS 1.2.5)
            zonegate: error: policy rejected: 2 errors

            """)
        let json = try check(policy, ["--format", "json"])
        XCTAssertEqual(json.status, 1)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(parsed["valid"] as? Bool, false)
        let errors = try XCTUnwrap(parsed["errors"] as? [[String: Any]])
        XCTAssertEqual(errors.map { $0["line"] as? Int }, [5, 6])
        XCTAssertEqual(errors.map { $0["column"] as? Int }, [5, 5])
        XCTAssertTrue((errors.first?["message"] as? String)?.hasPrefix("rule web-to-pay can allow flows into a CDE zone") == true)
    }

    func testAJustifiedPolicyPasses() throws {
        let justified = policy
            .replacingOccurrences(of: "ports: [8443/tcp]}", with: "ports: [8443/tcp], owner: payments, ticket: CHG-1, justification: card auth}")
            .replacingOccurrences(of: "owner: shop-team}", with: "owner: shop-team, justification: order export}")
        let run = try check(justified)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("valid policy: 2 zones, 2 rules"), run.stdout)
    }
}
