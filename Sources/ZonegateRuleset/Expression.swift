/// A register of the nftables VM, in the kernel's numbering: 0 is the verdict
/// register, 1-4 the legacy 128-bit registers, 8-23 the 32-bit registers
/// `NFT_REG32_00..15` that let a concatenation sit in consecutive registers.
/// The kernel dumps a 32-bit register that starts a 128-bit one under the 128-bit
/// number (`NFT_REG32_00` as `NFT_REG_1`), so values hold that canonical form.
public struct Register: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue >= 8 && (rawValue - 8) % 4 == 0 ? 1 + (rawValue - 8) / 4 : rawValue
    }

    public static let verdict = Register(rawValue: 0)
    /// `NFT_REG_1`, which overlaps `NFT_REG32_00...03`; nft uses it for the first load.
    public static let reg1 = Register(rawValue: 1)

    /// `NFT_REG32_00 + index` (canonical form: `reg32(0)` is `reg1`).
    public static func reg32(_ index: UInt32) -> Register {
        precondition(index < 16, "there are 16 32-bit registers")
        return Register(rawValue: 8 + index)
    }

    /// The 32-bit register this one starts at: `NFT_REG_n` spans four of them.
    public var reg32Index: UInt32 {
        rawValue >= 8 ? rawValue - 8 : (rawValue - 1) * 4
    }

    /// The register `offset` 32-bit words after this one, as nft numbers a concatenation.
    public func advanced(byWords offset: UInt32) -> Register {
        offset == 0 ? self : .reg32(reg32Index + offset)
    }

    public var description: String { "reg \(rawValue)" }
}

/// A verdict (`NFTA_VERDICT_CODE`, `NFTA_VERDICT_CHAIN`).
public enum Verdict: Sendable, Hashable, Codable, CustomStringConvertible {
    case accept, drop, `continue`, `return`
    case jump(String)
    case goto(String)

    /// The chain this verdict enters, if any.
    public var targetChain: String? {
        switch self {
        case .jump(let chain), .goto(let chain): chain
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .accept: "accept"
        case .drop: "drop"
        case .continue: "continue"
        case .return: "return"
        case .jump(let chain): "jump \(chain)"
        case .goto(let chain): "goto \(chain)"
        }
    }
}

/// One nftables expression, named after its netlink expression (`NFTA_EXPR_NAME`);
/// the associated values follow the attributes of that expression.
public enum Expression: Sendable, Hashable, Codable {
    /// `payload`: copy `length` bytes at `offset` of a header into `dreg`.
    case payload(base: PayloadBase, offset: UInt32, length: UInt32, dreg: Register)
    /// `meta`: load packet metadata into `dreg`.
    case meta(key: MetaKey, dreg: Register)
    /// `meta` with a source register: set packet metadata (`meta mark set ...`) from `sreg`.
    case metaSet(key: MetaKey, sreg: Register)
    /// `ct`: load connection-tracking state into `dreg`.
    case ct(key: CtKey, dreg: Register)
    /// `cmp`: compare `sreg` with `data` (network order, as loaded); break the rule if false.
    case cmp(op: CmpOp, sreg: Register, data: [UInt8])
    /// `bitwise`: `dreg = (sreg & mask) ^ xor` over `mask.count` bytes.
    case bitwise(sreg: Register, dreg: Register, mask: [UInt8], xor: [UInt8])
    /// `range`: `sreg` within (or, `.neq`, outside) `from...to`.
    case range(op: RangeOp, sreg: Register, from: [UInt8], to: [UInt8])
    /// `lookup`: `sreg` (and the following registers for a concatenation) in set `set`;
    /// with `dreg` it is a map lookup writing the value (verdict maps write `.verdict`).
    case lookup(set: String, sreg: Register, dreg: Register?, invert: Bool)
    /// `dynset`: add or update the key in `sreg` in set `set` from the packet path; the element
    /// lives for the set's default timeout (`update @set { meta mark }`).
    case dynset(op: DynsetOp, set: String, sreg: Register)
    /// `immediate` with a verdict: the rule's terminal statement.
    case verdict(Verdict)
    /// `immediate` with data: load constant bytes into `dreg`.
    case immediate(dreg: Register, data: [UInt8])
    /// `counter`; its packet and byte counts are not part of the value.
    case counter
    /// `log`: to syslog at `level`, or to NFLOG group `group` when set.
    case log(prefix: String?, group: UInt16?, level: LogLevel?)
    /// `limit`: match while under `rate` per `unit`, or above it when `over`.
    case limit(rate: UInt64, unit: LimitUnit, burst: UInt32, over: Bool)
    /// `reject`.
    case reject(Reject)
    /// An expression zonegate never writes, read back from a table someone else loaded (`nft -f`
    /// writes `byteorder`, for one): it never equals a compiled rule, so its chain is rewritten.
    case foreign(String)
}

