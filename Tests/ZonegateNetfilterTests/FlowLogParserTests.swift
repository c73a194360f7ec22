import CNftnl
import Glibc
import Testing
@testable import ZonegateNetfilter
import ZonegatePolicy
import ZonegateRuleset

/// The packet-header parser and the NFLOG message decoder of `FlowLogReader`, on packets built
/// byte by byte here.
struct FlowLogParserTests {
    static let v4Source = [UInt8]([172, 30, 0, 2]), v4Destination = [UInt8]([172, 31, 0, 3])
    static let v6Source = IPAddress("fd00:30::2")!.bytes, v6Destination = IPAddress("fd00:31::3")!.bytes

    /// An IPv4 header (`optionWords` extra 32-bit words of options) followed by `payload`.
    static func ipv4(_ proto: UInt8, _ payload: [UInt8], optionWords: Int = 0, fragmentOffset: UInt16 = 0) -> [UInt8] {
        let headerLength = 20 + 4 * optionWords
        let total = UInt16(headerLength + payload.count)
        var header: [UInt8] = [0x40 | UInt8(headerLength / 4), 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1,
                               UInt8(fragmentOffset >> 8), UInt8(fragmentOffset & 0xff), 64, proto, 0, 0]
        header += v4Source + v4Destination + [UInt8](repeating: 1, count: 4 * optionWords)   // NOP options
        return header + payload
    }

