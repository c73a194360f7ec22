/// The expression sequences the compiler's rules are made of, each commented with the nft syntax
/// it stands for (as `nft --debug=netlink` prints it).
enum NftMatch {
    /// Which address of the packet.
    enum Side { case source, destination }

    /// `meta nfproto ipv4|ipv6`: an inet table sees both families.
    static func nfproto(_ family: IPFamily) -> [Expression] {
        [.meta(key: .nfproto, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [family.nfproto])]
    }

    /// `meta protocol ip|ip6` in a bridge table.
    static func etherType(_ family: IPFamily) -> [Expression] {
        [.meta(key: .protocol_, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: family.etherType)]
    }

    /// `meta protocol arp`.
    static let etherTypeARP: [Expression] = [.meta(key: .protocol_, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [0x08, 0x06])]

    /// `ct state established,related`.
    static let ctStateEstablishedOrRelated: [Expression] = [
        .ct(key: .state, dreg: .reg1),
        .bitwise(sreg: .reg1, dreg: .reg1, mask: [0x06, 0, 0, 0], xor: [0, 0, 0, 0]),
        .cmp(op: .neq, sreg: .reg1, data: [0, 0, 0, 0]),
    ]

    /// `ct state new`.
    static let ctStateNew: [Expression] = [
        .ct(key: .state, dreg: .reg1),
        .bitwise(sreg: .reg1, dreg: .reg1, mask: [0x08, 0, 0, 0], xor: [0, 0, 0, 0]),
        .cmp(op: .neq, sreg: .reg1, data: [0, 0, 0, 0]),
    ]

    /// `meta l4proto . th dport` loaded from reg 8 on: a `flowKey` without addresses, so of either family.
    static let portKey = flowKey([], .v4)

    /// `@published` over the key `portKey` loaded.
    static let isPublished = Expression.lookup(set: "published", sreg: .reg32(0), dreg: nil, invert: false)

    /// `iifname "lo"`.
    static func interfaceIs(_ key: MetaKey, _ name: String) -> [Expression] {
        [.meta(key: key, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: KeyPart.ifname(name).low)]
    }

    /// `meta mark 0x0`.
    static let markIsUnset: [Expression] = [.meta(key: .mark, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [0, 0, 0, 0])]

    /// `meta mark set 0x0`.
    static let unsetMark: [Expression] = [.immediate(dreg: .reg1, data: [0, 0, 0, 0]), .metaSet(key: .mark, sreg: .reg1)]

    /// `ip6 hoplimit 255`: a packet that crossed no router.
    static let onLinkOnly: [Expression] = [
        .payload(base: .network, offset: 7, length: 1, dreg: .reg1),
        .cmp(op: .eq, sreg: .reg1, data: [255]),
    ]

    /// `icmpv6 type nd-neighbor-advert`.
    static let neighbourAdvertisement = icmpv6Types(136...136)

    /// `icmpv6 type N` (or `N-M`), after the `meta l4proto ipv6-icmp` nft adds: a single type
    /// compares, a range is one `range` expression.
    static func icmpv6Types(_ types: ClosedRange<UInt8>) -> [Expression] {
        [.meta(key: .l4proto, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [58]),
         .payload(base: .transport, offset: 0, length: 1, dreg: .reg1),
         types.count == 1 ? .cmp(op: .eq, sreg: .reg1, data: [types.lowerBound])
                          : .range(op: .eq, sreg: .reg1, from: [types.lowerBound], to: [types.upperBound])]
    }

    /// `icmpv6 target @set` (the address a neighbour advertisement claims).
    static func advertisedTarget(in set: String) -> [Expression] {
        [.payload(base: .transport, offset: 8, length: 16, dreg: .reg1), .lookup(set: set, sreg: .reg1, dreg: nil, invert: false)]
    }

