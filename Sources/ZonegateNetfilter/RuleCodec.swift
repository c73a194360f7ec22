import CNftnl
import ZonegateRuleset

/// Encodes `Expression` values into libnftnl expressions and back. Each case
/// notes the nft syntax it usually stands for and the `nft --debug=netlink` line.
enum RuleCodec {
    /// An upper bound of a rule's encoded size: every expression is small except its data.
    static func encodedSizeBound(_ rule: Rule) -> Int {
        256 + (rule.comment?.utf8.count ?? 0) + rule.expressions.reduce(0) { total, expression in
            let data: Int = switch expression {
            case .cmp(_, _, let data), .immediate(_, let data): data.count
            case .bitwise(_, _, let mask, let xor): mask.count + xor.count
            case .range(_, _, let from, let to): from.count + to.count
            case .lookup(let set, _, _, _), .dynset(_, let set, _): set.utf8.count
            case .verdict(let verdict): verdict.targetChain?.utf8.count ?? 0
            case .log(let prefix, _, _): prefix?.utf8.count ?? 0
            default: 0
            }
            return total + 128 + data
        }
    }

    /// A new libnftnl expression; the caller hands it to a rule, which frees it.
    static func encode(_ expression: Expression, setID: UInt32?) throws(NetfilterError) -> OpaquePointer {
        let encoded = try cCall("nftnl_expr_alloc") { nftnl_expr_alloc(expression.netlinkName) }
        do {
            try fill(encoded, expression, setID: setID)
        } catch {
            nftnl_expr_free(encoded)
            throw error
        }
        return encoded
    }

