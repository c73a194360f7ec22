/// A JSON value with the line and column where it starts, as read by `JSONReader`.
public struct JSONNode: Sendable {
    public enum Value: Sendable {
        /// Members in file order; duplicate keys are refused by the reader.
        case object([(key: String, keyLine: Int, keyColumn: Int, value: JSONNode)])
        case array([JSONNode])
        case string(String)
        /// The number's text as written (it is valid JSON number syntax).
        case number(String)
        case bool(Bool)
        case null
    }

    public var value: Value
    public var line: Int
    public var column: Int

    public init(value: Value, line: Int, column: Int) {
        self.value = value
        self.line = line
        self.column = column
    }

    /// "an object", "a string", ... for error messages.
    public var kind: String {
        switch value {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A strict JSON (RFC 8259) reader that keeps positions, refuses duplicate keys, and bounds
/// nesting. Iterative (an explicit stack), so no input can exhaust the call stack; Foundation's
/// decoders report no line and column for a wrong type or an unknown key, and accept duplicates.
public enum JSONReader {
    /// Where and why the text is not acceptable JSON.
    public struct SyntaxError: Error, Equatable, Sendable {
        public var line: Int
        public var column: Int
        public var message: String
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int) throws(SyntaxError) -> JSONNode {
        try bytes.withUnsafeBufferPointer { (buffer) throws(SyntaxError) -> JSONNode in
            var scanner = Scanner(bytes: buffer)
            return try scanner.document(maxDepth: maxDepth)
        }
    }

    private struct Frame {
        var line: Int, column: Int
        var isObject: Bool
        var members: [(key: String, keyLine: Int, keyColumn: Int, value: JSONNode)] = []
        var elements: [JSONNode] = []
        var keys: Set<String> = []
        /// The key waiting for its value (objects only).
        var pendingKey: (key: String, line: Int, column: Int)?
    }

    private struct Scanner {
        /// The text, borrowed for the parse (no reference counting per byte read).
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var line = 1
        var column = 1

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
            // A UTF-8 byte order mark is not JSON, but editors write it: skipped.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        func fail(_ message: String) -> SyntaxError { SyntaxError(line: line, column: column, message: message) }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func advance() {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if bytes[index] & 0xC0 != 0x80 {
                column += 1 // columns count characters: continuation bytes do not move it
            }
            index += 1
        }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { advance() }
        }

        mutating func document(maxDepth: Int) throws(SyntaxError) -> JSONNode {
            var stack: [Frame] = []
            var finished: JSONNode?
            while true {
                skipWhitespace()
                let startLine = line, startColumn = column
                // In an object, a key and ':' come before each value.
                let top = stack.count - 1
                if top >= 0, stack[top].isObject, stack[top].pendingKey == nil {
                    if current == UInt8(ascii: "}") && stack[top].members.isEmpty {
                        advance()
                        let frame = stack.removeLast()
                        finished = JSONNode(value: .object([]), line: frame.line, column: frame.column)
                    } else {
                        guard current == UInt8(ascii: "\"") else { throw fail(current == nil ? "unexpected end of the file; an object is not closed" : "expected a key (a string in double quotes)") }
                        let key = try string()
                        guard stack[top].keys.insert(key).inserted else {
                            throw SyntaxError(line: startLine, column: startColumn, message: "duplicate key \(DisplayText.quoted(key))")
                        }
                        skipWhitespace()
                        guard current == UInt8(ascii: ":") else { throw fail("expected ':' after the key") }
                        advance()
                        stack[top].pendingKey = (key, startLine, startColumn)
                        continue
                    }
                } else if let frame = stack.last, !frame.isObject, frame.elements.isEmpty, current == UInt8(ascii: "]") {
                    advance()
                    stack.removeLast()
                    finished = JSONNode(value: .array([]), line: frame.line, column: frame.column)
                } else {
                    switch current {
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        if stack.count == maxDepth { throw fail("nesting deeper than \(maxDepth) levels (arrays and objects inside each other)") }
                        stack.append(Frame(line: line, column: column, isObject: current == UInt8(ascii: "{")))
                        advance()
                        continue
                    case UInt8(ascii: "\""):
                        finished = JSONNode(value: .string(try string()), line: startLine, column: startColumn)
                    case UInt8(ascii: "t"): try literal("true"); finished = JSONNode(value: .bool(true), line: startLine, column: startColumn)
                    case UInt8(ascii: "f"): try literal("false"); finished = JSONNode(value: .bool(false), line: startLine, column: startColumn)
                    case UInt8(ascii: "n"): try literal("null"); finished = JSONNode(value: .null, line: startLine, column: startColumn)
                    case .some(UInt8(ascii: "-")), .some(UInt8(ascii: "0")...UInt8(ascii: "9")):
                        finished = JSONNode(value: .number(try number()), line: startLine, column: startColumn)
                    case nil: throw fail(stack.isEmpty ? "the file is empty; expected a JSON object" : "unexpected end of the file")
                    default: throw fail("expected a JSON value")
                    }
                }
                // A value is complete: hand it to its container, closing containers as they end.
                while let value = finished {
                    guard !stack.isEmpty else {
                        skipWhitespace()
                        guard current == nil else { throw fail("unexpected text after the JSON value") }
                        return value
                    }
                    if let key = stack[stack.count - 1].pendingKey {
                        stack[stack.count - 1].members.append((key.key, key.line, key.column, value))
                        stack[stack.count - 1].pendingKey = nil
                    } else {
                        stack[stack.count - 1].elements.append(value)
                    }
                    finished = nil
                    skipWhitespace()
                    let isObject = stack[stack.count - 1].isObject
                    let close = UInt8(ascii: isObject ? "}" : "]")
                    if current == UInt8(ascii: ",") {
                        advance()
                    } else if current == close {
                        advance()
                        let frame = stack.removeLast()
                        finished = JSONNode(value: isObject ? .object(frame.members) : .array(frame.elements), line: frame.line, column: frame.column)
                    } else {
                        throw fail(current == nil ? "unexpected end of the file; \(isObject ? "an object" : "an array") is not closed"
                                                  : "expected ',' or '\(Character(UnicodeScalar(close)))'")
                    }
                }
            }
        }

        static let simpleEscapes: [UInt8: UInt8] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08, 0x66: 0x0C, 0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09]

