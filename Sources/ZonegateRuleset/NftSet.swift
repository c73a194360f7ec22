import ZonegatePolicy

/// One field of a set key or map value: its nft datatype and its size on the wire.
public struct KeyField: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Byte order nft records in set userdata; raw values are nft's `enum byteorder`.
    public enum ByteOrder: UInt32, Sendable, Hashable, Codable {
        case host = 1, big = 2
    }

    /// nft's datatype name, as in `type ipv4_addr`.
    public var name: String
    /// nft's datatype id (`TYPE_*` in nftables' `include/datatype.h`).
    public var typeID: UInt32
    /// Bytes the value takes; a key pads each field to 4 bytes.
    public var length: UInt32
    public var byteOrder: ByteOrder

    public init(name: String, typeID: UInt32, length: UInt32, byteOrder: ByteOrder) {
        self.name = name
        self.typeID = typeID
        self.length = length
        self.byteOrder = byteOrder
    }

    public var description: String { name }

    /// `length` rounded up to whole 32-bit registers, as the field sits in a key.
    public var paddedLength: UInt32 { (length + 3) / 4 * 4 }

    public static let ipv4Addr = KeyField(name: "ipv4_addr", typeID: 7, length: 4, byteOrder: .big)
    public static let ipv6Addr = KeyField(name: "ipv6_addr", typeID: 8, length: 16, byteOrder: .big)
    public static let etherAddr = KeyField(name: "ether_addr", typeID: 9, length: 6, byteOrder: .big)
    public static let inetProto = KeyField(name: "inet_proto", typeID: 12, length: 1, byteOrder: .big)
    public static let inetService = KeyField(name: "inet_service", typeID: 13, length: 2, byteOrder: .big)
    public static let mark = KeyField(name: "mark", typeID: 19, length: 4, byteOrder: .host)
    public static let ifname = KeyField(name: "ifname", typeID: 41, length: 16, byteOrder: .host)
}

/// An nftables set or map (`NFTA_SET_*`).
public struct NftSet: Sendable, Hashable, Codable {
    /// `NFT_SET_*` flags zonegate uses; raw values are the kernel's.
    public struct Flags: OptionSet, Sendable, Hashable, Codable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let constant = Flags(rawValue: 0x2)
        public static let interval = Flags(rawValue: 0x4)
        public static let map = Flags(rawValue: 0x8)
        public static let timeout = Flags(rawValue: 0x10)
        /// `NFT_SET_EVAL` (`flags dynamic`): rules add elements from the packet path. Those
        /// elements are the kernel's, not part of the desired state: they are never read back.
        public static let dynamic = Flags(rawValue: 0x20)
        /// Set by the encoder for interval keys of several fields (the kernel's pipapo); not
        /// part of the value. As nft does, a concatenation without intervals goes without it,
        /// into a hash.
        public static let concat = Flags(rawValue: 0x80)
    }

    /// What a map's elements map to.
    public enum DataType: Sendable, Hashable, Codable {
        /// A plain set.
        case none
        /// A verdict map (`NFT_DATA_VERDICT`), used by `vmap`.
        case verdict
        /// A data map whose values have this type (`type ipv4_addr : mark`).
        case value(KeyField)
    }

    public var name: String
    /// One field, or several for a concatenation (`ipv4_addr . inet_service`).
    public var keyType: [KeyField]
    public var dataType: DataType
    /// `.interval`, `.constant`, `.dynamic`, `.timeout`; `.map` follows from `dataType`, `.concat`
    /// from `keyType`.
    public var flags: Flags
    public var elements: [SetElement]
    /// The default lifetime of an element, in milliseconds (`timeout 5s`), for `.timeout` sets.
    public var timeout: UInt64?
    public var comment: String?

    public init(
        name: String, keyType: [KeyField], dataType: DataType = .none, flags: Flags = [],
        elements: [SetElement] = [], timeout: UInt64? = nil, comment: String? = nil
    ) {
        self.name = name
        self.keyType = keyType
        self.dataType = dataType
        self.flags = flags.subtracting([.map, .concat])
        self.timeout = timeout
        self.comment = comment
        self.elements = Self.normalized(elements, interval: flags.contains(.interval))
    }

    /// Key length on the wire: one field as is (a port is 2 bytes), a
    /// concatenation as its fields padded to 4 bytes each, back to back.
    public var keyLength: UInt32 {
        keyType.count == 1 ? keyType[0].length : keyType.reduce(0) { $0 + $1.paddedLength }
    }

    /// The flags the kernel stores for this set.
    public var kernelFlags: Flags {
        var all = flags
        if dataType != .none { all.insert(.map) }
        if keyType.count > 1, flags.contains(.interval) { all.insert(.concat) }
        return all
    }

    /// `elements` as this set stores them: in interval sets each with a `keyEnd`.
    public func normalized(_ elements: [SetElement]) -> [SetElement] {
        Self.normalized(elements, interval: flags.contains(.interval))
    }

    private static func normalized(_ elements: [SetElement], interval: Bool) -> [SetElement] {
        interval ? elements.map { $0.asInterval() } : elements
    }

    /// Elements compare as a set: the kernel dumps them in hash order.
    public static func == (lhs: NftSet, rhs: NftSet) -> Bool {
        lhs.hasSameDefinition(as: rhs) && Set(lhs.elements) == Set(rhs.elements)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(keyType)
        hasher.combine(Set(elements))
    }

    private func hasSameDefinition(as other: NftSet) -> Bool {
        name == other.name && keyType == other.keyType && dataType == other.dataType && flags == other.flags
            && timeout == other.timeout && comment == other.comment
    }

    /// The same set without its elements: what `add set` creates.
    public var definition: NftSet {
        var copy = self
        copy.elements = []
        return copy
    }
}

