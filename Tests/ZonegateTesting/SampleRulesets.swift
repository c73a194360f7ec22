import ZonegateRuleset

/// Rulesets shared by the wire, kernel and pure tests; each rule carries the nft
/// syntax it stands for.
public enum SampleRulesets {
    /// A registers shorthand: nft loads the first field into reg 1 and the next
    /// fields of a concatenation into the 32-bit registers after it.
    private static let r1 = Register.reg1
    private static func r32(_ index: UInt32) -> Register { .reg32(index) }

    // ct state established,related accept comment "replies"
    public static let acceptReplies = Rule([
        .ct(key: .state, dreg: r1),
        .bitwise(sreg: r1, dreg: r1, mask: [0x06, 0, 0, 0], xor: [0, 0, 0, 0]),
        .cmp(op: .neq, sreg: r1, data: [0, 0, 0, 0]),
        .verdict(.accept),
    ], comment: "replies")

    // meta nfproto ipv4 meta l4proto tcp ip saddr . th dport @allow4 counter accept
    public static let allowWeb = Rule([
        .meta(key: .nfproto, dreg: r1),
        .cmp(op: .eq, sreg: r1, data: [2]),
        .meta(key: .l4proto, dreg: r1),
        .cmp(op: .eq, sreg: r1, data: [6]),
        .payload(base: .network, offset: 12, length: 4, dreg: r1),
        .payload(base: .transport, offset: 2, length: 2, dreg: r32(1)),
        .lookup(set: "allow4", sreg: r1, dreg: nil, invert: false),
        .counter,
        .verdict(.accept),
    ])

    // iifname vmap @ports
    public static let dispatchByPort = Rule([
        .meta(key: .iifname, dreg: r1),
        .lookup(set: "ports", sreg: r1, dreg: .verdict, invert: false),
    ])

    // meta l4proto tcp reject with tcp reset
    public static let resetTCP = Rule([
        .meta(key: .l4proto, dreg: r1),
        .cmp(op: .eq, sreg: r1, data: [6]),
        .reject(.tcpReset),
    ])

    // meta skuid 0 meta mark set meta l4proto . th dport map @marks update @grants { meta mark }
    public static let grantByPort = Rule([
        .meta(key: .skuid, dreg: r1),
        .cmp(op: .eq, sreg: r1, data: [0, 0, 0, 0]),
        .meta(key: .l4proto, dreg: r1),
        .payload(base: .transport, offset: 2, length: 2, dreg: r32(1)),
        .lookup(set: "marks", sreg: r1, dreg: r1, invert: false),
        .metaSet(key: .mark, sreg: r1),
        .meta(key: .mark, dreg: r1),
        .dynset(op: .update, set: "grants", sreg: r1),
    ])

    /// The small ruleset of the wire test: a table, a base chain, a set, a
    /// concatenated interval set, a verdict map, a data map, a dynamic set with a timeout,
    /// payload/cmp/lookup/ct/counter/reject/meta set/dynset rules and comments. Its nft text is `Tests/ZonegateNetfilterTests/wire.nft`.
    public static let wire = Ruleset(tables: [
        Table(family: .inet, name: "zonegate", chains: [
            Chain(name: "zone_a"),
            Chain(
                name: "forward", hook: BaseChainHook(hook: .forward, priority: 0, type: .filter, policy: .drop),
                rules: [acceptReplies, allowWeb, dispatchByPort, resetTCP, grantByPort]
            ),
        ], sets: [
            NftSet(name: "blocked", keyType: [.ipv4Addr], elements: [SetElement(.ipv4("10.9.9.9")!)]),
            NftSet(name: "allow4", keyType: [.ipv4Addr, .inetService], flags: [.interval], elements: [
                SetElement(.prefix("10.0.0.0/8")!, .ports(80...443), comment: "web"),
            ]),
            NftSet(name: "ports", keyType: [.ifname], dataType: .verdict, elements: [
                SetElement(.ifname("veth1"), data: .verdict(.jump("zone_a"))),
            ]),
            NftSet(name: "grants", keyType: [.mark], flags: [.dynamic, .timeout], timeout: 5000),
            NftSet(name: "marks", keyType: [.inetProto, .inetService], dataType: .value(.mark), elements: [
                SetElement(.tcp, .port(8080), data: .value(KeyPart.mark(0x0006_1f90).low)),
            ]),
        ]),
    ])

