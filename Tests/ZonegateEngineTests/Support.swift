import Testing
import ZonegateEngine
import ZonegatePolicy
import ZonegateTesting

/// A policy from YAML text (one file), failing the test when it does not parse; for the fixtures
/// that are values (stored properties, globals) rather than throwing calls.
func policy(_ yaml: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> Policy {
    do {
        return try parsePolicy(yaml, file: "policy.yaml")
    } catch {
        Issue.record("policy does not parse: \(error)", sourceLocation: sourceLocation)
        return Policy()
    }
}

/// A container with labels given as `key=value` pairs.
func container(_ name: String, _ labels: [String: String] = [:], _ addresses: [String] = [], ports: [String] = []) -> Container {
    Container(name: name, labels: labels, addresses: addresses.map { IPAddress($0)! }, ports: ports.map { ServicePort.parse($0)! })
}

extension PolicyEvaluator {
    /// The verdict between two named peers (container names, addresses, `world`, `host`).
    func verdict(_ from: String, _ to: String, _ port: String) -> VerdictKind {
        decide(from: peer(named: from)!, to: peer(named: to)!, port: ServicePort.parse(port)!).verdict
    }

    func rules(_ from: String, _ to: String, _ port: String) -> [String] {
        decide(from: peer(named: from)!, to: peer(named: to)!, port: ServicePort.parse(port)!).rules
    }
}

/// Zones, rules of every endpoint kind and containers of each kind, for the dataplane-facing views.
let sharedDataplaneEvaluator = PolicyEvaluator(policy: policy(shopZonesAndWorldRule + """
      - {name: web-api, from: web, to: api, ports: [8000-8100/tcp, 53/udp]}
      - {name: web-api-2, from: web, to: api, ports: [8050-8200/tcp]}
      - {name: api-out, from: api, to: {cidr: 198.51.100.0/24, except: [198.51.100.64/26]}, ports: [443/tcp]}
      - {name: v6-corp, from: {cidr: "2001:db8::/32"}, to: corp, ports: [icmp]}
      - {name: host-api, from: host, to: api, ports: [sctp]}
    """), inventory: Inventory(containers: [
        container("w", ["zonegate.zone": "web"], ["172.18.0.2", "fd00::2"]),
        container("a", ["zonegate.zone": "api"], ["172.18.0.3"]),
        container("c", ["zonegate.zone": "corp"], ["172.18.0.4"]),
        container("u", [:], ["172.18.0.5"]),
    ]))
