import XCTest
import ZonegateEngine
import ZonegatePolicy

/// The matrix of cli.md: which rows, in which order, and totals that agree with the rows.
final class MatrixTests: XCTestCase {
    private let shopPolicy = policy("""
        defaults: {unzoned: restricted}
        zones:
          - {name: web}
          - {name: api, egress: restricted}
          - {name: corp, mode: audit}
        rules:
          - {name: world-web, from: world, to: web, ports: [443/tcp]}
          - {name: web-api, from: web, to: api, ports: [8080/tcp]}
          - {name: api-out, from: api, to: {cidr: 198.51.100.0/24}, ports: [443/tcp]}
        """)

    func testRowsCoverEverySourceDestinationAndPortInOrder() {
        let inventory = Inventory(containers: [
            container("w", ["zonegate.zone": "web"], ["172.18.0.2"], ports: ["443/tcp"]),
            container("a", ["zonegate.zone": "api"], ["172.18.0.3"], ports: ["8080/tcp", "9100/tcp"]),
            container("c", ["zonegate.zone": "corp"], ["172.18.0.4"], ports: []),
        ])
        let flows = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: inventory)).flows()
        let rows = flows.map { "\($0.from)>\($0.to) \($0.port) \($0.verdict.rawValue) \($0.rules.joined(separator: ","))" }
        XCTAssertEqual(rows, [
            "w>a 8080/tcp allow web-api", "w>a 9100/tcp deny ",
            "a>w 443/tcp deny ",
            "c>w 443/tcp deny ", "c>a 8080/tcp deny ", "c>a 9100/tcp deny ",
            "world>w 443/tcp allow world-web", "world>a 8080/tcp deny ", "world>a 9100/tcp deny ",
            "host>w 443/tcp deny ", "host>a 8080/tcp deny ", "host>a 9100/tcp deny ",
        ])
    }

    func testSummaryAgreesWithTheRows() {
        // Several containers per identity, unzoned ones, audit ones, and CIDR-matched ones.
        var containers: [Container] = []
        for index in 0..<40 {
            let zone = ["web", "api", "corp", ""][index % 4]
            let address = index % 5 == 0 ? "198.51.100.\(index + 1)" : "172.18.1.\(index + 1)"
            containers.append(container("c\(index)", zone.isEmpty ? [:] : ["zonegate.zone": zone], [address],
                                        ports: index % 3 == 0 ? ["443/tcp", "8080/tcp"] : ["8080/tcp"]))
        }
        let matrix = ReachabilityMatrix(PolicyEvaluator(policy: shopPolicy, inventory: Inventory(containers: containers)))
        let flows = matrix.flows()
        let summary = matrix.summary()
        XCTAssertEqual(summary.flows, flows.count)
        XCTAssertEqual(summary.allowed, flows.filter { $0.verdict == .allow }.count)
        XCTAssertEqual(summary.denied, flows.filter { $0.verdict == .deny }.count)
        XCTAssertEqual(summary.audited, flows.filter { $0.verdict == .audit }.count)
        XCTAssertGreaterThan(summary.allowed, 0)
        XCTAssertGreaterThan(summary.audited, 0)
        XCTAssertEqual(summary.identities, 8, "web, api, corp and unzoned, each with and without an address in the CIDR")
    }

    /// 10,000 containers and 1,000 rules: the summary reasons per identity (zones x CIDR blocks),
    /// so it stays cheap. `make bench` measures its time; here only the result is checked.
    func testSummaryAtScale() {
        var yaml = "zones:\n"
        for zone in 0..<50 { yaml += "  - {name: z\(zone), egress: \(zone % 2 == 0 ? "restricted" : "open")}\n" }
        yaml += "rules:\n"
        for rule in 0..<1000 {
            yaml += "  - {from: z\(rule % 50), to: z\((rule * 7) % 50), ports: [\(8000 + rule % 100)/tcp]}\n"
        }
        let policy = policy(yaml)
        let containers = (0..<10_000).map { index in
            container("c\(index)", ["zonegate.zone": "z\(index % 50)"], ["10.\(index / 65536).\((index / 256) % 256).\(index % 256)"],
                      ports: ["\(8000 + index % 100)/tcp"])
        }
        let summary = ReachabilityMatrix(PolicyEvaluator(policy: policy, inventory: Inventory(containers: containers))).summary()
        XCTAssertEqual(summary.identities, 50)
        XCTAssertEqual(summary.flows, 10_002 * 10_000 - 10_000, "every source (containers, world, host) to every other container")
        XCTAssertEqual(summary.allowed + summary.denied + summary.audited, summary.flows)
        XCTAssertGreaterThan(summary.allowed, 0)
        XCTAssertGreaterThan(summary.denied, 0)
    }
}
