/// A transport protocol a rule can name. `icmp` stands for ICMP and ICMPv6 alike.
public enum PortProtocol: String, Hashable, Sendable, CaseIterable, Comparable, Codable {
    case tcp, udp, sctp, icmp

    /// Whether the protocol has ports (ICMP has types, not ports).
    public var hasPorts: Bool { self != .icmp }

    public static func < (a: PortProtocol, b: PortProtocol) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// An inclusive range of ports of one protocol, e.g. `9000-9100/tcp`; `icmp` has no ports.
public struct PortRange: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var proto: PortProtocol
    public var low: UInt16
    public var high: UInt16

    public static let validPorts: ClosedRange<Int> = 1...65535

    public init(_ proto: PortProtocol, _ low: UInt16 = 1, _ high: UInt16 = 65535) {
        self.proto = proto
        self.low = proto.hasPorts ? low : 0
        self.high = proto.hasPorts ? high : 0
    }

    /// Every port of a protocol (`tcp`), or ICMP.
    public static func all(_ proto: PortProtocol) -> PortRange { PortRange(proto) }

    public var coversAllPorts: Bool { !proto.hasPorts || (low == 1 && high == 65535) }

    public func contains(_ port: ServicePort) -> Bool {
        port.proto == proto && (!proto.hasPorts || (low...high).contains(port.number))
    }

    public func overlaps(_ other: PortRange) -> Bool {
        other.proto == proto && other.low <= high && low <= other.high
    }

    public var description: String {
        if !proto.hasPorts || coversAllPorts { return proto.rawValue }
        return low == high ? "\(low)/\(proto.rawValue)" : "\(low)-\(high)/\(proto.rawValue)"
    }

    public static func < (a: PortRange, b: PortRange) -> Bool { (a.proto, a.low, a.high) < (b.proto, b.low, b.high) }

    /// Why a port text was refused, phrased as what is expected.
    public enum ParseFailure: Error, Equatable {
        case syntax
        case unknownProtocol(String)
        case outOfRange(String)
        case reversed
        case icmpHasNoPorts
    }

    /// Parses `PORT/PROTO`, `LOW-HIGH/PROTO`, or a bare `PROTO`.
    public static func parse(_ text: String) -> Result<PortRange, ParseFailure> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let protoText = parts.last!
        guard let proto = PortProtocol(rawValue: protoText) else {
            return .failure(parts.count == 1 && Int(protoText) != nil ? .syntax : .unknownProtocol(protoText))
        }
        if parts.count == 1 { return .success(.all(proto)) }
        guard parts.count == 2 else { return .failure(.syntax) }
        guard proto.hasPorts else { return .failure(.icmpHasNoPorts) }
        let bounds = parts[0].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard bounds.count <= 2 else { return .failure(.syntax) }
        var numbers: [UInt16] = []
        for bound in bounds {
            guard !bound.isEmpty, bound.allSatisfy(\.isASCII), bound.allSatisfy(\.isNumber) else { return .failure(.syntax) }
            guard let value = Int(bound), validPorts.contains(value) else { return .failure(.outOfRange(bound)) }
            numbers.append(UInt16(value))
        }
        let low = numbers[0], high = numbers.last!
        guard low <= high else { return .failure(.reversed) }
        return .success(PortRange(proto, low, high))
    }
}

/// One destination port of one protocol, e.g. `80/tcp`; for ICMP the number is 0.
public struct ServicePort: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var number: UInt16
    public var proto: PortProtocol

    public init(_ number: UInt16, _ proto: PortProtocol) {
        self.number = proto.hasPorts ? number : 0
        self.proto = proto
    }

    public var description: String { proto.hasPorts ? "\(number)/\(proto.rawValue)" : proto.rawValue }

    public static func < (a: ServicePort, b: ServicePort) -> Bool { (a.proto, a.number) < (b.proto, b.number) }

    /// Parses `PORT/PROTO` (one port) or `icmp`.
    public static func parse(_ text: String) -> ServicePort? {
        guard case .success(let range) = PortRange.parse(text), range.low == range.high else { return nil }
        return ServicePort(range.low, range.proto)
    }
}
