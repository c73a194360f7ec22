import Foundation
import Testing
import ZonegateTesting
@testable import ZonegateCLI

/// The `zonegate` binary as a user runs it: output, JSON shape and exit codes of cli.md.
@Suite struct CommandLineTests {
    private let scratch: ScratchDirectory

    init() throws {
        scratch = try binaryScratch("zonegate-cli")
    }

    /// A policy directory with the given files.
    private func policies(_ files: [String: String]) throws -> String {
        try scratch.directory(files)
    }

    private func file(_ name: String, _ text: String) throws -> String {
        try scratch.write(name, text)
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

    @Test func shippedPoliciesPassCheck() throws {
        let run = try zonegate(["check", "--policies", "policies"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("PASS  corp-never-reaches-cde"), "\(run.stdout)")
        #expect(!run.stdout.contains("FAIL"), "\(run.stdout)")
    }

    @Test func invalidPolicyExitsOneNamingEveryError() throws {
        let directory = try policies(["a.yaml": "zones:\n  - name: Web\nrules:\n  - {from: nowhere, to: any}\n"])
        let run = try zonegate(["check", "--policies", directory])
        #expect(run.status == 1)
        #expect(run.stderr.contains("\(directory)/a.yaml:2:11: error: zone name 'Web'"), "\(run.stderr)")
        #expect(run.stderr.contains("\(directory)/a.yaml:4:12: error: 'nowhere' is not a defined zone"), "\(run.stderr)")
        #expect(run.stderr.contains("policy rejected: 2 errors"), "\(run.stderr)")

        let json = try zonegate(["check", "--policies", directory, "--format", "json"])
        #expect(json.status == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["valid"] as? Bool) == false)
        let errors = try #require(object["errors"] as? [[String: Any]])
        #expect(errors.map { "\($0["file"]!):\($0["line"]!):\($0["column"]!)" } == ["a.yaml:2:11", "a.yaml:4:12"])
    }

    @Test func failedAssertionExitsOne() throws {
        let directory = try policies(["a.yaml": smallPolicy + "\nassertions: [{name: a-never-b, deny: {from: a, to: b}}]\n"])
        let run = try zonegate(["check", "--policies", directory])
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAIL  a-never-b"), "\(run.stdout)")
        #expect(run.stdout.contains("rule r1 (a.yaml:2:9) allows a -> b on 80/tcp"), "\(run.stdout)")
        #expect(run.stderr.contains("1 of 1 assertions failed: a-never-b"), "\(run.stderr)")
    }

    @Test func matrixJSONFollowsCLISpec() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let run = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        // sha256 of "a.yaml" followed by the file's content.
        let digest = ReferenceDigest.of(name: "a.yaml", content: smallPolicy)
        #expect(run.stdout == """
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
        #expect(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) != nil)
    }

    @Test func matrixTableAndMarkdown() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let table = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "table"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("x-a    x-b  80/tcp  allow    r1"), "\(table.stdout)")
        #expect(table.stdout.contains("9 flows: 1 allow, 8 deny, 0 audit"), "\(table.stdout)")
        let markdown = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "markdown"])
        #expect(markdown.stdout.contains("| x-a | x-b | 80/tcp | allow | r1 |"), "\(markdown.stdout)")
    }

    @Test func explainJSON() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let run = try zonegate(["explain", "--policies", directory, "--inventory", inventory,
                                "--from", "fd00:18::2", "--to", "x-b", "--port", "80/tcp", "--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((object["verdict"] as? String) == "allow")
        #expect((object["rules"] as? [String]) == ["r1"])
        #expect((object["reasons"] as? [String])?.first == "source x-a is a managed container in zone a")
    }

    /// `plan` and `teardown` read the kernel through netlink: run them in a fresh network namespace
    /// (`unshare -n`), never against the host's tables.
    @Test(.enabled(if: geteuid() == 0, "needs root for unshare -n"))
    func planAndTeardownInAPrivateNamespace() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let plan = try run(["/usr/bin/unshare", "-n", ZonegateBinary.path, "plan", "--policies", directory, "--inventory", inventory])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("applied as one transaction"), "\(plan.stdout)")
        #expect(plan.stdout.contains("add table inet zonegate"), "\(plan.stdout)")
        #expect(plan.stdout.contains("add table bridge zonegate"), "\(plan.stdout)")
        let teardown = try run(["/usr/bin/unshare", "-n", ZonegateBinary.path, "teardown"])
        #expect(teardown.status == 0, "\(teardown.stderr)")
        #expect(teardown.stdout == "no zonegate tables to remove\n")
    }

    @Test func usageAndEnvironmentErrorsExitTwo() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        // Without --inventory it reads the live host: no engine at that socket is an environment error, in one line.
        let noDocker = try zonegate(["matrix", "--policies", directory, "--docker-host", "unix://" + scratch.path("no.sock")])
        #expect(noDocker.status == 2)
        #expect(noDocker.stderr.contains("cannot read Docker at unix://"), "\(noDocker.stderr)")
        #expect(noDocker.stderr.split(separator: "\n").count == 1, "\(noDocker.stderr)")
        #expect(try zonegate(["check", "--bogus"]).status == 2)
        #expect(try zonegate(["explain", "--policies", directory, "--inventory", try file("i.json", smallInventory),
                                     "--from", "x-a", "--to", "x-b", "--port", "80"]).status == 2)
        #expect(try zonegate(["explain", "--policies", directory, "--inventory", try file("i.json", smallInventory),
                                     "--from", "nobody", "--to", "x-b", "--port", "80/tcp"]).status == 2)
        let missing = try zonegate(["check", "--policies", scratch.path("none")])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")
        let duplicate = try file("dup.json", #"{"containers": [{"name": "a"}, {"name": "a"}]}"#)
        let dup = try zonegate(["matrix", "--policies", directory, "--inventory", duplicate])
        #expect(dup.status == 2)
        #expect(dup.stderr.contains("container name 'a' appears twice"), "\(dup.stderr)")
        #expect(try zonegate(["--help"]).status == 0)
    }
}

