import ZonegatePolicy
/// A JSON document whose object keys keep the order they are written in, so output follows
/// cli.md field for field.
public indirect enum JSONValue: Hashable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Int)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered() == b.rendered() }
    public func hash(into hasher: inout Hasher) { hasher.combine(rendered()) }

    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    /// Pretty-printed with two-space indentation; short lists of scalars, and nested objects of
    /// scalars (one matrix flow), stay on one line.
    public func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent)
        let inner = String(repeating: "  ", count: indent + 1)
        switch self {
        case .object(let fields) where fields.isEmpty: return "{}"
        case .object(let fields) where indent > 0 && isFlat:
            return "{ " + fields.map { "\(JSONText.quoted($0.0)): \($0.1.rendered())" }.joined(separator: ", ") + " }"
        case .object(let fields):
            return "{\n" + fields.map { "\(inner)\(JSONText.quoted($0.0)): \($0.1.rendered(indent: indent + 1))" }
                .joined(separator: ",\n") + "\n\(pad)}"
        case .array(let items) where items.isEmpty: return "[]"
        case .array(let items) where items.allSatisfy(\.isScalar) && items.map({ $0.rendered() }).joined().count <= 100:
            return "[" + items.map { $0.rendered() }.joined(separator: ", ") + "]"
        case .array(let items):
            return "[\n" + items.map { inner + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n\(pad)]"
        case .string(let text): return JSONText.quoted(text)
        case .number(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    private var isScalar: Bool {
        switch self {
        case .object, .array: return false
        default: return true
        }
    }

    /// An object of scalars and lists of scalars: one matrix flow, say.
    private var isFlat: Bool {
        guard case .object(let fields) = self else { return false }
        return fields.allSatisfy { field in
            if case .array(let items) = field.1 { return items.allSatisfy(\.isScalar) }
            return field.1.isScalar
        }
    }
}
