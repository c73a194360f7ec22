import CZonegateProbe
import Glibc
import ZonegatePolicy

/// A small rtnetlink client: for the outside namespace a veth pair, addresses, routes, link
/// state; in containers' namespaces, the neighbour entries probes made. Written in Swift over a raw NETLINK_ROUTE socket (these few messages need none of
/// libmnl's helpers, and the probe module stays out of ZonegateNetfilter, which owns
/// libnftnl). A netlink socket acts in the namespace it was created in.
final class RouteNetlink {
    private let fd: Int32
    private var sequence: UInt32 = 1

    // linux/rtnetlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h.
    static let newLink: UInt16 = 16, deleteLink: UInt16 = 17, getLink: UInt16 = 18, newAddress: UInt16 = 20, newRoute: UInt16 = 24
    static let newNeighbour: UInt16 = 28, deleteNeighbour: UInt16 = 29, getNeighbour: UInt16 = 30
    static let neighbourDestination: UInt16 = 1, loopback = UInt32(IFF_LOOPBACK)
    static let ifName: UInt16 = 3, linkInfo: UInt16 = 18, netnsFD: UInt16 = 28
    static let infoKind: UInt16 = 1, infoData: UInt16 = 2, vethPeer: UInt16 = 1
    static let addressAttribute: UInt16 = 1, localAttribute: UInt16 = 2
    static let routeGateway: UInt16 = 5, routeOutput: UInt16 = 4
    static let noDAD: UInt8 = 0x02

    /// Opens a socket in the calling thread's network namespace.
    init() throws(SystemCallError) {
        fd = try sys("socket(czg_netlink_route())") { socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), czg_netlink_route()) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Creates a veth pair: `name` here, `peerName` in the namespace `peerNamespace`.
    func addVeth(_ name: String, peerName: String, peerNamespace: Int32) throws {
        var peer = Self.ifinfo()
        peer += Self.attribute(Self.ifName, Self.cString(peerName))
        peer += Self.attribute(Self.netnsFD, Self.u32(UInt32(bitPattern: peerNamespace)))
        let info = Self.attribute(Self.infoKind, Self.cString("veth")) +
            Self.attribute(Self.infoData, Self.attribute(Self.vethPeer, peer))
        try request(Self.newLink, create: true,
                    Self.ifinfo() + Self.attribute(Self.ifName, Self.cString(name)) + Self.attribute(Self.linkInfo, info))
    }

    func deleteLink(index: Int32) throws {
        try request(Self.deleteLink, create: false, Self.ifinfo(index: index))
    }

    func setUp(index: Int32) throws {
        try request(Self.newLink, create: false, Self.ifinfo(index: index, flags: UInt32(IFF_UP), change: UInt32(IFF_UP)))
    }

    /// Adds `address/prefix` to the link, without duplicate address detection (usable at once).
    func addAddress(_ address: IPAddress, prefix: Int, index: Int32) throws {
        var header: [UInt8] = [UInt8(family(of: address)), UInt8(prefix), Self.noDAD, 0]
        header += Self.u32(UInt32(bitPattern: index))
        try request(Self.newAddress, create: true,
                    header + Self.attribute(Self.localAttribute, address.bytes) + Self.attribute(Self.addressAttribute, address.bytes))
    }

    /// Adds a default route through `gateway` on the link.
    func addDefaultRoute(via gateway: IPAddress, index: Int32) throws {
        // struct rtmsg: family, dst_len, src_len, tos, table (main), protocol (static),
        // scope (universe), type (unicast), flags.
        let header: [UInt8] = [UInt8(family(of: gateway)), 0, 0, 0, 254, 4, 0, 1] + Self.u32(0)
        try request(Self.newRoute, create: true,
                    header + Self.attribute(Self.routeGateway, gateway.bytes) + Self.attribute(Self.routeOutput, Self.u32(UInt32(bitPattern: index))))
    }

    /// The indexes of the namespace's links other than loopback.
    func linkIndexes() throws -> [Int32] {
        try dump(Self.getLink, Self.ifinfo()).compactMap { message in
            // struct ifinfomsg: family, pad, type (u16), index (s32), flags (u32), change (u32).
            guard message.count >= 16, Self.readU32(message, 8) & Self.loopback == 0 else { return nil }
            return Int32(bitPattern: Self.readU32(message, 4))
        }
    }

