import Foundation
import Testing
import ZonegateTesting

/// One `zonegate run` per host (cli.md): a second one, started by mistake with a policy that
/// would open everything, refuses with exit 2 naming the first's pid, before it touches the
/// kernel; the first keeps enforcing. Once the first stops, a new one starts.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct SecondDaemonTests {
    /// zonegate's tables, without counters (`-s`), as text.
    static func zonegateTables() throws -> String {
        try ["inet", "bridge"].map { try NetnsCommand.check(["nft", "-s", "list", "table", $0, "zonegate"]) }.joined()
    }

    @Test func aSecondRunRefusesNamingTheFirstsPidAndChangesNothing() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let api = try #require(try host.add("two-api", zone: "api").ipv4(on: userNetwork))
        let db = try #require(try host.add("two-db", zone: "db").ipv4(on: userNetwork))
        let web = try host.add("two-web", zone: "web")
        let first = try host.startZonegate()
        let starting = first.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["message"] as? String == "starting" }
        let pid = try #require(starting?["pid"] as? Int, "the daemon logs its pid when starting:\n\(first.tail())")
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(try !reaches(web, db, 5432))
        let before = try Self.zonegateTables()

        // Every zone open to every other: what a second unit with a stale policy might hold.
        let open = host.docker.directory + "/open-policies"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        try "version: 1\nzones:\n  - {name: web}\n  - {name: db}\n".write(toFile: open + "/policy.yaml", atomically: true, encoding: .utf8)
        let second = try ZonegateBinary.run(["run", "--policies", open, "--docker-host", host.docker.host, "--log-format", "json"],
                                            timeout: .seconds(20))
        #expect(second.status == 2, "\(second.stderr)")
        #expect(second.stderr.contains("pid \(pid)"), "\(second.stderr)")
        #expect(second.stderr.contains(PrivateRunLock.path), "\(second.stderr)")
        #expect(second.stderr.split(separator: "\n").count == 1, "one line saying why: \(second.stderr)")
        #expect(try Self.zonegateTables() == before, "the second run changed the kernel's tables")
        #expect(first.exitStatus == nil, "the first daemon still runs")
        #expect(try !reaches(web, db, 5432))

        // The lock ends with its holder (SIGKILL included): the next daemon starts.
        first.send(SIGKILL)
        _ = first.stop()
        host.discardDaemon()
        try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(try !reaches(web, db, 5432))
    }
}
