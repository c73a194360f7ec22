/// A place in a policy file, as a user's editor counts it (1-based line and column).
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The file name escaped (a newline or control character in it cannot split an error line).
    public var description: String { "\(DisplayText.escaped(file)):\(line):\(column)" }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// One problem found in a policy, with where it is and what was expected instead.
public struct PolicyDiagnostic: Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// One line, always: messages quote input with `DisplayText.quoted`.
    public var description: String { "\(location): error: \(DisplayText.escaped(message))" }
}

/// A rejected policy: every problem found, in file and line order. Nothing of it is enforced.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]

    public init(_ diagnostics: [PolicyDiagnostic]) {
        self.diagnostics = diagnostics.sorted { $0.location < $1.location }
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// Input shown in an error or a table: escaped so that it stays on one line and cannot carry
/// terminal escapes, and shortened so that a huge value does not swamp the message.
public enum DisplayText {
    /// The longest piece of input a message quotes, in characters; longer ones end in "…".
    public static let quotedCharacters = 64

    /// `text` in single quotes, escaped, at most `quotedCharacters` characters of it.
    public static func quoted(_ text: String) -> String {
        var shown = ""
        var count = 0
        for character in text {
            if count == quotedCharacters { return "'" + shown + "…'" }
            shown += escaped(String(character))
            count += 1
        }
        return "'" + shown + "'"
    }

    /// Control, format (bidirectional overrides, zero-width), line and paragraph separator and
    /// unassigned characters as `\n`, `\t`, `\r` or `\u{…}`; everything else as it is.
    public static func escaped(_ text: String) -> String {
        // Fast path: printable ASCII (most names, locations and messages) needs no escape and is
        // returned as it is, without a Unicode property lookup per character or an allocation.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where needsEscape(scalar): result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A file name's bytes as text: valid UTF-8 as it is, any other byte as `\xNN`.
    public static func fileName(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return escaped(text) }
        var result = ""
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                result += escaped(String(Unicode.UTF8.decode(encoded)))
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<offset + length] {
                    let hex = String(byte, radix: 16, uppercase: true)
                    result += "\\x" + (hex.count == 1 ? "0" : "") + hex
                }
                offset += length
            case .emptyInput:
                return result
            }
        }
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .unassigned, .surrogate, .privateUse: return true
        default: return false
        }
    }
}
