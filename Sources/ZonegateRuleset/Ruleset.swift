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
///
/// A chain read back from the kernel may carry values zonegate does not model (another tool's
/// hook, a newer kernel's type): they decode as `foreign`, never as a known value, so that such
/// a chain equals no chain zonegate wants, the diff rewrites it and `verify` names it.
public struct BaseChainHook: Sendable, Hashable, Codable {
    /// A netfilter hook.
    public enum Hook: Sendable, Hashable, Codable, CustomStringConvertible {
        /// `NF_INET_*` (and the bridge family's `NF_BR_*`, numbered alike).
        case prerouting, input, forward, output, postrouting
        /// `NF_NETDEV_INGRESS`: netdev's hook 0.
        case ingress
        /// A hook number zonegate does not model, as the kernel reported it.
        case foreign(UInt32)

        private static let inetHooks: [Hook] = [.prerouting, .input, .forward, .output, .postrouting]

        /// The hook a kernel number names in `family`: netdev numbers its hooks apart.
        public init(kernelNumber: UInt32, family: Family) {
            if family == .netdev {
                self = kernelNumber == 0 ? .ingress : .foreign(kernelNumber)
            } else {
                self = Self.inetHooks.indices.contains(Int(kernelNumber)) ? Self.inetHooks[Int(kernelNumber)] : .foreign(kernelNumber)
            }
        }

        /// The kernel hook number; netdev's ingress is 0 there.
        public var kernelNumber: UInt32 {
            switch self {
            case .ingress: 0
            case .foreign(let number): number
            default: UInt32(Self.inetHooks.firstIndex(of: self)!)
            }
        }

        /// nft's name; `<foreign N>` for a hook zonegate does not know.
        public var description: String {
            switch self {
            case .prerouting: "prerouting"
            case .input: "input"
            case .forward: "forward"
            case .output: "output"
            case .postrouting: "postrouting"
            case .ingress: "ingress"
            case .foreign(let number): "<foreign \(number)>"
            }
        }
    }

    /// The chain type nft names in `type filter hook ...`.
    public enum ChainType: Sendable, Hashable, Codable, CustomStringConvertible {
        case filter, nat, route
        /// A type zonegate does not model, by the name the kernel reported (nil: it named none).
        case foreign(String?)

        public init(name: String?) {
            switch name {
            case "filter": self = .filter
            case "nat": self = .nat
            case "route": self = .route
            default: self = .foreign(name)
            }
        }

        /// The name the kernel knows it by; nil when it reported none.
        public var name: String? {
            switch self {
            case .filter: "filter"
            case .nat: "nat"
            case .route: "route"
            case .foreign(let name): name
            }
        }

        public var description: String {
            if case .foreign(let name) = self { return "<foreign \(name.map { "\"\($0)\"" } ?? "none")>" }
            return name!
        }
    }

    /// A base chain's default verdict.
    public enum Policy: Sendable, Hashable, Codable, CustomStringConvertible {
        /// `NF_DROP` (0).
        case drop
        /// `NF_ACCEPT` (1).
        case accept
        /// A verdict zonegate does not model, as the kernel reported it (nil: it reported none).
        case foreign(UInt32?)

        public init(kernelValue: UInt32?) {
            switch kernelValue {
            case 0: self = .drop
            case 1: self = .accept
            default: self = .foreign(kernelValue)
            }
        }

        /// The kernel's value; nil when the kernel reported none.
        public var kernelValue: UInt32? {
            switch self {
            case .drop: 0
            case .accept: 1
            case .foreign(let value): value
            }
        }

        public var description: String {
            switch self {
            case .drop: "drop"
            case .accept: "accept"
            case .foreign(let value): "<foreign \(value.map(String.init) ?? "none")>"
            }
        }
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

    /// True when the kernel reported a value zonegate does not model: such a hook is never
    /// written, only replaced.
    public var isForeign: Bool {
        if case .foreign = hook { return true }
        if case .foreign = type { return true }
        if case .foreign = policy { return true }
        return false
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
