import CNftnl

/// Checks an nf_tables dump message against what libnftnl's parsers (1.2) assume before it is
/// handed to them. libnftnl trusts the kernel: each parser's `*_cb` calls `mnl_attr_validate` on
/// the attributes it knows and, on a wrong length, prints "nf_tables kernel ABI is broken" and
/// calls `exit(1)`; `nftnl_expr_parse` hands a missing expression name to `strcmp`, a verdict
/// without its code or jump target is read from an uninitialised table, a set's concatenation may
/// have more fields than its table holds. One malformed reply would end `run`
/// (Fuzz/crashes/fuzz-nft-readback, docs/fuzzing.md). These checks mirror exactly those `*_cb`
/// checks (src/table.c, chain.c, set.c, set_elem.c, rule.c, expr.c, expr/data_reg.c and the
/// expressions zonegate decodes, expr/*.c), recursively into nested attributes, and refuse any
/// other expression name (its parser's assumptions are not checked here).
enum NetlinkAttributeCheck {
    /// An attribute's type as `mnl_attr_validate` checks it (libmnl's `__mnl_attr_validate`).
    enum Kind: Sendable {
        case u8, u16, u32, u64, string, binary, nested
        /// `nftnl_parse_data` on an attribute first validated as `outer`: NFTA_DATA_VALUE, or a verdict.
        indirect case data(Kind)
        /// `nftnl_expr_parse` on one nested expression.
        case expression
        /// A list of `NFTA_LIST_ELEM` expressions, validated as `outer` first (nil: not validated).
        indirect case expressions(Kind?)
        /// A nested attribute parsed with a policy of its own.
        indirect case nestedPolicy([Int: Kind])
        /// `NFTA_SET_DESC`: its size, and concatenation fields libnftnl counts into a fixed table.
        case setDescription
        /// `NFTA_SET_ELEM_LIST_ELEMENTS`.
        case elements
    }

    /// What `mnl_attr_validate(attr, type)` accepts: exact lengths for integers, a non-empty
    /// string (libnftnl then reads it as a C string: `NetlinkMessage.withHeader` ends it), an empty
    /// nest or one holding at least one header.
    static func lengthIsValid(_ payload: ArraySlice<UInt8>, _ kind: Kind) -> Bool {
        switch kind {
        case .u8: payload.count == 1
        case .u16: payload.count == 2
        case .u32: payload.count == 4
        case .u64: payload.count == 8
        case .string: !payload.isEmpty
        case .binary, .expressions(nil): true
        case .data(let outer), .expressions(let outer?): lengthIsValid(payload, outer)
        case .nested, .expression, .nestedPolicy, .setDescription, .elements: payload.isEmpty || payload.count >= 4
        }
    }

    private static func id<Attribute: RawRepresentable>(_ attribute: Attribute) -> Int where Attribute.RawValue == UInt32 {
        Int(attribute.rawValue)
    }

    // MARK: - Policies, one per libnftnl `*_cb`

    static let table: [Int: Kind] = [
        id(NFTA_TABLE_NAME): .string, id(NFTA_TABLE_HANDLE): .u64, id(NFTA_TABLE_FLAGS): .u32,
        id(NFTA_TABLE_USE): .u32, id(NFTA_TABLE_OWNER): .u32, id(NFTA_TABLE_USERDATA): .binary,
    ]

    static let chain: [Int: Kind] = [
        id(NFTA_CHAIN_NAME): .string, id(NFTA_CHAIN_TABLE): .string, id(NFTA_CHAIN_TYPE): .string,
        id(NFTA_CHAIN_HOOK): .nestedPolicy([
            id(NFTA_HOOK_HOOKNUM): .u32, id(NFTA_HOOK_PRIORITY): .u32, id(NFTA_HOOK_DEV): .string,
        ]),
        id(NFTA_CHAIN_COUNTERS): .nestedPolicy([id(NFTA_COUNTER_BYTES): .u64, id(NFTA_COUNTER_PACKETS): .u64]),
        id(NFTA_CHAIN_POLICY): .u32, id(NFTA_CHAIN_USE): .u32, id(NFTA_CHAIN_FLAGS): .u32, id(NFTA_CHAIN_ID): .u32,
        id(NFTA_CHAIN_HANDLE): .u64, id(NFTA_CHAIN_USERDATA): .binary,
    ]

