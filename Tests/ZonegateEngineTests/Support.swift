import XCTest
import ZonegateEngine
import ZonegatePolicy

/// A policy from YAML text (one file), failing the test when it does not parse.
func policy(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> Policy {
    do {
        return try PolicyParser.parse([PolicyFile(name: "policy.yaml", text: yaml)])
    } catch {
        XCTFail("policy does not parse: \(error)", file: file, line: line)
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
