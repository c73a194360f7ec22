/// Renders a rule's expressions back into nft statements by following what each
/// register holds, as `nft list` does: a load followed by `cmp` prints as one match.
struct RuleRenderer {
    let table: Table

    /// What a load left in a register.
    private struct Loaded {
        var text: String
        var field: KeyField?
        var length: UInt32
        /// The mask of a preceding `bitwise`, for `ct state established,related`.
        var mask: [UInt8]?
    }

    func render(_ rule: Rule) -> String {
        var registers: [UInt32: Loaded] = [:]
        var statements: [String] = []
        for expression in rule.expressions {
            switch expression {
            // `ip saddr`, `th dport`, `@nh,96,32`: a header field into a register.
            case .payload(let base, let offset, let length, let dreg):
                registers[dreg.reg32Index] = payloadField(base: base, offset: offset, length: length)
            // `meta l4proto`, `iifname`, ...
            case .meta(let key, let dreg):
                registers[dreg.reg32Index] = metaField(key)
            // `meta mark set X`.
            case .metaSet(let key, let sreg):
                let loaded = registers[sreg.reg32Index]?.text ?? "\(sreg)"
                statements.append("\(metaField(key).text) set \(loaded)")
            // `ct state`, `ct status`, `ct mark`.
            case .ct(let key, let dreg):
                registers[dreg.reg32Index] = Loaded(text: "ct \(key.nftName)", field: key == .mark ? .mark : nil, length: 4)
            // `X value`, `X != value`; `ct state & mask != 0` reads as `ct state a,b`.
            case .cmp(let op, let sreg, let data):
                let loaded = registers[sreg.reg32Index] ?? Loaded(text: "\(sreg)", length: UInt32(data.count))
                statements.append(comparison(loaded, op: op, data: data))
            // `(X & mask) ^ xor` in the destination register.
            case .bitwise(let sreg, let dreg, let mask, let xor):
                var loaded = registers[sreg.reg32Index] ?? Loaded(text: "\(sreg)", length: UInt32(mask.count))
                if xor.allSatisfy({ $0 == 0 }) {
                    loaded.mask = mask
                } else {
                    loaded = Loaded(text: "(\(loaded.text) & \(NftValue.hex(mask))) ^ \(NftValue.hex(xor))", length: loaded.length)
                }
                registers[dreg.reg32Index] = loaded
            // `X a-b`, `X != a-b`.
            case .range(let op, let sreg, let from, let to):
                let loaded = registers[sreg.reg32Index] ?? Loaded(text: "\(sreg)", length: UInt32(from.count))
                let bounds = "\(NftValue.value(from, as: loaded.field))-\(NftValue.value(to, as: loaded.field))"
                statements.append("\(loaded.text) \(op == .neq ? "!= " : "")\(bounds)")
            // `X . Y @set`, `X . Y vmap @map`, or `X map @map` feeding a later match.
            case .lookup(let name, let sreg, let dreg, let invert):
                let key = concatenation(from: sreg, length: table.set(name)?.keyLength ?? 4, in: registers)
                switch dreg {
                case nil:
                    statements.append("\(key) \(invert ? "!= " : "")@\(name)")
                case .verdict?:
                    statements.append("\(key) vmap @\(name)")
                case let register?:
                    var field: KeyField?
                    if case .value(let valueField)? = table.set(name)?.dataType { field = valueField }
                    registers[register.reg32Index] = Loaded(text: "\(key) map @\(name)", field: field, length: field?.length ?? 4)
                }
            // `update @set { X }`.
            case .dynset(let op, let name, let sreg):
                let key = concatenation(from: sreg, length: table.set(name)?.keyLength ?? 4, in: registers)
                statements.append("\(op.nftName) @\(name) { \(key) }")
            // `accept`, `drop`, `jump chain`, ...
            case .verdict(let verdict):
                statements.append(verdict.description)
            // A constant in a register, shown as hex where a later match uses it.
            case .immediate(let dreg, let data):
                registers[dreg.reg32Index] = Loaded(text: NftValue.hex(data), length: UInt32(data.count))
            // `counter`.
            case .counter:
                statements.append("counter")
            // Not zonegate's: named, so that a drift report shows what was there.
            case .foreign(let name):
                statements.append("<\(name)>")
            // `log prefix "p" group 1` or `log prefix "p" level warn`.
            case .log(let prefix, let group, let level):
                var text = "log"
                if let prefix { text += " prefix \(NftValue.quoted(prefix))" }
                if let group { text += " group \(group)" }
                if let level { text += " level \(level)" }
                statements.append(text)
            // `limit rate [over] 10/second burst 5 packets`.
            case .limit(let rate, let unit, let burst, let over):
                statements.append("limit rate \(over ? "over " : "")\(rate)/\(unit) burst \(burst) packets")
            // `reject with tcp reset`, `reject with icmpx type admin-prohibited`, `reject with icmp type 3`.
            case .reject(let reject):
                statements.append(rejectStatement(reject))
            }
        }
        if let comment = rule.comment { statements.append("comment \(NftValue.quoted(comment))") }
        return statements.joined(separator: " ")
    }