    /// `iifname . icmpv6 target != @set`.
    static func advertisedTargetBinding(notIn set: String) -> [Expression] {
        [.meta(key: .iifname, dreg: .reg32(0)),
         .payload(base: .transport, offset: 8, length: 16, dreg: .reg32(4)),
         .lookup(set: set, sreg: .reg32(0), dreg: nil, invert: true)]
    }

    /// `iifname @set` / `oifname @set`.
    static func interfaceInSet(_ key: MetaKey, _ set: String) -> [Expression] {
        [.meta(key: key, dreg: .reg1), .lookup(set: set, sreg: .reg1, dreg: nil, invert: false)]
    }

    private static func loadAddress(_ family: IPFamily, _ side: Side, into register: Register) -> Expression {
        .payload(base: .network, offset: side == .source ? family.sourceOffset : family.destinationOffset,
                 length: family.addressLength, dreg: register)
    }

    /// `ip saddr @set`.
    static func address(_ family: IPFamily, _ side: Side, in set: String) -> [Expression] {
        [loadAddress(family, side, into: .reg1), .lookup(set: set, sreg: .reg1, dreg: nil, invert: false)]
    }

    /// `ip saddr != @set`.
    static func address(_ family: IPFamily, _ side: Side, notIn set: String) -> [Expression] {
        [loadAddress(family, side, into: .reg1), .lookup(set: set, sreg: .reg1, dreg: nil, invert: true)]
    }

    /// `ip saddr vmap @map`.
    static func addressVerdict(_ family: IPFamily, _ side: Side, map: String) -> [Expression] {
        [loadAddress(family, side, into: .reg1), .lookup(set: map, sreg: .reg1, dreg: .verdict, invert: false)]
    }

    /// `ip saddr . ip daddr . meta l4proto . th dport` (the addresses given) loaded from reg 8 on,
    /// each field in whole 32-bit registers as nft lays out a concatenation.
    static func flowKey(_ sides: [Side], _ family: IPFamily) -> [Expression] {
        var expressions: [Expression] = []
        var word: UInt32 = 0
        for side in sides {
            expressions.append(loadAddress(family, side, into: .reg32(word)))
            word += family.addressLength / 4
        }
        expressions.append(.meta(key: .l4proto, dreg: .reg32(word)))                          // meta l4proto
        expressions.append(.payload(base: .transport, offset: 2, length: 2, dreg: .reg32(word + 1))) // th dport
        return expressions
    }

    /// `vmap @map` over the key `flowKey` loaded.
    static func verdictLookup(_ map: String) -> Expression {
        .lookup(set: map, sreg: .reg32(0), dreg: .verdict, invert: false)
    }

    /// `iifname . ip saddr @set` (or `oifname . ip daddr`): the 16-byte name fills four registers.
    static func portBinding(_ family: IPFamily, _ side: Side, in set: String) -> [Expression] {
        [.meta(key: side == .source ? .iifname : .oifname, dreg: .reg32(0)),
         loadAddress(family, side, into: .reg32(4)),
         .lookup(set: set, sreg: .reg32(0), dreg: nil, invert: false)]
    }

    /// `iifname . ip saddr != @set`.
    static func portBinding(_ family: IPFamily, _ side: Side, notIn set: String) -> [Expression] {
        [.meta(key: side == .source ? .iifname : .oifname, dreg: .reg32(0)),
         loadAddress(family, side, into: .reg32(4)),
         .lookup(set: set, sreg: .reg32(0), dreg: nil, invert: true)]
    }

    /// `arp saddr ip @set`.
    static func arpSenderAddress(in set: String) -> [Expression] {
        [.payload(base: .network, offset: 14, length: 4, dreg: .reg1), .lookup(set: set, sreg: .reg1, dreg: nil, invert: false)]
    }

    /// `iifname . arp saddr ip != @set`.
    static func arpBinding(notIn set: String) -> [Expression] {
        [.meta(key: .iifname, dreg: .reg32(0)),
         .payload(base: .network, offset: 14, length: 4, dreg: .reg32(4)),
         .lookup(set: set, sreg: .reg32(0), dreg: nil, invert: true)]
    }
}
