import ZonegatePolicy

/// The first packet of a denied (or would-be-denied) new flow, as the `deny` and `audit` chains
/// log it to NFLOG group `RulesetCompiler.logGroup` (policy.md step 7). A plain value, so that the
/// daemon formats events without seeing netlink.
public struct LoggedFlow: Hashable, Sendable {
    /// Which chain logged the packet.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// Dropped or rejected.
        case deny
        /// Would be denied, but only zones in audit mode restrict it: it passed.
        case audit

        /// The `log prefix` of the chain's rule; the NFLOG message carries it back.
        public var logPrefix: String { "zonegate \(rawValue) " }

        /// The kind whose prefix `prefix` is (a trailing NUL or space is ignored); nil for other prefixes.
        public init?(logPrefix prefix: String) {
            let trimmed = prefix.prefix { $0 != "\0" }
            guard let kind = Kind.allCases.first(where: { $0.logPrefix == trimmed || $0.logPrefix.dropLast() == trimmed }) else { return nil }
            self = kind
        }
    }

    /// The IP protocol of the packet.
    public enum Transport: Hashable, Sendable, CustomStringConvertible {
        case tcp, udp, sctp, icmp, icmpv6
        /// Any other protocol (or an IPv6 extension header not followed further), by number.
        case other(UInt8)

        public init(number: UInt8) {
            switch number {
            case 6: self = .tcp
            case 17: self = .udp
            case 132: self = .sctp
            case 1: self = .icmp
            case 58: self = .icmpv6
            default: self = .other(number)
            }
        }

        public var number: UInt8 {
            switch self {
            case .tcp: 6
            case .udp: 17
            case .sctp: 132
            case .icmp: 1
            case .icmpv6: 58
            case .other(let number): number
            }
        }

        /// Whether the packet's first transport bytes are source and destination ports.
        public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp }

        /// `tcp`, `icmpv6`, or `proto 47`.
        public var description: String {
            switch self {
            case .tcp: "tcp"
            case .udp: "udp"
            case .sctp: "sctp"
            case .icmp: "icmp"
            case .icmpv6: "icmpv6"
            case .other(let number): "proto \(number)"
            }
        }
    }

    public var kind: Kind
    public var source: IPAddress
    public var destination: IPAddress
    public var transport: Transport
    /// 0 when the protocol has no ports or the packet was cut before them.
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The interface the packet came in on: the bridge port (a container's veth) when bridged.
    public var inInterface: String?
    /// The interface it was going out on: the bridge port when bridged.
    public var outInterface: String?

    public init(kind: Kind, source: IPAddress, destination: IPAddress, transport: Transport,
                sourcePort: UInt16 = 0, destinationPort: UInt16 = 0, inInterface: String? = nil, outInterface: String? = nil) {
        self.kind = kind
        self.source = source
        self.destination = destination
        self.transport = transport
        self.sourcePort = transport.hasPorts ? sourcePort : 0
        self.destinationPort = transport.hasPorts ? destinationPort : 0
        self.inInterface = inInterface
        self.outInterface = outInterface
    }

    /// The flow's port as the policy names it; nil for protocols no rule can name.
    public var servicePort: ServicePort? {
        switch transport {
        case .tcp: ServicePort(destinationPort, .tcp)
        case .udp: ServicePort(destinationPort, .udp)
        case .sctp: ServicePort(destinationPort, .sctp)
        case .icmp, .icmpv6: ServicePort(0, .icmp)
        case .other: nil
        }
    }
}

/// What a flow-log reader delivers: a logged flow, or a count of flows the kernel logged that
/// never reached the reader (its socket overflowed during a flood).
public enum FlowLogRecord: Hashable, Sendable {
    case flow(LoggedFlow)
    case lost(Int)
}