    static let set: [Int: Kind] = [
        id(NFTA_SET_TABLE): .string, id(NFTA_SET_NAME): .string, id(NFTA_SET_HANDLE): .u64,
        id(NFTA_SET_FLAGS): .u32, id(NFTA_SET_KEY_TYPE): .u32, id(NFTA_SET_KEY_LEN): .u32,
        id(NFTA_SET_DATA_TYPE): .u32, id(NFTA_SET_DATA_LEN): .u32, id(NFTA_SET_ID): .u32,
        id(NFTA_SET_POLICY): .u32, id(NFTA_SET_GC_INTERVAL): .u32, id(NFTA_SET_USERDATA): .binary,
        id(NFTA_SET_TIMEOUT): .u64, id(NFTA_SET_DESC): .setDescription, id(NFTA_SET_EXPR): .expression,
        id(NFTA_SET_EXPRESSIONS): .expressions(.nested),
    ]

    static let elementList: [Int: Kind] = [
        id(NFTA_SET_ELEM_LIST_TABLE): .string, id(NFTA_SET_ELEM_LIST_SET): .string,
        id(NFTA_SET_ELEM_LIST_ELEMENTS): .elements,
    ]

    static let element: [Int: Kind] = [
        id(NFTA_SET_ELEM_FLAGS): .u32, id(NFTA_SET_ELEM_TIMEOUT): .u64, id(NFTA_SET_ELEM_EXPIRATION): .u64,
        id(NFTA_SET_ELEM_KEY): .data(.nested), id(NFTA_SET_ELEM_KEY_END): .data(.nested),
        id(NFTA_SET_ELEM_DATA): .data(.nested), id(NFTA_SET_ELEM_EXPR): .expression,
        id(NFTA_SET_ELEM_EXPRESSIONS): .expressions(.nested), id(NFTA_SET_ELEM_USERDATA): .binary,
    ]

    static let rule: [Int: Kind] = [
        id(NFTA_RULE_TABLE): .string, id(NFTA_RULE_CHAIN): .string, id(NFTA_RULE_HANDLE): .u64,
        id(NFTA_RULE_COMPAT): .nestedPolicy([id(NFTA_RULE_COMPAT_PROTO): .u32, id(NFTA_RULE_COMPAT_FLAGS): .u32]),
        id(NFTA_RULE_POSITION): .u64, id(NFTA_RULE_USERDATA): .binary, id(NFTA_RULE_ID): .u32,
        id(NFTA_RULE_POSITION_ID): .u32,
        // Not validated by libnftnl's rule callback, walked by nftnl_rule_parse_expr.
        id(NFTA_RULE_EXPRESSIONS): .expressions(nil),
    ]

    /// `NFTA_EXPR_DATA` of each expression zonegate decodes (RuleCodec), by `NFTA_EXPR_NAME`.
    static let expressionData: [String: [Int: Kind]] = [
        "payload": [
            id(NFTA_PAYLOAD_SREG): .u32, id(NFTA_PAYLOAD_DREG): .u32, id(NFTA_PAYLOAD_BASE): .u32,
            id(NFTA_PAYLOAD_OFFSET): .u32, id(NFTA_PAYLOAD_LEN): .u32, id(NFTA_PAYLOAD_CSUM_TYPE): .u32,
            id(NFTA_PAYLOAD_CSUM_OFFSET): .u32, id(NFTA_PAYLOAD_CSUM_FLAGS): .u32,
        ],
        "meta": [id(NFTA_META_KEY): .u32, id(NFTA_META_DREG): .u32, id(NFTA_META_SREG): .u32],
        "dynset": [
            id(NFTA_DYNSET_SREG_KEY): .u32, id(NFTA_DYNSET_SREG_DATA): .u32, id(NFTA_DYNSET_SET_ID): .u32,
            id(NFTA_DYNSET_OP): .u32, id(NFTA_DYNSET_FLAGS): .u32, id(NFTA_DYNSET_TIMEOUT): .u64,
            id(NFTA_DYNSET_SET_NAME): .string, id(NFTA_DYNSET_EXPR): .expression,
            id(NFTA_DYNSET_EXPRESSIONS): .expressions(nil),
        ],
        "ct": [id(NFTA_CT_KEY): .u32, id(NFTA_CT_DREG): .u32, id(NFTA_CT_SREG): .u32, id(NFTA_CT_DIRECTION): .u8],
        "cmp": [id(NFTA_CMP_SREG): .u32, id(NFTA_CMP_OP): .u32, id(NFTA_CMP_DATA): .data(.binary)],
        "bitwise": [
            id(NFTA_BITWISE_SREG): .u32, id(NFTA_BITWISE_DREG): .u32, id(NFTA_BITWISE_OP): .u32,
            id(NFTA_BITWISE_LEN): .u32, id(NFTA_BITWISE_MASK): .data(.binary), id(NFTA_BITWISE_XOR): .data(.binary),
            id(NFTA_BITWISE_DATA): .data(.binary),
        ],
        "range": [
            id(NFTA_RANGE_SREG): .u32, id(NFTA_RANGE_OP): .u32, id(NFTA_RANGE_FROM_DATA): .data(.binary),
            id(NFTA_RANGE_TO_DATA): .data(.binary),
        ],
        "lookup": [
            id(NFTA_LOOKUP_SREG): .u32, id(NFTA_LOOKUP_DREG): .u32, id(NFTA_LOOKUP_SET_ID): .u32,
            id(NFTA_LOOKUP_FLAGS): .u32, id(NFTA_LOOKUP_SET): .string,
        ],
        "immediate": [id(NFTA_IMMEDIATE_DREG): .u32, id(NFTA_IMMEDIATE_DATA): .data(.binary)],
        "counter": [id(NFTA_COUNTER_BYTES): .u64, id(NFTA_COUNTER_PACKETS): .u64],
        "log": [
            id(NFTA_LOG_PREFIX): .string, id(NFTA_LOG_GROUP): .u16, id(NFTA_LOG_QTHRESHOLD): .u16,
            id(NFTA_LOG_SNAPLEN): .u32, id(NFTA_LOG_LEVEL): .u32, id(NFTA_LOG_FLAGS): .u32,
        ],
        "limit": [
            id(NFTA_LIMIT_RATE): .u64, id(NFTA_LIMIT_UNIT): .u64, id(NFTA_LIMIT_BURST): .u32,
            id(NFTA_LIMIT_TYPE): .u32, id(NFTA_LIMIT_FLAGS): .u32,
        ],
        "reject": [id(NFTA_REJECT_TYPE): .u32, id(NFTA_REJECT_ICMP_CODE): .u8],
    ]

