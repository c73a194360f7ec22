import ZonegatePolicy

/// The addresses of a CIDR block less its exceptions, as sorted, disjoint, inclusive ranges of one
/// address family: exact answers to "do two blocks share an address?" and "is one inside the
/// other?", which prefix comparisons alone get wrong when exceptions cover a block.
struct AddressRanges {
    /// Inclusive ranges, all of the block's family. Addresses of different families never
    /// overlap: every IPv4 address orders before every IPv6 one.
    private(set) var ranges: [(low: IPAddress, high: IPAddress)]

    init(_ block: CIDRBlock) {
        ranges = [(block.cidr.first, block.cidr.last)]
        for excluded in block.except {
            ranges = subtracting([(excluded.first, excluded.last)])
        }
    }

    var isEmpty: Bool { ranges.isEmpty }

    func intersects(_ other: AddressRanges) -> Bool {
        ranges.contains { mine in
            other.ranges.contains { theirs in !(mine.high < theirs.low) && !(theirs.high < mine.low) }
        }
    }

    /// Whether every address of this set is also in `other`.
    func isInside(_ other: AddressRanges) -> Bool {
        subtracting(other.ranges).isEmpty
    }

    private func subtracting(_ cuts: [(low: IPAddress, high: IPAddress)]) -> [(low: IPAddress, high: IPAddress)] {
        var pieces = ranges
        for cut in cuts {
            pieces = pieces.flatMap { piece -> [(low: IPAddress, high: IPAddress)] in
                guard !(piece.high < cut.low), !(cut.high < piece.low) else { return [piece] }
                var left: [(low: IPAddress, high: IPAddress)] = []
                // Above the piece's low end, so not the lowest address: it has a predecessor.
                if piece.low < cut.low { left.append((piece.low, cut.low.predecessor!)) }
                if cut.high < piece.high, let next = cut.high.successor { left.append((next, piece.high)) }
                return left
            }
        }
        return pieces
    }
}
