import ZonegateEngine
import ZonegatePolicy

/// A connection the kernel tracks, as ctnetlink reports it: the original direction and the reply
/// direction (which shows the real destination after Docker's DNAT of a published port).
public struct TrackedConnection: Hashable, Sendable {
    /// IP protocol number (6 tcp, 17 udp, 132 sctp, 1 icmp, 58 icmpv6, ...).
    public var proto: UInt8
    public var originalSource: IPAddress
    public var originalDestination: IPAddress
    public var originalSourcePort: UInt16
    public var originalDestinationPort: UInt16
    public var replySource: IPAddress
    public var replySourcePort: UInt16
    /// For ICMP and ICMPv6 the tuple holds an identifier, type and code instead of ports.
    public var icmp: ICMPKey?

    /// The identifier, type and code of an ICMP connection's original direction.
    public struct ICMPKey: Hashable, Sendable {
        public var identifier: UInt16
        public var type: UInt8
        public var code: UInt8

        public init(identifier: UInt16, type: UInt8, code: UInt8) {
            self.identifier = identifier
            self.type = type
            self.code = code
        }
    }

    public init(proto: UInt8, originalSource: IPAddress, originalDestination: IPAddress, originalSourcePort: UInt16,
                originalDestinationPort: UInt16, replySource: IPAddress, replySourcePort: UInt16, icmp: ICMPKey? = nil) {
        self.icmp = icmp
        self.proto = proto
        self.originalSource = originalSource
        self.originalDestination = originalDestination
        self.originalSourcePort = originalSourcePort
        self.originalDestinationPort = originalDestinationPort
        self.replySource = replySource
        self.replySourcePort = replySourcePort
    }
}

/// Step 6 of policy.md: after a change, the tracked connections whose flow the new policy denies
/// are ended, so a revoked flow does not live on in conntrack.
public enum Revocation {
    /// The connections to delete: those touching a managed container whose flow (source, real
    /// destination, its port) is now denied. Audited flows pass, so they are kept.
    public static func connectionsToEnd(_ connections: [TrackedConnection], under evaluator: PolicyEvaluator,
                                        hostAddresses: Set<IPAddress>) -> [TrackedConnection] {
        func peer(_ address: IPAddress) -> Peer {
            hostAddresses.contains(address) ? .host : evaluator.peer(at: address)
        }
        return connections.filter { connection in
            guard let port = servicePort(connection) else { return false }
            let decision = evaluator.decide(from: peer(connection.originalSource), to: peer(connection.replySource), port: port)
            return !decision.untouched && decision.verdict == .deny
        }
    }

    /// The destination port as the policy sees it: the real one, after DNAT.
    private static func servicePort(_ connection: TrackedConnection) -> ServicePort? {
        switch connection.proto {
        case 6: return ServicePort(connection.replySourcePort, .tcp)
        case 17: return ServicePort(connection.replySourcePort, .udp)
        case 132: return ServicePort(connection.replySourcePort, .sctp)
        case 1, 58: return ServicePort(0, .icmp)
        default: return nil
        }
    }
}
