import Foundation
import Testing
import ZonegateTesting

/// `docker run --rm ... true` many times: a container gone before zonegate could look into it
/// is not "not enforced" (issue 10 counted 80 false warnings in 200 runs), and the daemon's
/// enforcement of the others is unaffected.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct ShortLivedContainerTests {
    static let runs = 40

    @Test func shortLivedContainersAreNoWarnings() throws {
        let host = try EndToEndHost()
        defer { host.close() }
        let api = try #require(try host.add("sl-api", zone: "api").ipv4(on: userNetwork))
        let db = try #require(try host.add("sl-db", zone: "db").ipv4(on: userNetwork))
        let web = try host.add("sl-web", zone: "web")
        let daemon = try host.startZonegate()
        let mark = daemon.mark
        for index in 0..<Self.runs {
            // Half on the user network, half on the default bridge; labelled, so that each is classified.
            let network = index % 2 == 0 ? userNetwork : PrivateDocker.defaultNetwork
            try host.docker.docker(["run", "--rm", "--network", network, "--label", "zonegate.zone=web",
                                    PrivateDocker.image, "/bin/busybox", "true"])
        }
        // Let the daemon catch up with the last events: a marker container is classified after them.
        try host.add("sl-marker", zone: "web")
        #expect(daemon.waitFor(after: mark, timeout: .seconds(60)) { entry in
            (entry["message"] as? String) == "container classified" && (entry["container"] as? String) == "sl-marker"
        }, "\(daemon.tail())")
        let warnings = daemon.lines.dropFirst(mark).filter { $0.contains("\"container not enforced\"") }
        print("short-lived containers: \(Self.runs) runs, \(warnings.count) 'container not enforced' warnings")
        #expect(warnings.isEmpty, "\(warnings.prefix(5).joined(separator: "\n"))")
        #expect(daemon.exitStatus == nil)
        #expect(try eventually { try reaches(web, api, 8080) })
        #expect(try !reaches(web, db, 5432))
    }
}
