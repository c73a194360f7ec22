import Foundation
import ZonegateEngine
import ZonegatePolicy

/// How `matrix`, `explain` and `check` print: for people (table, markdown) or programs (json).
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, json, markdown
}

/// Renders engine results in the formats of cli.md.
public enum Render {
    /// cli.md's `matrix --format json`. ICMP has no port: its rows carry `"port": null`.
    public static func matrixJSON(digest: String, flows: [MatrixFlow]) -> JSONValue {
        .object([
            ("policyDigest", .string(digest)),
            ("flows", .array(flows.map { flow in
                .object([
                    ("from", .string(flow.from)), ("to", .string(flow.to)),
                    ("port", flow.port.proto.hasPorts ? .number(Int(flow.port.number)) : .null),
                    ("proto", .string(flow.port.proto.rawValue)),
                    ("verdict", .string(flow.verdict.rawValue)), ("rules", .strings(flow.rules)),
                ])
            })),
        ])
    }

    /// The matrix for people. policy.md: a container on a network zonegate cannot enforce on is
    /// reported as unenforced, never silently left out, so each such attachment gets a line.
    public static func matrixTable(digest: String, flows: [MatrixFlow], markdown: Bool,
                                   unenforced: [UnenforcedAttachment] = []) -> String {
        let header = ["FROM", "TO", "PORT", "VERDICT", "RULES"]
        let rows = flows.map { [$0.from, $0.to, $0.port.description, $0.verdict.rawValue, $0.rules.joined(separator: ", ")] }
        let counts = Dictionary(grouping: flows, by: \.verdict).mapValues(\.count)
        let total = "\(flows.count) flows: \(counts[.allow] ?? 0) allow, \(counts[.deny] ?? 0) deny, \(counts[.audit] ?? 0) audit"
        let warnings = unenforced.map { "unenforced: \($0.container) on \($0.network) (\($0.reason)): zonegate does not filter this attachment" }
        if markdown {
            let line = { (cells: [String]) in "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |" }
            return (["Policy `\(digest)`", "", line(header.map { $0.lowercased() }), line(header.map { _ in "---" })]
                + rows.map(line) + ["", total] + (warnings.isEmpty ? [] : [""] + warnings.map { "- " + $0 })).joined(separator: "\n")
        }
        return (["policy \(digest)"] + table([header] + rows) + [total] + warnings).joined(separator: "\n")
    }

    public static func explanationJSON(_ explanation: Explanation) -> JSONValue {
        .object([
            ("verdict", .string(explanation.verdict.rawValue)),
            ("rules", .strings(explanation.rules)),
            ("reasons", .strings(explanation.reasons)),
        ])
    }

    public static func explanationText(_ explanation: Explanation, markdown: Bool) -> String {
        let bullet = markdown ? "- " : "  - "
        let title = markdown ? "**verdict: \(explanation.verdict.rawValue)**" : "verdict: \(explanation.verdict.rawValue)"
        return ([title] + explanation.reasons.map { bullet + $0 }).joined(separator: "\n")
    }

    public static func checkJSON(policy: Policy?, diagnostics: [PolicyDiagnostic], results: [AssertionResult]) -> JSONValue {
        .object([
            ("valid", .bool(policy != nil)),
            ("policyDigest", policy.map { .string($0.digest) } ?? .null),
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

    /// Columns padded to their widest cell.
    static func table(_ rows: [[String]]) -> [String] {
        guard let columns = rows.first?.count else { return [] }
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == columns - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
