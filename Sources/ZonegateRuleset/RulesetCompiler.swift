import ZonegateEngine
import ZonegatePolicy

/// Compiles the policy applied to an inventory into zonegate's nftables tables: the desired
/// ruleset that the diff turns into one transaction.
///
/// Per-packet cost is flat: a verdict is a few hash or interval lookups whatever the number of
/// containers, zones or rules. Containers of one identity (the same zones and CIDR blocks) share
/// one chain; a flow between containers is dispatched on its source address to the chain of the
/// source's identity, which looks up `destination . protocol . port` in that identity's verdict
/// map. Flows to and from outside addresses and the host are looked up in one map each.
/// Rules mention neither containers nor zones nor policy rules, so container starts and stops
/// change set elements only (a container of a zone combination not seen before also adds that
/// identity's chain); `CompiledRuleset` keeps the result in parts so that they are compiled
/// alone. Every rule is plain nft syntax: `nft list table inet zonegate` reads back.
///
/// ```
/// table inet zonegate {
///   set bridges   { type ifname }                                  # managed bridges
///   set ctr4      { type ipv4_addr }                               # classified container addresses
///   map dispatch4 { type ipv4_addr : verdict }                     # address -> jump from_<identity>
///   map to4_<id>  { type ipv4_addr . inet_proto . inet_service : verdict; flags interval }
///   map ctr_out4  { type ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict; flags interval }
///   chain forward { type filter hook forward priority -10; policy accept;
///     ct state established,related accept                                    # step 1
///     ip6 hoplimit 255 icmpv6 type 135-136 ip6 saddr @ctr6 accept             # neighbour discovery
///     iifname @bridges ip saddr != @ctr4 drop                                 # step 2
///     oifname @bridges ip daddr != @ctr4 drop
///     ip saddr @ctr4 ip daddr @ctr4 ip saddr vmap @dispatch4                  # step 4
///     ip saddr @ctr4 ip daddr != @ctr4 ip saddr . ip daddr . meta l4proto . th dport vmap @ctr_out4
///     ip saddr != @ctr4 ip daddr @ctr4 ip saddr . ip daddr . meta l4proto . th dport vmap @out_ctr4
///     ip saddr @ctr4 jump deny; ip daddr @ctr4 jump deny                     # step 5
///   }
///   chain from_<id> { ip daddr . meta l4proto . th dport vmap @to4_<id> }
///   chain input { ...; meta l4proto . th dport @published ip saddr . meta l4proto . th dport vmap @ctr_proxy4; ... }
///   chain output { ...; meta mark 0x0 meta mark set ip daddr . meta l4proto . th dport map @proxy_backends4 jump proxy_onward; ... }
///   chain proxy_allowed { ct state new meta mark 0x0 jump proxy_grant; accept }   # Docker's userland proxy
///   chain proxy_grant { meta mark set meta l4proto . th dport map @proxy_ports update @proxy_grants { meta mark }; meta mark set 0x0 }
///   chain proxy_onward { meta skuid 0 meta mark @proxy_grants meta mark set 0x0 accept; meta mark set 0x0 }
/// }
/// table bridge zonegate {                                                   # step 3
///   set bound4 { type ifname . ipv4_addr }
///   set ctr_ports { type ifname }
///   chain prerouting { type filter hook prerouting priority -300;
///     iifname @ctr_ports icmpv6 type { nd-router-advert, nd-redirect } drop   # containers are not routers
///     iifname @ctr_ports icmpv6 type nd-neighbor-advert iifname . icmpv6 target != @bound6 drop
///     iifname @ctr_ports iifname . arp saddr ip != @bound4 drop              # and ND's source, likewise
///     iifname . ip saddr @bound4 accept; ip saddr @addrs4 drop }
/// }
/// ```
public enum RulesetCompiler {
    public static let tableName = "zonegate"
    /// Before Docker's iptables-nft chains (priority 0), so that an early drop saves them work;
    /// an accept here only passes the packet on to them.
    public static let priority: Int32 = -10
    /// The NFLOG group of deny and audit events, read by the daemon.
    public static let logGroup: UInt16 = 1669