extension Expression {
    /// The set a `lookup` or `dynset` names.
    public var referencedSet: String? {
        switch self {
        case .lookup(let set, _, _, _), .dynset(_, let set, _): set
        default: nil
        }
    }
}

/// `NFT_PAYLOAD_*_HEADER`.
public enum PayloadBase: UInt32, Sendable, Hashable, Codable {
    case link = 0, network = 1, transport = 2
}

/// `NFT_META_*` keys zonegate uses; raw values are the kernel's.
public enum MetaKey: UInt32, Sendable, Hashable, Codable, CaseIterable {
    case protocol_ = 1, mark = 3, iif = 4, oif = 5, iifname = 6, oifname = 7, skuid = 10, nfproto = 15, l4proto = 16

    /// The key as nft spells it after `meta`.
    public var nftName: String {
        switch self {
        case .protocol_: "protocol"
        case .mark: "mark"
        case .iif: "iif"
        case .oif: "oif"
        case .iifname: "iifname"
        case .oifname: "oifname"
        case .skuid: "skuid"
        case .nfproto: "nfproto"
        case .l4proto: "l4proto"
        }
    }
}

/// `NFT_CT_*` keys zonegate uses; raw values are the kernel's.
public enum CtKey: UInt32, Sendable, Hashable, Codable, CaseIterable {
    case state = 0, status = 2, mark = 3

    public var nftName: String {
        switch self {
        case .state: "state"
        case .mark: "mark"
        case .status: "status"
        }
    }
}

/// `NFT_DYNSET_OP_*`: what a `dynset` does with its key.
public enum DynsetOp: UInt32, Sendable, Hashable, Codable {
    /// `add @set { key }`: adds the key unless present.
    case add = 0
    /// `update @set { key }`: adds the key, or restarts its timeout.
    case update = 1

    public var nftName: String {
        switch self {
        case .add: "add"
        case .update: "update"
        }
    }
}

/// `NFT_CMP_*`.
public enum CmpOp: UInt32, Sendable, Hashable, Codable {
    case eq = 0, neq, lt, lte, gt, gte

    public var nftSymbol: String {
        switch self {
        case .eq: "=="
        case .neq: "!="
        case .lt: "<"
        case .lte: "<="
        case .gt: ">"
        case .gte: ">="
        }
    }
}

/// `NFT_RANGE_*`.
public enum RangeOp: UInt32, Sendable, Hashable, Codable {
    case eq = 0, neq = 1
}

/// Syslog levels for `log level`; raw values are syslog's.
public enum LogLevel: UInt32, Sendable, Hashable, Codable {
    case emerg = 0, alert, crit, err, warn, notice, info, debug
}

/// `NFT_LIMIT_PKTS` rate units, in seconds per unit.
public enum LimitUnit: UInt64, Sendable, Hashable, Codable {
    case second = 1, minute = 60, hour = 3600, day = 86400, week = 604800
}

/// The `reject` statement's forms (`NFT_REJECT_*`).
public enum Reject: Sendable, Hashable, Codable {
    /// `NFT_REJECT_ICMP_UNREACH` with an ICMP (IPv4 tables) or ICMPv6 (ip6) code.
    case icmpUnreachable(code: UInt8)
    /// `NFT_REJECT_TCP_RST`.
    case tcpReset
    /// `NFT_REJECT_ICMPX_UNREACH`, the family-independent codes of inet/bridge tables.
    case icmpx(ICMPxCode)

    /// `NFT_REJECT_ICMPX_*`.
    public enum ICMPxCode: UInt8, Sendable, Hashable, Codable {
        case noRoute = 0, portUnreachable = 1, hostUnreachable = 2, adminProhibited = 3

        public var nftName: String {
            switch self {
            case .noRoute: "no-route"
            case .portUnreachable: "port-unreachable"
            case .hostUnreachable: "host-unreachable"
            case .adminProhibited: "admin-prohibited"
            }
        }
    }
}
