/// An nftables address family; the raw value is the kernel's `NFPROTO_*` number.
public enum Family: UInt8, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case inet = 1
    case ip = 2
    case netdev = 5
    case bridge = 7
    case ip6 = 10

    /// The family as nft spells it.
    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .netdev: "netdev"
        case .bridge: "bridge"
        case .ip6: "ip6"
        }
    }
}

/// Every table a program owns, as one value: what the kernel has or should have.
public struct Ruleset: Sendable, Hashable, Codable {
    public var tables: [Table]

    public init(tables: [Table] = []) {
        self.tables = tables
    }

    /// Tables compare as a set: the kernel lists them in creation order.
    public static func == (lhs: Ruleset, rhs: Ruleset) -> Bool { Set(lhs.tables) == Set(rhs.tables) }
    public func hash(into hasher: inout Hasher) { hasher.combine(Set(tables)) }

    /// The table of `family` named `name`, if present.
    public func table(_ family: Family, _ name: String) -> Table? {
        tables.first { $0.family == family && $0.name == name }
    }
}

/// Identifies a table: nft names tables per family.
public struct TableID: Sendable, Hashable, Codable, CustomStringConvertible {
    public var family: Family
    public var name: String

    public init(_ family: Family, _ name: String) {
        self.family = family
        self.name = name
    }

    public var description: String { "\(family) \(name)" }
}

/// An nftables table (`NFTA_TABLE_*`). Chains and sets compare as sets: the
/// kernel lists them in creation order, which a re-created set or chain changes.
public struct Table: Sendable, Hashable, Codable {
    public var family: Family
    public var name: String
    /// `NFTA_TABLE_FLAGS` (`NFT_TABLE_F_DORMANT`, ...).
    public var flags: UInt32
    public var chains: [Chain]
    public var sets: [NftSet]

    public init(family: Family, name: String, flags: UInt32 = 0, chains: [Chain] = [], sets: [NftSet] = []) {
        self.family = family
        self.name = name
        self.flags = flags
        self.chains = chains
        self.sets = sets
    }

    public var id: TableID { TableID(family, name) }

    public static func == (lhs: Table, rhs: Table) -> Bool {
        lhs.id == rhs.id && lhs.flags == rhs.flags && Set(lhs.chains) == Set(rhs.chains) && Set(lhs.sets) == Set(rhs.sets)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(Set(chains))
        hasher.combine(Set(sets))
    }

    public func chain(_ name: String) -> Chain? { chains.first { $0.name == name } }
    public func set(_ name: String) -> NftSet? { sets.first { $0.name == name } }
}

/// An nftables chain (`NFTA_CHAIN_*`): a base chain when `hook` is set, otherwise
/// a regular chain reached by `jump`/`goto`.
public struct Chain: Sendable, Hashable, Codable {
    public var name: String
    public var hook: BaseChainHook?
    public var rules: [Rule]

    public init(name: String, hook: BaseChainHook? = nil, rules: [Rule] = []) {
        self.name = name
        self.hook = hook
        self.rules = rules
    }
}

/// Where a base chain attaches (`NFTA_CHAIN_HOOK`, `NFTA_CHAIN_TYPE`, `NFTA_CHAIN_POLICY`).
public struct BaseChainHook: Sendable, Hashable, Codable {
    /// A netfilter hook; the raw value is the kernel's `NF_INET_*` / `NF_NETDEV_*` number.
    public enum Hook: UInt32, Sendable, Hashable, Codable {
        case prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4
        /// `NF_NETDEV_INGRESS` shares the value of `NF_INET_PRE_ROUTING`; only netdev uses it.
        case ingress = 5

        /// The kernel hook number; netdev's ingress is 0 there.
        public var kernelNumber: UInt32 { self == .ingress ? 0 : rawValue }
    }

    /// The chain type nft names in `type filter hook ...`.
    public enum ChainType: String, Sendable, Hashable, Codable {
        case filter, nat, route
    }

    /// A base chain's default verdict; the raw value is `NF_DROP`/`NF_ACCEPT`.
    public enum Policy: UInt32, Sendable, Hashable, Codable {
        case drop = 0, accept = 1
    }

    public var hook: Hook
    public var priority: Int32
    public var type: ChainType
    public var policy: Policy

    public init(hook: Hook, priority: Int32 = 0, type: ChainType = .filter, policy: Policy = .accept) {
        self.hook = hook
        self.priority = priority
        self.type = type
        self.policy = policy
    }
}

/// One rule: expressions evaluated in order, and the comment nft shows
/// (`NFTA_RULE_USERDATA`, TLV `NFTNL_UDATA_RULE_COMMENT`).
public struct Rule: Sendable, Hashable, Codable {
    public var expressions: [Expression]
    public var comment: String?

    public init(_ expressions: [Expression], comment: String? = nil) {
        self.expressions = expressions
        self.comment = comment
    }
}
