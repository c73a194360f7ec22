#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its network-order bytes (4 or 16 of them).
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted-quad IPv4 or any textual IPv6 form (RFC 4291), as `inet_pton` does.
    public init?(_ text: String) {
        // inet_pton reads a C string: a NUL inside would cut the text short and pass what follows.
        guard text.utf8.count <= 64, !text.utf8.contains(0) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16)
        if text.contains(":") {
            guard inet_pton(AF_INET6, text, &buffer) == 1 else { return nil }
            self.bytes = buffer
        } else {
            guard inet_pton(AF_INET, text, &buffer) == 1 else { return nil }
            self.bytes = Array(buffer.prefix(4))
        }
    }

    /// The address a socket address holds (`sockaddr_in` or `sockaddr_in6`, by its family), as
    /// getifaddrs, recvfrom and accept fill them; nil for another family. `pointer` must cover a
    /// whole socket address of the family it names.
    public init?(socketAddress pointer: UnsafePointer<sockaddr>) {
        let raw = UnsafeRawPointer(pointer)
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET: bytes = withUnsafeBytes(of: raw.loadUnaligned(as: sockaddr_in.self).sin_addr, Array.init)
        case AF_INET6: bytes = withUnsafeBytes(of: raw.loadUnaligned(as: sockaddr_in6.self).sin6_addr, Array.init)
        default: return nil
        }
    }

    /// What kind of address this is when it is not unicast to one host beyond the link:
    /// multicast, the limited broadcast, or link-local unicast (nil for any other address).
    /// Such an address names no container, so it has no identity to judge by (policy.md).
    public var linkScope: String? {
        if isIPv4 {
            if bytes[0] >= 224 && bytes[0] <= 239 { return "multicast" }
            if bytes == [255, 255, 255, 255] { return "broadcast" }
            if bytes[0] == 169 && bytes[1] == 254 { return "link-local" }
            return nil
        }
        if bytes[0] == 0xff { return "multicast" }
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return "link-local" }
        return nil
    }

    public var description: String {
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBufferPointer { inet_ntop(family, $0.baseAddress, &output, socklen_t(output.count)) }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.bytes.count != b.bytes.count ? a.bytes.count < b.bytes.count : a.bytes.lexicographicallyPrecedes(b.bytes)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an IPv4 or IPv6 address"))
        }
        self = address
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An address prefix such as `203.0.113.0/24` or `fd00::/8`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    /// Why a text is not a CIDR, phrased as what was expected.
    public enum ParseFailure: Error, Equatable {
        case notAnAddress
        case badPrefixLength(max: Int)
        case hostBitsSet(suggestion: String)
    }

    /// Parses `ADDRESS/LEN`; a bare address stands for the single host (/32 or /128).
    public static func parse(_ text: String) -> Result<CIDR, ParseFailure> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return .failure(.notAnAddress) }
        let maxLength = address.bytes.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maxLength).contains(parsed), parts[1].allSatisfy(\.isNumber) else {
                return .failure(.badPrefixLength(max: maxLength))
            }
            length = parsed
        }
        let network = address.masked(toPrefix: length)
        guard network == address else {
            return .failure(.hostBitsSet(suggestion: "\(network)/\(length)"))
        }
        return .success(CIDR(network: network, prefixLength: length))
    }

    /// The prefix of `network` with its host bits cleared (`10.1.2.3`, 8 is `10.0.0.0/8`).
    public init(network: IPAddress, prefixLength: Int) {
        self.network = network.masked(toPrefix: prefixLength)
        self.prefixLength = prefixLength
    }

    /// The prefix whose addresses are exactly `low...high` (`10.0.0.0` through `10.0.0.255` is
    /// `10.0.0.0/24`); nil when no one prefix covers exactly that range.
    public init?(exactly low: IPAddress, through high: IPAddress) {
        guard low.bytes.count == high.bytes.count else { return nil }
        // A prefix's first and last addresses agree on its leading bits and on no more.
        var shared = 0
        for (a, b) in zip(low.bytes, high.bytes) {
            shared += (a ^ b).leadingZeroBitCount
            if a != b { break }
        }
        let candidate = CIDR(network: low, prefixLength: shared)
        guard candidate.network == low, candidate.last == high else { return nil }
        self = candidate
    }

    public var isIPv4: Bool { network.isIPv4 }

    public func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && address.masked(toPrefix: prefixLength) == network
    }

    /// True when every address of `other` is also in this prefix.
    public func contains(_ other: CIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.network)
    }

    /// The first address of the prefix: `network`.
    public var first: IPAddress { network }

    /// The last address of the prefix: its host bits all set (`10.0.0.0/8` ends at `10.255.255.255`).
    public var last: IPAddress {
        IPAddress(uncheckedBytes: network.bytes.enumerated().map { index, byte in byte | ~IPAddress.prefixMask(prefixLength, byte: index) })
    }

    public var description: String { "\(network)/\(prefixLength)" }
}

/// Address arithmetic: the one place that masks, counts and bounds addresses, for the policy's
/// CIDR blocks, the engine's address ranges and the nftables interval elements alike.
extension IPAddress {
    /// Bytes already known to be 4 or 16 long (derived from another address).
    init(uncheckedBytes bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// `0.0.0.0` or `::`: the lowest address of a family.
    public static func lowest(ipv4: Bool) -> IPAddress {
        IPAddress(uncheckedBytes: [UInt8](repeating: 0, count: ipv4 ? 4 : 16))
    }

    /// `255.255.255.255` or `ffff:...:ffff`: the highest address of a family.
    public static func highest(ipv4: Bool) -> IPAddress {
        IPAddress(uncheckedBytes: [UInt8](repeating: 0xff, count: ipv4 ? 4 : 16))
    }

    /// This address with every bit after the first `length` cleared: the network of
    /// `address/length`. A length past the width keeps every bit, one of 0 or less none.
    public func masked(toPrefix length: Int) -> IPAddress {
        IPAddress(uncheckedBytes: bytes.enumerated().map { index, byte in byte & Self.prefixMask(length, byte: index) })
    }

    /// The next address up; nil for the highest of its family (no wrap to the lowest).
    public var successor: IPAddress? {
        var result = bytes
        for index in result.indices.reversed() {
            if result[index] == 0xff { result[index] = 0 } else { result[index] += 1; return IPAddress(uncheckedBytes: result) }
        }
        return nil
    }

    /// The next address down; nil for the lowest of its family (no wrap to the highest).
    public var predecessor: IPAddress? {
        var result = bytes
        for index in result.indices.reversed() {
            if result[index] == 0 { result[index] = 0xff } else { result[index] -= 1; return IPAddress(uncheckedBytes: result) }
        }
        return nil
    }

    /// The bits of byte `index` that a prefix of `length` bits keeps.
    static func prefixMask(_ length: Int, byte index: Int) -> UInt8 {
        let kept = max(0, min(8, length - index * 8))
        return kept == 0 ? 0 : ~UInt8(0) << (8 - kept)
    }
}
