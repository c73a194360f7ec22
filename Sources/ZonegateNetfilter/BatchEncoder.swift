import CNftnl
import Glibc
import ZonegateRuleset

/// libnftnl attribute ids are C enums of two kinds; both become `UInt16` here.
func attr<Attribute: RawRepresentable>(_ attribute: Attribute) -> UInt16 where Attribute.RawValue: BinaryInteger {
    UInt16(attribute.rawValue)
}

func attr(_ attribute: Int) -> UInt16 { UInt16(attribute) }

/// Encodes a `Transaction` into one nfnetlink batch: begin, one or more messages
/// per operation (each with `NLM_F_ACK`), end. libnftnl's builders write without
/// bounds checks, so every message is built in a scratch buffer sized for the
/// largest message this encoder lets through, and element lists are split.
struct BatchEncoder {
    /// Room for one message; element lists are cut well below it.
    static let messageCapacity = 64 * 1024
    static let elementChunkBudget = 16 * 1024

    private(set) var bytes: [UInt8] = []
    /// The transaction operation each message after `begin` encodes.
    private(set) var operationOfMessage: [Int] = []
    let firstSequence: UInt32
    private var scratch = [UInt8](repeating: 0, count: BatchEncoder.messageCapacity)
    /// Sets as each operation sees them, to size keys and pick the element layout.
    private var sets: [SetName: NftSet] = [:]
    /// Sets created in this batch are referred to by `NFTA_SET_ID` as nft does.
    private var setIDs: [SetName: UInt32] = [:]
    private var operationIndex = 0

    private struct SetName: Hashable {
        var table: TableID
        var name: String
    }

    init(firstSequence: UInt32) {
        self.firstSequence = firstSequence
    }

    var messageCount: Int { operationOfMessage.count }

    static func encode(_ transaction: Transaction, firstSequence: UInt32) throws(NetfilterError) -> BatchEncoder {
        var encoder = BatchEncoder(firstSequence: firstSequence)
        for table in transaction.base.tables {
            for set in table.sets { encoder.sets[SetName(table: table.id, name: set.name)] = set.definition }
        }
        encoder.control { nftnl_batch_begin($0, $1) }
        for (index, operation) in transaction.operations.enumerated() {
            encoder.operationIndex = index
            try encoder.encode(operation)
        }
        encoder.control { nftnl_batch_end($0, $1) }
        return encoder
    }

    // MARK: - Messages

    private mutating func control(_ build: (UnsafeMutablePointer<CChar>, UInt32) -> UnsafeMutablePointer<nlmsghdr>?) {
        let sequence = firstSequence + UInt32(operationOfMessage.count) + (bytes.isEmpty ? 0 : 1)
        let length = scratch.withUnsafeMutableBytes { raw in
            Int(build(raw.baseAddress!.assumingMemoryBound(to: CChar.self), sequence)!.pointee.nlmsg_len)
        }
        bytes += scratch[0..<length]
    }

