import Foundation
import ZonegateEngine
import ZonegatePolicy

/// How `matrix`, `explain` and `check` print: for people (table, markdown) or programs (json).
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, json, markdown
}

/// Renders engine results in the formats of cli.md.
public enum Render {
    /// The matrix of the given rows, as `matrix` prints it in `format` (it streams through
    /// `MatrixRenderer`; this collects, for tests and small outputs).
    public static func matrix(_ format: OutputFormat, digest: String, flows: [MatrixFlow],
                              unenforced: [UnenforcedAttachment] = []) -> String {
        var names: [String] = []
        var index: [String: Int] = [:]
        func number(_ name: String) -> Int {
            if let known = index[name] { return known }
            names.append(name)
            index[name] = names.count - 1
            return names.count - 1
        }
        let rows = flows.map { MatrixRow(source: number($0.from), destination: number($0.to), port: $0.port, verdict: $0.verdict, rules: $0.rules) }
        var ports = [[ServicePort]](repeating: [], count: names.count)
        for row in rows { ports[row.destination].append(row.port) }
        var sink = StringSink()
        _ = try? MatrixRenderer(format: format, digest: digest, unenforced: unenforced)
            .render(names: names, destinationNames: names, ports: ports, to: &sink) { body in try rows.forEach(body) }
        return sink.text
    }

    public static func explanationJSON(_ explanation: Explanation) -> JSONValue {
        .object([
            ("verdict", .string(explanation.verdict.rawValue)),
            ("rules", .strings(explanation.rules)),
            ("reasons", .strings(explanation.reasons)),
            // Each rule covering the flow with who owns it, the change that approved it and why it is needed.
            ("matchingRules", .array(explanation.matchingRules.map { rule in
                func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
                return .object([
                    ("name", .string(rule.name)), ("allows", .bool(rule.allows)),
                    ("file", text(rule.location?.file)), ("line", rule.location.map { .number($0.line) } ?? .null),
                    ("column", rule.location.map { .number($0.column) } ?? .null),
                    ("owner", text(rule.owner)), ("ticket", text(rule.ticket)), ("justification", text(rule.justification)),
                    ("description", text(rule.description)),
                ])
            })),
        ])
    }

    public static func explanationText(_ explanation: Explanation, markdown: Bool) -> String {
        let bullet = markdown ? "- " : "  - "
        let title = markdown ? "**verdict: \(explanation.verdict.rawValue)**" : "verdict: \(explanation.verdict.rawValue)"
        return ([title] + explanation.reasons.map { bullet + Escape.text($0, markdown: markdown) }).joined(separator: "\n")
    }

    /// `check --format json`. `error`: why no policy could be read at all (a missing directory),
    /// as opposed to the policy's own `errors`.
    public static func checkJSON(policy: Policy?, diagnostics: [PolicyDiagnostic], results: [AssertionResult],
                                 error: String? = nil) -> JSONValue {
        .object([
            ("valid", .bool(policy != nil)),
            ("policyDigest", policy.map { .string($0.digest) } ?? .null),
            ("error", error.map { .string($0) } ?? .null),
            ("errors", .array(diagnostics.map { diagnostic in
                .object([
                    ("file", .string(diagnostic.location.file)), ("line", .number(diagnostic.location.line)),
                    ("column", .number(diagnostic.location.column)), ("message", .string(diagnostic.message)),
                ])
            })),
            ("assertions", .array(results.map { result in
                .object([
                    ("name", .string(result.assertion.name)), ("holds", .bool(result.holds)),
                    ("rules", .strings(result.responsibleRules)), ("zones", .strings(result.responsibleZones)),
                    ("failures", .strings(result.failures)),
                ])
            })),
        ])
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
