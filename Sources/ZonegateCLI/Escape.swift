import ZonegatePolicy

/// Text from outside (container names, labels, rule names, file names, messages that quote
/// them) made safe to print for people. A name may hold a newline, a carriage return or a
/// terminal escape: printed raw into a table it could forge rows, move the cursor or recolour the
/// screen. Every renderer for people (table, Markdown, check's lines, explain's reasons, error
/// lines) passes such text through `Escape.text`; JSON output escapes by itself
/// (`JSONText.quoted`).
enum Escape {
    /// Control, format (bidirectional overrides, zero-width), line and paragraph separator
    /// characters as `\n`, `\r`, `\t` or `\u{1b}` (`DisplayText.escaped`, the policy's own error
    /// messages use the same, so text escaped there is not escaped twice); in Markdown also
    /// `\|` (a table cell's end) and `` \` `` (code spans).
    static func text(_ text: String, markdown: Bool = false) -> String {
        let escaped = DisplayText.escaped(text)
        guard markdown, escaped.contains(where: { $0 == "|" || $0 == "`" }) else { return escaped }
        var result = ""
        result.reserveCapacity(escaped.utf8.count + 4)
        for character in escaped {
            if character == "|" || character == "`" { result.append("\\") }
            result.append(character)
        }
        return result
    }

    /// One line: the same escapes, so a newline in a message or a file name cannot split an
    /// error line.
    static func line(_ text: String) -> String { Escape.text(text) }
}
