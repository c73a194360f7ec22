import CNftnl
import Foundation
import Synchronization
@_exported import ZonegateRuleset

/// The kernel's nf_tables, over one long-lived netlink socket. A transaction is
/// sent as one batch; the kernel applies all of it or none.
public final class NetlinkDataplane: Dataplane {
    /// One batch or dump at a time: a reply is matched to its request by the socket's sequence numbers.
    private let socket: Mutex<NetlinkSocket>

    /// Opens the netlink socket; needs CAP_NET_ADMIN for anything but reading.
    public init() throws {
        socket = Mutex(try NetlinkSocket())
    }

    public func apply(_ transaction: Transaction) throws {
        guard !transaction.isEmpty else { return }
        try socket.withLock { try $0.apply(transaction) }
    }

    public func read(family: Family, name: String) throws -> Table? {
        try socket.withLock { try $0.readTables(family: family.rawValue, name: name).first }
    }

    public func readAll(name: String) throws -> Ruleset {
        try socket.withLock { Ruleset(tables: try $0.readTables(family: UInt8(NFPROTO_UNSPEC), name: name)) }
    }
}

/// Batches and dumps, on the socket the dataplane's lock hands out.
private extension NetlinkSocket {
    func apply(_ transaction: Transaction) throws {
        let encoder = try BatchEncoder.encode(transaction, firstSequence: reserveSequences(0))
        _ = reserveSequences(encoder.messageCount + 2)
        try send(encoder.bytes, expectedReplies: encoder.messageCount)
        try collectAcks(for: encoder, transaction: transaction)
    }

    /// Reads one ack per message. The kernel aborts the whole batch when any message
    /// fails, though earlier messages may still ack 0, so any error fails the batch;
    /// the first error names the operation. After a failure only what is already queued is
    /// read (the kernel answers a batch while it is sent), so none is left for the next batch.
    private func collectAcks(for encoder: BatchEncoder, transaction: Transaction) throws(NetfilterError) {
        var acks = BatchAcks(firstSequence: encoder.firstSequence, operationOfMessage: encoder.operationOfMessage,
                             commands: transaction.commands)
        while !acks.isComplete, let messages = try receive(wait: acks.failure == nil) {
            for message in messages where message.type == NLMSG_ERROR { acks.take(message) }
        }
        if let failure = acks.failure { throw failure }
    }

    // MARK: - Dumps