    /// The namespace's neighbour entries (ARP and neighbour discovery): link index and address.
    func neighbours() throws -> [(index: Int32, address: IPAddress)] {
        try dump(Self.getNeighbour, Self.ndmsg(family: UInt8(AF_UNSPEC), index: 0)).compactMap { message in
            guard message.count >= 12 else { return nil }
            let index = Int32(bitPattern: Self.readU32(message, 4))
            var offset = 12
            while offset + 4 <= message.count {
                let length = Int(UInt16(message[offset]) | UInt16(message[offset + 1]) << 8)
                let type = UInt16(message[offset + 2]) | UInt16(message[offset + 3]) << 8
                guard length >= 4, offset + length <= message.count else { return nil }
                if type == Self.neighbourDestination, let address = IPAddress(bytes: Array(message[(offset + 4)..<(offset + length)])) {
                    return (index, address)
                }
                offset += (length + 3) & ~3
            }
            return nil
        }
    }

    /// Deletes the neighbour entry for `address` on the link; true when there was one.
    @discardableResult
    func deleteNeighbour(_ address: IPAddress, index: Int32) throws -> Bool {
        do {
            try request(Self.deleteNeighbour, create: false,
                        Self.ndmsg(family: UInt8(family(of: address)), index: index) + Self.attribute(Self.neighbourDestination, address.bytes))
            return true
        } catch let error as SystemCallError where error.code == ENOENT {
            return false
        }
    }

    // MARK: - Messages

    /// Sends a dump request and collects the payloads (after the netlink header) of its answers.
    private func dump(_ type: UInt16, _ payload: [UInt8]) throws -> [[UInt8]] {
        sequence &+= 1
        var message = Self.u32(UInt32(16 + payload.count)) + Self.u16(type) + Self.u16(czg_nlm_request_dump()) + Self.u32(sequence) + Self.u32(0)
        message += payload
        let sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw SystemCallError(function: "send(rtnetlink dump)", code: errno) }
        var payloads: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 32768)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { throw SystemCallError(function: "recv(rtnetlink dump)", code: errno) }
            var offset = 0
            while offset + 16 <= count {
                let length = Int(Self.readU32(buffer, offset))
                guard length >= 16, offset + length <= count else { break }
                let messageType = UInt16(buffer[offset + 4]) | UInt16(buffer[offset + 5]) << 8
                if Self.readU32(buffer, offset + 8) == sequence {
                    if messageType == czg_nlmsg_done() { return payloads }
                    if messageType == czg_nlmsg_error() {
                        let code = Int32(bitPattern: Self.readU32(buffer, offset + 16))
                        throw SystemCallError(function: "rtnetlink dump \(type)", code: -code)
                    }
                    payloads.append(Array(buffer[(offset + 16)..<(offset + length)]))
                }
                offset += (length + 3) & ~3
            }
        }
    }

    /// Sends one request with NLM_F_ACK and waits for its acknowledgement.
    private func request(_ type: UInt16, create: Bool, _ payload: [UInt8]) throws {
        sequence &+= 1
        let flags = czg_nlm_request_ack() | (create ? czg_nlm_create_excl() : 0)
        var message = Self.u32(UInt32(16 + payload.count)) + Self.u16(type) + Self.u16(flags) + Self.u32(sequence) + Self.u32(0)
        message += payload
        let sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw SystemCallError(function: "send(rtnetlink)", code: errno) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count >= 0 else { throw SystemCallError(function: "recv(rtnetlink)", code: errno) }
            var offset = 0
            while offset + 16 <= count {
                let length = Int(Self.readU32(buffer, offset))
                let messageType = UInt16(buffer[offset + 4]) | UInt16(buffer[offset + 5]) << 8
                let messageSequence = Self.readU32(buffer, offset + 8)
                if messageType == czg_nlmsg_error(), messageSequence == sequence, offset + 20 <= count {
                    let code = Int32(bitPattern: Self.readU32(buffer, offset + 16))
                    if code != 0 { throw SystemCallError(function: "rtnetlink request \(type)", code: -code) }
                    return
                }
                guard length >= 16 else { break }
                offset += (length + 3) & ~3
            }
        }
    }

    static func ifinfo(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [UInt8(AF_UNSPEC), 0] + u16(0) + u32(UInt32(bitPattern: index)) + u32(flags) + u32(change)
    }

    /// struct ndmsg: family, two pads, link index, state, flags, type.
    static func ndmsg(family: UInt8, index: Int32) -> [UInt8] {
        [family, 0] + u16(0) + u32(UInt32(bitPattern: index)) + u16(0) + [0, 0]
    }

    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var bytes = u16(UInt16(4 + payload.count)) + u16(type) + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    // Netlink headers are in host byte order (little-endian here, as on every Linux Swift runs on).
    static func u16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func readU32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}