    /// The kernel test's full ruleset: an inet table with a base forward chain,
    /// a bridge table, concatenated sets, a verdict map, IPv4 and IPv6 interval
    /// sets with prefixes and port ranges, a data map, and every expression kind.
    public static let full = Ruleset(tables: [
        Table(family: .inet, name: "zonegate", chains: [
            // chain zone_a { ip daddr @nets4 th dport @service_ports accept; return }
            Chain(name: "zone_a", rules: [
                Rule([
                    .meta(key: .nfproto, dreg: r1), .cmp(op: .eq, sreg: r1, data: [2]),
                    .payload(base: .network, offset: 16, length: 4, dreg: r1),
                    .lookup(set: "nets4", sreg: r1, dreg: nil, invert: false),
                    .payload(base: .transport, offset: 2, length: 2, dreg: r1),
                    .lookup(set: "service_ports", sreg: r1, dreg: nil, invert: false),
                    .verdict(.accept),
                ]),
                Rule([.verdict(.return)]),
            ]),
            Chain(
                name: "forward", hook: BaseChainHook(hook: .forward, priority: 0, type: .filter, policy: .drop),
                rules: [
                    acceptReplies,
                    // ct state invalid drop
                    Rule([
                        .ct(key: .state, dreg: r1),
                        .bitwise(sreg: r1, dreg: r1, mask: [1, 0, 0, 0], xor: [0, 0, 0, 0]),
                        .cmp(op: .neq, sreg: r1, data: [0, 0, 0, 0]), .verdict(.drop),
                    ]),
                    allowWeb,
                    // meta nfproto ipv6 ip6 saddr != @nets6 log prefix "zonegate v6 " level warn drop
                    Rule([
                        .meta(key: .nfproto, dreg: r1), .cmp(op: .eq, sreg: r1, data: [10]),
                        .payload(base: .network, offset: 8, length: 16, dreg: r1),
                        .lookup(set: "nets6", sreg: r1, dreg: nil, invert: true),
                        .log(prefix: "zonegate v6 ", group: nil, level: .warn), .verdict(.drop),
                    ], comment: "v6 outside"),
                    // ip saddr . meta l4proto . th dport @triples accept
                    Rule([
                        .meta(key: .nfproto, dreg: r1), .cmp(op: .eq, sreg: r1, data: [2]),
                        .payload(base: .network, offset: 12, length: 4, dreg: r1),
                        .meta(key: .l4proto, dreg: r32(1)),
                        .payload(base: .transport, offset: 2, length: 2, dreg: r32(2)),
                        .lookup(set: "triples", sreg: r1, dreg: nil, invert: false), .verdict(.accept),
                    ]),
                    // meta mark set ip saddr map @addr_id is not ours; a data map lookup into a register:
                    // ip saddr map @addr_id4 == 0x00000001 accept
                    Rule([
                        .meta(key: .nfproto, dreg: r1), .cmp(op: .eq, sreg: r1, data: [2]),
                        .payload(base: .network, offset: 12, length: 4, dreg: r1),
                        .lookup(set: "addr_id4", sreg: r1, dreg: r1, invert: false),
                        .cmp(op: .eq, sreg: r1, data: [1, 0, 0, 0]), .verdict(.accept),
                    ]),
                    dispatchByPort,
                    // th dport != 1000-2000 meta mark 0x2a ct mark 0x0 counter continue
                    Rule([
                        .payload(base: .transport, offset: 2, length: 2, dreg: r1),
                        .range(op: .neq, sreg: r1, from: [0x03, 0xe8], to: [0x07, 0xd0]),
                        .meta(key: .mark, dreg: r1), .cmp(op: .eq, sreg: r1, data: [0x2a, 0, 0, 0]),
                        .ct(key: .mark, dreg: r1), .cmp(op: .eq, sreg: r1, data: [0, 0, 0, 0]),
                        .counter, .verdict(.continue),
                    ]),
                    // limit rate over 10/second burst 5 packets log group 3 drop
                    Rule([
                        .limit(rate: 10, unit: .second, burst: 5, over: true),
                        .log(prefix: "zonegate flood ", group: 3, level: nil), .verdict(.drop),
                    ]),
                    resetTCP,
                    // reject with icmpx type admin-prohibited
                    Rule([.reject(.icmpx(.adminProhibited))], comment: "default deny"),
                ]
            ),
        ], sets: [
            NftSet(name: "allow4", keyType: [.ipv4Addr, .inetService], flags: [.interval], elements: [
                SetElement(.prefix("10.0.0.0/8")!, .ports(80...443), comment: "web"),
                SetElement(.ipv4("192.168.1.1")!, .port(22)),
            ]),
            NftSet(name: "nets4", keyType: [.ipv4Addr], flags: [.interval], elements: [
                SetElement(.prefix("10.0.0.0/8")!),
                SetElement(.prefix("172.16.0.0/12")!, comment: "private"),
                SetElement(.ipv4("192.168.0.5")!),
                SetElement(.prefix("224.0.0.0/3")!, comment: "to the top of the address space"),
            ], comment: "v4 nets"),
            NftSet(name: "nets6", keyType: [.ipv6Addr], flags: [.interval], elements: [
                SetElement(.prefix("fd00::/64")!),
                SetElement(.ipv6("fd01::1")!, comment: "one host"),
            ]),
            NftSet(name: "service_ports", keyType: [.inetService], flags: [.interval], elements: [
                SetElement(.ports(1000...2000)), SetElement(.port(8080)),
            ]),
            NftSet(name: "triples", keyType: [.ipv4Addr, .inetProto, .inetService], elements: [
                SetElement(.ipv4("10.1.0.2")!, .tcp, .port(5432)),
                SetElement(.ipv4("10.1.0.3")!, .udp, .port(53), comment: "dns"),
            ]),
            NftSet(name: "ports", keyType: [.ifname], dataType: .verdict, elements: [
                SetElement(.ifname("veth1"), data: .verdict(.jump("zone_a"))),
                SetElement(.ifname("veth2"), data: .verdict(.goto("zone_a"))),
                SetElement(.ifname("eth0"), data: .verdict(.accept), comment: "uplink"),
            ]),
            NftSet(name: "addr_id4", keyType: [.ipv4Addr], dataType: .value(.mark), elements: [
                SetElement(.ipv4("10.1.0.2")!, data: .value(KeyPart.mark(1).low)),
            ]),
        ]),
        Table(family: .bridge, name: "zonegate", chains: [
            // chain forward { type filter hook forward priority -200; policy accept;
            //   iifname "veth1" ether type ip ip saddr != 10.1.0.2 drop }
            Chain(
                name: "forward", hook: BaseChainHook(hook: .forward, priority: -200, type: .filter, policy: .accept),
                rules: [
                    Rule([
                        .meta(key: .iifname, dreg: r1),
                        .cmp(op: .eq, sreg: r1, data: KeyPart.ifname("veth1").low),
                        .meta(key: .protocol_, dreg: r1), .cmp(op: .eq, sreg: r1, data: [0x08, 0x00]),
                        .payload(base: .network, offset: 12, length: 4, dreg: r1),
                        .cmp(op: .neq, sreg: r1, data: [10, 1, 0, 2]),
                        .verdict(.drop),
                    ], comment: "anti-spoofing"),
                ]
            ),
        ]),
    ])
}