/// One element (`NFTA_SET_ELEM_*`). Keys are raw bytes in network order; in a
/// concatenation each field is padded to 4 bytes, a one-field key is not padded. In interval sets every element carries
/// `keyEnd`, the inclusive last key of its range (equal to `key` for one value).
public struct SetElement: Sendable, Hashable, Codable {
    /// A map element's value.
    public enum Data: Sendable, Hashable, Codable {
        case verdict(Verdict)
        case value([UInt8])
    }

    public var key: [UInt8]
    public var keyEnd: [UInt8]?
    public var data: Data?
    public var comment: String?

    public init(key: [UInt8], keyEnd: [UInt8]? = nil, data: Data? = nil, comment: String? = nil) {
        self.key = key
        self.keyEnd = keyEnd
        self.data = data
        self.comment = comment
    }

    /// An element whose key concatenates `parts` (`a . b . c`); parts that are
    /// ranges give an interval element.
    public init(_ parts: KeyPart..., data: Data? = nil, comment: String? = nil) {
        self.init(parts: parts, data: data, comment: comment)
    }

    public init(parts: [KeyPart], data: Data? = nil, comment: String? = nil) {
        let join = { (bytes: [[UInt8]]) in bytes.count == 1 ? bytes[0] : bytes.flatMap(KeyPart.padded) }
        key = join(parts.map(\.low))
        keyEnd = parts.contains(where: \.isInterval) ? join(parts.map(\.high)) : nil
        self.data = data
        self.comment = comment
    }

    /// This element as it sits in an interval set: with `keyEnd` even for one value.
    public func asInterval() -> SetElement {
        var copy = self
        if copy.keyEnd == nil { copy.keyEnd = key }
        return copy
    }
}

/// One field of an element key: a value, or an inclusive range of values
/// (prefixes and port ranges). Bytes are unpadded, in network order.
public struct KeyPart: Sendable, Hashable {
    public var low: [UInt8]
    public var high: [UInt8]
    /// True when built as a range or prefix, even if it holds one value (a /32).
    public var isInterval: Bool

    public init(low: [UInt8], high: [UInt8]) {
        self.low = low
        self.high = high
        isInterval = true
    }

    public init(value: [UInt8]) {
        low = value
        high = value
        isInterval = false
    }

    static func padded(_ bytes: [UInt8]) -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
    }

    /// An IPv4 address, e.g. `"10.0.0.1"`; nil if it does not parse.
    public static func ipv4(_ text: String) -> KeyPart? {
        IPAddress(text).flatMap { $0.isIPv4 ? KeyPart(value: $0.bytes) : nil }
    }

    /// An IPv6 address, e.g. `"fd00::1"`; nil if it does not parse.
    public static func ipv6(_ text: String) -> KeyPart? {
        IPAddress(text).flatMap { $0.isIPv4 ? nil : KeyPart(value: $0.bytes) }
    }

    /// An IPv4 or IPv6 prefix, e.g. `"10.0.0.0/8"` or `"fd00::/64"`, as the range it covers
    /// (host bits in the address are ignored).
    public static func prefix(_ text: String) -> KeyPart? {
        let pieces = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard pieces.count == 2, let length = Int(pieces[1]), let address = IPAddress(pieces[0]),
              (0...address.bytes.count * 8).contains(length)
        else { return nil }
        let prefix = CIDR(network: address, prefixLength: length)
        return KeyPart(low: prefix.first.bytes, high: prefix.last.bytes)
    }

    /// A port (`inet_service`).
    public static func port(_ port: UInt16) -> KeyPart {
        KeyPart(value: [UInt8(port >> 8), UInt8(port & 0xff)])
    }

    /// An inclusive port range, e.g. `80-443`.
    public static func ports(_ range: ClosedRange<UInt16>) -> KeyPart {
        KeyPart(low: port(range.lowerBound).low, high: port(range.upperBound).low)
    }

    /// An IP protocol number (`inet_proto`), e.g. 6 for tcp.
    public static func proto(_ number: UInt8) -> KeyPart { KeyPart(value: [number]) }

    public static let tcp = proto(6)
    public static let udp = proto(17)
    public static let icmp = proto(1)
    public static let icmpv6 = proto(58)

    /// An interface name (`ifname`): NUL-padded to 16 bytes.
    public static func ifname(_ name: String) -> KeyPart {
        KeyPart(value: Array(name.utf8.prefix(15)) + [UInt8](repeating: 0, count: 16 - min(name.utf8.count, 15)))
    }

    /// A 32-bit mark or id in host byte order, as `meta mark` and `mark` maps hold it.
    public static func mark(_ value: UInt32) -> KeyPart {
        KeyPart(value: withUnsafeBytes(of: value.littleEndian, Array.init))
    }
}
