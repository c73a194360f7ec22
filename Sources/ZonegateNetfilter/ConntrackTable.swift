import CNftnl
import Glibc
import Synchronization
import ZonegatePolicy

/// The kernel's connection-tracking table through ctnetlink: zonegate reads it and ends the
/// connections a policy change revokes (policy.md step 6). Messages are built and parsed here
/// as plain netlink TLVs; only the socket goes through libmnl.
public final class ConntrackTable: Sendable {
    /// One dump or delete at a time: a reply is matched to its request by the socket's sequence numbers.
    private let socket: Mutex<NetlinkSocket>

    public init() throws {
        socket = Mutex(try NetlinkSocket())
    }

    /// Every tracked IPv4 and IPv6 connection. One dump of both families: the kernel walks its
    /// whole conntrack hash table for a dump (262,144 buckets here, about 12 ms), however few
    /// entries it holds.
    public func connections() throws -> [TrackedConnection] {
        try socket.withLock { socket in
            var result: [TrackedConnection] = []
            let sequence = socket.reserveSequences(1)
            try socket.send(Self.message(type: Self.getMessage, flags: NLM_F_REQUEST | NLM_F_DUMP, sequence: sequence,
                                         family: UInt8(AF_UNSPEC), attributes: []), expectedReplies: 1)
            dump: while true {
                for message in try socket.receive() ?? [] {
                    switch Int32(message.type) {
                    case NLMSG_DONE: break dump
                    case NLMSG_ERROR:
                        if message.ackError != 0 { throw NetfilterError.systemCall("ctnetlink dump", errno: -message.ackError) }
                        break dump
                    default:
                        if let connection = Self.decode(message.bytes) { result.append(connection) }
                    }
                }
            }
            return result
        }
    }

    /// Deletes the connections; those already gone are not an error. Returns how many it ended.
    @discardableResult
    public func end(_ connections: [TrackedConnection]) throws -> Int {
        try socket.withLock { socket in
            var ended = 0
            for connection in connections {
                let family = UInt8(connection.originalSource.isIPv4 ? AF_INET : AF_INET6)
                let sequence = socket.reserveSequences(1)
                try socket.send(Self.message(type: Self.deleteMessage, flags: NLM_F_REQUEST | NLM_F_ACK, sequence: sequence, family: family,
                                             attributes: [Self.nested(Self.tupleOriginal, Self.tuple(connection))]), expectedReplies: 1)
                for message in try socket.receive() ?? [] where Int32(message.type) == NLMSG_ERROR {
                    switch -message.ackError {
                    case 0: ended += 1
                    case ENOENT: break
                    case let error: throw NetfilterError.systemCall("ctnetlink delete", errno: error)
                    }
                }
            }
            return ended
        }
    }

    // MARK: - Wire format (linux/netfilter/nfnetlink_conntrack.h)

    private static let getMessage: UInt16 = UInt16(NFNL_SUBSYS_CTNETLINK) << 8 | 1     // IPCTNL_MSG_CT_GET
    private static let deleteMessage: UInt16 = UInt16(NFNL_SUBSYS_CTNETLINK) << 8 | 2  // IPCTNL_MSG_CT_DELETE
    private static let tupleOriginal: UInt16 = 1, tupleReply: UInt16 = 2                // CTA_TUPLE_ORIG, CTA_TUPLE_REPLY
    private static let tupleIP: UInt16 = 1, tupleProto: UInt16 = 2                      // CTA_TUPLE_IP, CTA_TUPLE_PROTO
    private static let nested: UInt16 = 0x8000                                          // NLA_F_NESTED

    /// nlmsghdr, nfgenmsg, attributes.
    private static func message(type: UInt16, flags: Int32, sequence: UInt32, family: UInt8, attributes: [[UInt8]]) -> [UInt8] {
        let body = [family, UInt8(NFNETLINK_V0), 0, 0] + attributes.joined()
        let length = UInt32(16 + body.count)
        return le32(length) + le16(type) + le16(UInt16(flags)) + le32(sequence) + le32(0) + body
    }

