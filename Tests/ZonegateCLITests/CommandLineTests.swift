import Foundation
import XCTest
@testable import ZonegateCLI

/// The `zonegate` binary as a user runs it: output, JSON shape and exit codes of cli.md.
final class CommandLineTests: XCTestCase {
    private static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let binary = packageRoot.appendingPathComponent(".build/debug/zonegate")

    private var scratch: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the zonegate product first (make test does)")
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    private func zonegate(_ arguments: [String]) throws -> Run {
        try run([Self.binary.path] + arguments)
    }

    private func run(_ command: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = Self.packageRoot
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A policy directory with the given files.
    private func policies(_ files: [String: String]) throws -> String {
        let directory = scratch.appendingPathComponent("policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return directory.path
    }

    private func file(_ name: String, _ text: String) throws -> String {
        let url = scratch.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    private let smallPolicy = """
        zones: [{name: a}, {name: b, egress: restricted}]
        rules: [{name: r1, from: a, to: b, ports: [80/tcp]}]
        """
    private let smallInventory = """
        {"containers": [
          {"name": "x-a", "id": "3f2c", "labels": {"zonegate.zone": "a"}, "addresses": ["172.18.0.2", "fd00:18::2"], "ports": ["80/tcp"]},
          {"name": "x-b", "labels": {"zonegate.zone": "b"}, "addresses": ["172.18.0.3"], "ports": ["80/tcp", "81/udp"]}
        ]}
        """

    func testShippedPoliciesPassCheck() throws {
        let run = try zonegate(["check", "--policies", "policies"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("PASS  corp-never-reaches-cde"), run.stdout)
        XCTAssertFalse(run.stdout.contains("FAIL"), run.stdout)
    }

    func testInvalidPolicyExitsOneNamingEveryError() throws {
        let directory = try policies(["a.yaml": "zones:\n  - name: Web\nrules:\n  - {from: nowhere, to: any}\n"])
        let run = try zonegate(["check", "--policies", directory])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("\(directory)/a.yaml:2:11: error: zone name 'Web'"), run.stderr)
        XCTAssertTrue(run.stderr.contains("\(directory)/a.yaml:4:12: error: 'nowhere' is not a defined zone"), run.stderr)
        XCTAssertTrue(run.stderr.contains("policy rejected: 2 errors"), run.stderr)

        let json = try zonegate(["check", "--policies", directory, "--format", "json"])
        XCTAssertEqual(json.status, 1)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["valid"] as? Bool, false)
        let errors = try XCTUnwrap(object["errors"] as? [[String: Any]])
        XCTAssertEqual(errors.map { "\($0["file"]!):\($0["line"]!):\($0["column"]!)" }, ["a.yaml:2:11", "a.yaml:4:12"])
    }

    func testFailedAssertionExitsOne() throws {
        let directory = try policies(["a.yaml": smallPolicy + "\nassertions: [{name: a-never-b, deny: {from: a, to: b}}]\n"])
        let run = try zonegate(["check", "--policies", directory])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stdout.contains("FAIL  a-never-b"), run.stdout)
        XCTAssertTrue(run.stdout.contains("rule r1 (a.yaml:2:9) allows a -> b on 80/tcp"), run.stdout)
        XCTAssertTrue(run.stderr.contains("1 of 1 assertions failed: a-never-b"), run.stderr)
    }

    func testMatrixJSONFollowsCLISpec() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let run = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        // sha256 of "a.yaml" followed by the file's content.
        let digest = ReferenceDigest.of(name: "a.yaml", content: smallPolicy)
        XCTAssertEqual(run.stdout, """
            {
              "policyDigest": "\(digest)",
              "flows": [
                { "from": "x-a", "to": "x-b", "port": 80, "proto": "tcp", "verdict": "allow", "rules": ["r1"] },
                { "from": "x-a", "to": "x-b", "port": 81, "proto": "udp", "verdict": "deny", "rules": [] },
                { "from": "x-b", "to": "x-a", "port": 80, "proto": "tcp", "verdict": "deny", "rules": [] },
                { "from": "world", "to": "x-a", "port": 80, "proto": "tcp", "verdict": "deny", "rules": [] },
                { "from": "world", "to": "x-b", "port": 80, "proto": "tcp", "verdict": "deny", "rules": [] },
                { "from": "world", "to": "x-b", "port": 81, "proto": "udp", "verdict": "deny", "rules": [] },
                { "from": "host", "to": "x-a", "port": 80, "proto": "tcp", "verdict": "deny", "rules": [] },
                { "from": "host", "to": "x-b", "port": 80, "proto": "tcp", "verdict": "deny", "rules": [] },
                { "from": "host", "to": "x-b", "port": 81, "proto": "udp", "verdict": "deny", "rules": [] }
              ]
            }

            """)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)))
    }

    func testMatrixTableAndMarkdown() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let table = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "table"])
        XCTAssertEqual(table.status, 0)
        XCTAssertTrue(table.stdout.contains("x-a    x-b  80/tcp  allow    r1"), table.stdout)
        XCTAssertTrue(table.stdout.contains("9 flows: 1 allow, 8 deny, 0 audit"), table.stdout)
        let markdown = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "markdown"])
        XCTAssertTrue(markdown.stdout.contains("| x-a | x-b | 80/tcp | allow | r1 |"), markdown.stdout)
    }

    func testExplainJSON() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let run = try zonegate(["explain", "--policies", directory, "--inventory", inventory,
                                "--from", "fd00:18::2", "--to", "x-b", "--port", "80/tcp", "--format", "json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["verdict"] as? String, "allow")
        XCTAssertEqual(object["rules"] as? [String], ["r1"])
        XCTAssertEqual((object["reasons"] as? [String])?.first, "source x-a is a managed container in zone a")
    }

    /// `plan` and `teardown` read the kernel through netlink: run them in a fresh network namespace
    /// (`unshare -n`), never against the host's tables.
    func testPlanAndTeardownInAPrivateNamespace() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root for unshare -n")
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let plan = try run(["/usr/bin/unshare", "-n", Self.binary.path, "plan", "--policies", directory, "--inventory", inventory])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("applied as one transaction"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("add table inet zonegate"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("add table bridge zonegate"), plan.stdout)
        let teardown = try run(["/usr/bin/unshare", "-n", Self.binary.path, "teardown"])
        XCTAssertEqual(teardown.status, 0, teardown.stderr)
        XCTAssertEqual(teardown.stdout, "no zonegate tables to remove\n")
    }

    func testUsageAndEnvironmentErrorsExitTwo() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        // Without --inventory it reads the live host: no engine at that socket is an environment error, in one line.
        let noDocker = try zonegate(["matrix", "--policies", directory, "--docker-host", "unix://" + scratch.appendingPathComponent("no.sock").path])
        XCTAssertEqual(noDocker.status, 2)
        XCTAssertTrue(noDocker.stderr.contains("cannot read Docker at unix://"), noDocker.stderr)
        XCTAssertEqual(noDocker.stderr.split(separator: "\n").count, 1, noDocker.stderr)
        XCTAssertEqual(try zonegate(["check", "--bogus"]).status, 2)
        XCTAssertEqual(try zonegate(["explain", "--policies", directory, "--inventory", try file("i.json", smallInventory),
                                     "--from", "x-a", "--to", "x-b", "--port", "80"]).status, 2)
        XCTAssertEqual(try zonegate(["explain", "--policies", directory, "--inventory", try file("i.json", smallInventory),
                                     "--from", "nobody", "--to", "x-b", "--port", "80/tcp"]).status, 2)
        let missing = try zonegate(["check", "--policies", scratch.appendingPathComponent("none").path])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        let duplicate = try file("dup.json", #"{"containers": [{"name": "a"}, {"name": "a"}]}"#)
        let dup = try zonegate(["matrix", "--policies", directory, "--inventory", duplicate])
        XCTAssertEqual(dup.status, 2)
        XCTAssertTrue(dup.stderr.contains("container name 'a' appears twice"), dup.stderr)
        XCTAssertEqual(try zonegate(["--help"]).status, 0)
    }
}

/// The digest of one policy file, computed independently of the parser: `sha256sum` of name + content.
enum ReferenceDigest {
    static func of(name: String, content: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        input.fileHandleForWriting.write(Data((name + content).utf8))
        try? input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return "sha256:" + (text.split(separator: " ").first.map(String.init) ?? "")
    }
}

/// Rendering details that the binary tests do not reach.
final class RenderTests: XCTestCase {
    func testJSONEscapesAndKeepsKeyOrder() {
        let value = JSONValue.object([("z", .string("a\"b\\c\n\u{1}")), ("a", .array([.number(1), .bool(true), .null]))])
        XCTAssertEqual(value.rendered(), "{\n  \"z\": \"a\\\"b\\\\c\\n\\u0001\",\n  \"a\": [1, true, null]\n}")
    }

    func testTableColumnsAlign() {
        XCTAssertEqual(Render.table([["A", "BB", "C"], ["long", "x", ""]]), ["A     BB  C", "long  x"])
    }
}