/// Issue 10: every error in one format, hostile names escaped, ambiguous names told apart, the
/// host's addresses, repeated options, formats a command does not print, and a matrix whose
/// memory does not grow with its rows.
extension CommandLineTests {
    /// Each line of standard error is a policy diagnostic (`FILE:LINE:COL: error: `) or starts
    /// with `zonegate: error: ` / `zonegate: warning: `.
    private func assertOneErrorFormat(_ run: Run, _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(!run.stderr.isEmpty, "\(what): no error printed", sourceLocation: sourceLocation)
        // `run` logs too (`2026-...Z info starting ...`): its log lines are no error lines.
        for text in run.stderr.split(separator: "\n") where text.range(of: #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T"#, options: .regularExpression) == nil {
            let diagnostic = text.range(of: #"^.+:[0-9]+:[0-9]+: error: "#, options: .regularExpression) != nil
            #expect(diagnostic || text.hasPrefix("zonegate: error: ") || text.hasPrefix("zonegate: warning: "), "\(what): \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test func everyCommandPrintsErrorsInOneFormat() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let invalid = try policies(["a.yaml": "zones:\n  - name: Web\n"])
        let inventory = try file("inventory.json", smallInventory)
        let missing = scratch.path("none")
        let noSocket = "unix://" + scratch.path("no.sock")
        let cases: [(String, [String], Int32)] = [
            ("check, no directory", ["check", "--policies", missing], 2),
            ("check, invalid policy", ["check", "--policies", invalid], 1),
            ("check, bad usage", ["check", "--bogus"], 2),
            ("matrix, invalid policy", ["matrix", "--policies", invalid, "--inventory", inventory], 1),
            ("matrix, no inventory file", ["matrix", "--policies", directory, "--inventory", missing], 2),
            ("matrix, inventory is a directory", ["matrix", "--policies", directory, "--inventory", scratch.path], 2),
            ("matrix, no Docker", ["matrix", "--policies", directory, "--docker-host", noSocket], 2),
            ("explain, unknown peer", ["explain", "--policies", directory, "--inventory", inventory, "--from", "nobody", "--to", "x-b", "--port", "80/tcp"], 2),
            ("explain, bad port", ["explain", "--policies", directory, "--inventory", inventory, "--from", "x-a", "--to", "x-b", "--port", "80"], 2),
            ("explain, missing option", ["explain", "--policies", directory, "--inventory", inventory], 2),
            ("plan, invalid policy", ["plan", "--policies", invalid, "--inventory", inventory], 1),
            ("inventory, no Docker", ["inventory", "--docker-host", noSocket], 2),
            ("run, no directory", ["run", "--policies", missing, "--docker-host", noSocket], 2),
        ]
        for (what, arguments, status) in cases {
            let run = try zonegate(arguments)
            #expect(run.status == status, "\(what): \(run.stderr)")
            assertOneErrorFormat(run, what)
        }
        let rejected = try zonegate(["check", "--policies", invalid])
        #expect(rejected.stderr.hasPrefix("\(invalid)/a.yaml:2:11: error: "), "\(rejected.stderr)")
        #expect(rejected.stderr.hasSuffix("zonegate: error: policy rejected: 1 error\n"), "\(rejected.stderr)")
    }

    @Test func checkJSONWhenTheDirectoryIsMissing() throws {
        let missing = scratch.path("none")
        let run = try zonegate(["check", "--policies", missing, "--format", "json"])
        #expect(run.status == 2)
        let object = try #require(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)")
        #expect((object["valid"] as? Bool) == false)
        #expect((object["error"] as? String)?.contains("does not exist") == true, "\(run.stdout)")
        #expect((object["errors"] as? [Any])?.count == 0)
        assertOneErrorFormat(run, "check json, missing directory")
    }

    /// Names, labels and rule names with newlines, terminal escapes, pipes and backticks cannot
    /// forge rows or reach the terminal raw; JSON keeps them exactly.
    @Test func hostileNamesAreEscapedInTablesAndExactInJSON() throws {
        let directory = try policies(["a.yaml": """
            zones: [{name: a}, {name: b, egress: restricted}]
            rules: [{name: "r1", from: a, to: b, ports: [80/tcp]}]
            """])
        let hostile = ["evil\n| forged | row | 1/tcp | allow |", "red\u{1B}[31m`code`", "bidi\u{202E}txt", "tab\there\r"]
        let containers = hostile.enumerated().map { index, name -> [String: Any] in
            ["name": name, "labels": ["zonegate.zone": index == 0 ? "a" : "b", "team": "x\ny\u{1B}"], "addresses": ["172.18.0.\(index + 2)"], "ports": ["80/tcp"]]
        }
        let inventory = try file("hostile.json", String(decoding: try JSONSerialization.data(withJSONObject: ["containers": containers]), as: UTF8.self))
        let rows = (hostile.count + 2) * hostile.count - hostile.count
        for format in ["table", "markdown"] {
            let run = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", format])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(!run.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x202E }, "\(run.stdout)")
            #expect(run.stdout.contains(format == "table" ? #"evil\n| forged"# : #"evil\n\| forged"#), "\(run.stdout)")
            #expect(run.stdout.contains(format == "table" ? #"red\u{1b}[31m`code`"# : #"red\u{1b}[31m\`code\`"#), "\(run.stdout)")
            let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(!lines.contains { $0.hasPrefix("| forged") || $0.hasPrefix("forged") }, "no forged row: \(run.stdout)")
            // policy line, header (and separator), the rows, (blank,) totals, final newline.
            #expect(lines.count == (format == "table" ? rows + 4 : rows + 7), "\(run.stdout)")
            #expect(run.stdout.contains("\(rows) flows:"), "\(run.stdout)")
        }
        let json = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "json"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let flows = try #require(object["flows"] as? [[String: Any]])
        #expect(flows.count == rows)
        #expect(Set(flows.compactMap { $0["to"] as? String }) == Set(hostile), "JSON names are exact")
        let explain = try zonegate(["explain", "--policies", directory, "--inventory", inventory,
                                    "--from", hostile[0], "--to", hostile[1], "--port", "80/tcp", "--format", "markdown"])
        #expect(explain.status == 0, "\(explain.stderr)")
        #expect(!explain.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "\(explain.stdout)")
        #expect(explain.stdout.contains(#"source evil\n\| forged"#), "\(explain.stdout)")
        let unknown = try zonegate(["explain", "--policies", directory, "--inventory", inventory,
                                    "--from", "a\nzonegate: error: forged", "--to", hostile[1], "--port", "80/tcp"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.split(separator: "\n").count == 1, "\(unknown.stderr)")
    }

    @Test func repeatedOptionsAndUnsupportedFormatsAreRefused() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("inventory.json", smallInventory)
        let repeated = try zonegate(["explain", "--policies", directory, "--inventory", inventory, "--from", "x-a", "--to", "x-b",
                                     "--port", "80/tcp", "--port=81/udp"])
        #expect(repeated.status == 2)
        #expect(repeated.stderr == "zonegate: error: --port is given more than once; it takes one value\n")
        for arguments in [["matrix", "--format", "json", "--format", "table"], ["check", "--policies", directory, "--policies", directory]] {
            #expect(try zonegate(arguments).status == 2, "\(arguments)")
        }
        let markdown = try zonegate(["check", "--policies", directory, "--format", "markdown"])
        #expect(markdown.status == 2)
        #expect(markdown.stdout == "")
        assertOneErrorFormat(markdown, "check --format markdown")
        #expect(markdown.stderr.contains("'table'") && markdown.stderr.contains("'json'"), "\(markdown.stderr)")
        let help = try zonegate(["teardown", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--policies") && help.stdout.contains("not used"), "\(help.stdout)")
    }

    /// A container named like an address (Docker allows it; `world`, `host` and `any` are refused
    /// in files, MatrixTests covers them) is shown as `container:NAME`; the bare address keeps
    /// meaning the address, and `container:NAME` names the container.
    @Test func containersNamedLikeEndpoints() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("named.json", """
            {"containers": [
              {"name": "172.18.0.3", "labels": {"zonegate.zone": "a"}, "addresses": ["172.18.0.2"], "ports": ["80/tcp"]},
              {"name": "x-b", "labels": {"zonegate.zone": "b"}, "addresses": ["172.18.0.3"], "ports": ["80/tcp"]}
            ]}
            """)
        let run = try zonegate(["matrix", "--policies", directory, "--inventory", inventory, "--format", "json"])
        if run.status == 2 { try Test.cancel("the inventory file check refuses this name (\(run.stderr)); MatrixTests covers it") }
        #expect(run.status == 0, "\(run.stderr)")
        let flows = try #require((JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])?["flows"] as? [[String: Any]])
        let rows = flows.map { "\($0["from"]!)>\($0["to"]!) \($0["verdict"]!)" }
        #expect(rows == ["container:172.18.0.3>x-b allow", "x-b>container:172.18.0.3 deny", "world>container:172.18.0.3 deny",
                              "world>x-b deny", "host>container:172.18.0.3 deny", "host>x-b deny"])
        func reasons(_ from: String) throws -> [String] {
            let run = try zonegate(["explain", "--policies", directory, "--inventory", inventory, "--from", from, "--to", "world",
                                    "--port", "80/tcp", "--format", "json"])
            #expect(run.status == 0, "\(run.stderr)")
            return try #require((JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])?["reasons"] as? [String])
        }
        #expect(try reasons("172.18.0.3").first == "source x-b is a managed container in zone b", "the address: x-b holds it")
        #expect(try reasons("container:172.18.0.3").first == "source container:172.18.0.3 is a managed container in zone a")
        #expect(try reasons("world").first == "source world is an outside address that no CIDR of the policy covers")
    }

    /// An address of the host's own is `host`. With an inventory file, the host's addresses are
    /// those this machine holds on the bridges the file names: `lo` stands for one here.
    @Test func hostAddressesAreHost() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        let inventory = try file("bridged.json", """
            {"containers": [{"name": "x-b", "labels": {"zonegate.zone": "b"}, "addresses": ["172.18.0.3"], "ports": ["80/tcp"]}],
             "bridges": ["lo"]}
            """)
        func first(_ from: String, _ inventory: String) throws -> String? {
            let run = try zonegate(["explain", "--policies", directory, "--inventory", inventory, "--from", from, "--to", "x-b",
                                    "--port", "80/tcp", "--format", "json"])
            #expect(run.status == 0, "\(run.stderr)")
            return ((try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])?["reasons"] as? [String])?.first
        }
        #expect(try first("127.0.0.1", inventory)?.hasPrefix("source host is the Docker host itself") == true)
        #expect(try first("192.0.2.7", inventory) == "source 192.0.2.7 is an outside address (no container holds it)")
        // A file naming no bridge of this machine knows no host address.
        let elsewhere = try file("elsewhere.json", smallInventory)
        #expect(try first("127.0.0.1", elsewhere) == "source 127.0.0.1 is an outside address (no container holds it)")
    }

    /// Rows are written as they are computed: peak memory does not grow with them (16 times the
    /// rows), and an inventory beyond the documented limit is refused in one line.
    @Test func matrixMemoryDoesNotGrowWithRows() throws {
        let directory = try policies(["a.yaml": smallPolicy])
        func peakKilobytes(containers: Int, format: String) throws -> Int {
            let entries = (0..<containers).map { index in
                #"{"name": "c\#(index)", "labels": {"zonegate.zone": "\#(index % 2 == 0 ? "a" : "b")"}, "addresses": ["10.1.\#(index / 256).\#(index % 256)"], "ports": ["80/tcp"]}"#
            }
            let inventory = try file("scale-\(containers).json", #"{"containers": ["# + entries.joined(separator: ",\n") + "]}")
            let output = scratch.path("matrix-\(containers).\(format)")
            let run = try run(["/bin/sh", "-c", "/usr/bin/time -f %M \"$0\" matrix --policies \"$1\" --inventory \"$2\" --format \"$3\" > \"$4\"",
                                    ZonegateBinary.path, directory, inventory, format, output])
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(Int(run.stderr.split(separator: "\n").last ?? ""), "\(run.stderr)")
        }
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/time"), "needs /usr/bin/time (GNU time: make deps)")
        for format in ["json", "table"] {
            let small = try peakKilobytes(containers: 150, format: format)      // 22,650 rows
            let large = try peakKilobytes(containers: 600, format: format)      // 360,600 rows
            #expect(large - small < 24_000, "\(format): \(small) kB for 22,650 rows, \(large) kB for 360,600")
        }
        // Beyond the limit: the inventory file's own check refuses it first (the same number),
        // located; a live host's inventory meets the matrix's (InventoryLimitTests).
        let tooMany = try file("too-many.json", #"{"containers": ["# + (0...10_000).map { #"{"name": "c\#($0)"}"# }.joined(separator: ",") + "]}")
        let refused = try zonegate(["matrix", "--policies", directory, "--inventory", tooMany, "--format", "json"])
        #expect(refused.status == 2)
        #expect(refused.stdout == "")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        assertOneErrorFormat(refused, "too many containers")
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
@Suite struct RenderTests {
    @Test func jSONEscapesAndKeepsKeyOrder() {
        let value = JSONValue.object([("z", .string("a\"b\\c\n\u{1}")), ("a", .array([.number(1), .bool(true), .null]))])
        #expect(value.rendered() == "{\n  \"z\": \"a\\\"b\\\\c\\n\\u0001\",\n  \"a\": [1, true, null]\n}")
    }

    @Test func tableColumnsAlign() {
        #expect(MatrixRenderer.tableLine(["A", "BB", "C"], [4, 2]) == "A     BB  C")
        #expect(MatrixRenderer.tableLine(["long", "x", ""], [4, 2]) == "long  x")
    }
}