    public static func ruleset(_ evaluator: PolicyEvaluator) -> Ruleset {
        CompiledRuleset(evaluator).ruleset
    }

    /// zonegate's tables with their chains, rules and sets, the sets holding only the elements no
    /// single container adds (managed bridges, published ports): `CompiledRuleset` adds the rest.
    static func skeleton(_ elements: VerdictElements, _ inventory: Inventory, defaults: Defaults) -> Ruleset {
        Ruleset(tables: [inetTable(elements, inventory, bridges: managedBridges(inventory), defaults: defaults), bridgeTable()])
    }

    /// The bridges of the `bridges` set: the managed networks' and those containers are on.
    static func managedBridges(_ inventory: Inventory) -> [String] {
        Set(inventory.bridges + inventory.containers.flatMap { $0.attachments.map(\.bridge) }).sorted()
    }

    /// The name of the chain of a source identity.
    static func chainName(_ identity: UInt32) -> String { "from_" + hex(identity) }
    /// The verdict map of a source identity towards containers.
    static func mapName(_ identity: UInt32, _ family: IPFamily) -> String { "to\(family.suffix)_" + hex(identity) }
    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    // MARK: - inet: identities and verdicts

    static func inetTable(_ elements: VerdictElements, _ inventory: Inventory, bridges: [String], defaults: Defaults) -> Table {
        var sets = [NftSet(name: "bridges", keyType: [.ifname], elements: bridges.map { SetElement(.ifname($0)) },
                           comment: "Docker bridges zonegate manages"),
                    NftSet(name: "published", keyType: [.inetProto, .inetService], elements: elements.publishedPorts,
                           comment: "ports Docker publishes on the host: protocol . host port"),
                    NftSet(name: "host_proxy", keyType: [.inetProto, .inetService], dataType: .verdict, elements: elements.hostToPublished,
                           comment: "protocol . published host port -> the verdict of the host's flow to the container behind it"),
                    NftSet(name: "proxy_ports", keyType: [.inetProto, .inetService], dataType: .value(.mark), elements: elements.proxyPorts,
                           comment: "protocol . host port that leads to one container port -> the grant that lets the proxy reach it"),
                    NftSet(name: proxyGrants, keyType: [.mark], flags: [.dynamic, .timeout], timeout: proxyGrantLifetime,
                           comment: "grants of published ports just reached by an allowed flow: the proxy may relay it")]
        for family in IPFamily.allCases {
            sets += [
                NftSet(name: family.containerSet, keyType: [family.addressField], comment: "\(family) addresses of classified containers"),
                NftSet(name: "dispatch\(family.suffix)", keyType: [family.addressField], dataType: .verdict,
                       comment: "container address -> the chain of its identity"),
                verdictMap("ctr_out\(family.suffix)", [family.addressField, family.addressField], "container . outside address . protocol . port"),
                verdictMap("out_ctr\(family.suffix)", [family.addressField, family.addressField], "outside address . container . protocol . port"),
                verdictMap("ctr_host\(family.suffix)", [family.addressField], "container . protocol . port, towards the host"),
                verdictMap("host_ctr\(family.suffix)", [family.addressField], "container . protocol . port, from the host"),
                NftSet(name: "ctr_proxy\(family.suffix)", keyType: [family.addressField, .inetProto, .inetService], dataType: .verdict,
                       comment: "container . protocol . published host port -> the verdict of the flow to the container behind it"),
                NftSet(name: "out_proxy\(family.suffix)", keyType: [family.addressField, .inetProto, .inetService], dataType: .verdict,
                       flags: .interval, elements: elements.outsideToPublished(family),
                       comment: "outside address . protocol . published host port -> the verdict of the flow to the container behind it"),
                NftSet(name: "proxy_backends\(family.suffix)", keyType: [family.addressField, .inetProto, .inetService], dataType: .value(.mark),
                       elements: elements.proxyBackends(family),
                       comment: "container . protocol . port behind a published port -> the grant that lets the proxy reach it"),
            ]
            for identity in elements.containerIdentities {
                sets.append(verdictMap(mapName(identity, family), [family.addressField],
                                       "from \(elements.summary(of: identity)): container . protocol . port"))
            }
        }
        var chains = [
            Chain(name: "forward", hook: BaseChainHook(hook: .forward, priority: priority), rules: forwardRules()),
            Chain(name: "input", hook: BaseChainHook(hook: .input, priority: priority), rules: inputRules()),
            Chain(name: "output", hook: BaseChainHook(hook: .output, priority: priority), rules: outputRules()),
            Chain(name: "deny", rules: denyRules(defaults)),
            Chain(name: "audit", rules: auditRules(defaults)),
        ] + proxyChains()
        for identity in elements.containerIdentities {
            let summary = elements.summary(of: identity)
            chains.append(Chain(name: chainName(identity), rules: IPFamily.allCases.map { family in
                // ip daddr . meta l4proto . th dport vmap @to4_<id>
                Rule(NftMatch.nfproto(family) + NftMatch.flowKey([.destination], family) + [NftMatch.verdictLookup(mapName(identity, family))],
                     comment: "step 4: flows from \(summary) to containers")
            }))
        }
        return Table(family: .inet, name: tableName, chains: chains, sets: sets)
    }

