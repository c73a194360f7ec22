import CNftnl
import Foundation
import Glibc
import Synchronization
import ZonegatePolicy
import ZonegateRuleset

/// Reads the packets the `deny` and `audit` chains log to NFLOG group `RulesetCompiler.logGroup`
/// (policy.md step 7) and delivers each as a `LoggedFlow` on `records`.
///
/// The reader owns its own `NETLINK_NETFILTER` socket, bound to the group in `init` (which throws
/// when it cannot bind, e.g. EPERM when another socket reads the group: one reader per group per
/// network namespace). A dedicated thread receives with a `poll` timeout of `pollInterval`, so that
/// `stop()` (or the consumer ending its iteration, or cancelling its task) ends it within that
/// time; the socket closes with it, which releases the group. Keep the reader alive while
/// reading: dropping it stops it.
///
/// Flows the kernel logged but the reader never received (the socket overflowed in a flood, or
/// the consumer fell `pendingRecords` behind) arrive as `.lost(count)`, counted from the gaps in
/// NFLOG's per-group sequence numbers; they are not an error. The stream ends with an error
/// only when reading itself fails.
public final class FlowLogReader: Sendable {
    /// Logged flows and lost-flow counts, in arrival order. One consumer.
    public let records: AsyncThrowingStream<FlowLogRecord, any Error>
    private let stopFlag: StopFlag

    /// How long the reading thread waits in `poll` before it looks at the stop flag.
    public static let pollInterval: Duration = .milliseconds(Int(pollMilliseconds))
    static let pollMilliseconds: Int32 = 200
    /// Records buffered for a slow consumer before the oldest are counted as lost.
    public static let pendingRecords = 4096
    /// The socket's receive buffer: room for about 16 000 logged packets between two reads.
    static let socketBufferSize = 4 << 20
    /// Bytes copied per packet: the IPv6 header, a few extension headers and the ports.
    static let copyRange: UInt32 = 128

    public init(group: UInt16 = RulesetCompiler.logGroup) throws(NetfilterError) {
        let socket = try NetlinkSocket()
        try socket.reserveReceiveBuffer(Self.socketBufferSize)
        let early = try Self.bind(socket, group: group)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: FlowLogRecord.self, throwing: (any Error).self,
                                                                    bufferingPolicy: .bufferingNewest(Self.pendingRecords))
        let stopFlag = StopFlag()
        continuation.onTermination = { _ in stopFlag.set() }
        records = stream
        self.stopFlag = stopFlag
        let pump = Pump(socket: socket, continuation: continuation, stopFlag: stopFlag)
        let thread = Thread { pump.run(first: early) }
        thread.name = "zonegate-flow-log"
        thread.start()
    }

    /// Ends reading within `pollInterval`; `records` then finishes.
    public func stop() { stopFlag.set() }

    deinit { stop() }

    // MARK: - Binding (linux/netfilter/nfnetlink_log.h)

    private static let configMessage = UInt16(NFNL_SUBSYS_ULOG) << 8 | UInt16(NFULNL_MSG_CONFIG.rawValue)
    static let packetMessage = UInt16(NFNL_SUBSYS_ULOG) << 8 | UInt16(NFULNL_MSG_PACKET.rawValue)

    /// Binds the group and sets, in the same message (the kernel applies the command first):
    /// packet copies of `copyRange` bytes, sequence numbers (to count losses), and a flush every
    /// 32 packets or 100 ms, in batches small enough for `NetlinkSocket`'s receive buffer.
    /// No `PF_BIND`: nft's `log group` names the nfnetlink_log logger itself, and `PF_UNBIND`
    /// would take the namespace's default logger from whoever else uses it.
    /// Returns packets that arrived before the ack.
    private static func bind(_ socket: NetlinkSocket, group: UInt16) throws(NetfilterError) -> [NetlinkMessage] {
        let sequence = socket.reserveSequences(1)
        var request = [UInt8](repeating: 0, count: 256)
        let length = request.withUnsafeMutableBytes { raw -> Int in
            let header = mnl_nlmsg_put_header(raw.baseAddress)!
            header.pointee.nlmsg_type = configMessage
            header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_ACK)
            header.pointee.nlmsg_seq = sequence
            let family = mnl_nlmsg_put_extra_header(header, MemoryLayout<nfgenmsg>.size)!.assumingMemoryBound(to: nfgenmsg.self)
            family.pointee.nfgen_family = UInt8(AF_UNSPEC)
            family.pointee.version = UInt8(NFNETLINK_V0)
            family.pointee.res_id = group.bigEndian
            var command = UInt8(NFULNL_CFG_CMD_BIND.rawValue)               // struct nfulnl_msg_config_cmd
            mnl_attr_put(header, UInt16(NFULA_CFG_CMD.rawValue), 1, &command)
            var mode = bigEndianBytes(copyRange) + [UInt8(NFULNL_COPY_PACKET), 0]   // struct nfulnl_msg_config_mode
            mnl_attr_put(header, UInt16(NFULA_CFG_MODE.rawValue), mode.count, &mode)
            var flags = UInt16(NFULNL_CFG_F_SEQ).bigEndian
            mnl_attr_put(header, UInt16(NFULA_CFG_FLAGS.rawValue), 2, &flags)
            for (attribute, value) in [(NFULA_CFG_NLBUFSIZ, UInt32(16 * 1024)), (NFULA_CFG_TIMEOUT, 10), (NFULA_CFG_QTHRESH, 32)] {
                var big = value.bigEndian
                mnl_attr_put(header, UInt16(attribute.rawValue), 4, &big)
            }
            return Int(header.pointee.nlmsg_len)
        }
        try socket.send(Array(request[0..<length]), expectedReplies: 1)
        var early: [NetlinkMessage] = []
        while true {
            for message in try socket.receive() ?? [] {
                guard Int32(message.type) == NLMSG_ERROR, message.ackedSequence == sequence else {
                    early.append(message)
                    continue
                }
                if message.ackError != 0 {
                    // The kernel answers EPERM both without CAP_NET_ADMIN and when another socket holds the group.
                    let hint = -message.ackError == EPERM ? " (another reader, such as a second zonegate or ulogd, holds it, or CAP_NET_ADMIN is missing)" : ""
                    throw .systemCall("nfnetlink_log bind of NFLOG group \(group)\(hint)", errno: -message.ackError)
                }
                return early
            }
        }
    }

    private static func bigEndianBytes(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
}