    /// libnftnl's fixed table of a set's concatenation field lengths (`NFT_REG32_COUNT`).
    static let concatenationFields = 16

    // MARK: - Messages

    /// Refuses a `NEWTABLE`, `NEWCHAIN`, `NEWSET` or `NEWSETELEM` message libnftnl's parser could not take safely.
    static func check(_ message: NetlinkMessage, _ policy: [Int: Kind], what: String) throws(NetfilterError) {
        var foreign: String?
        try check(body(message), policy, what: what, foreign: &foreign)
        if let foreign { throw .malformedReply("\(what): expression \(foreign), which zonegate does not decode") }
    }

    /// Refuses a `NEWRULE` message libnftnl's parser could not take safely. Returns the name of
    /// its first expression zonegate does not decode, if any: its data is not checked, so the rule
    /// must not reach libnftnl; read-back takes it as a foreign rule (drift), never as zonegate's.
    static func checkRule(_ message: NetlinkMessage) throws(NetfilterError) -> String? {
        var foreign: String?
        try check(body(message), rule, what: "rule", foreign: &foreign)
        return foreign
    }

    /// The table and chain names of a `NEWRULE` message (after `checkRule`), read as libnftnl reads them.
    static func ruleNames(_ message: NetlinkMessage) -> (table: String?, chain: String?) {
        var table: String?, chain: String?
        for (type, payload) in NetlinkMessage.attributes(body(message)) {
            if Int(type) == id(NFTA_RULE_TABLE) { table = cString(payload) }
            if Int(type) == id(NFTA_RULE_CHAIN) { chain = cString(payload) }
        }
        return (table, chain)
    }

    /// The attributes after the headers, as libmnl walks them: up to the message's length rounded
    /// up to 4 (`mnl_attr_for_each`), which `NetlinkMessage.withHeader` fills with zeros.
    private static func body(_ message: NetlinkMessage) -> ArraySlice<UInt8> {
        guard message.bytes.count > 20 else { return [] }
        return (message.bytes + [UInt8](repeating: 0, count: (4 - message.bytes.count % 4) % 4))[20...]
    }