    private static func verdictMap(_ name: String, _ addresses: [KeyField], _ what: String) -> NftSet {
        NftSet(name: name, keyType: addresses + [.inetProto, .inetService], dataType: .verdict, flags: .interval,
               comment: "\(what) -> allowed or audited")
    }

    static func forwardRules() -> [Rule] {
        var rules = established + neighbourDiscovery(fromContainers: true)
        for family in IPFamily.allCases {
            rules += failClosed(family, inbound: true) + failClosed(family, inbound: false)
            let isContainer = { (side: NftMatch.Side) in NftMatch.address(family, side, in: family.containerSet) }
            let notContainer = { (side: NftMatch.Side) in NftMatch.address(family, side, notIn: family.containerSet) }
            rules += [
                // ip saddr @ctr4 ip daddr @ctr4 ip saddr vmap @dispatch4
                Rule(NftMatch.nfproto(family) + isContainer(.source) + isContainer(.destination)
                        + NftMatch.addressVerdict(family, .source, map: "dispatch\(family.suffix)"),
                     comment: "step 4: container -> container, by the source's identity (\(family))"),
                // ip saddr @ctr4 ip daddr != @ctr4 ip saddr . ip daddr . meta l4proto . th dport vmap @ctr_out4
                Rule(NftMatch.nfproto(family) + isContainer(.source) + notContainer(.destination)
                        + NftMatch.flowKey([.source, .destination], family) + [NftMatch.verdictLookup("ctr_out\(family.suffix)")],
                     comment: "step 4: container -> outside address (\(family))"),
                // ip saddr != @ctr4 ip daddr @ctr4 ip saddr . ip daddr . meta l4proto . th dport vmap @out_ctr4
                Rule(NftMatch.nfproto(family) + notContainer(.source) + isContainer(.destination)
                        + NftMatch.flowKey([.source, .destination], family) + [NftMatch.verdictLookup("out_ctr\(family.suffix)")],
                     comment: "step 4: outside address -> container (\(family))"),
            ]
            rules += denyManaged(family, source: true) + denyManaged(family, source: false)
        }
        return rules
    }