/// Set once by whoever stops the reader; read by its thread between polls.
private final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// The reading thread's state. @unchecked Sendable: after `init` hands it over, only that
/// thread touches the socket and the sequence counter.
private final class Pump: @unchecked Sendable {
    private var socket: NetlinkSocket?
    private let continuation: AsyncThrowingStream<FlowLogRecord, any Error>.Continuation
    private let stopFlag: StopFlag
    private var gaps = SequenceGaps()
    private var lost = 0

    init(socket: NetlinkSocket, continuation: AsyncThrowingStream<FlowLogRecord, any Error>.Continuation, stopFlag: StopFlag) {
        self.socket = socket
        self.continuation = continuation
        self.stopFlag = stopFlag
    }

    func run(first early: [NetlinkMessage]) {
        do throws(NetfilterError) {
            try deliver(early)
            while !stopFlag.isSet, let socket {
                var descriptor = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
                do throws(NetfilterError) {
                    guard try cCall("poll", { poll(&descriptor, 1, FlowLogReader.pollMilliseconds) }) > 0 else { continue }
                    try deliver(try socket.receive(wait: false) ?? [])
                } catch where error.errno == EINTR || error.errno == ENOBUFS {
                    // ENOBUFS: the kernel dropped messages for this socket; the next message's
                    // sequence number says how many.
                    continue
                }
            }
            socket = nil
            continuation.finish()
        } catch {
            socket = nil
            continuation.finish(throwing: error)
        }
    }

    private func deliver(_ messages: [NetlinkMessage]) throws(NetfilterError) {
        for message in messages {
            guard let packet = try NFLogPacket(message) else { continue }
            if let sequence = packet.sequence { lost += gaps.missed(before: sequence) }
            if lost > 0 {
                let count = lost
                lost = 0
                send(.lost(count))
            }
            if let flow = packet.flow(interfaceName: Self.interfaceName) { send(.flow(flow)) }
        }
    }

    /// Yields a record; when the consumer is `pendingRecords` behind, the stream makes room by
    /// dropping its oldest record, which is then counted as lost.
    private func send(_ record: FlowLogRecord) {
        guard case .dropped(let oldest) = continuation.yield(record) else { return }
        if case .lost(let count) = oldest { lost += count } else { lost += 1 }
    }

