import Foundation
import Logging
import ZonegatePolicy

/// How `zonegate run` writes its log: `text` for people, `json` for collectors (one object a line).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// A swift-log handler that writes one line per event to standard error, as text
/// (`2026-12-01T18:00:00.000Z info ready containers=3 digest=sha256:…`) or as one JSON object
/// (`{"time":…,"level":"info","message":"ready","containers":3,…}`). Metadata is typed: a value
/// logged as `.stringConvertible` of an integer, a floating-point number or a Bool is a JSON
/// number or boolean (see `Logger.MetadataValue.number`), `.array` a JSON array, the rest strings.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let format: LogFormat
    private let write: @Sendable (String) -> Void

    /// `write` receives each finished line, newline included; standard error by default.
    public init(format: LogFormat, write: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) {
        self.format = format
        self.write = write
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        write(Self.line(time: Date(), level: event.level, message: "\(event.message)", metadata: merged, format: format))
    }

    /// One rendered line; keys in sorted order so that lines are stable and diffable.
    static func line(time: Date, level: Logger.Level, message: String, metadata: Logger.Metadata, format: LogFormat) -> String {
        let timestamp = timeStyle.format(time)
        let keys = metadata.keys.sorted()
        switch format {
        case .json:
            var fields = ["\"time\":\(JSONText.quoted(timestamp))", "\"level\":\(JSONText.quoted(level.rawValue))", "\"message\":\(JSONText.quoted(message))"]
            fields += keys.filter { !["time", "level", "message"].contains($0) }.map { "\(JSONText.quoted($0)):\(json(metadata[$0]!))" }
            return "{" + fields.joined(separator: ",") + "}\n"
        case .text:
            let pairs = keys.map { "\($0)=\(text(metadata[$0]!))" }
            return ([timestamp, level.rawValue, message] + pairs).joined(separator: " ") + "\n"
        }
    }

    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): return JSONText.quoted(string)
        case .stringConvertible(let convertible): return typedJSON(convertible) ?? JSONText.quoted(convertible.description)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            return "{" + values.keys.sorted().map { "\(JSONText.quoted($0)):\(json(values[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// Numbers and booleans carried by `.stringConvertible` as JSON numbers and booleans, so that
    /// log pipelines can compare and sum them; nil for anything else (written as a string).
    /// A non-finite floating-point value has no JSON number: it stays a string.
    private static func typedJSON(_ value: any CustomStringConvertible & Sendable) -> String? {
        switch value {
        case let flag as Bool: return flag ? "true" : "false"
        case let integer as any BinaryInteger: return "\(integer)"
        case let number as Double: return number.isFinite ? "\(number)" : nil
        case let number as Float: return number.isFinite ? "\(number)" : nil
        default: return nil
        }
    }

    /// Text values are quoted only when they hold spaces, quotes or line breaks.
    private static func text(_ value: Logger.Metadata.Value) -> String {
        let plain: String
        switch value {
        case .string(let string): plain = string
        case .stringConvertible(let convertible): plain = convertible.description
        case .array(let values): plain = "[" + values.map(text).joined(separator: ",") + "]"
        case .dictionary(let values): plain = "{" + values.keys.sorted().map { "\($0)=\(text(values[$0]!))" }.joined(separator: ",") + "}"
        }
        return plain.contains(where: { $0 == " " || $0 == "\"" || $0.isNewline }) ? JSONText.quoted(plain) : plain
    }
}

extension Logger.MetadataValue {
    /// An integer, written as a JSON number.
    public static func number(_ value: Int) -> Self { .stringConvertible(value) }
    /// A floating-point number, written as a JSON number (a string if it is not finite).
    public static func number(_ value: Double) -> Self { .stringConvertible(value) }
    /// A boolean, written as JSON `true` or `false`.
    public static func flag(_ value: Bool) -> Self { .stringConvertible(value) }
    /// A duration in milliseconds with two decimals, written as a JSON number (`"duration_ms":17.79`).
    public static func milliseconds(_ duration: Duration) -> Self {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return .stringConvertible((value * 100).rounded() / 100)
    }
    /// A list of strings, written as a JSON array.
    public static func list(_ values: some Sequence<some CustomStringConvertible>) -> Self { .array(values.map { .string($0.description) }) }
}