    static func inputRules() -> [Rule] {
        var rules = established + neighbourDiscovery(fromContainers: true)
        // Connections that reach Docker's userland proxy are judged as the flow to the container
        // behind the port, so that only judged flows leave the proxy a grant.
        // iifname "lo" meta l4proto . th dport @published meta l4proto . th dport vmap @host_proxy
        // iifname "lo" meta l4proto . th dport @published jump deny
        let fromHostToPublished = NftMatch.interfaceIs(.iifname, "lo") + NftMatch.portKey + [NftMatch.isPublished]
        rules.append(Rule(fromHostToPublished + NftMatch.portKey + [NftMatch.verdictLookup("host_proxy")],
                          comment: "step 4: host -> a published port through Docker's userland proxy, judged as the flow to the container behind it"))
        rules.append(Rule(fromHostToPublished + [.verdict(.jump("deny"))], comment: "step 5: that flow is denied"))
        for family in IPFamily.allCases {
            rules += failClosed(family, inbound: true)
            // meta nfproto ipv4 ip saddr @ctr4 meta l4proto . th dport @published ip saddr . meta l4proto . th dport vmap @ctr_proxy4
            // meta nfproto ipv4 ip saddr @ctr4 meta l4proto . th dport @published jump deny
            // (and ip saddr != @ctr4 ... vmap @out_proxy4 for outside addresses)
            for (container, map, who) in [(true, "ctr_proxy", "container"), (false, "out_proxy", "outside address")] {
                let toPublished = NftMatch.nfproto(family)
                    + (container ? NftMatch.address(family, .source, in: family.containerSet) : NftMatch.address(family, .source, notIn: family.containerSet))
                    + NftMatch.portKey + [NftMatch.isPublished]
                rules.append(Rule(toPublished + NftMatch.flowKey([.source], family) + [NftMatch.verdictLookup(map + family.suffix)],
                                  comment: "step 4: \(who) -> a published port via Docker's userland proxy, judged as the flow to the container behind it (\(family))"))
                rules.append(Rule(toPublished + [.verdict(.jump("deny"))],
                                  comment: "step 5: that flow is denied: publishing a port is no way around a restricted zone (\(family))"))
            }
            // ip saddr . meta l4proto . th dport vmap @ctr_host4
            rules.append(Rule(NftMatch.nfproto(family) + NftMatch.flowKey([.source], family) + [NftMatch.verdictLookup("ctr_host\(family.suffix)")],
                              comment: "step 4: container -> host (\(family))"))
            rules += denyManaged(family, source: true)
        }
        return rules
    }

    static func outputRules() -> [Rule] {
        var rules = established + neighbourDiscovery(fromContainers: false)
        for family in IPFamily.allCases {
            rules += failClosed(family, inbound: false)
            // meta mark 0x0 meta mark set ip daddr . meta l4proto . th dport map @proxy_backends4 jump proxy_onward
            rules.append(Rule(NftMatch.nfproto(family) + NftMatch.markIsUnset + NftMatch.flowKey([.destination], family)
                                + [.lookup(set: "proxy_backends\(family.suffix)", sreg: .reg32(0), dreg: .reg1, invert: false),
                                   .metaSet(key: .mark, sreg: .reg1), .verdict(.jump(proxyOnward))],
                              comment: "step 4: to a container behind a published port: is it the proxy relaying an allowed flow? (\(family))"))
            // ip daddr . meta l4proto . th dport vmap @host_ctr4
            rules.append(Rule(NftMatch.nfproto(family) + NftMatch.flowKey([.destination], family) + [NftMatch.verdictLookup("host_ctr\(family.suffix)")],
                              comment: "step 4: host -> container (\(family))"))
            rules += denyManaged(family, source: false)
        }
        return rules
    }

    // MARK: - Docker's userland proxy