    /// The interface's name in this namespace; nil once it is gone.
    private static func interfaceName(_ index: UInt32) -> String? {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard (try? cCall("if_indextoname", { if_indextoname(index, &name) })) != nil else { return nil }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Counts the messages missing from NFLOG's per-group sequence (0, 1, 2, … wrapping at 2^32):
/// those the kernel logged but dropped on the way (ENOBUFS).
struct SequenceGaps {
    private var next: UInt32?

    /// How many were missed between the previous message and this one.
    mutating func missed(before sequence: UInt32) -> Int {
        defer { next = sequence &+ 1 }
        return next.map { Int(sequence &- $0) } ?? 0
    }
}

/// One NFLOG packet message: its attributes, read with libmnl.
struct NFLogPacket {
    var sequence: UInt32?
    var prefix: String?
    var payload: [UInt8] = []
    var inIndex: UInt32?
    var outIndex: UInt32?

    /// nil for messages that are not packets (acks, the `NLMSG_DONE` closing a batch).
    init?(_ message: NetlinkMessage) throws(NetfilterError) {
        guard message.type == FlowLogReader.packetMessage, message.bytes.count >= 20 else { return nil }
        var attributes: [UInt16: [UInt8]] = [:]
        try cCall("mnl_attr_parse") {
            message.withHeader { header in
                withUnsafeMutablePointer(to: &attributes) { table in
                    mnl_attr_parse(header, UInt32(MemoryLayout<nfgenmsg>.size), { attribute, context in
                        guard let attribute, let context else { return MNL_CB_ERROR }
                        let table = context.assumingMemoryBound(to: [UInt16: [UInt8]].self)
                        let payload = UnsafeRawBufferPointer(start: mnl_attr_get_payload(attribute),
                                                             count: Int(mnl_attr_get_payload_len(attribute)))
                        table.pointee[mnl_attr_get_type(attribute)] = Array(payload)
                        return MNL_CB_OK
                    }, table)
                }
            }
        }
        func u32(_ attribute: nfulnl_attr_type) -> UInt32? {
            guard let bytes = attributes[UInt16(attribute.rawValue)], bytes.count == 4 else { return nil }
            return bytes.reduce(0) { $0 << 8 | UInt32($1) }
        }
        sequence = u32(NFULA_SEQ)
        prefix = attributes[UInt16(NFULA_PREFIX.rawValue)].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        payload = attributes[UInt16(NFULA_PAYLOAD.rawValue)] ?? []
        // Bridged packets: the bridge ports (the containers' veths) say more than the bridge.
        inIndex = u32(NFULA_IFINDEX_PHYSINDEV) ?? u32(NFULA_IFINDEX_INDEV)
        outIndex = u32(NFULA_IFINDEX_PHYSOUTDEV) ?? u32(NFULA_IFINDEX_OUTDEV)
    }

    /// The flow, when the prefix is zonegate's and the IP header is whole.
    func flow(interfaceName: (UInt32) -> String?) -> LoggedFlow? {
        guard let kind = prefix.flatMap(LoggedFlow.Kind.init(logPrefix:)), let headers = PacketHeaders(payload) else { return nil }
        return LoggedFlow(kind: kind, source: headers.source, destination: headers.destination, transport: headers.transport,
                          sourcePort: headers.sourcePort, destinationPort: headers.destinationPort,
                          inInterface: inIndex.flatMap(interfaceName), outInterface: outIndex.flatMap(interfaceName))
    }
}

/// The addresses, protocol and ports of an IP packet's first bytes.
struct PacketHeaders: Hashable {
    var source: IPAddress
    var destination: IPAddress
    var transport: LoggedFlow.Transport
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
}

extension PacketHeaders {
    /// nil when the IP header is cut short or the version is neither 4 nor 6. Ports stay 0 when
    /// the protocol has none, the packet is a non-first fragment, or it ends before them.
    init?(_ packet: [UInt8]) {
        guard let first = packet.first else { return nil }
        var transportStart: Int?
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0f) * 4
            guard headerLength >= 20, packet.count >= headerLength else { return nil }
            source = IPAddress(bytes: Array(packet[12..<16]))!
            destination = IPAddress(bytes: Array(packet[16..<20]))!
            transport = .init(number: packet[9])
            let fragmentOffset = UInt16(packet[6] & 0x1f) << 8 | UInt16(packet[7])
            transportStart = fragmentOffset == 0 ? headerLength : nil
        case 6:
            guard packet.count >= 40 else { return nil }
            source = IPAddress(bytes: Array(packet[8..<24]))!
            destination = IPAddress(bytes: Array(packet[24..<40]))!
            (transport, transportStart) = Self.skipExtensionHeaders(packet, next: packet[6])
        default:
            return nil
        }
        if transport.hasPorts, let start = transportStart, packet.count >= start + 4 {
            sourcePort = UInt16(packet[start]) << 8 | UInt16(packet[start + 1])
            destinationPort = UInt16(packet[start + 2]) << 8 | UInt16(packet[start + 3])
        }
    }

    /// Follows hop-by-hop, routing, fragment and destination-options headers (a few at most, as
    /// far as the copy reaches) to the transport header; any other next header is the protocol.
    private static func skipExtensionHeaders(_ packet: [UInt8], next first: UInt8) -> (LoggedFlow.Transport, Int?) {
        var next = first, offset = 40
        for _ in 0..<4 {
            switch next {
            case 0, 43, 60:                                     // length in 8-byte units, less the first
                guard packet.count >= offset + 2 else { return (.init(number: next), nil) }
                (next, offset) = (packet[offset], offset + (Int(packet[offset + 1]) + 1) * 8)
            case 44:                                            // fragment: 8 bytes; later fragments carry no ports
                guard packet.count >= offset + 8 else { return (.init(number: next), nil) }
                let fragmentOffset = (UInt16(packet[offset + 2]) << 8 | UInt16(packet[offset + 3])) >> 3
                (next, offset) = (packet[offset], offset + 8)
                if fragmentOffset != 0 { return (.init(number: next), nil) }
            default:
                return (.init(number: next), offset)
            }
        }
        return (.init(number: next), nil)
    }
}