    private static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let header = le16(UInt16(4 + payload.count)) + le16(type)
        return header + payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    private static func nested(_ type: UInt16, _ children: [[UInt8]]) -> [UInt8] {
        attribute(type | nested, Array(children.joined()))
    }

    /// CTA_TUPLE_IP and CTA_TUPLE_PROTO of the original direction.
    private static func tuple(_ connection: TrackedConnection) -> [[UInt8]] {
        let v4 = connection.originalSource.isIPv4
        let addresses = nested(tupleIP, [attribute(v4 ? 1 : 3, connection.originalSource.bytes),       // CTA_IP_V4_SRC / V6_SRC
                                         attribute(v4 ? 2 : 4, connection.originalDestination.bytes)]) // CTA_IP_V4_DST / V6_DST
        var proto = [attribute(1, [connection.proto])]                                                // CTA_PROTO_NUM
        if let icmp = connection.icmp {
            let base: UInt16 = connection.proto == 58 ? 7 : 4                                         // CTA_PROTO_ICMP(V6)_ID, TYPE, CODE
            proto += [attribute(base, be16(icmp.identifier)), attribute(base + 1, [icmp.type]), attribute(base + 2, [icmp.code])]
        } else {
            proto += [attribute(2, be16(connection.originalSourcePort)), attribute(3, be16(connection.originalDestinationPort))]
        }
        return [addresses, nested(tupleProto, proto)]
    }

    /// A connection from a dump message; nil for what zonegate does not judge (no IP tuple).
    static func decode(_ bytes: [UInt8]) -> TrackedConnection? {
        guard bytes.count >= 20 else { return nil }     // nlmsghdr, nfgenmsg
        let top = attributes(bytes[20...])
        guard let original = top[tupleOriginal].map(parseTuple), let reply = top[tupleReply].map(parseTuple),
              let source = original.source, let destination = original.destination, let replySource = reply.source else { return nil }
        return TrackedConnection(proto: original.proto, originalSource: source, originalDestination: destination,
                                 originalSourcePort: original.sourcePort, originalDestinationPort: original.destinationPort,
                                 replySource: replySource, replySourcePort: reply.sourcePort, icmp: original.icmp)
    }

    private struct Tuple {
        var source: IPAddress?
        var destination: IPAddress?
        var proto: UInt8 = 0
        var sourcePort: UInt16 = 0
        var destinationPort: UInt16 = 0
        var icmp: TrackedConnection.ICMPKey?
    }

    private static func parseTuple(_ payload: ArraySlice<UInt8>) -> Tuple {
        var tuple = Tuple()
        let parts = attributes(payload)
        if let ip = parts[tupleIP].map(attributes) {
            tuple.source = (ip[1] ?? ip[3]).flatMap { IPAddress(bytes: Array($0)) }
            tuple.destination = (ip[2] ?? ip[4]).flatMap { IPAddress(bytes: Array($0)) }
        }
        if let proto = parts[tupleProto].map(attributes) {
            tuple.proto = proto[1]?.first ?? 0
            tuple.sourcePort = proto[2].map(be16) ?? 0
            tuple.destinationPort = proto[3].map(be16) ?? 0
            let base: UInt16 = tuple.proto == 58 ? 7 : 4
            if let identifier = proto[base].map(be16) {
                tuple.icmp = .init(identifier: identifier, type: proto[base + 1]?.first ?? 0, code: proto[base + 2]?.first ?? 0)
            }
        }
        return tuple
    }

    /// The attributes of a TLV stream by type (nested flag cleared); the first of a type wins.
    private static func attributes(_ bytes: ArraySlice<UInt8>) -> [UInt16: ArraySlice<UInt8>] {
        var result: [UInt16: ArraySlice<UInt8>] = [:]
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let type = (UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8) & 0x3fff
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            if result[type] == nil { result[type] = bytes[(offset + 4)..<(offset + length)] }
            offset += (length + 3) & ~3
        }
        return result
    }

    private static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
    private static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xff) } }
    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    private static func be16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        bytes.count >= 2 ? UInt16(bytes[bytes.startIndex]) << 8 | UInt16(bytes[bytes.startIndex + 1]) : 0
    }
}