    /// docker-proxy relays a connection to a published port with a connection of its own, from
    /// the host: policy.md judges the pair as the flow to the container behind the port. The
    /// kernel does not link the two, so the first, judged at input whoever its client is, leaves
    /// a grant keyed by the mark of that container port; the second, at output, carries the mark
    /// of the container port it goes to and passes if a grant is there. The packet mark is the one
    /// carrier nft has between statements; it is used only while it is 0 and put back to 0 at
    /// once, so no other table sees it (a packet marked by another firewall is judged without a
    /// grant: as the host's). A grant lives `proxyGrantLifetime` after the last allowed new
    /// connection through it, and within it any connection a root process on the host opens to
    /// that container port passes (docker-proxy runs as root; other users' connections are judged
    /// as the host's). Any full change flushes the grants (`diff`).
    static let proxyGrants = "proxy_grants"
    static let proxyAllowed = "proxy_allowed"
    static let proxyAudited = "proxy_audited"
    static let proxyGrant = "proxy_grant"
    static let proxyOnward = "proxy_onward"
    /// How long a grant lasts, in milliseconds; docker-proxy dials the container as soon as it accepts.
    public static let proxyGrantLifetime: UInt64 = 5000

    static func proxyChains() -> [Chain] {
        // ct state new meta mark 0x0 jump proxy_grant
        let grant = Rule(NftMatch.ctStateNew + NftMatch.markIsUnset + [.verdict(.jump(proxyGrant))],
                         comment: "a new connection the userland proxy will relay: grant it")
        return [
            Chain(name: proxyAllowed, rules: [grant, Rule([.verdict(.accept)], comment: "step 4: allowed")]),
            Chain(name: proxyAudited, rules: [grant, Rule([.verdict(.jump("audit"))], comment: "step 5: audit mode")]),
            // Entered with the mark at 0 only, so putting it back to 0 restores it.
            Chain(name: proxyGrant, rules: [
                // meta mark set meta l4proto . th dport map @proxy_ports update @proxy_grants { meta mark }
                // (the mark is loaded again for the key: how nft writes `update @set { meta mark }`)
                Rule(NftMatch.portKey + [.lookup(set: "proxy_ports", sreg: .reg32(0), dreg: .reg1, invert: false), .metaSet(key: .mark, sreg: .reg1),
                                         .meta(key: .mark, dreg: .reg1), .dynset(op: .update, set: proxyGrants, sreg: .reg1)],
                     comment: "grant: the userland proxy may relay this flow to the container behind the port"),
                // meta mark set 0x0
                Rule(NftMatch.unsetMark, comment: "the mark back to 0"),
            ]),
            Chain(name: proxyOnward, rules: [
                // meta skuid 0 meta mark @proxy_grants meta mark set 0x0 accept
                Rule([.meta(key: .skuid, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [0, 0, 0, 0]),
                      .meta(key: .mark, dreg: .reg1), .lookup(set: proxyGrants, sreg: .reg1, dreg: nil, invert: false)]
                        + NftMatch.unsetMark + [.verdict(.accept)],
                     comment: "step 4: the userland proxy (root, as dockerd runs it) relaying a flow allowed at input"),
                // meta mark set 0x0
                Rule(NftMatch.unsetMark, comment: "no grant: the host's own connection, judged as host -> container"),
            ]),
        ]
    }

    /// `ct state established,related accept`.
    static let established = [
        Rule(NftMatch.ctStateEstablishedOrRelated + [.verdict(.accept)], comment: "step 1: replies within allowed connections pass"),
    ]

