import CNftnl
import FuzzSupport
@testable import ZonegateNetfilter

// Bytes -> the replies of nf_tables dumps (tables, chains, sets, set elements, rules) -> zonegate's
// ruleset values, as `NetlinkDataplane` reads its tables back at every resync: the messages go
// through libnftnl's parsers, then ChainCodec, SetCodec and RuleCodec, and rbtree element pairs
// are joined into ranges.
runFuzzer { start, count in
    guard let messages = try? NetlinkMessage.split(bytes(start, count)[...]) else { return 0 }
    var sets: [NftSet] = []
    var elements: [String: [KernelElement]] = [:]
    var chains: [Chain] = []
    for message in messages {
        // NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*
        guard message.type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) else {
            if Int32(message.type) == NLMSG_ERROR { _ = message.ackError }
            continue
        }
        switch UInt32(message.type & 0xff) {
        case NFT_MSG_NEWTABLE.rawValue:
            guard (try? NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.table, what: "table")) != nil else { continue }
            _ = parse(message, nftnl_table_alloc, nftnl_table_free, nftnl_table_nlmsg_parse) { table in
                nftnl_table_get_str(table, attr(NFTNL_TABLE_NAME)).map { String(cString: $0) }
            }
        case NFT_MSG_NEWCHAIN.rawValue:
            guard (try? NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.chain, what: "chain")) != nil else { continue }
            if let chain = parse(message, nftnl_chain_alloc, nftnl_chain_free, nftnl_chain_nlmsg_parse, { chain in
                ChainCodec.decode(chain, family: .inet).chain
            }) { chains.append(chain) }
        case NFT_MSG_NEWSET.rawValue:
            guard (try? NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.set, what: "set")) != nil else { continue }
            if let set = parse(message, nftnl_set_alloc, nftnl_set_free, nftnl_set_nlmsg_parse, { set in
                try? SetCodec.decode(set)
            }) ?? nil { sets.append(set) }
        case NFT_MSG_NEWSETELEM.rawValue:
            guard (try? NetlinkAttributeCheck.check(message, NetlinkAttributeCheck.elementList, what: "set elements")) != nil else { continue }
            if let decoded = parse(message, nftnl_set_alloc, nftnl_set_free, nftnl_set_elems_nlmsg_parse, { set in
                (nftnl_set_get_str(set, attr(NFTNL_SET_NAME)).map { String(cString: $0) } ?? "", try? SetCodec.decodeElements(set))
            }), let list = decoded.1 {
                elements[decoded.0, default: []] += list
            }
        case NFT_MSG_NEWRULE.rawValue:
            // As NetlinkDataplane: refused, or a foreign rule that never reaches libnftnl.
            let foreign: String?
            do { foreign = try NetlinkAttributeCheck.checkRule(message) } catch { continue }
            if let foreign {
                _ = NetlinkAttributeCheck.ruleNames(message)
                if !chains.isEmpty { chains[chains.count - 1].rules.append(Rule([.foreign(foreign)])) }
                continue
            }
            if let rule = parse(message, nftnl_rule_alloc, nftnl_rule_free, nftnl_rule_nlmsg_parse, { rule in
                try? RuleCodec.decode(rule)
            }) ?? nil, !chains.isEmpty {
                chains[chains.count - 1].rules.append(rule)
            }
        default:
            continue
        }
    }
    for index in sets.indices where !sets[index].flags.contains(.dynamic) {
        sets[index].elements = SetCodec.elements(elements[sets[index].name] ?? [], of: sets[index])
    }
    _ = Table(family: .inet, name: "zonegate", chains: chains, sets: sets)
    return 0
}

/// As `NetlinkDataplane.parse`: a libnftnl object, the message parsed into it, read, freed.
func parse<Object>(
    _ message: NetlinkMessage, _ allocate: () -> OpaquePointer?, _ free: (OpaquePointer) -> Void,
    _ parser: (UnsafePointer<nlmsghdr>, OpaquePointer) -> Int32, _ body: (OpaquePointer) -> Object
) -> Object? {
    guard let object = allocate() else { return nil }
    defer { free(object) }
    guard message.withHeader({ parser($0, object) }) >= 0 else { return nil }
    return body(object)
}
