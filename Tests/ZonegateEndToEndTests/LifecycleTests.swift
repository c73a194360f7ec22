import Foundation
import Testing
import ZonegateTesting

/// `zonegate run` keeping up with a live engine: new containers, reused addresses, a second
/// network, dockerd restarting (its event stream cut), the daemon killed and restarted, policy
/// edits, and `zonegate teardown`. Each test asserts an allowed and a denied flow, so neither
/// a blanket drop nor a blanket accept passes.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct LifecycleTests {
    /// api-1 and db-1 on the user network, and a running daemon.
    private func apiAndDatabase(_ host: EndToEndHost) throws -> (api: String, db: String) {
        let api = try #require(try host.add("api-1", zone: "api").ipv4(on: userNetwork))
        let db = try #require(try host.add("db-1", zone: "db").ipv4(on: userNetwork))
        return (api, db)
    }

    @Test func newContainerIsUnreachableUntilClassifiedThenFollowsItsZone() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let daemon = try host.startZonegate()
        // From its first instant, the new web container tries db (denied) and api (allowed) in
        // parallel every 0.3 s; its log says which exchanges completed.
        let script = """
            for i in $(seq 15); do
              (echo probe | timeout 1 nc \(db) 5432 | grep -q 'echo probe' && echo GOT-DB $i) &
              (echo probe | timeout 1 nc \(api) 8080 | grep -q 'echo probe' && echo GOT-API $i) &
              sleep 0.3
            done
            wait; echo DONE; exec sleep 3600
            """
        let web = try host.add("web-new", zone: "web", command: ["/bin/busybox", "sh", "-c", script])
        #expect(try eventually(attempts: 50) { try host.docker.logs("web-new").contains("DONE") })
        let log = try host.docker.logs("web-new")
        #expect(!log.contains { $0.hasPrefix("GOT-DB") }, "a denied flow got through: \(log)")
        #expect(log.contains { $0.hasPrefix("GOT-API") }, "the allowed flow never got through while classified: \(log)")
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(try !reaches(web, db, 5432))
        // The log names the container and its zones.
        #expect(daemon.waitFor(timeout: .seconds(1)) { entry in
            (entry["message"] as? String)?.contains("classified") == true
                && String(describing: entry).contains("web-new") && String(describing: entry).contains("web")
        }, "no log entry classifying web-new:\n\(daemon.tail())")
    }

    @Test func reusedAddressDoesNotInheritTheOldZones() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let address = "172.30.0.50"
        let old = try host.add("web-old", zone: "web", ip: address)
        try host.startZonegate()
        #expect(try eventually { try reaches(old, api, 8080) })
        try host.stopContainer("web-old")
        // The same address, now in zone api: web's rule to api must not follow it, api's to db must.
        let new = try host.add("api-new", zone: "api", ip: address)
        #expect(new.ipv4(on: userNetwork) == address)
        #expect(try eventually { try reaches(new, db, 5432) })
        #expect(try !reaches(new, api, 8080))
    }

    @Test func containerConnectedToASecondNetworkIsEnforcedThere() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let bridge = PrivateDocker.defaultNetwork
        let api = try #require(try host.add("api-2", zone: "api", network: bridge).ipv4(on: bridge))
        let db = try #require(try host.add("db-2", zone: "db", network: bridge).ipv4(on: bridge))
        let web = try host.add("web-1", zone: "web")
        try host.startZonegate()
        #expect(try !reaches(web, api, 8080), "different networks: Docker itself keeps them apart")
        _ = try host.docker.connect("web-1", to: bridge)
        let webOnBridge = try #require(try host.refresh("web-1").ipv4(on: bridge))
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(try !reaches(web, db, 5432))
        // web's ingress there is restricted too: api may not call it.
        #expect(try !reaches(host.containers["api-2"]!, webOnBridge, 80))
        #expect(try eventually { try reaches(NetnsLocation.privateHost, api, 9100) })
    }

    @Test func dockerdRestartedUnderTheDaemon() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let web = try host.add("web-1", zone: "web")
        let daemon = try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        // With --live-restore the containers run on while dockerd is down, and so does enforcement.
        host.docker.stopDaemon()
        #expect(try reaches(web, api, 8080))
        #expect(try !reaches(web, db, 5432))
        try host.docker.startDaemon()
        #expect(daemon.exitStatus == nil, "zonegate exited when dockerd went away:\n\(daemon.tail())")
        // A container started after the restart: the daemon reconnected (its event stream was cut).
        let late = try host.add("web-2", zone: "web")
        #expect(try eventually(attempts: 50) { try reaches(late, api, 8080) }, "\(daemon.tail())")
        #expect(try !reaches(late, db, 5432))
        #expect(try reaches(web, api, 8080))
    }

    @Test func eventStreamCutThenResyncMissesNothing() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let gone = try host.add("web-gone", zone: "web")
        // zonegate talks to Docker through a relay the test can cut while dockerd runs on.
        let relay = try DockerSocketRelay(for: host.docker)
        defer { relay.cut() }
        let daemon = try host.startZonegate(dockerHost: relay.host)
        #expect(try eventually { try reaches(gone, api, 8080) })
        relay.cut()
        // While zonegate hears nothing, one container goes and another comes: unclassified, it
        // stays closed.
        try host.removeContainer("web-gone")
        let late = try host.add("web-late", zone: "web")
        #expect(try !reaches(late, api, 8080), "an unclassified container got through")
        try relay.open()
        #expect(try eventually(attempts: 75) { try reaches(late, api, 8080) }, "not classified after the stream came back:\n\(daemon.tail())")
        #expect(try !reaches(late, db, 5432))
        #expect(try eventually {
            try !NetnsCommand.check(["nft", "list", "table", "inet", "zonegate"]).contains("web-gone")
        }, "the container removed during the cut is still in zonegate's sets")
        #expect(daemon.exitStatus == nil)
    }

    @Test func killedDaemonLeavesEnforcementInPlaceAndRestartTakesOver() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let web = try host.add("web-1", zone: "web")
        let first = try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        first.send(SIGKILL)
        #expect(first.stop() == 128 + SIGKILL)
        host.discardDaemon()
        for family in ["inet", "bridge"] {
            #expect(throws: Never.self) { try NetnsCommand.check(["nft", "list", "table", family, "zonegate"]) }
        }
        #expect(try !reaches(web, db, 5432))
        #expect(try reaches(web, api, 8080))
        // Denied traffic never passes and allowed traffic keeps flowing while a new daemon takes over.
        let denied = try SteadyTraffic(from: web, to: db, port: 5432, transport: .tcp, count: 40, interval: .milliseconds(100))
        let allowed = try SteadyTraffic(from: web, to: api, port: 8080, transport: .tcp, count: 40, interval: .milliseconds(100))
        let second = try host.startZonegate()
        let deniedReport = try denied.finish(), allowedReport = try allowed.finish()
        #expect(deniedReport.answered == 0, "denied requests answered during the takeover: \(deniedReport)")
        #expect(allowedReport.unanswered.isEmpty, "allowed requests lost during the takeover: \(allowedReport)")
        #expect(second.exitStatus == nil)
    }

    @Test func invalidPolicyKeepsTheLastGoodOneAndStricterOneRevokes() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let web = try host.add("web-1", zone: "web")
        let daemon = try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        let connection = try LongLivedConnection(from: web, to: api, port: 8080, duration: .seconds(30))
        defer { connection.stop() }
        #expect(connection.waitUntilEstablished())

        // An ingress mode that does not exist, noticed through the directory (no signal).
        let mark = daemon.mark
        try host.writePolicy(basePolicy.replacingOccurrences(of: "{name: web}", with: "{name: web, ingress: sideways}"))
        #expect(daemon.waitFor(after: mark, timeout: .seconds(10)) { entry in
            (entry["level"] as? String).map { ["error", "warning", "critical"].contains($0) } == true
                && String(describing: entry).range(of: #"policy\.yaml:\d+:\d+"#, options: .regularExpression) != nil
        }, "no error naming policy.yaml:LINE:COLUMN:\n\(daemon.tail())")
        #expect(try reaches(web, api, 8080))
        #expect(try !reaches(web, db, 5432))
        if case .alive = connection.state {} else { Issue.record("the invalid policy cut an allowed connection: \(connection.state)") }

        // Stricter: web may no longer call api. The open connection dies, new ones are refused.
        // (Reloaded through SIGHUP as well, so either way of reloading suffices here.)
        try host.writePolicy(basePolicy.replacingOccurrences(of: "  - {name: web-to-api, from: web, to: api, ports: [8080/tcp]}\n", with: ""))
        daemon.send(SIGHUP)
        let state = connection.waitForCut(timeout: .seconds(10))
        guard case .cut = state else {
            Issue.record("the revoked connection lives on: \(state)\n\(daemon.tail())")
            return
        }
        #expect(try !reaches(web, api, 8080))
        #expect(try reaches(host.containers["api-1"]!, db, 5432))
    }

    @Test func deletedTableIsRepairedByTheResync() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let web = try host.add("web-1", zone: "web")
        let daemon = try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        let mark = daemon.mark
        // Someone removes zonegate's table; the resync (every 2 s here) puts it back and says so.
        try NetnsCommand.check(["nft", "delete", "table", "inet", "zonegate"])
        #expect(try eventually(attempts: 40) { try !reaches(web, db, 5432) }, "drift not repaired:\n\(daemon.tail())")
        #expect(try reaches(web, api, 8080))
        #expect(eventually { (try? NetnsCommand.check(["nft", "list", "table", "inet", "zonegate"])) != nil })
        #expect(daemon.waitFor(after: mark, timeout: .seconds(1)) { entry in
            (entry["level"] as? String) == "warning" && (entry["message"] as? String)?.contains("drift") == true
        }, "the repair was not logged as a warning about drift:\n\(daemon.tail())")
    }

    @Test func stopLeavesRulesAndTeardownRemovesOnlyZonegatesTables() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let (api, db) = try apiAndDatabase(host)
        let web = try host.add("web-1", zone: "web")
        let daemon = try host.startZonegate()
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(daemon.stop() == 0, "SIGTERM should end zonegate run with status 0:\n\(daemon.tail())")
        #expect(try !reaches(web, db, 5432), "the rules must stay when the daemon stops")
        let before = try tables()
        #expect(before.contains("inet zonegate") && before.contains("bridge zonegate"))
        let outcome = try ZonegateBinary.run(["teardown"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let after = try tables()
        #expect(after == before.subtracting(["inet zonegate", "bridge zonegate"]), "before \(before), after \(after)")
        #expect(after.contains { $0.hasSuffix(" nat") } && after.contains { $0.hasSuffix(" filter") }, "Docker's tables are gone: \(after)")
        #expect(try reaches(web, db, 5432), "nothing of zonegate's should filter after teardown")
    }

    /// `nft list tables` as "family name" strings.
    private func tables() throws -> Set<String> {
        Set(try NetnsCommand.check(["nft", "list", "tables"]).split(separator: "\n").map {
            $0.replacingOccurrences(of: "table ", with: "")
        })
    }
}
