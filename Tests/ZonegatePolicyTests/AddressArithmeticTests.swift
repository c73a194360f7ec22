#if canImport(Glibc)
import Glibc
#endif
import Testing
import ZonegatePolicy

/// The one implementation of address arithmetic (Address.swift) that the policy, the engine's
/// address ranges and the nftables interval elements share, at the edges of the address space.
@Suite struct AddressArithmeticTests {
    private static func address(_ text: String) -> IPAddress { IPAddress(text)! }

    /// A prefix, written with any host bits, and its first and last addresses.
    struct PrefixCase: CustomTestStringConvertible, Sendable {
        var address: String
        var length: Int
        var first: String
        var last: String
        var testDescription: String { "\(address)/\(length)" }
    }

    static let prefixes: [PrefixCase] = [
        PrefixCase(address: "10.1.2.3", length: 8, first: "10.0.0.0", last: "10.255.255.255"),
        PrefixCase(address: "198.51.100.77", length: 26, first: "198.51.100.64", last: "198.51.100.127"),
        PrefixCase(address: "203.0.113.9", length: 0, first: "0.0.0.0", last: "255.255.255.255"),
        PrefixCase(address: "203.0.113.9", length: 32, first: "203.0.113.9", last: "203.0.113.9"),
        PrefixCase(address: "255.255.255.255", length: 31, first: "255.255.255.254", last: "255.255.255.255"),
        PrefixCase(address: "10.0.0.0", length: 7, first: "10.0.0.0", last: "11.255.255.255"),
        PrefixCase(address: "fd00::1", length: 8, first: "fd00::", last: "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        PrefixCase(address: "2001:db8::1", length: 0, first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        PrefixCase(address: "2001:db8::1", length: 128, first: "2001:db8::1", last: "2001:db8::1"),
        PrefixCase(address: "2001:db8:0:1::", length: 63, first: "2001:db8::", last: "2001:db8:0:1:ffff:ffff:ffff:ffff"),
        PrefixCase(address: "::ffff:192.0.2.1", length: 120, first: "::ffff:192.0.2.0", last: "::ffff:192.0.2.255"),
        PrefixCase(address: "::ffff:192.0.2.1", length: 96, first: "::ffff:0.0.0.0", last: "::ffff:255.255.255.255"),
    ]

    @Test(arguments: prefixes)
    func firstAndLastAddressOfAPrefix(_ row: PrefixCase) {
        let prefix = CIDR(network: Self.address(row.address), prefixLength: row.length)
        #expect(prefix.first == Self.address(row.first))
        #expect(prefix.last == Self.address(row.last))
        #expect(Self.address(row.address).masked(toPrefix: row.length) == Self.address(row.first))
        #expect(prefix.contains(prefix.first) && prefix.contains(prefix.last))
        #expect(prefix.last.successor.map(prefix.contains) != true, "nothing past the last address is inside")
        #expect(CIDR(exactly: prefix.first, through: prefix.last) == prefix, "the range is exactly the prefix")
    }

    /// An address, the one after it and the one before it (nil past either end of its family).
    static let neighbours: [(String, String?, String?)] = [
        ("10.0.0.255", "10.0.1.0", "10.0.0.254"),
        ("0.0.0.0", "0.0.0.1", nil),
        ("255.255.255.255", nil, "255.255.255.254"),
        ("::", "::1", nil),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
        ("2001:db8::ffff:ffff", "2001:db8::1:0:0", "2001:db8::ffff:fffe"),
        // An IPv4-mapped address is an IPv6 address: it carries into the IPv6 bits, not to 0.0.0.0.
        ("::ffff:255.255.255.255", "::1:0:0:0", "::ffff:255.255.255.254"),
    ]

    @Test(arguments: neighbours)
    func successorAndPredecessorStopAtTheEndsOfTheFamily(_ row: (String, String?, String?)) {
        let address = Self.address(row.0)
        #expect(address.successor == row.1.map(Self.address))
        #expect(address.predecessor == row.2.map(Self.address))
        #expect(address.successor?.predecessor ?? address == address)
        #expect(address.successor.map { address < $0 } ?? true, "the next address orders after this one")
    }

    @Test func lowestAndHighestOfEachFamily() {
        #expect(IPAddress.lowest(ipv4: true) == Self.address("0.0.0.0"))
        #expect(IPAddress.highest(ipv4: true) == Self.address("255.255.255.255"))
        #expect(IPAddress.lowest(ipv4: false) == Self.address("::"))
        #expect(IPAddress.highest(ipv4: false) == Self.address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        #expect(IPAddress.highest(ipv4: true) < IPAddress.lowest(ipv4: false), "every IPv4 address orders before every IPv6 one")
    }

    /// Ranges that are no one prefix, and ranges across families.
    static let notPrefixes: [(String, String)] = [
        ("10.0.0.1", "10.0.0.255"),          // starts inside a prefix
        ("10.0.0.0", "10.0.0.254"),          // ends short of one
        ("10.0.0.0", "10.0.2.255"),          // three /24s
        ("10.0.0.255", "10.0.1.0"),          // two neighbours across a boundary
        ("10.0.0.9", "10.0.0.1"),            // upside down
        ("0.0.0.0", "::ffff:255.255.255.255"),
        ("::", "255.255.255.255"),
    ]

    @Test(arguments: notPrefixes)
    func exactPrefixOfARangeThatIsNone(_ row: (String, String)) {
        #expect(CIDR(exactly: Self.address(row.0), through: Self.address(row.1)) == nil)
    }

    @Test func exactPrefixOfOneAddressIsTheHostPrefix() {
        #expect(CIDR(exactly: Self.address("192.0.2.1"), through: Self.address("192.0.2.1"))?.description == "192.0.2.1/32")
        #expect(CIDR(exactly: Self.address("::"), through: Self.address("::"))?.description == "::/128")
        #expect(CIDR(exactly: Self.address("0.0.0.0"), through: Self.address("255.255.255.255"))?.description == "0.0.0.0/0")
    }

    /// Text to bytes and back: the parse is `inet_pton`'s, the text `inet_ntop`'s.
    static let texts: [(String, [UInt8]?, String?)] = [
        ("192.0.2.1", [192, 0, 2, 1], "192.0.2.1"),
        ("::1", [UInt8](repeating: 0, count: 15) + [1], "::1"),
        ("2001:0db8:0000::0001", [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], "2001:db8::1"),
        ("::ffff:192.0.2.1", [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 1], "::ffff:192.0.2.1"),
        ("192.0.2.256", nil, nil),
        ("192.0.2", nil, nil),
        ("192.0.2.1\u{0}.5", nil, nil),
        ("fd00::/8", nil, nil),
        ("", nil, nil),
    ]

    @Test(arguments: texts)
    func textToBytesAndBack(_ row: (String, [UInt8]?, String?)) {
        let parsed = IPAddress(row.0)
        #expect(parsed?.bytes == row.1)
        #expect(parsed?.description == row.2)
        if let bytes = row.1 { #expect(IPAddress(bytes: bytes) == parsed) }
    }

    /// Socket addresses as getifaddrs and recvfrom give them: the address by the family it names.
    @Test func addressOfASocketAddress() {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(80).bigEndian
        withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: [192, 0, 2, 1] as [UInt8]) }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: Self.address("::ffff:192.0.2.1").bytes) }
        var unix = sockaddr_un()
        unix.sun_family = sa_family_t(AF_UNIX)
        let read = { (raw: UnsafeRawBufferPointer) in IPAddress(socketAddress: raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
        #expect(withUnsafeBytes(of: sin, read) == Self.address("192.0.2.1"))
        #expect(withUnsafeBytes(of: sin6, read) == Self.address("::ffff:192.0.2.1"))
        #expect(withUnsafeBytes(of: unix, read) == nil)
    }

    @Test func bytesOfNeitherWidthAreNoAddress() {
        for count in [0, 3, 5, 15, 17] {
            #expect(IPAddress(bytes: [UInt8](repeating: 1, count: count)) == nil, "\(count) bytes")
        }
    }
}
