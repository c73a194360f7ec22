import ZonegatePolicy

extension Ruleset {
    /// The ruleset in nft's file syntax, close to what `nft list ruleset` prints.
    public var nftScript: String {
        tables.map(\.nftScript).joined(separator: "\n")
    }
}

extension Table {
    /// The table as an nft `table { ... }` block.
    public var nftScript: String {
        var lines = ["table \(family) \(name) {"]
        if flags & 1 != 0 { lines.append("\tflags dormant") }
        for set in sets {
            lines.append("\t\(set.dataType == .none ? "set" : "map") \(set.name) {")
            lines += NftValue.setBody(set).map { "\t\t" + $0 }
            if !set.elements.isEmpty {
                lines.append("\t\telements = { " + set.elements.map { NftValue.element($0, of: set) }.joined(separator: ",\n\t\t\t     ") + " }")
            }
            lines.append("\t}")
        }
        for chain in chains {
            lines.append("\tchain \(chain.name) {")
            if let hook = chain.hook { lines.append("\t\t" + NftValue.hook(hook)) }
            lines += chain.rules.map { "\t\t" + RuleRenderer(table: self).render($0) }
            lines.append("\t}")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}

/// Renders one operation as the nft command that would perform it.
enum NftCommand {
    /// `after` is the state with the operation applied, `before` without: a deleted
    /// object is rendered from `before`, an added one from `after`.
    static func render(_ operation: Operation, in after: Ruleset, before: Ruleset) -> String {
        switch operation {
        case .addTable(let id, _):
            return "add table \(id)"
        case .deleteTable(let id):
            return "delete table \(id)"
        case .addChain(let id, let name, let hook):
            return "add chain \(id) \(name)" + (hook.map { " { \(NftValue.hook($0)) }" } ?? "")
        case .flushChain(let id, let name):
            return "flush chain \(id) \(name)"
        case .deleteChain(let id, let name):
            return "delete chain \(id) \(name)"
        case .addRule(let id, let chain, let rule):
            let table = after.table(id.family, id.name) ?? Table(family: id.family, name: id.name)
            return "add rule \(id) \(chain) \(RuleRenderer(table: table).render(rule))"
        case .addSet(let id, let set):
            return "add \(set.dataType == .none ? "set" : "map") \(id) \(set.name) { \(NftValue.setBody(set).joined(separator: " ")) }"
        case .deleteSet(let id, let name):
            return "delete set \(id) \(name)"
        case .addElements(let id, let setName, let elements):
            return "add element \(id) \(setName) \(elementList(elements, of: after.table(id.family, id.name)?.set(setName)))"
        case .deleteElements(let id, let setName, let elements):
            return "delete element \(id) \(setName) \(elementList(elements, of: before.table(id.family, id.name)?.set(setName)))"
        case .flushSet(let id, let name):
            return "flush set \(id) \(name)"
        }
    }

    private static func elementList(_ elements: [SetElement], of set: NftSet?) -> String {
        guard let set else { return "{ \(elements.count) elements }" }
        return "{ " + set.normalized(elements).map { NftValue.element($0, of: set) }.joined(separator: ", ") + " }"
    }
}

/// Formats values the way nft prints them.
enum NftValue {
    static func hook(_ hook: BaseChainHook) -> String {
        "type \(hook.type) hook \(hook.hook) priority \(hook.priority); policy \(hook.policy);"
    }

    /// The lines inside a set block: type, flags, timeout, comment.
    static func setBody(_ set: NftSet) -> [String] {
        var type = set.keyType.map(\.name).joined(separator: " . ")
        switch set.dataType {
        case .none: break
        case .verdict: type += " : verdict"
        case .value(let field): type += " : \(field.name)"
        }
        var lines = ["type \(type);"]
        var flags: [String] = []
        if set.flags.contains(.constant) { flags.append("constant") }
        if set.flags.contains(.dynamic) { flags.append("dynamic") }
        if set.flags.contains(.interval) { flags.append("interval") }
        if set.flags.contains(.timeout) { flags.append("timeout") }
        if !flags.isEmpty { lines.append("flags \(flags.joined(separator: ","));") }
        if let timeout = set.timeout { lines.append("timeout \(timeout % 1000 == 0 ? "\(timeout / 1000)s" : "\(timeout)ms");") }
        if let comment = set.comment { lines.append("comment \(quoted(comment));") }
        return lines
    }

    /// `key [comment "..."] [: data]`, with ranges as prefixes or `a-b`.
    static func element(_ element: SetElement, of set: NftSet) -> String {
        var offset = 0
        let parts = set.keyType.map { field -> String in
            let range = offset..<max(offset, min(offset + Int(field.length), element.key.count))
            offset += Int(field.paddedLength)
            let low = Array(element.key[clamped: range])
            guard let end = element.keyEnd, Array(end[clamped: range]) != low else { return value(low, as: field) }
            let high = Array(end[clamped: range])
            if field == .ipv4Addr || field == .ipv6Addr, let first = IPAddress(bytes: low), let last = IPAddress(bytes: high),
               let prefix = CIDR(exactly: first, through: last) {
                return prefix.description
            }
            return "\(value(low, as: field))-\(value(high, as: field))"
        }
        var text = parts.joined(separator: " . ")
        // Before the data, where nft reads it (`10.0.0.1 comment "web" : accept`).
        if let comment = element.comment { text += " comment \(quoted(comment))" }
        switch element.data {
        case .verdict(let verdict)?: text += " : \(verdict)"
        case .value(let bytes)?:
            if case .value(let field) = set.dataType { text += " : \(value(bytes, as: field))" }
        case nil: break
        }
        return text
    }

    /// Bytes as the field's datatype prints them; hex when the type is unknown.
    static func value(_ bytes: [UInt8], as field: KeyField?) -> String {
        switch field {
        case .ipv4Addr?, .ipv6Addr?:
            return IPAddress(bytes: bytes)?.description ?? hex(bytes)
        case .inetService? where bytes.count == 2:
            return String(UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        case .inetProto? where bytes.count == 1:
            return protocolNames[bytes[0]] ?? String(bytes[0])
        case .ifname?:
            return quoted(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self))
        case .mark? where bytes.count == 4:
            // As nft prints a mark: eight hex digits.
            let digits = String(bytes.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }, radix: 16)
            return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
        default:
            return hex(bytes)
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    static func quoted(_ text: String) -> String { "\"\(text)\"" }

    static let protocolNames: [UInt8: String] = [1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"]
}

extension Array {
    subscript(clamped range: Range<Int>) -> ArraySlice<Element> {
        self[Swift.min(range.lowerBound, count)..<Swift.min(range.upperBound, count)]
    }
}