    private static func fill(_ e: OpaquePointer, _ expression: Expression, setID: UInt32?) throws(NetfilterError) {
        switch expression {
        // ip saddr: [ payload load 4b @ network header + 12 => reg 1 ]
        case .payload(let base, let offset, let length, let dreg):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_DREG), dreg.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_BASE), base.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_PAYLOAD_LEN), length)
        // meta l4proto: [ meta load l4proto => reg 1 ]
        case .meta(let key, let dreg):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_KEY), key.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_DREG), dreg.rawValue)
        // meta mark set ...: [ meta set mark with reg 1 ]
        case .metaSet(let key, let sreg):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_KEY), key.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_META_SREG), sreg.rawValue)
        // update @grants { meta mark }: [ dynset update reg_key 1 set grants timeout 0ms ]
        case .dynset(let op, let set, let sreg):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_DYNSET_OP), op.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_DYNSET_SREG_KEY), sreg.rawValue)
            try cCall("nftnl_expr_set_str") { nftnl_expr_set_str(e, attr(NFTNL_EXPR_DYNSET_SET_NAME), set) }
            if let setID { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_DYNSET_SET_ID), setID) }
        // ct state: [ ct load state => reg 1 ]
        case .ct(let key, let dreg):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CT_KEY), key.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CT_DREG), dreg.rawValue)
        // ... == 0x06: [ cmp eq reg 1 0x00000006 ]
        case .cmp(let op, let sreg, let data):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CMP_SREG), sreg.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_CMP_OP), op.rawValue)
            try setBytes(e, attr(NFTNL_EXPR_CMP_DATA), data)
        // ct state established,related: [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
        case .bitwise(let sreg, let dreg, let mask, let xor):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_SREG), sreg.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_DREG), dreg.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count))
            try setBytes(e, attr(NFTNL_EXPR_BITWISE_MASK), mask)
            try setBytes(e, attr(NFTNL_EXPR_BITWISE_XOR), xor)
        // th dport 1000-2000: [ range eq reg 1 0x0000e803 0x0000d007 ]
        case .range(let op, let sreg, let from, let to):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_RANGE_SREG), sreg.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_RANGE_OP), op.rawValue)
            try setBytes(e, attr(NFTNL_EXPR_RANGE_FROM_DATA), from)
            try setBytes(e, attr(NFTNL_EXPR_RANGE_TO_DATA), to)
        // ip saddr . th dport @allow: [ lookup reg 1 set allow ]; vmap: [ lookup reg 1 set m dreg 0 ]
        case .lookup(let set, let sreg, let dreg, let invert):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_SREG), sreg.rawValue)
            if let dreg { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_DREG), dreg.rawValue) }
            try cCall("nftnl_expr_set_str") { nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOOKUP_SET), set) }
            if let setID { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_SET_ID), setID) }
            if invert { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOOKUP_FLAGS), UInt32(NFT_LOOKUP_F_INV.rawValue)) }
        // accept / jump chain: [ immediate reg 0 accept ]
        case .verdict(let verdict):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_IMM_DREG), Register.verdict.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_IMM_VERDICT), VerdictCode.encode(verdict))
            if let chain = verdict.targetChain {
                try cCall("nftnl_expr_set_str") { nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), chain) }
            }
        // a constant for a later expression: [ immediate reg 1 0x00000001 ]
        case .immediate(let dreg, let data):
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_IMM_DREG), dreg.rawValue)
            try setBytes(e, attr(NFTNL_EXPR_IMM_DATA), data)
        // counter: [ counter pkts 0 bytes 0 ]
        case .counter:
            break
        // log prefix "x" group 2: [ log prefix x group 2 ... ]
        case .log(let prefix, let group, let level):
            if let prefix { try cCall("nftnl_expr_set_str") { nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOG_PREFIX), prefix) } }
            if let group { nftnl_expr_set_u16(e, attr(NFTNL_EXPR_LOG_GROUP), group) }
            if let level { nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LOG_LEVEL), level.rawValue) }
        // limit rate 10/second burst 5 packets: [ limit rate 10/second burst 5 type packets flags 0x0 ]
        case .limit(let rate, let unit, let burst, let over):
            nftnl_expr_set_u64(e, attr(NFTNL_EXPR_LIMIT_RATE), rate)
            nftnl_expr_set_u64(e, attr(NFTNL_EXPR_LIMIT_UNIT), unit.rawValue)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LIMIT_BURST), burst)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LIMIT_TYPE), UInt32(NFT_LIMIT_PKTS.rawValue))
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_LIMIT_FLAGS), over ? UInt32(NFT_LIMIT_F_INV.rawValue) : 0)
        // reject with tcp reset: [ reject type 1 code 0 ]
        case .reject(let reject):
            let (type, code) = rejectFields(reject)
            nftnl_expr_set_u32(e, attr(NFTNL_EXPR_REJECT_TYPE), type)
            nftnl_expr_set_u8(e, attr(NFTNL_EXPR_REJECT_CODE), code)
        case .foreign(let name):
            throw .unencodable("expression \(name)")
        }
    }

    private static func rejectFields(_ reject: Reject) -> (type: UInt32, code: UInt8) {
        switch reject {
        case .icmpUnreachable(let code): (UInt32(NFT_REJECT_ICMP_UNREACH.rawValue), code)
        case .tcpReset: (UInt32(NFT_REJECT_TCP_RST.rawValue), 0)
        case .icmpx(let code): (UInt32(NFT_REJECT_ICMPX_UNREACH.rawValue), code.rawValue)
        }
    }

    private static func setBytes(_ e: OpaquePointer, _ attribute: UInt16, _ bytes: [UInt8]) throws(NetfilterError) {
        try cCall("nftnl_expr_set") { nftnl_expr_set(e, attribute, bytes, UInt32(bytes.count)) }
    }

    // MARK: - Decoding

    /// The rule in a `NEWRULE` dump message parsed into `rule`.
    static func decode(_ rule: OpaquePointer) throws(NetfilterError) -> Rule {
        let iterator = try cCall("nftnl_expr_iter_create") { nftnl_expr_iter_create(rule) }
        defer { nftnl_expr_iter_destroy(iterator) }
        var expressions: [Expression] = []
        while let expression = nftnl_expr_iter_next(iterator) {
            do {
                expressions.append(try decodeExpression(expression))
            } catch {
                expressions.append(.foreign(nftnl_expr_get_str(expression, attr(NFTNL_EXPR_NAME)).map { String(cString: $0) } ?? "?"))
            }
        }
        let comment = SetCodec.bytes(nftnl_rule_get_data, rule, attr(NFTNL_RULE_USERDATA)).flatMap {
            UserData.string(of: UserData.commentType, in: $0)
        }
        return Rule(expressions, comment: comment)
    }

    private static func decodeExpression(_ e: OpaquePointer) throws(NetfilterError) -> Expression {
        let name = nftnl_expr_get_str(e, attr(NFTNL_EXPR_NAME)).map { String(cString: $0) } ?? ""
        let u32 = { (attribute: Int) in nftnl_expr_get_u32(e, attr(attribute)) }
        let register = { (attribute: Int) in Register(rawValue: u32(attribute)) }
        let isSet = { (attribute: Int) in nftnl_expr_is_set(e, attr(attribute)) }
        func bytes(_ attribute: Int) -> [UInt8] { SetCodec.bytes(nftnl_expr_get, e, attr(attribute)) ?? [] }
        func string(_ attribute: Int) -> String? {
            isSet(attribute) ? nftnl_expr_get_str(e, attr(attribute)).map { String(cString: $0) } : nil
        }
        func value<Value: RawRepresentable>(_ type: Value.Type, _ attribute: Int) throws(NetfilterError) -> Value
        where Value.RawValue == UInt32 {
            guard let value = Value(rawValue: u32(attribute)) else { throw .malformedReply("\(name) attribute \(attribute)") }
            return value
        }

        switch name {
        case "payload":
            return .payload(
                base: try value(PayloadBase.self, NFTNL_EXPR_PAYLOAD_BASE), offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET),
                length: u32(NFTNL_EXPR_PAYLOAD_LEN), dreg: register(NFTNL_EXPR_PAYLOAD_DREG))
        case "meta" where isSet(NFTNL_EXPR_META_SREG):
            return .metaSet(key: try value(MetaKey.self, NFTNL_EXPR_META_KEY), sreg: register(NFTNL_EXPR_META_SREG))
        case "meta":
            return .meta(key: try value(MetaKey.self, NFTNL_EXPR_META_KEY), dreg: register(NFTNL_EXPR_META_DREG))
        case "dynset":
            // A per-rule timeout, data, flags (an inverted match), or expressions attached to the
            // element are not zonegate's.
            guard let set = string(NFTNL_EXPR_DYNSET_SET_NAME), !isSet(NFTNL_EXPR_DYNSET_SREG_DATA), u32(NFTNL_EXPR_DYNSET_FLAGS) == 0,
                  !isSet(NFTNL_EXPR_DYNSET_EXPR), !isSet(NFTNL_EXPR_DYNSET_EXPRESSIONS),
                  !isSet(NFTNL_EXPR_DYNSET_TIMEOUT) || nftnl_expr_get_u64(e, attr(NFTNL_EXPR_DYNSET_TIMEOUT)) == 0
            else { throw .malformedReply("dynset with data, expressions or its own timeout") }
            return .dynset(op: try value(DynsetOp.self, NFTNL_EXPR_DYNSET_OP), set: set, sreg: register(NFTNL_EXPR_DYNSET_SREG_KEY))
        case "ct":
            return .ct(key: try value(CtKey.self, NFTNL_EXPR_CT_KEY), dreg: register(NFTNL_EXPR_CT_DREG))
        case "cmp":
            return .cmp(op: try value(CmpOp.self, NFTNL_EXPR_CMP_OP), sreg: register(NFTNL_EXPR_CMP_SREG),
                        data: bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            return .bitwise(sreg: register(NFTNL_EXPR_BITWISE_SREG), dreg: register(NFTNL_EXPR_BITWISE_DREG),
                            mask: bytes(NFTNL_EXPR_BITWISE_MASK), xor: bytes(NFTNL_EXPR_BITWISE_XOR))
        case "range":
            return .range(op: try value(RangeOp.self, NFTNL_EXPR_RANGE_OP), sreg: register(NFTNL_EXPR_RANGE_SREG),
                          from: bytes(NFTNL_EXPR_RANGE_FROM_DATA), to: bytes(NFTNL_EXPR_RANGE_TO_DATA))
        case "lookup":
            guard let set = string(NFTNL_EXPR_LOOKUP_SET) else { throw .malformedReply("lookup without set") }
            return .lookup(
                set: set, sreg: register(NFTNL_EXPR_LOOKUP_SREG),
                dreg: isSet(NFTNL_EXPR_LOOKUP_DREG) ? register(NFTNL_EXPR_LOOKUP_DREG) : nil,
                invert: u32(NFTNL_EXPR_LOOKUP_FLAGS) & UInt32(NFT_LOOKUP_F_INV.rawValue) != 0)
        case "immediate" where isSet(NFTNL_EXPR_IMM_VERDICT):
            return .verdict(try VerdictCode.decode(u32(NFTNL_EXPR_IMM_VERDICT), chain: string(NFTNL_EXPR_IMM_CHAIN)))
        case "immediate":
            return .immediate(dreg: register(NFTNL_EXPR_IMM_DREG), data: bytes(NFTNL_EXPR_IMM_DATA))
        case "counter":
            return .counter
        case "log":
            return .log(
                prefix: string(NFTNL_EXPR_LOG_PREFIX),
                group: isSet(NFTNL_EXPR_LOG_GROUP) ? nftnl_expr_get_u16(e, attr(NFTNL_EXPR_LOG_GROUP)) : nil,
                level: isSet(NFTNL_EXPR_LOG_LEVEL) ? try value(LogLevel.self, NFTNL_EXPR_LOG_LEVEL) : nil)
        case "limit":
            guard let unit = LimitUnit(rawValue: nftnl_expr_get_u64(e, attr(NFTNL_EXPR_LIMIT_UNIT))) else {
                throw .malformedReply("limit unit")
            }
            return .limit(rate: nftnl_expr_get_u64(e, attr(NFTNL_EXPR_LIMIT_RATE)), unit: unit,
                          burst: u32(NFTNL_EXPR_LIMIT_BURST),
                          over: u32(NFTNL_EXPR_LIMIT_FLAGS) & UInt32(NFT_LIMIT_F_INV.rawValue) != 0)
        case "reject":
            let code = nftnl_expr_get_u8(e, attr(NFTNL_EXPR_REJECT_CODE))
            switch u32(NFTNL_EXPR_REJECT_TYPE) {
            case UInt32(NFT_REJECT_TCP_RST.rawValue): return .reject(.tcpReset)
            case UInt32(NFT_REJECT_ICMP_UNREACH.rawValue): return .reject(.icmpUnreachable(code: code))
            case UInt32(NFT_REJECT_ICMPX_UNREACH.rawValue):
                if let icmpx = Reject.ICMPxCode(rawValue: code) { return .reject(.icmpx(icmpx)) }
            default: break
            }
            throw .malformedReply("reject type")
        default:
            throw .malformedReply("expression \(name), which zonegate does not write")
        }
    }
}

extension Expression {
    /// `NFTA_EXPR_NAME`.
    var netlinkName: String {
        switch self {
        case .payload: "payload"
        case .meta, .metaSet: "meta"
        case .dynset: "dynset"
        case .ct: "ct"
        case .cmp: "cmp"
        case .bitwise: "bitwise"
        case .range: "range"
        case .lookup: "lookup"
        case .verdict, .immediate: "immediate"
        case .counter: "counter"
        case .log: "log"
        case .limit: "limit"
        case .reject: "reject"
        case .foreign(let name): name
        }
    }
}