    static func ipv6(_ next: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt16(payload.count)
        return [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xff), next, 64] + v6Source + v6Destination + payload
    }

    /// Source and destination ports, then the rest of a transport header.
    static func ports(_ source: UInt16, _ destination: UInt16, padding: Int = 16) -> [UInt8] {
        [UInt8(source >> 8), UInt8(source & 0xff), UInt8(destination >> 8), UInt8(destination & 0xff)]
            + [UInt8](repeating: 0, count: padding)
    }

    static let icmpEcho: [UInt8] = [8, 0, 0, 0, 0, 1, 0, 1]

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var packet: [UInt8]
        /// nil: not decodable.
        var expected: (LoggedFlow.Transport, UInt16, UInt16)?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "IPv4 TCP", packet: ipv4(6, ports(40000, 8443)), expected: (.tcp, 40000, 8443)),
        Case(name: "IPv4 UDP", packet: ipv4(17, ports(40001, 5353)), expected: (.udp, 40001, 5353)),
        Case(name: "IPv4 SCTP", packet: ipv4(132, ports(3868, 3869)), expected: (.sctp, 3868, 3869)),
        Case(name: "IPv4 ICMP has no ports", packet: ipv4(1, icmpEcho), expected: (.icmp, 0, 0)),
        Case(name: "IPv4 with options", packet: ipv4(6, ports(1234, 80), optionWords: 2), expected: (.tcp, 1234, 80)),
        Case(name: "IPv4 GRE: a number, no ports", packet: ipv4(47, ports(1, 2)), expected: (.other(47), 0, 0)),
        Case(name: "IPv4 later fragment carries no ports", packet: ipv4(6, ports(1, 2), fragmentOffset: 185), expected: (.tcp, 0, 0)),
        Case(name: "IPv6 TCP", packet: ipv6(6, ports(40000, 8443)), expected: (.tcp, 40000, 8443)),
        Case(name: "IPv6 UDP", packet: ipv6(17, ports(40001, 53)), expected: (.udp, 40001, 53)),
        Case(name: "IPv6 SCTP", packet: ipv6(132, ports(3868, 3868)), expected: (.sctp, 3868, 3868)),
        Case(name: "IPv6 ICMPv6 has no ports", packet: ipv6(58, [128, 0, 0, 0, 0, 1, 0, 1]), expected: (.icmpv6, 0, 0)),
        Case(name: "IPv6 hop-by-hop then TCP", packet: ipv6(0, [6, 0, 1, 4, 0, 0, 0, 0] + ports(5000, 443)), expected: (.tcp, 5000, 443)),
        Case(name: "IPv6 destination options (16 bytes) then UDP",
             packet: ipv6(60, [17, 1] + [UInt8](repeating: 0, count: 14) + ports(5001, 53)), expected: (.udp, 5001, 53)),
        Case(name: "IPv6 first fragment then UDP", packet: ipv6(44, [17, 0, 0, 1, 0, 0, 0, 9] + ports(5002, 53)), expected: (.udp, 5002, 53)),
        Case(name: "IPv6 later fragment carries no ports", packet: ipv6(44, [17, 0, 0x05, 0xa8, 0, 0, 0, 9] + ports(1, 2)),
             expected: (.udp, 0, 0)),
        Case(name: "IPv6 ESP: a number, no ports", packet: ipv6(50, ports(1, 2)), expected: (.other(50), 0, 0)),
        // Truncated: no whole IP header is no flow; a cut transport header is a flow without ports.
        Case(name: "empty", packet: [], expected: nil),
        Case(name: "IPv4 cut inside the header", packet: Array(ipv4(6, []).prefix(19)), expected: nil),
        Case(name: "IPv4 cut inside its options", packet: Array(ipv4(6, [], optionWords: 1).prefix(22)), expected: nil),
        Case(name: "IPv6 cut inside the header", packet: Array(ipv6(6, []).prefix(39)), expected: nil),
        Case(name: "neither version 4 nor 6", packet: [0x50] + Array(ipv4(6, ports(1, 2)).dropFirst()), expected: nil),
        Case(name: "IPv4 TCP cut before the ports", packet: ipv4(6, [0x9c, 0x40, 0x20]), expected: (.tcp, 0, 0)),
        Case(name: "IPv6 UDP cut before the ports", packet: ipv6(17, [0x9c]), expected: (.udp, 0, 0)),
        Case(name: "IPv6 hop-by-hop cut short", packet: ipv6(0, [6]), expected: (.other(0), 0, 0)),
    ]

    @Test(arguments: cases)
    func parsesHeaders(_ testCase: Case) {
        let parsed = PacketHeaders(testCase.packet)
        guard let expected = testCase.expected else {
            #expect(parsed == nil)
            return
        }
        let v4 = testCase.packet.first.map { $0 >> 4 == 4 } ?? false
        #expect(parsed == PacketHeaders(source: IPAddress(bytes: v4 ? Self.v4Source : Self.v6Source)!,
                                        destination: IPAddress(bytes: v4 ? Self.v4Destination : Self.v6Destination)!,
                                        transport: expected.0, sourcePort: expected.1, destinationPort: expected.2))
    }

    // MARK: - NFLOG messages

    static func attribute(_ type: nfulnl_attr_type, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt16(4 + payload.count)
        return [UInt8(length & 0xff), UInt8(length >> 8), UInt8(type.rawValue), 0] + payload
            + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
    }

    static func be32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }

    /// A packet message as nfnetlink_log sends it: nlmsghdr, nfgenmsg, attributes.
    static func message(prefix: String, payload: [UInt8], sequence: UInt32) -> NetlinkMessage {
        let body = [UInt8(AF_INET), 0, 0x06, 0x85]                                        // res_id: group 1669
            + attribute(NFULA_PACKET_HDR, [0x08, 0x00, 2, 0])
            + attribute(NFULA_PREFIX, Array(prefix.utf8) + [0])
            + attribute(NFULA_IFINDEX_INDEV, be32(3)) + attribute(NFULA_IFINDEX_PHYSINDEV, be32(7))
            + attribute(NFULA_IFINDEX_OUTDEV, be32(3)) + attribute(NFULA_IFINDEX_PHYSOUTDEV, be32(9))
            + attribute(NFULA_SEQ, be32(sequence))
            + attribute(NFULA_PAYLOAD, payload)
        let length = UInt32(16 + body.count), type = FlowLogReader.packetMessage
        let header = (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + [UInt8(type & 0xff), UInt8(type >> 8), 0, 0]
            + [UInt8](repeating: 0, count: 8)
        return NetlinkMessage(bytes: header + body)
    }

    @Test func decodesAPacketMessage() throws {
        let packet = try #require(try NFLogPacket(Self.message(prefix: "zonegate deny ", payload: Self.ipv4(6, Self.ports(40000, 8443)),
                                                               sequence: 41)))
        #expect(packet.sequence == 41)
        let flow = packet.flow { "if\($0)" }
        #expect(flow == LoggedFlow(kind: .deny, source: IPAddress("172.30.0.2")!, destination: IPAddress("172.31.0.3")!, transport: .tcp,
                                   sourcePort: 40000, destinationPort: 8443, inInterface: "if7", outInterface: "if9"))
        let audit = try #require(try NFLogPacket(Self.message(prefix: "zonegate audit ", payload: Self.ipv6(17, Self.ports(1, 53)), sequence: 0)))
        #expect(audit.flow { _ in nil }?.kind == .audit)
        #expect(audit.flow { _ in nil }?.transport == .udp)
    }

    @Test func otherPrefixesAndOtherMessagesAreNoFlows() throws {
        // Another tool logging to the same group: its sequence still counts, but it is no flow of zonegate's.
        let foreign = try #require(try NFLogPacket(Self.message(prefix: "ulogd ", payload: Self.ipv4(6, Self.ports(1, 2)), sequence: 3)))
        #expect(foreign.sequence == 3)
        #expect(foreign.flow { _ in nil } == nil)
        let done = NetlinkMessage(bytes: [20, 0, 0, 0, UInt8(NLMSG_DONE), 0, 2, 0] + [UInt8](repeating: 0, count: 12))
        #expect(try NFLogPacket(done) == nil)
    }

    @Test func gapsInTheSequenceAreLostMessages() {
        var gaps = SequenceGaps()
        #expect([0, 1, 2, 6, 7].map { gaps.missed(before: $0) } == [0, 0, 0, 3, 0])
        var wrapping = SequenceGaps()
        #expect([UInt32.max - 1, UInt32.max, 0, 2].map { wrapping.missed(before: $0) } == [0, 0, 0, 1])
        var joining = SequenceGaps()
        #expect(joining.missed(before: 500) == 0, "what came before the reader bound is not its loss")
    }

    @Test func logPrefixesNameTheChains() {
        #expect(LoggedFlow.Kind(logPrefix: "zonegate deny ") == .deny)
        #expect(LoggedFlow.Kind(logPrefix: "zonegate audit\0") == .audit)
        #expect(LoggedFlow.Kind(logPrefix: "zonegate allow ") == nil)
        #expect(LoggedFlow.Kind.deny.logPrefix == "zonegate deny ")
    }
}
