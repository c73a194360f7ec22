import ZonegatePolicy
import ZonegateEngine
import ZonegateRuleset

/// A policy from the YAML text of one file, as the tests write policies (`p.yaml`, unless a
/// test checks the file name in positions or digests).
public func parsePolicy(_ yaml: String, file: String = "p.yaml") throws -> Policy {
    try PolicyParser.parse([PolicyFile(name: file, text: yaml)])
}

/// The compiled tables of a two-zone policy (web -> db 5432/tcp, db's egress restricted) with one
/// container of each on `bridge`, at the given bridge ports: the ruleset that verify's comparison
/// tests, pure and in the kernel, start from.
public func webToDatabaseRuleset(bridge: String, webPort: String, databasePort: String) throws -> Ruleset {
    let policy = try parsePolicy("""
        zones: [{name: web}, {name: db, egress: restricted}]
        rules: [{name: web-to-db, from: web, to: db, ports: [5432/tcp]}]
        """)
    let web = IPAddress("172.18.0.2")!, database = IPAddress("172.18.0.3")!
    let inventory = Inventory(containers: [
        Container(name: "web-1", labels: ["zonegate.zone": "web"], addresses: [web], ports: [ServicePort(80, .tcp)],
                  attachments: [BridgeAttachment(bridge: bridge, port: webPort, addresses: [web])]),
        Container(name: "db-1", labels: ["zonegate.zone": "db"], addresses: [database], ports: [ServicePort(5432, .tcp)],
                  attachments: [BridgeAttachment(bridge: bridge, port: databasePort, addresses: [database])]),
    ], bridges: [bridge])
    return RulesetCompiler.ruleset(PolicyEvaluator(policy: policy, inventory: inventory))
}

/// The zones the pure compiler and matrix tests share, and their world -> web rule: web (open),
/// api (egress restricted), corp (audit). A test appends its own rules, each line `  - {...}`.
public let shopZonesAndWorldRule = """
    zones:
      - {name: web}
      - {name: api, egress: restricted}
      - {name: corp, mode: audit}
    rules:
      - {name: world-web, from: world, to: web, ports: [443/tcp]}

    """
