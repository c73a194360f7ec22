import ZonegateEngine
import ZonegatePolicy

/// The verdict table laid out as the elements of zonegate's verdict maps: each entry between two
/// identities repeated for the addresses (or outside ranges) that hold them.
struct VerdictElements {
    private let table: VerdictTable
    private let entries: [Pair: [VerdictEntry]]
    private let summaries: [UInt32: String]

    private struct Pair: Hashable {
        var source: UInt32
        var destination: UInt32
    }

    init(_ table: VerdictTable) {
        self.table = table
        entries = Dictionary(grouping: table.entries) { Pair(source: $0.source, destination: $0.destination) }
        summaries = Dictionary(uniqueKeysWithValues: table.identities.map { ($0.id, $0.summary) })
    }

    private func containers(_ family: IPFamily) -> [(address: IPAddress, identity: UInt32, container: String)] {
        table.containerAddresses.filter { $0.address.isIPv4 == (family == .v4) }
    }

    private func outside(_ family: IPFamily) -> [(low: IPAddress, high: IPAddress, identity: UInt32)] {
        table.outsideRanges.filter { $0.low.isIPv4 == (family == .v4) }
    }

    /// `container . protocol . port` for flows from one identity to containers.
    func containerToContainer(from source: UInt32, _ family: IPFamily) -> [SetElement] {
        containers(family).flatMap { destination in
            elements(Pair(source: source, destination: destination.identity), [KeyPart(value: destination.address.bytes)], destination.container)
        }
    }

    /// `container . outside range . protocol . port`.
    func containerToOutside(_ family: IPFamily) -> [SetElement] {
        containers(family).flatMap { source in
            outside(family).flatMap { range in
                elements(Pair(source: source.identity, destination: range.identity),
                         [KeyPart(value: source.address.bytes), KeyPart(low: range.low.bytes, high: range.high.bytes)],
                         "\(source.container) -> \(summaries[range.identity] ?? "?")")
            }
        }
    }

    /// `outside range . container . protocol . port`.
    func outsideToContainer(_ family: IPFamily) -> [SetElement] {
        outside(family).flatMap { range in
            containers(family).flatMap { destination in
                elements(Pair(source: range.identity, destination: destination.identity),
                         [KeyPart(low: range.low.bytes, high: range.high.bytes), KeyPart(value: destination.address.bytes)],
                         "\(summaries[range.identity] ?? "?") -> \(destination.container)")
            }
        }
    }

    /// `container . protocol . port` towards the host.
    func containerToHost(_ family: IPFamily) -> [SetElement] {
        containers(family).flatMap { source in
            elements(Pair(source: source.identity, destination: VerdictTable.hostIdentity), [KeyPart(value: source.address.bytes)], source.container)
        }
    }

    /// `container . protocol . port` from the host.
    func hostToContainer(_ family: IPFamily) -> [SetElement] {
        containers(family).flatMap { destination in
            elements(Pair(source: VerdictTable.hostIdentity, destination: destination.identity), [KeyPart(value: destination.address.bytes)],
                     destination.container)
        }
    }

    private func elements(_ pair: Pair, _ addresses: [KeyPart], _ who: String) -> [SetElement] {
        (entries[pair] ?? []).map { entry in
            let why = entry.rules.isEmpty ? (entry.action == .audit ? "audit" : "open") : entry.rules.joined(separator: ", ")
            return SetElement(parts: addresses + [KeyPart(low: [entry.protocols.lowerBound], high: [entry.protocols.upperBound]), .ports(entry.ports)],
                              data: .verdict(entry.action == .accept ? .accept : .jump("audit")),
                              comment: String("\(who): \(why)".prefix(120)))
        }
    }
}