    private static func cString(_ payload: ArraySlice<UInt8>) -> String {
        String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: - Attributes

    private static func check(
        _ bytes: ArraySlice<UInt8>, _ policy: [Int: Kind], what: String, foreign: inout String?
    ) throws(NetfilterError) {
        for (type, payload) in NetlinkMessage.attributes(bytes) {
            guard let kind = policy[Int(type)] else { continue }
            try check(payload, kind, what: "\(what) attribute \(type)", foreign: &foreign)
        }
    }

    private static func check(
        _ payload: ArraySlice<UInt8>, _ kind: Kind, what: String, foreign: inout String?
    ) throws(NetfilterError) {
        guard lengthIsValid(payload, kind) else { throw .malformedReply("\(what): length \(payload.count)") }
        switch kind {
        case .u8, .u16, .u32, .u64, .string, .binary, .nested:
            return
        case .data:
            try checkData(payload, what: what)
        case .expression:
            try checkExpression(payload, what: what, foreign: &foreign)
        case .expressions:
            for (type, expression) in NetlinkMessage.attributes(payload) {
                guard Int(type) == id(NFTA_LIST_ELEM) else { throw .malformedReply("\(what): list item of type \(type)") }
                try checkExpression(expression, what: what, foreign: &foreign)
            }
        case .nestedPolicy(let inner):
            try check(payload, inner, what: what, foreign: &foreign)
        case .setDescription:
            var fields = 0
            for (type, attribute) in NetlinkMessage.attributes(payload) {
                if Int(type) == id(NFTA_SET_DESC_SIZE), !lengthIsValid(attribute, .u32) {
                    throw .malformedReply("\(what): size length \(attribute.count)")
                }
                guard Int(type) == id(NFTA_SET_DESC_CONCAT) else { continue }
                for (listType, item) in NetlinkMessage.attributes(attribute) where Int(listType) == id(NFTA_LIST_ELEM) {
                    for (fieldType, field) in NetlinkMessage.attributes(item) where Int(fieldType) == id(NFTA_SET_FIELD_LEN) {
                        guard lengthIsValid(field, .u32) else { throw .malformedReply("\(what): field length \(field.count)") }
                        fields += 1
                    }
                }
            }
            // libnftnl writes each field length into a table of 16 without counting.
            if fields > concatenationFields { throw .malformedReply("\(what): \(fields) concatenated fields") }
        case .elements:
            // The element table is NFTA_SET_ELEM_MAX + 1 long, but libnftnl bounds types by
            // NFTA_SET_MAX: a larger type is written past it on the stack.
            let maximum = Int(__NFTA_SET_ELEM_MAX.rawValue) - 1
            for (type, element) in NetlinkMessage.attributes(payload) {
                guard Int(type) == id(NFTA_LIST_ELEM) else { throw .malformedReply("\(what): list item of type \(type)") }
                if let unknown = NetlinkMessage.attributes(element).first(where: { Int($0.type) > maximum }) {
                    throw .malformedReply("\(what): element attribute \(unknown.type) unknown to libnftnl")
                }
                try check(element, Self.element, what: "set element", foreign: &foreign)
            }
        }
    }

    /// `nftnl_expr_parse`: a name (else a null `strcmp`), then the data of that expression.
    private static func checkExpression(
        _ payload: ArraySlice<UInt8>, what: String, foreign: inout String?
    ) throws(NetfilterError) {
        var name: String?, data: ArraySlice<UInt8>?
        for (type, attribute) in NetlinkMessage.attributes(payload) {
            switch Int(type) {
            case id(NFTA_EXPR_NAME):
                guard lengthIsValid(attribute, .string) else { throw .malformedReply("\(what): expression name length 0") }
                name = cString(attribute)
            case id(NFTA_EXPR_DATA):
                guard lengthIsValid(attribute, .nested) else { throw .malformedReply("\(what): expression data length \(attribute.count)") }
                data = attribute
            default:
                continue
            }
        }
        guard let name else { throw .malformedReply("\(what): expression without a name") }
        guard let policy = expressionData[name] else {
            if foreign == nil { foreign = name }
            return
        }
        if let data { try check(data, policy, what: "\(what) \(name)", foreign: &foreign) }
    }

    /// `nftnl_parse_data`: NFTA_DATA_VALUE (binary), NFTA_DATA_VERDICT (a code, and a chain to jump
    /// or go to; libnftnl's verdict table is not initialised, so both must be there to be read).
    private static func checkData(_ payload: ArraySlice<UInt8>, what: String) throws(NetfilterError) {
        for (type, attribute) in NetlinkMessage.attributes(payload) where Int(type) == id(NFTA_DATA_VERDICT) {
            guard lengthIsValid(attribute, .nested) else { throw .malformedReply("\(what): verdict length \(attribute.count)") }
            var code: UInt32?, hasChain = false
            for (verdictType, field) in NetlinkMessage.attributes(attribute) {
                switch Int(verdictType) {
                case id(NFTA_VERDICT_CODE), id(NFTA_VERDICT_CHAIN_ID):
                    guard lengthIsValid(field, .u32) else { throw .malformedReply("\(what): verdict field length \(field.count)") }
                    if Int(verdictType) == id(NFTA_VERDICT_CODE) { code = field.reduce(0) { $0 << 8 | UInt32($1) } }
                case id(NFTA_VERDICT_CHAIN):
                    guard lengthIsValid(field, .string) else { throw .malformedReply("\(what): verdict chain length 0") }
                    hasChain = true
                default:
                    continue
                }
            }
            guard let code else { throw .malformedReply("\(what): verdict without a code") }
            // NFT_JUMP (-3) and NFT_GOTO (-4) read the chain.
            if Int32(bitPattern: code) == -3 || Int32(bitPattern: code) == -4, !hasChain {
                throw .malformedReply("\(what): jump without a chain")
            }
        }
    }
}
