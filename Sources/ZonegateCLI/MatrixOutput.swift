import Foundation
import ZonegateEngine
import ZonegatePolicy

/// Where streamed output goes: standard output through a fixed buffer, or a string in tests.
protocol TextSink {
    mutating func write(_ text: String) throws
    /// Pre-encoded UTF-8: rows are assembled from pieces encoded once, with no string per row.
    mutating func write(_ bytes: [UInt8]) throws
    mutating func flush() throws
}

/// Standard output through a 64 KiB buffer: one `write(2)` per buffer, not per row, and memory
/// that does not grow with what is written.
struct StandardOutput: TextSink {
    private var buffer: [UInt8] = []
    private let capacity = 1 << 16

    init() { buffer.reserveCapacity(capacity) }

    /// Why output stopped (a closed pipe, a full disk).
    struct WriteError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { "cannot write to standard output: \(String(cString: strerror(errno)))" }
    }

    mutating func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= capacity { try flush() }
    }

    mutating func write(_ bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    mutating func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                let failure = errno
                buffer.removeAll(keepingCapacity: true)
                throw WriteError(errno: failure)
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Collects everything written: for tests and small renderings.
struct StringSink: TextSink {
    var text = ""
    mutating func write(_ text: String) throws { self.text += text }
    mutating func write(_ bytes: [UInt8]) throws { text += String(decoding: bytes, as: UTF8.self) }
    mutating func flush() throws {}
}

/// `matrix` output, written row by row as the matrix is walked, in each format: memory follows the
/// number of containers (each name encoded once), never the number of rows.
///
/// - json: cli.md's document, one flow a line, the same bytes as the whole document rendered at
///   once (`"flows": []` when there are none).
/// - table: columns whose widths come from the inventory, not from the rows (every source and
///   destination name, every port, the verdict words), each capped at `maximumColumnWidth`
///   characters so that one very long name does not pad every row: a longer cell overflows its
///   column on its own row. RULES is the last column and is not padded.
/// - markdown: a GitHub table; names escaped as cells need.
///
/// Then the totals and, for people, a line per unenforced attachment.
struct MatrixRenderer {
    static let maximumColumnWidth = 40

    let format: OutputFormat
    let digest: String
    let unenforced: [UnenforcedAttachment]

    /// Writes the whole matrix to `sink`; returns the number of rows.
    @discardableResult
    func render<Sink: TextSink>(_ matrix: ReachabilityMatrix, to sink: inout Sink) throws -> Int {
        let names = matrix.sourceNames
        let containers = matrix.evaluator.inventory.containers
        return try render(names: names, destinationNames: names, ports: containers.map(\.ports), to: &sink) { body in
            try matrix.forEachRow(body)
        }
    }

    /// Writes the given rows (their ends index `names`) to `sink`.
    func render<Sink: TextSink>(names: [String], destinationNames: [String], ports: [[ServicePort]], to sink: inout Sink,
                                rows walk: ((MatrixRow) throws -> Void) throws -> Void) throws -> Int {
        var allowed = 0, denied = 0, audited = 0
        var count = 0
        // Every piece of a row (a name, a port, a verdict, a list of rules) is encoded, escaped
        // and padded once; a row is those pieces' bytes, one after the other.
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        var portCache = BoundedCache<ServicePort, [UInt8]>()
        var rulesCache = BoundedCache<[String], [UInt8]>()
        switch format {
        case .json:
            try sink.write("{\n  \(JSONText.quoted("policyDigest")): \(JSONText.quoted(digest)),\n  \"flows\": ")
            let first = bytes("[\n    "), next = bytes(",\n    ")
            let sources = names.map { bytes("{ \"from\": \(JSONText.quoted($0)), ") }
            let destinations = names.map { bytes("\"to\": \(JSONText.quoted($0)), ") }
            let verdicts = Dictionary(uniqueKeysWithValues: Self.verdicts.map { ($0, bytes("\"verdict\": \"\($0.rawValue)\", \"rules\": ")) })
            let noRules = bytes("[] }")
            try walk { row in
                try sink.write(count == 0 ? first : next)
                count += 1
                try sink.write(sources[row.source])
                try sink.write(destinations[row.destination])
                try sink.write(portCache.value(for: row.port) { port in
                    bytes("\"port\": \(port.proto.hasPorts ? String(port.number) : "null"), \"proto\": \"\(port.proto.rawValue)\", ")
                })
                try sink.write(verdicts[row.verdict]!)
                try sink.write(row.rules.isEmpty ? noRules : rulesCache.value(for: row.rules) { bytes(JSONValue.strings($0).rendered() + " }") })
            }
            try sink.write(count == 0 ? "[]\n}\n" : "\n  ]\n}\n")
        case .table, .markdown:
            let markdown = format == .markdown
            let escaped = names.map { Escape.text($0, markdown: markdown) }
            let header = ["FROM", "TO", "PORT", "VERDICT", "RULES"]
            if markdown {
                try sink.write("Policy `\(digest)`\n\n")
                try sink.write(Self.markdownLine(header.map { $0.lowercased() }) + "\n")
                try sink.write(Self.markdownLine(header.map { _ in "---" }) + "\n")
            } else {
                try sink.write("policy \(digest)\n")
            }
            // Widths from what rows can hold, known before any row: bounded, one pass.
            let cap = Self.maximumColumnWidth
            let hasDestination = ports.map { !$0.isEmpty }
            let fromWidth = min(cap, escaped.map(\.count).max().map { max($0, header[0].count) } ?? header[0].count)
            let toWidth = min(cap, max(header[1].count, escaped.indices.filter { $0 < ports.count && hasDestination[$0] }
                .map { escaped[$0].count }.max() ?? 0))
            let portWidth = max(header[2].count, ports.joined().map { $0.description.count }.max() ?? 0)
            let verdictWidth = header[3].count
            if !markdown { try sink.write(Self.tableLine(header, [fromWidth, toWidth, portWidth, verdictWidth]) + "\n") }
            // A table row without rules ends at its verdict (no trailing spaces); a Markdown row
            // always has its five cells.
            let separator = markdown ? " | " : "  "
            let start = bytes(markdown ? "| " : "")
            let end = bytes(markdown ? " |\n" : "\n")
            let sources = escaped.map { bytes(Self.padded($0, markdown ? 0 : fromWidth) + separator) }
            let destinations = escaped.map { bytes(Self.padded($0, markdown ? 0 : toWidth) + separator) }
            let verdicts = Dictionary(uniqueKeysWithValues: Self.verdicts.map { ($0, bytes(Self.padded($0.rawValue, markdown ? 0 : verdictWidth) + separator)) })
            let lastVerdicts = Dictionary(uniqueKeysWithValues: Self.verdicts.map { ($0, bytes($0.rawValue + (markdown ? separator : ""))) })
            try walk { row in
                count += 1
                switch row.verdict {
                case .allow: allowed += 1
                case .deny: denied += 1
                case .audit: audited += 1
                }
                try sink.write(start)
                try sink.write(sources[row.source])
                try sink.write(destinations[row.destination])
                try sink.write(portCache.value(for: row.port) { bytes(Self.padded($0.description, markdown ? 0 : portWidth) + separator) })
                if row.rules.isEmpty {
                    try sink.write(lastVerdicts[row.verdict]!)
                } else {
                    try sink.write(verdicts[row.verdict]!)
                    try sink.write(rulesCache.value(for: row.rules) { bytes($0.map { Escape.text($0, markdown: markdown) }.joined(separator: ", ")) })
                }
                try sink.write(end)
            }
            let total = "\(count) flows: \(allowed) allow, \(denied) deny, \(audited) audit"
            try sink.write(markdown ? "\n\(total)\n" : "\(total)\n")
            let warnings = unenforced.map { attachment in
                "unenforced: \(Escape.text(attachment.container, markdown: markdown)) on \(Escape.text(attachment.network, markdown: markdown)) "
                    + "(\(Escape.text(attachment.reason, markdown: markdown))): zonegate does not filter this attachment"
            }
            if markdown, !warnings.isEmpty {
                try sink.write("\n" + warnings.map { "- " + $0 + "\n" }.joined())
            } else if !markdown {
                try sink.write(warnings.map { $0 + "\n" }.joined())
            }
        }
        try sink.flush()
        return count
    }

    private static let verdicts: [VerdictKind] = [.allow, .deny, .audit]

    /// `text` followed by spaces up to `width` characters (none when it is as long or longer).
    static func padded(_ text: String, _ width: Int) -> String {
        let length = text.count
        return length < width ? text + String(repeating: " ", count: width - length) : text
    }

    /// Cells already escaped for Markdown.
    static func markdownLine(_ cells: [String]) -> String {
        "| " + cells.joined(separator: " | ") + " |"
    }

    /// Cells padded to `widths` (the last column is not), two spaces apart, no trailing spaces.
    static func tableLine(_ cells: [String], _ widths: [Int]) -> String {
        var line = ""
        for (index, cell) in cells.enumerated() {
            if index > 0 { line += "  " }
            line += cell
            if index < widths.count, index < cells.count - 1 {
                let length = cell.count
                if length < widths[index] { line += String(repeating: " ", count: widths[index] - length) }
            }
        }
        return line.trimmingTrailingSpaces()
    }
}

/// A memo of rendered pieces (a list of rules, a port) that forgets everything once it holds
/// `limit` of them, so that it never grows with the rows.
struct BoundedCache<Key: Hashable, Value> {
    private var values: [Key: Value] = [:]
    private let limit = 4_096

    mutating func value(for key: Key, _ make: (Key) -> Value) -> Value {
        if let known = values[key] { return known }
        let value = make(key)
        if values.count >= limit { values.removeAll(keepingCapacity: true) }
        values[key] = value
        return value
    }
}
