// CYaml is the copy of libyaml that Yams builds and links. Yams composes nodes recursively and
// does not expose libyaml's event parser, which is iterative (an explicit state stack): this pass
// reads the events first, so that nesting, node and alias limits are enforced before Yams builds
// a node tree (whose composition, walk and deinit all recurse once per level). It goes away if
// Yams gains a depth limit and an event API.
import CYaml

/// The checks of one policy file's text made before it is composed into YAML nodes.
enum YAMLShape {
    /// A problem, 1-based line and column as an editor counts them (characters, not bytes).
    struct Problem: Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    /// nil when the text may be composed: only allowed characters, well-formed YAML, and within
    /// `PolicyLimits` for nesting, nodes, anchors and aliases.
    static func check(_ text: String) -> Problem? {
        if let problem = characterProblem(text) { return problem }
        var bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        return bytes.withUnsafeMutableBufferPointer { buffer in events(buffer) }
    }

    /// The characters libyaml refuses (YAML 1.1's printable set), located: libyaml reports them
    /// as a byte offset, which would read as 1:1.
    static func characterProblem(_ text: String) -> Problem? {
        var line = 1, column = 1
        var previous: Unicode.Scalar = " "
        for scalar in text.unicodeScalars {
            let value = scalar.value
            let allowed = value == 0x09 || value == 0x0A || value == 0x0D || (0x20...0x7E).contains(value) || value == 0x85
                || (0xA0...0xD7FF).contains(value) || (0xE000...0xFFFD).contains(value) || (0x10000...0x10FFFF).contains(value)
            if !allowed {
                let hex = String(value, radix: 16, uppercase: true)
                let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                return Problem(line: line, column: column,
                               message: "control character \(code) is not allowed in YAML; in a double-quoted string write it as \\u\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex)")
            }
            // Line breaks as libyaml counts them: LF, CR, CR LF (one break), NEL, LS, PS.
            switch scalar {
            case "\n" where previous == "\r": break
            case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}": line += 1; column = 1
            default: column += 1
            }
            previous = scalar
        }
        return nil
    }

    /// Where the first byte that is not UTF-8 is, counted as `characterProblem` counts.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (line: Int, column: Int) {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var line = 1, column = 1
        var previous: Unicode.Scalar = " "
        while case .valid(let encoded) = parser.parseScalar(from: &iterator) {
            let scalar = Unicode.UTF8.decode(encoded)
            switch scalar {
            case "\n" where previous == "\r": break
            case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}": line += 1; column = 1
            default: column += 1
            }
            previous = scalar
        }
        return (line, column)
    }

    /// Walks libyaml's events: nesting depth, nodes (aliases expanded), anchors and aliases.
    private static func events(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Problem? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return Problem(line: 1, column: 1, message: "out of memory reading YAML") }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)

        /// Expanded node count of each open collection, and its anchor.
        var open: [(nodes: Int, anchor: String?)] = []
        /// Expanded node count of each anchored node (as an alias repeats it).
        var anchored: [String: Int] = [:]
        var nodes = 0, anchors = 0, aliases = 0
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else { return syntaxProblem(parser) }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
            func problem(_ message: String) -> Problem { Problem(line: line, column: column, message: message) }
            var added = 0
            var anchor: UnsafeMutablePointer<yaml_char_t>?
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                anchor = event.type == YAML_SEQUENCE_START_EVENT ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                if open.count == PolicyLimits.nestingDepth {
                    return problem("nesting deeper than \(PolicyLimits.nestingDepth) levels (lists and mappings inside each other); see docs/limits.md")
                }
                if let anchor { anchors += 1; if anchors > PolicyLimits.anchorsPerFile { return problem(tooMany("anchors", PolicyLimits.anchorsPerFile)) } }
                open.append((1, anchor.map(string)))
                added = 1
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { return nil }
                if let name = closed.anchor { anchored[name] = closed.nodes }
                if !open.isEmpty { open[open.count - 1].nodes += closed.nodes }
                continue
            case YAML_SCALAR_EVENT:
                anchor = event.data.scalar.anchor
                if let anchor {
                    anchors += 1
                    if anchors > PolicyLimits.anchorsPerFile { return problem(tooMany("anchors", PolicyLimits.anchorsPerFile)) }
                    anchored[string(anchor)] = 1
                }
                added = 1
            case YAML_ALIAS_EVENT:
                aliases += 1
                if aliases > PolicyLimits.aliasesPerFile { return problem(tooMany("aliases", PolicyLimits.aliasesPerFile)) }
                let name = string(event.data.alias.anchor)
                guard let size = anchored[name] else {
                    return problem("alias *\(DisplayText.escaped(String(name.prefix(DisplayText.quotedCharacters)))) refers to no anchor defined before it (or to one that contains it)")
                }
                added = size
            default:
                continue
            }
            nodes += added
            if nodes > PolicyLimits.nodesPerFile {
                return problem("more than \(PolicyLimits.nodesPerFile) YAML nodes (an alias counts as every node it repeats); see docs/limits.md")
            }
            if !open.isEmpty, event.type == YAML_SCALAR_EVENT || event.type == YAML_ALIAS_EVENT { open[open.count - 1].nodes += added }
        }
    }

    private static func tooMany(_ what: String, _ limit: Int) -> String {
        "more than \(limit) YAML \(what) in one file; see docs/limits.md"
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>) -> String {
        String(decoding: UnsafeBufferPointer(start: pointer, count: strlen(pointer)), as: UTF8.self)
    }

    private static func strlen(_ pointer: UnsafeMutablePointer<yaml_char_t>) -> Int {
        var count = 0
        while pointer[count] != 0 { count += 1 }
        return count
    }

    /// libyaml's error, located at its mark, as one line.
    private static func syntaxProblem(_ parser: yaml_parser_t) -> Problem {
        let problem = parser.problem.map { String(cString: $0) } ?? "cannot read YAML"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return Problem(line: 1, column: 1, message: "out of memory reading YAML")
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            var message = "invalid YAML: \(problem)"
            if let context = parser.context.map({ String(cString: $0) }) {
                message += " (\(context) at \(parser.context_mark.line + 1):\(parser.context_mark.column + 1))"
            }
            return Problem(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1, message: message)
        default:
            // A reader error: characters were checked before, so only an encoding problem is left.
            return Problem(line: 1, column: 1, message: "invalid YAML: \(problem) at byte \(parser.problem_offset)")
        }
    }
}
