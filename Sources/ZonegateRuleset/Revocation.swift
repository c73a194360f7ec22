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
    ///
    /// Docker's userland proxy splits a flow in two, as the kernel does at input and output: a
    /// container's or an outside address's connection to a published port on a host address (not
    /// NATed: it reaches docker-proxy) is judged as the flow to the container ports behind that
    /// port (the host's own is the host's flow to them already); a denied
    /// connection from the host to such a container port is kept when it may be the proxy's
    /// relaying a kept one (at most as many as there are kept connections to its published
    /// ports, as only a port with one container behind it gives the proxy a grant).
    public static func connectionsToEnd(_ connections: [TrackedConnection], under evaluator: PolicyEvaluator,
                                        hostAddresses: Set<IPAddress>) -> [TrackedConnection] {
        func peer(_ address: IPAddress) -> Peer {
            hostAddresses.contains(address) ? .host : evaluator.peer(at: address)
        }
        let proxied = Dictionary(uniqueKeysWithValues: publishedBackends(evaluator.inventory).map { key, behind in
            (key, behind.map { Backend(container: $0.container, port: $0.mapping.port) })
        })
        var relayed: [Backend: Int] = [:]
        // Per connection: kept (nil), or ended unless it is the host reaching a container port the
        // proxy may be relaying to.
        let endings = connections.map { connection -> Ending? in
            guard let port = servicePort(connection) else { return nil }
            let source = peer(connection.originalSource), destination = peer(connection.replySource)
            if source != .host, destination == .host, connection.replySourcePort == connection.originalDestinationPort,
               let backends = proxied[ProtocolPort(proto: connection.proto, port: connection.originalDestinationPort)] {
                let decisions = backends.map { evaluator.decide(from: source, to: .container($0.container), port: $0.port) }
                if decisions.contains(where: { !$0.untouched && $0.verdict == .deny }) { return .ends }
                if backends.count == 1 { relayed[backends[0], default: 0] += 1 }
                return nil
            }
            let decision = evaluator.decide(from: source, to: destination, port: port)
            guard !decision.untouched, decision.verdict == .deny else { return nil }
            if source == .host, case .container(let index) = destination {
                return .endsUnlessRelayed(Backend(container: index, port: port))
            }
            return .ends
        }
        return zip(connections, endings).compactMap { connection, ending -> TrackedConnection? in
            switch ending {
            case nil: return nil
            case .ends?: return connection
            case .endsUnlessRelayed(let backend)?:
                guard let count = relayed[backend], count > 0 else { return connection }
                relayed[backend] = count - 1
                return nil
            }
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

/// Why a connection is ended: its flow is denied, or it is the host's to a container port and
/// denied unless docker-proxy is relaying an allowed flow through it.
private enum Ending {
    case ends
    case endsUnlessRelayed(Backend)
}

/// A container (its index in the inventory) and one of its own ports.
private struct Backend: Hashable {
    var container: Int
    var port: ServicePort
}
