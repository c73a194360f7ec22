import ZonegatePolicy

/// The addresses of a CIDR block less its exceptions, as sorted, disjoint, inclusive ranges of one
/// address family: exact answers to "do two blocks share an address?" and "is one inside the
/// other?", which prefix comparisons alone get wrong when exceptions cover a block.
struct AddressRanges {
    /// (low, high) as big-endian address bytes, all of one width (4 or 16).
    private(set) var ranges: [(low: [UInt8], high: [UInt8])]

    init(_ block: CIDRBlock) {
        ranges = [(block.cidr.network.bytes, AddressArithmetic.last(block.cidr))]
        for excluded in block.except {
            ranges = subtracting([(excluded.network.bytes, AddressArithmetic.last(excluded))])
        }
    }

    var isEmpty: Bool { ranges.isEmpty }

    func intersects(_ other: AddressRanges) -> Bool {
        ranges.contains { mine in
            other.ranges.contains { theirs in
                mine.low.count == theirs.low.count && !Self.less(mine.high, theirs.low) && !Self.less(theirs.high, mine.low)
            }
        }
    }

    /// Whether every address of this set is also in `other`.
    func isInside(_ other: AddressRanges) -> Bool {
        subtracting(other.ranges).isEmpty
    }

    private func subtracting(_ cuts: [(low: [UInt8], high: [UInt8])]) -> [(low: [UInt8], high: [UInt8])] {
        var pieces = ranges
        for cut in cuts {
            pieces = pieces.flatMap { piece -> [(low: [UInt8], high: [UInt8])] in
                guard piece.low.count == cut.low.count, !Self.less(piece.high, cut.low), !Self.less(cut.high, piece.low) else {
                    return [piece]
                }
                var left: [(low: [UInt8], high: [UInt8])] = []
                if Self.less(piece.low, cut.low) { left.append((piece.low, AddressArithmetic.predecessor(cut.low))) }
                if Self.less(cut.high, piece.high), let next = AddressArithmetic.successor(cut.high) { left.append((next, piece.high)) }
                return left
            }
        }
        return pieces
    }

    private static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }
}