    /// IPv6 neighbour discovery, let through ahead of step 2 (it goes to multicast addresses no
    /// container holds), never leaving the link (hop limit 255). Only types that cannot move
    /// traffic to another identity pass early:
    /// - neighbour solicitation (135) and advertisement (136), from a classified container's
    ///   address (`ip6 saddr @ctr6`), which the bridge table binds to its port, and whose
    ///   advertised target the bridge table binds too: a container resolves and announces only
    ///   itself. DAD (from ::) and link-local senders do not pass: containers' link-local traffic
    ///   is dropped anyway, and Docker, not DAD, keeps addresses unique.
    /// - not router solicitation (133): asks a router for an advertisement, and containers are
    ///   not routers; judged (and so dropped) as any other packet.
    /// - not router advertisement (134) nor redirect (137): they install routes and redirect
    ///   traffic through their sender. Containers are not routers: dropped per frame in the
    ///   bridge table, and here they fall to step 2 (a link-local source no container holds).
    /// The host's own (output) may send all five: it is the link's router.
    static func neighbourDiscovery(fromContainers: Bool) -> [Rule] {
        if fromContainers {
            // meta nfproto ipv6 ip6 hoplimit 255 icmpv6 type 135-136 ip6 saddr @ctr6 accept
            return [Rule(NftMatch.nfproto(.v6) + NftMatch.onLinkOnly + NftMatch.icmpv6Types(135...136)
                            + NftMatch.address(.v6, .source, in: IPFamily.v6.containerSet) + [.verdict(.accept)],
                         comment: "IPv6 neighbour solicitation and advertisement from a classified container stay on the link")]
        }
        // meta nfproto ipv6 ip6 hoplimit 255 icmpv6 type 133-137 accept
        return [Rule(NftMatch.nfproto(.v6) + NftMatch.onLinkOnly + NftMatch.icmpv6Types(133...137) + [.verdict(.accept)],
                     comment: "the host's IPv6 neighbour and router discovery: the host is the link's router")]
    }

    /// Step 2: on a managed bridge, an address that no classified container holds sends nothing
    /// (`inbound`: packets arriving from a bridge) and receives nothing.
    static func failClosed(_ family: IPFamily, inbound: Bool) -> [Rule] {
        let side: NftMatch.Side = inbound ? .source : .destination
        var rules: [Rule] = []
        // iifname @bridges ip saddr != @ctr4 drop   /   oifname @bridges ip daddr != @ctr4 drop
        rules.append(Rule(NftMatch.interfaceInSet(inbound ? .iifname : .oifname, "bridges") + NftMatch.nfproto(family)
                            + NftMatch.address(family, side, notIn: family.containerSet) + [.counter, .verdict(.drop)],
                          comment: inbound ? "step 2: an address no classified container holds sends nothing"
                                           : "step 2: an address no classified container holds receives nothing"))
        return rules
    }

    /// Step 5: what involves a managed container and found no verdict is denied.
    static func denyManaged(_ family: IPFamily, source: Bool) -> [Rule] {
        // ip saddr @ctr4 jump deny   /   ip daddr @ctr4 jump deny
        [Rule(NftMatch.nfproto(family) + NftMatch.address(family, source ? .source : .destination, in: family.containerSet)
                + [.verdict(.jump("deny"))],
              comment: "step 5: no rule and a restricted side: denied")]
    }

    static func denyRules(_ defaults: Defaults) -> [Rule] {
        var rules: [Rule] = []
        if defaults.logDenied {
            // ct state new limit rate 50/second burst 100 packets log prefix "zonegate deny " group 1669
            rules.append(Rule(NftMatch.ctStateNew + [.limit(rate: 50, unit: .second, burst: 100, over: false),
                                                     .log(prefix: LoggedFlow.Kind.deny.logPrefix, group: logGroup, level: nil)],
                              comment: "step 7: one event per denied new flow, rate-limited"))
        }
        switch defaults.action {
        case .drop:
            rules.append(Rule([.counter, .verdict(.drop)], comment: "defaults.action: drop"))
        case .reject:
            // meta l4proto tcp reject with tcp reset; reject with icmpx admin-prohibited
            rules.append(Rule([.meta(key: .l4proto, dreg: .reg1), .cmp(op: .eq, sreg: .reg1, data: [6]), .counter, .reject(.tcpReset)],
                              comment: "defaults.action: reject (TCP reset)"))
            rules.append(Rule([.counter, .reject(.icmpx(.adminProhibited))], comment: "defaults.action: reject (ICMP error)"))
        }
        return rules
    }

