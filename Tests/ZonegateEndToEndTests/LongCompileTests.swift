import Foundation
import Testing
import ZonegateTesting

/// A policy whose compile is long (hundreds of CIDR endpoints, as in issue 10: 197 zones, 2,000
/// rules, 250 distinct /32s) never blocks the daemon: a container started while it compiles is
/// enforced with the policy in force, and SIGTERM ends the daemon at once.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct LongCompileTests {
    /// basePolicy's zones and rules, plus `zones` zones, `rules` rules and `cidrs` /32 CIDRs among
    /// their destinations (deterministic).
    static func largePolicy(zones: Int = 197, rules: Int = 2000, cidrs: Int = 250, seed: UInt64 = 10) -> String {
        var generator = SplitMix64(seed: seed)
        let names = (0..<zones).map { String(format: "z%03d", $0) }
        // basePolicy's zones, then the new ones; its rules, then the new ones.
        let base = basePolicy.components(separatedBy: "\nrules:\n")
        var lines = [base[0]]
        for (index, zone) in names.enumerated() {
            lines.append("  - {name: \(zone), selector: {matchLabels: {zonegate.zone: \(zone)}}, ingress: \(index % 4 == 3 ? "open" : "restricted")}")
        }
        lines.append("rules:")
        lines.append(base[1])
        for index in 0..<rules {
            let source = names[Int(generator.next() % UInt64(zones))]
            let destination = generator.next() % 5 < 2
                ? "{cidr: 203.0.\(113 + Int(generator.next() % UInt64(cidrs)) / 250).\(1 + Int(generator.next() % UInt64(cidrs)) % 250)/32}"
                : names[Int(generator.next() % UInt64(zones))]
            lines.append("  - {name: big\(index), from: \(source), to: \(destination), ports: [\(8000 + generator.next() % 100)/tcp]}")
        }
        return lines.joined(separator: "\n") + "\n"
    }


    @Test func aContainerStartedDuringALongCompileIsEnforcedAndSIGTERMEndsTheDaemonAtOnce() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let api = try #require(try host.add("lc-api", zone: "api").ipv4(on: userNetwork))
        let db = try #require(try host.add("lc-db", zone: "db").ipv4(on: userNetwork))
        try host.add("lc-web", zone: "web")
        let daemon = try host.startZonegate()

        let mark = daemon.mark
        try host.writePolicy(Self.largePolicy())
        #expect(daemon.waitForMessage("policy loaded", after: mark), "\(daemon.tail())")
        let loaded = Date()
        // Started while the large policy compiles (or just after, with a fast compiler): it is
        // classified and enforced either way, with web's rules.
        let late = try host.add("lc-late", zone: "web")
        #expect(daemon.waitFor(after: mark, timeout: .seconds(30)) { entry in
            (entry["message"] as? String) == "container classified" && (entry["container"] as? String) == "lc-late"
        }, "\(daemon.tail())")
        let classifiedAfter = Date().timeIntervalSince(loaded)
        #expect(try eventually { try reaches(late, api, 8080) })
        #expect(try !reaches(late, db, 5432))
        let compiled = daemon.lines.dropFirst(mark).contains { $0.contains("\"applied\"") && $0.contains("policy directory changed") }

        // Applied by now (an unfinished compile goes on): a second large policy, and SIGTERM as
        // soon as it is read, in the middle of its compile.
        #expect(daemon.waitFor(after: mark, timeout: .seconds(600)) { entry in
            (entry["message"] as? String) == "applied" && (entry["reason"] as? String)?.contains("policy directory changed") == true
        })
        let second = daemon.mark
        try host.writePolicy(Self.largePolicy(seed: 11))
        #expect(daemon.waitForMessage("policy loaded", after: second), "\(daemon.tail())")
        let stopping = Date()
        daemon.send(SIGTERM)
        var ended = false
        for _ in 0..<1000 where !ended {
            ended = daemon.exitStatus != nil
            if !ended { Thread.sleep(forTimeInterval: 0.01) }
        }
        let stopSeconds = Date().timeIntervalSince(stopping)
        #expect(ended, "SIGTERM did not end the daemon within 10 s:\n\(daemon.tail())")
        // Debug build, 2 cores: a second is the goal; a few allow for a loaded machine.
        #expect(stopSeconds < 3, "SIGTERM took \(stopSeconds) s")
        let secondApplied = daemon.lines.dropFirst(second).contains { $0.contains("\"applied\"") }
        let firstApplied = daemon.lines.dropFirst(mark).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["message"] as? String == "applied" && ($0["reason"] as? String)?.contains("policy directory changed") == true }
        let total = (firstApplied?["duration_ms"] as? NSNumber).map { String(format: "%.0f ms", $0.doubleValue) } ?? "?"
        print("long compile: lc-late classified \(String(format: "%.2f", classifiedAfter)) s after the large policy was read " +
              "(\(compiled ? "after" : "before") it was applied; read to applied: \(total)); SIGTERM sent as a second one was read " +
              "(its compile \(secondApplied ? "had finished" : "unfinished")): the daemon ended \(String(format: "%.3f", stopSeconds)) s later")
        host.discardDaemon()
    }
}