    private func payloadField(base: PayloadBase, offset: UInt32, length: UInt32) -> Loaded {
        switch (base, offset, length) {
        case (.network, 12, 4): Loaded(text: "ip saddr", field: .ipv4Addr, length: 4)
        case (.network, 16, 4): Loaded(text: "ip daddr", field: .ipv4Addr, length: 4)
        case (.network, 8, 16): Loaded(text: "ip6 saddr", field: .ipv6Addr, length: 16)
        case (.network, 24, 16): Loaded(text: "ip6 daddr", field: .ipv6Addr, length: 16)
        case (.transport, 0, 2): Loaded(text: "th sport", field: .inetService, length: 2)
        case (.transport, 2, 2): Loaded(text: "th dport", field: .inetService, length: 2)
        default:
            Loaded(text: "@\(["ll", "nh", "th"][Int(base.rawValue)]),\(offset * 8),\(length * 8)", length: length)
        }
    }

    private func metaField(_ key: MetaKey) -> Loaded {
        switch key {
        case .l4proto: Loaded(text: "meta l4proto", field: .inetProto, length: 1)
        case .iifname, .oifname: Loaded(text: key.nftName, field: .ifname, length: 16)
        case .mark: Loaded(text: "meta mark", field: .mark, length: 4)
        case .nfproto: Loaded(text: "meta nfproto", length: 1)
        case .protocol_: Loaded(text: "meta protocol", length: 2)
        case .iif, .oif, .skuid: Loaded(text: "meta \(key.nftName)", length: 4)
        }
    }

    /// The registers a concatenated key of `length` bytes occupies, from `sreg` on.
    private func concatenation(from sreg: Register, length: UInt32, in registers: [UInt32: Loaded]) -> String {
        var parts: [String] = []
        var word = sreg.reg32Index
        while word < sreg.reg32Index + (length + 3) / 4 {
            guard let loaded = registers[word] else { parts.append("reg32 \(word)"); word += 1; continue }
            parts.append(loaded.text)
            word += max(1, (loaded.length + 3) / 4)
        }
        return parts.joined(separator: " . ")
    }

    private func comparison(_ loaded: Loaded, op: CmpOp, data: [UInt8]) -> String {
        if let mask = loaded.mask {
            if loaded.text == "ct state", op == .neq, data.allSatisfy({ $0 == 0 }) {
                return "ct state \(ctStateNames(mask))"
            }
            return "\(loaded.text) & \(NftValue.hex(mask)) \(op.nftSymbol) \(NftValue.hex(data))"
        }
        let value = switch loaded.text {
        case "meta nfproto" where data.count == 1: [2: "ipv4", 10: "ipv6"][data[0]] ?? String(data[0])
        // A user id, in host order.
        case "meta skuid" where data.count == 4: String(data.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        default: NftValue.value(data, as: loaded.field)
        }
        return op == .eq ? "\(loaded.text) \(value)" : "\(loaded.text) \(op.nftSymbol) \(value)"
    }

    /// `ct state` bits (`NF_CT_STATE_*_BIT`, host order) as nft names them.
    private func ctStateNames(_ mask: [UInt8]) -> String {
        let bits = mask.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let names: [(UInt32, String)] = [(1, "invalid"), (2, "established"), (4, "related"), (8, "new"), (64, "untracked")]
        return names.filter { bits & $0.0 != 0 }.map(\.1).joined(separator: ",")
    }

    private func rejectStatement(_ reject: Reject) -> String {
        switch reject {
        case .tcpReset:
            "reject with tcp reset"
        case .icmpx(let code):
            "reject with icmpx type \(code.nftName)"
        case .icmpUnreachable(let code):
            "reject with \(table.family == .ip6 ? "icmpv6" : "icmp") type \(code)"
        }
    }
}