    func readTables(family: UInt8, name: String) throws(NetfilterError) -> [Table] {
        var tables: [Table] = []
        for message in try dump(NFT_MSG_GETTABLE, family: family, table: nil) {
            try NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.table, what: "table")
            let parsed = try parse(message, nftnl_table_alloc, nftnl_table_free, nftnl_table_nlmsg_parse) { table in
                (nftnl_table_get_str(table, attr(NFTNL_TABLE_NAME)).map { String(cString: $0) },
                 nftnl_table_get_u32(table, attr(NFTNL_TABLE_FAMILY)), nftnl_table_get_u32(table, attr(NFTNL_TABLE_FLAGS)))
            }
            guard parsed.0 == name, let tableFamily = Family(rawValue: UInt8(parsed.1)) else { continue }
            tables.append(try readContents(of: Table(family: tableFamily, name: name, flags: parsed.2)))
        }
        return tables
    }

    private func readContents(of empty: Table) throws(NetfilterError) -> Table {
        var table = empty
        let family = table.family.rawValue
        for message in try dump(NFT_MSG_GETCHAIN, family: family, table: table.name) {
            try NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.chain, what: "chain")
            let chain = try parse(message, nftnl_chain_alloc, nftnl_chain_free, nftnl_chain_nlmsg_parse) { chain in
                ChainCodec.decode(chain, family: table.family)
            }
            if chain.table == table.name { table.chains.append(chain.chain) }
        }
        for message in try dump(NFT_MSG_GETSET, family: family, table: table.name) {
            try NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.set, what: "set")
            let set = try parse(message, nftnl_set_alloc, nftnl_set_free, nftnl_set_nlmsg_parse) { set throws(NetfilterError) in
                (nftnl_set_get_str(set, attr(NFTNL_SET_TABLE)).map { String(cString: $0) }, try SetCodec.decode(set))
            }
            guard set.0 == table.name else { continue }
            var decoded = set.1
            // A dynamic set's elements are written by packets, not by zonegate: not read back.
            if !decoded.flags.contains(.dynamic) {
                decoded.elements = SetCodec.elements(try readElements(table: table, set: decoded.name), of: decoded)
            }
            table.sets.append(decoded)
        }
        for message in try dump(NFT_MSG_GETRULE, family: family, table: table.name) {
            // An expression zonegate does not decode is not handed to libnftnl (its data is not
            // checked): the rule is read back as a foreign one, which the diff replaces.
            if let foreign = try NetlinkAttributeCheck.checkRule(message) {
                let names = NetlinkAttributeCheck.ruleNames(message)
                guard names.table == table.name, let index = table.chains.firstIndex(where: { $0.name == names.chain }) else { continue }
                table.chains[index].rules.append(Rule([.foreign(foreign)]))
                continue
            }
            let rule = try parse(message, nftnl_rule_alloc, nftnl_rule_free, nftnl_rule_nlmsg_parse) { rule throws(NetfilterError) in
                (nftnl_rule_get_str(rule, attr(NFTNL_RULE_TABLE)).map { String(cString: $0) },
                 nftnl_rule_get_str(rule, attr(NFTNL_RULE_CHAIN)).map { String(cString: $0) }, try RuleCodec.decode(rule))
            }
            guard rule.0 == table.name, let index = table.chains.firstIndex(where: { $0.name == rule.1 }) else { continue }
            table.chains[index].rules.append(rule.2)
        }
        return table
    }

    /// A hash set's dump walks an rhashtable; when the kernel resizes it during the
    /// walk (right after a large insert) the dump repeats some elements and skips
    /// others without flagging it. A dump with repeats is therefore taken again.
    private func readElements(table: Table, set: String) throws(NetfilterError) -> [KernelElement] {
        for _ in 0..<Self.elementDumpAttempts {
            var elements: [KernelElement] = []
            for message in try dump(NFT_MSG_GETSETELEM, family: table.family.rawValue, table: table.name, set: set) {
                try NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.elementList, what: "set elements")
                elements += try parse(message, nftnl_set_alloc, nftnl_set_free, nftnl_set_elems_nlmsg_parse) { parsed throws(NetfilterError) in
                    try SetCodec.decodeElements(parsed)
                }
            }
            if Set(elements.map(\.identity)).count == elements.count { return elements }
            usleep(10_000)
        }
        throw .malformedReply("element dump of set \(set) kept repeating elements")
    }

    private static let elementDumpAttempts = 20

    /// Allocates a libnftnl object, parses `message` into it, reads it with `body`, frees it.
    private func parse<Object>(
        _ message: NetlinkMessage, _ allocate: () -> OpaquePointer?, _ free: (OpaquePointer) -> Void,
        _ parser: (UnsafePointer<nlmsghdr>, OpaquePointer) -> Int32,
        _ body: (OpaquePointer) throws(NetfilterError) -> Object
    ) throws(NetfilterError) -> Object {
        let object = try cCall("nftnl_*_alloc", allocate)
        defer { free(object) }
        try cCall("nftnl_*_nlmsg_parse") { message.withHeader { parser($0, object) } }
        return try body(object)
    }

    /// Sends a dump request and returns the reply messages up to `NLMSG_DONE`.
    /// `table` (and `set`) narrow the dump the way nft asks for them.
    private func dump(
        _ type: nf_tables_msg_types, family: UInt8, table: String?, set: String? = nil
    ) throws(NetfilterError) -> [NetlinkMessage] {
        let sequence = reserveSequences(1)
        var request = [UInt8](repeating: 0, count: 1024)
        let length = request.withUnsafeMutableBytes { raw -> Int in
            let header = nftnl_nlmsg_build_hdr(
                raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(type.rawValue), UInt16(family),
                UInt16(NLM_F_DUMP), sequence)!
            // NFTA_{CHAIN,SET,RULE}_TABLE and NFTA_SET_ELEM_LIST_TABLE are all attribute 1;
            // element dumps must also name their set.
            if let table { mnl_attr_put_strz(header, UInt16(NFTA_SET_ELEM_LIST_TABLE.rawValue), table) }
            if let set { mnl_attr_put_strz(header, UInt16(NFTA_SET_ELEM_LIST_SET.rawValue), set) }
            return Int(header.pointee.nlmsg_len)
        }
        try send(Array(request[0..<length]), expectedReplies: 1)
        var replies: [NetlinkMessage] = []
        while true {
            for message in try receive() ?? [] where message.sequence == sequence {
                switch Int32(message.type) {
                case NLMSG_DONE:
                    return replies
                case NLMSG_ERROR:
                    throw .systemCall("nfnetlink dump \(type)", errno: -message.ackError)
                default:
                    replies.append(message)
                }
            }
        }
    }
}

/// Decodes chains. A base chain's hook, type or policy that zonegate does not model (or that the
/// kernel left out) decodes as `foreign`, never as a default: such a chain is then rewritten.
enum ChainCodec {
    static func decode(_ chain: OpaquePointer, family: Family) -> (table: String?, chain: Chain) {
        let name = nftnl_chain_get_str(chain, attr(NFTNL_CHAIN_NAME)).map { String(cString: $0) } ?? ""
        let table = nftnl_chain_get_str(chain, attr(NFTNL_CHAIN_TABLE)).map { String(cString: $0) }
        guard nftnl_chain_is_set(chain, attr(NFTNL_CHAIN_HOOKNUM)) else { return (table, Chain(name: name)) }
        let hook = BaseChainHook(
            hook: BaseChainHook.Hook(kernelNumber: nftnl_chain_get_u32(chain, attr(NFTNL_CHAIN_HOOKNUM)), family: family),
            priority: nftnl_chain_get_s32(chain, attr(NFTNL_CHAIN_PRIO)),
            type: BaseChainHook.ChainType(name: nftnl_chain_get_str(chain, attr(NFTNL_CHAIN_TYPE)).map { String(cString: $0) }),
            policy: BaseChainHook.Policy(kernelValue: nftnl_chain_is_set(chain, attr(NFTNL_CHAIN_POLICY))
                ? nftnl_chain_get_u32(chain, attr(NFTNL_CHAIN_POLICY)) : nil)
        )
        return (table, Chain(name: name, hook: hook))
    }
}