    private mutating func message(
        _ type: nf_tables_msg_types, family: Family, flags: Int32,
        _ build: (UnsafeMutablePointer<nlmsghdr>) throws(NetfilterError) -> Void
    ) throws(NetfilterError) {
        let sequence = firstSequence + 1 + UInt32(operationOfMessage.count)
        // withUnsafeMutableBytes only rethrows untyped errors; carry ours out in a Result.
        let built = scratch.withUnsafeMutableBytes { raw -> Result<Int, NetfilterError> in
            let buffer = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            let header = nftnl_nlmsg_build_hdr(
                buffer, UInt16(type.rawValue), UInt16(family.rawValue), UInt16(flags | NLM_F_ACK), sequence)!
            return Result { () throws(NetfilterError) -> Int in
                try build(header)
                return Int(header.pointee.nlmsg_len)
            }
        }
        let length = try built.get()
        bytes += scratch[0..<length]
        // libmnl leaves attribute padding as it finds it: clear for the next message.
        scratch.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, length) }
        operationOfMessage.append(operationIndex)
    }

    private mutating func encode(_ operation: Operation) throws(NetfilterError) {
        switch operation {
        case .addTable(let id, let flags):
            try table(NFT_MSG_NEWTABLE, id, flags: flags)
        case .deleteTable(let id):
            try table(NFT_MSG_DELTABLE, id, flags: nil)
            sets = sets.filter { $0.key.table != id }
        case .addChain(let id, let name, let hook):
            try chain(NFT_MSG_NEWCHAIN, id, name, hook: hook)
        case .deleteChain(let id, let name):
            try chain(NFT_MSG_DELCHAIN, id, name, hook: nil)
        case .flushChain(let id, let name):
            // A DELRULE naming only table and chain deletes every rule of the chain.
            try message(NFT_MSG_DELRULE, family: id.family, flags: 0) { header throws(NetfilterError) in
                let rule = try cCall("nftnl_rule_alloc") { nftnl_rule_alloc() }
                defer { nftnl_rule_free(rule) }
                nftnl_rule_set_str(rule, attr(NFTNL_RULE_TABLE), id.name)
                nftnl_rule_set_str(rule, attr(NFTNL_RULE_CHAIN), name)
                nftnl_rule_nlmsg_build_payload(header, rule)
            }
        case .addRule(let id, let chain, let rule):
            try self.rule(id, chain, rule)
        case .addSet(let id, let set):
            let name = SetName(table: id, name: set.name)
            let setID = UInt32(setIDs.count + 1)
            setIDs[name] = setID
            sets[name] = set
            try message(NFT_MSG_NEWSET, family: id.family, flags: NLM_F_CREATE) { header throws(NetfilterError) in
                try SetCodec.withEncoded(set, table: id.name, setID: setID) { nftnl_set_nlmsg_build_payload(header, $0) }
            }
        case .deleteSet(let id, let name):
            sets[SetName(table: id, name: name)] = nil
            try setByName(NFT_MSG_DELSET, id, name, nftnl_set_nlmsg_build_payload)
        case .addElements(let id, let name, let elements):
            try self.elements(NFT_MSG_NEWSETELEM, id, name, elements, flags: NLM_F_CREATE)
        case .deleteElements(let id, let name, let elements):
            try self.elements(NFT_MSG_DELSETELEM, id, name, elements, flags: 0)
        case .flushSet(let id, let name):
            // A DELSETELEM naming only table and set flushes the set.
            try setByName(NFT_MSG_DELSETELEM, id, name, nftnl_set_elems_nlmsg_build_payload)
        }
    }

    // delete set inet zonegate s / flush set inet zonegate s: a message naming only the set.
    private mutating func setByName(
        _ type: nf_tables_msg_types, _ id: TableID, _ name: String,
        _ build: (UnsafeMutablePointer<nlmsghdr>?, OpaquePointer?) -> Void
    ) throws(NetfilterError) {
        try message(type, family: id.family, flags: 0) { header throws(NetfilterError) in
            let set = try cCall("nftnl_set_alloc") { nftnl_set_alloc() }
            defer { nftnl_set_free(set) }
            nftnl_set_set_str(set, attr(NFTNL_SET_TABLE), id.name)
            nftnl_set_set_str(set, attr(NFTNL_SET_NAME), name)
            build(header, set)
        }
    }

    // add table inet zonegate / delete table inet zonegate
    private mutating func table(_ type: nf_tables_msg_types, _ id: TableID, flags: UInt32?) throws(NetfilterError) {
        try message(type, family: id.family, flags: flags == nil ? 0 : NLM_F_CREATE) { header throws(NetfilterError) in
            let table = try cCall("nftnl_table_alloc") { nftnl_table_alloc() }
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, attr(NFTNL_TABLE_NAME), id.name)
            if let flags { nftnl_table_set_u32(table, attr(NFTNL_TABLE_FLAGS), flags) }
            nftnl_table_nlmsg_build_payload(header, table)
        }
    }

    // add chain inet zonegate forward { type filter hook forward priority 0; policy drop; }
    private mutating func chain(
        _ type: nf_tables_msg_types, _ id: TableID, _ name: String, hook: BaseChainHook?
    ) throws(NetfilterError) {
        try message(type, family: id.family, flags: type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0) { header throws(NetfilterError) in
            let chain = try cCall("nftnl_chain_alloc") { nftnl_chain_alloc() }
            defer { nftnl_chain_free(chain) }
            nftnl_chain_set_str(chain, attr(NFTNL_CHAIN_TABLE), id.name)
            nftnl_chain_set_str(chain, attr(NFTNL_CHAIN_NAME), name)
            if let hook {
                // A transaction refuses foreign values (they are only ever read), so both are known here.
                guard !hook.isForeign, let type = hook.type.name, let policy = hook.policy.kernelValue else {
                    throw .unencodable("chain \(name) with values zonegate does not know")
                }
                nftnl_chain_set_str(chain, attr(NFTNL_CHAIN_TYPE), type)
                nftnl_chain_set_u32(chain, attr(NFTNL_CHAIN_POLICY), policy)
                nftnl_chain_set_u32(chain, attr(NFTNL_CHAIN_HOOKNUM), hook.hook.kernelNumber)
                nftnl_chain_set_s32(chain, attr(NFTNL_CHAIN_PRIO), hook.priority)
            }
            nftnl_chain_nlmsg_build_payload(header, chain)
        }
    }

    // add rule inet zonegate forward <expressions> comment "..."
    private mutating func rule(_ id: TableID, _ chainName: String, _ rule: Rule) throws(NetfilterError) {
        guard RuleCodec.encodedSizeBound(rule) < Self.messageCapacity else { throw .tooLarge("rule in chain \(chainName)") }
        let setIDs = setIDs.filter { $0.key.table == id }
        try message(NFT_MSG_NEWRULE, family: id.family, flags: NLM_F_CREATE | NLM_F_APPEND) { header throws(NetfilterError) in
            let encoded = try cCall("nftnl_rule_alloc") { nftnl_rule_alloc() }
            defer { nftnl_rule_free(encoded) }
            nftnl_rule_set_str(encoded, attr(NFTNL_RULE_TABLE), id.name)
            nftnl_rule_set_str(encoded, attr(NFTNL_RULE_CHAIN), chainName)
            for expression in rule.expressions {
                let setID = expression.referencedSet.flatMap { setIDs[SetName(table: id, name: $0)] }
                // The rule owns each expression once added and frees it with itself.
                nftnl_rule_add_expr(encoded, try RuleCodec.encode(expression, setID: setID))
            }
            if let comment = UserData.comment(rule.comment) {
                try cCall("nftnl_rule_set_data") {
                    nftnl_rule_set_data(encoded, attr(NFTNL_RULE_USERDATA), comment, UInt32(comment.count))
                }
            }
            nftnl_rule_nlmsg_build_payload(header, encoded)
        }
    }

    // add element inet zonegate allow4 { 10.0.0.0/8 . 80-443 comment "web" }
    private mutating func elements(
        _ type: nf_tables_msg_types, _ id: TableID, _ setName: String, _ elements: [SetElement], flags: Int32
    ) throws(NetfilterError) {
        let name = SetName(table: id, name: setName)
        guard let set = sets[name] else { preconditionFailure("Transaction.add checks that set \(setName) exists") }
        let encoded = SetCodec.kernelElements(set.normalized(elements), of: set)
        let setID = setIDs[name]
        var start = 0
        while start < encoded.count {
            var end = start, budget = 0
            while end < encoded.count, end == start || budget + encoded[end].sizeBound < Self.elementChunkBudget {
                budget += encoded[end].sizeBound
                end += 1
            }
            let chunk = encoded[start..<end]
            try message(type, family: id.family, flags: flags) { header throws(NetfilterError) in
                try SetCodec.withElements(chunk, table: id.name, set: setName, setID: setID) {
                    nftnl_set_elems_nlmsg_build_payload(header, $0)
                }
            }
            start = end
        }
    }
}
