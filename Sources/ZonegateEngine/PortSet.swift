import ZonegatePolicy

/// A set of (protocol, port) values as sorted, disjoint ranges: for "which of these ports do the
/// rules not cover?".
public struct PortSet: Hashable, Sendable {
    public private(set) var ranges: [PortRange]

    public init(_ ranges: [PortRange]) {
        var merged: [PortRange] = []
        for range in ranges.sorted() {
            if var last = merged.last, last.proto == range.proto, Int(range.low) <= Int(last.high) + 1 {
                last.high = max(last.high, range.high)
                merged[merged.count - 1] = last
            } else {
                merged.append(range)
            }
        }
        self.ranges = merged
    }

    public var isEmpty: Bool { ranges.isEmpty }

    public func subtracting(_ other: PortSet) -> PortSet {
        var result: [PortRange] = []
        for range in ranges {
            var pieces = [range]
            for cut in other.ranges where cut.proto == range.proto {
                pieces = pieces.flatMap { $0.removing(cut) }
            }
            result += pieces
        }
        return PortSet(result)
    }
}

extension PortRange {
    /// The ports in both, or nil.
    public func intersection(_ other: PortRange) -> PortRange? {
        guard overlaps(other) else { return nil }
        return PortRange(proto, max(low, other.low), min(high, other.high))
    }

    /// What is left of this range without `cut` (zero, one or two pieces).
    func removing(_ cut: PortRange) -> [PortRange] {
        guard overlaps(cut) else { return [self] }
        if !proto.hasPorts { return [] }
        var pieces: [PortRange] = []
        if cut.low > low { pieces.append(PortRange(proto, low, cut.low - 1)) }
        if cut.high < high { pieces.append(PortRange(proto, cut.high + 1, high)) }
        return pieces
    }
}