        mutating func literal(_ word: String) throws(SyntaxError) {
            for byte in word.utf8 {
                guard current == byte else { throw fail("expected a JSON value") }
                advance()
            }
        }

        mutating func number() throws(SyntaxError) -> String {
            let start = index
            func digits(_ scanner: inout Scanner) -> Int {
                var count = 0
                while let byte = scanner.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { scanner.advance(); count += 1 }
                return count
            }
            if current == UInt8(ascii: "-") { advance() }
            if current == UInt8(ascii: "0") { advance() } else if digits(&self) == 0 { throw fail("invalid number") }
            if current == UInt8(ascii: ".") { advance(); guard digits(&self) > 0 else { throw fail("invalid number") } }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                advance()
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { advance() }
                guard digits(&self) > 0 else { throw fail("invalid number") }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// A string literal, the scanner on its opening quote.
        mutating func string() throws(SyntaxError) -> String {
            advance()
            var result: [UInt8] = []
            while true {
                guard let byte = current else { throw fail("unexpected end of the file in a string") }
                switch byte {
                case UInt8(ascii: "\""):
                    advance()
                    guard let text = String(validating: result, as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    advance()
                    guard let escape = current else { throw fail("unexpected end of the file in a string") }
                    if let replacement = Self.simpleEscapes[escape] {
                        result.append(replacement)
                        advance()
                    } else if escape == UInt8(ascii: "u") {
                        advance()
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard current == UInt8(ascii: "\\") else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                            advance()
                            guard current == UInt8(ascii: "u") else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                            advance()
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw fail("a lone UTF-16 surrogate in a \\u escape")
                        }
                        result += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
                    } else {
                        throw fail("invalid escape in a string")
                    }
                case 0..<0x20:
                    throw fail("a control character in a string; write it as an escape such as \\n or \\u0000")
                default:
                    // A run of plain bytes at once: no line break can be among them.
                    let start = index
                    while index < bytes.count {
                        let plain = bytes[index]
                        if plain == UInt8(ascii: "\"") || plain == UInt8(ascii: "\\") || plain < 0x20 { break }
                        if plain & 0xC0 != 0x80 { column += 1 }
                        index += 1
                    }
                    result.append(contentsOf: bytes[start..<index])
                }
            }
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = current, let digit = hexValue(byte) else { throw fail("invalid \\u escape; expected 4 hex digits") }
                value = value << 4 | digit
                advance()
            }
            return value
        }

        func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
    }
}
