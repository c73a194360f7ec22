import CNftnl
import Glibc

/// One netlink message cut out of a receive buffer.
struct NetlinkMessage {
    var bytes: [UInt8]

    var type: UInt16 { UInt16(bytes[4]) | UInt16(bytes[5]) << 8 }
    var sequence: UInt32 { Self.u32(bytes, at: 8) }
    /// For `NLMSG_ERROR` (`struct nlmsgerr` after the 16-byte header): the error
    /// (0 for an ack), then the header of the message it answers, whose sequence is 8 bytes in.
    /// A truncated error message reads as `EBADMSG`, never as an ack.
    var ackError: Int32 { bytes.count >= 20 ? Int32(bitPattern: Self.u32(bytes, at: 16)) : -EBADMSG }
    var ackedSequence: UInt32 { bytes.count >= 32 ? Self.u32(bytes, at: 20 + 8) : 0 }

    static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Splits a buffer into its messages.
    static func split(_ buffer: ArraySlice<UInt8>) throws(NetfilterError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = buffer.startIndex
        while buffer.endIndex - offset >= 16 {
            let length = Int(u32(Array(buffer[offset..<offset + 4]), at: 0))
            guard length >= 16, offset + length <= buffer.endIndex else { throw .malformedReply("netlink message length") }
            messages.append(NetlinkMessage(bytes: Array(buffer[offset..<offset + length])))
            offset += (length + 3) & ~3
        }
        return messages
    }

    /// A TLV stream walked as libmnl walks it: up to the first attribute that does not fit.
    static func attributes(_ bytes: ArraySlice<UInt8>) -> [(type: UInt16, payload: ArraySlice<UInt8>)] {
        var result: [(type: UInt16, payload: ArraySlice<UInt8>)] = []
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            guard length >= 4, length <= bytes.endIndex - offset else { break }
            result.append(((UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8) & 0x3fff,    // NLA_TYPE_MASK
                           bytes[(offset + 4)..<(offset + length)]))
            offset += min((length + 3) & ~3, bytes.endIndex - offset)
        }
        return result
    }

    /// The message as the `nlmsghdr` libnftnl's parsers expect, valid during `body`.
    /// Zeros follow it: libmnl walks attributes up to the length rounded up to 4, and libnftnl
    /// takes string attributes as C strings without looking for their NUL, so a malformed message
    /// (unaligned, or a string without its NUL) would otherwise have them read past its end.
    func withHeader<Result>(_ body: (UnsafePointer<nlmsghdr>) -> Result) -> Result {
        let padded = bytes + [UInt8](repeating: 0, count: 4 + (4 - bytes.count % 4) % 4)
        return padded.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)) }
    }
}

/// The long-lived `NETLINK_NETFILTER` socket: opening one per call costs
/// milliseconds (see toolchain facts), so a dataplane keeps one for its lifetime
/// and closes it in `deinit`.
final class NetlinkSocket {
    /// Large enough for any dump message (the kernel fills at most 32 KiB) and many acks.
    private static let receiveBufferSize = 64 * 1024

    private let socket: OpaquePointer
    private var nextSequence: UInt32
    private var receiveBuffer = [UInt8](repeating: 0, count: NetlinkSocket.receiveBufferSize)
    /// The socket buffers' size; the kernel's defaults (~208 KiB) until a batch needs more.
    private var bufferSize = 208 * 1024

    init() throws(NetfilterError) {
        let handle = try cCall("mnl_socket_open") { mnl_socket_open(NETLINK_NETFILTER) }
        do {
            try cCall("mnl_socket_bind") { mnl_socket_bind(handle, 0, pid_t(MNL_SOCKET_AUTOPID)) }
            // Error acks then carry only the failing message's header, not the whole message.
            var one: Int32 = 1
            try cCall("mnl_socket_setsockopt(NETLINK_CAP_ACK)") {
                mnl_socket_setsockopt(handle, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
            }
        } catch {
            mnl_socket_close(handle)
            throw error
        }
        socket = handle
        nextSequence = UInt32(truncatingIfNeeded: time(nil))
    }

    deinit {
        mnl_socket_close(socket)
    }

    /// Reserves `count` consecutive sequence numbers; returns the first.
    func reserveSequences(_ count: Int) -> UInt32 {
        defer { nextSequence &+= UInt32(count) }
        return nextSequence
    }

    /// Sends `bytes` as one datagram, growing the socket buffers so that a large
    /// batch and one ack per message fit.
    func send(_ bytes: [UInt8], expectedReplies: Int) throws(NetfilterError) {
        let needed = max(bytes.count, expectedReplies * 64) + 4096
        if needed > bufferSize {
            var size = Int32(needed)
            let fd = mnl_socket_get_fd(socket)
            // The *FORCE variants pass rmem_max/wmem_max; zonegate runs with CAP_NET_ADMIN.
            try cCall("setsockopt(SO_SNDBUFFORCE)") {
                setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            try cCall("setsockopt(SO_RCVBUFFORCE)") {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            bufferSize = needed
        }
        try cCall("mnl_socket_sendto") { mnl_socket_sendto(socket, bytes, bytes.count) }
    }

    /// The descriptor, for `poll` by a reader that must stay cancellable.
    var fileDescriptor: Int32 { mnl_socket_get_fd(socket) }

    /// Grows the receive buffer to `size` bytes, so that a socket the kernel sends to
    /// unasked (NFLOG) absorbs a burst before it overflows.
    func reserveReceiveBuffer(_ size: Int) throws(NetfilterError) {
        var bytes = Int32(size)
        try cCall("setsockopt(SO_RCVBUFFORCE)") {
            setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// The messages of one datagram; nil when `wait` is false and nothing is queued.
    func receive(wait: Bool = true) throws(NetfilterError) -> [NetlinkMessage]? {
        let fd = mnl_socket_get_fd(socket)
        let count: Int
        do {
            count = try cCall("recv") {
                receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, wait ? 0 : Int32(MSG_DONTWAIT)) }
            }
        } catch {
            if !wait, error.errno == EAGAIN || error.errno == EWOULDBLOCK { return nil }
            throw error
        }
        return try NetlinkMessage.split(receiveBuffer[0..<count])
    }
}