    static func auditRules(_ defaults: Defaults) -> [Rule] {
        var rules: [Rule] = []
        if defaults.logDenied {
            rules.append(Rule(NftMatch.ctStateNew + [.limit(rate: 50, unit: .second, burst: 100, over: false),
                                                     .log(prefix: LoggedFlow.Kind.audit.logPrefix, group: logGroup, level: nil)],
                              comment: "step 7: one event per would-be-denied new flow, rate-limited"))
        }
        rules.append(Rule([.counter, .verdict(.accept)], comment: "audit mode: would be denied, passes"))
        return rules
    }

    // MARK: - bridge: addresses bound to ports

    /// The bridge-table set of classified containers' bridge ports.
    static let containerPorts = "ctr_ports"

    /// Step 3: a container's addresses are bound to its bridge port. A frame that carries a
    /// classified address from another port is a spoof (or a new container reusing a departed
    /// one's address before it is classified) and is dropped, ARP included; frames for a
    /// classified address reach only the port that holds it. From a classified container's port,
    /// link claims (ARP, neighbour discovery) are about its own addresses only, and router
    /// advertisements and redirects are dropped: containers are not routers. Other bridges'
    /// frames (not Docker's, or ports zonegate has not classified) meet only the address checks;
    /// the inet table fails closed on unclassified senders.
    static func bridgeTable() -> Table {
        var sets: [NftSet] = [NftSet(name: containerPorts, keyType: [.ifname], comment: "bridge ports of classified containers")]
        for family in IPFamily.allCases {
            sets.append(NftSet(name: "addrs\(family.suffix)", keyType: [family.addressField], comment: "\(family) addresses bound to a bridge port"))
            sets.append(NftSet(name: "bound\(family.suffix)", keyType: [.ifname, family.addressField],
                               comment: "bridge port . \(family) address of each classified container"))
        }
        let fromContainer = NftMatch.interfaceInSet(.iifname, containerPorts)
        var ingress: [Rule] = [
            // meta protocol ip6 iifname @ctr_ports icmpv6 type nd-router-advert counter drop
            // meta protocol ip6 iifname @ctr_ports icmpv6 type nd-redirect counter drop
            // (an advertisement installs routes through its sender, a redirect diverts a flow to it)
            Rule(NftMatch.etherType(.v6) + fromContainer + NftMatch.icmpv6Types(134...134) + [.counter, .verdict(.drop)],
                 comment: "containers are not routers: a router advertisement from a container"),
            Rule(NftMatch.etherType(.v6) + fromContainer + NftMatch.icmpv6Types(137...137) + [.counter, .verdict(.drop)],
                 comment: "containers are not routers: a redirect from a container"),
            // meta protocol ip6 iifname @ctr_ports icmpv6 type 133-136 iifname . ip6 saddr != @bound6 counter drop
            // (a solicitation teaches its receivers the sender's address: only its own; DAD's :: and
            // link-local senders have nothing to resolve between containers)
            Rule(NftMatch.etherType(.v6) + fromContainer + NftMatch.icmpv6Types(133...136)
                    + NftMatch.portBinding(.v6, .source, notIn: "bound6") + [.counter, .verdict(.drop)],
                 comment: "step 3: neighbour discovery from a container, from an address that is not its own"),
            // meta protocol ip6 iifname @ctr_ports icmpv6 type nd-neighbor-advert iifname . icmpv6 target != @bound6 counter drop
            Rule(NftMatch.etherType(.v6) + fromContainer + NftMatch.neighbourAdvertisement
                    + NftMatch.advertisedTargetBinding(notIn: "bound6") + [.counter, .verdict(.drop)],
                 comment: "step 3: a neighbour advertisement from a container for an address that is not its own (the gateway's, another's)"),
            // meta protocol arp iifname @ctr_ports iifname . arp saddr ip != @bound4 counter drop
            Rule(NftMatch.etherTypeARP + fromContainer + NftMatch.arpBinding(notIn: "bound4") + [.counter, .verdict(.drop)],
                 comment: "step 3: ARP from a container for an address that is not its own (the gateway's, another's)"),
        ]
        // Neighbour advertisements and ARP first: a frame from the port that holds its source
        // address is accepted below, and their claims are in their payload.
        // meta protocol ip6 icmpv6 type nd-neighbor-advert icmpv6 target @addrs6 iifname . icmpv6 target != @bound6 drop
        ingress.append(Rule(NftMatch.etherType(.v6) + NftMatch.neighbourAdvertisement + NftMatch.advertisedTarget(in: "addrs6")
                                + NftMatch.advertisedTargetBinding(notIn: "bound6") + [.counter, .verdict(.drop)],
                            comment: "step 3: IPv6 neighbour advertisement claiming a classified address from a port that does not hold it"))
        // meta protocol arp arp saddr ip @addrs4 iifname . arp saddr ip != @bound4 drop
        ingress.append(Rule(NftMatch.etherTypeARP + NftMatch.arpSenderAddress(in: "addrs4")
                                + NftMatch.arpBinding(notIn: "bound4") + [.counter, .verdict(.drop)],
                            comment: "step 3: ARP claiming a classified address from a port that does not hold it"))
        var egress: [Rule] = []
        // A container's own frames pass on one lookup; only the rest look up the address alone.
        for family in IPFamily.allCases {
            // meta protocol ip iifname . ip saddr @bound4 accept
            ingress.append(Rule(NftMatch.etherType(family) + NftMatch.portBinding(family, .source, in: "bound\(family.suffix)") + [.verdict(.accept)],
                                comment: "step 3: a classified \(family) address from the port that holds it"))
            // meta protocol ip ip saddr @addrs4 drop
            ingress.append(Rule(NftMatch.etherType(family) + NftMatch.address(family, .source, in: "addrs\(family.suffix)") + [.counter, .verdict(.drop)],
                                comment: "step 3: a classified \(family) address sent from a port that does not hold it"))
            // meta protocol ip oifname . ip daddr @bound4 accept
            egress.append(Rule(NftMatch.etherType(family) + NftMatch.portBinding(family, .destination, in: "bound\(family.suffix)") + [.verdict(.accept)],
                               comment: "a classified \(family) address delivered to the port that holds it"))
            // meta protocol ip ip daddr @addrs4 drop
            egress.append(Rule(NftMatch.etherType(family) + NftMatch.address(family, .destination, in: "addrs\(family.suffix)") + [.counter, .verdict(.drop)],
                               comment: "a classified \(family) address is only delivered to the port that holds it"))
        }
        return Table(family: .bridge, name: tableName, chains: [
            Chain(name: "prerouting", hook: BaseChainHook(hook: .prerouting, priority: -300), rules: ingress),
            Chain(name: "postrouting", hook: BaseChainHook(hook: .postrouting, priority: 300), rules: egress),
        ], sets: sets)
    }
}

/// IPv4 or IPv6, with the names and offsets that differ between them.
enum IPFamily: CaseIterable, CustomStringConvertible {
    case v4, v6

    var description: String { self == .v4 ? "IPv4" : "IPv6" }
    var suffix: String { self == .v4 ? "4" : "6" }
    var containerSet: String { "ctr\(suffix)" }
    var addressField: KeyField { self == .v4 ? .ipv4Addr : .ipv6Addr }
    var addressLength: UInt32 { self == .v4 ? 4 : 16 }
    /// Offsets of the source and destination address in the IP header.
    var sourceOffset: UInt32 { self == .v4 ? 12 : 8 }
    var destinationOffset: UInt32 { self == .v4 ? 16 : 24 }
    /// `NFPROTO_IPV4` / `NFPROTO_IPV6`.
    var nfproto: UInt8 { self == .v4 ? 2 : 10 }
    /// The ethertype, network order.
    var etherType: [UInt8] { self == .v4 ? [0x08, 0x00] : [0x86, 0xdd] }
}
