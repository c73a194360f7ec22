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

    /// `container . protocol . host port` for a container's connections to ports Docker publishes
    /// on the host that reach its userland proxy (NAT would have sent them on to the container):
    /// the verdict of the flow to the container behind the port. Where two containers publish one
    /// host port (on different host addresses), the stricter verdict applies.
    func containerToPublished(_ family: IPFamily, _ inventory: Inventory) -> [SetElement] {
        let identityOf = Dictionary(table.containerAddresses.map { ($0.container, $0.identity) }, uniquingKeysWith: { first, _ in first })
        let backends = Dictionary(grouping: inventory.containers.flatMap { container in
            container.published.compactMap { mapping in identityOf[container.name].map { (mapping: mapping, identity: $0, name: container.name) } }
        }, by: { ProtocolPort(proto: protocolNumber($0.mapping.port.proto), port: $0.mapping.hostPort) })
        return containers(family).flatMap { source in
            backends.sorted { ($0.key.proto, $0.key.port) < ($1.key.proto, $1.key.port) }.compactMap { key, behind -> SetElement? in
                // A container reaching itself is always allowed; otherwise the pair's entries say.
                let found = behind.map { backend -> TableAction? in
                    if backend.name == source.container { return .accept }
                    return (entries[Pair(source: source.identity, destination: backend.identity)] ?? []).first {
                        $0.protocols.contains(key.proto) && $0.ports.contains(backend.mapping.port.number)
                    }?.action
                }
                guard found.allSatisfy({ $0 != nil }) else { return nil }
                let audited = found.contains { $0 == .audit }
                let names = behind.map { "\($0.name) \($0.mapping)" }.joined(separator: ", ")
                return SetElement(parts: [KeyPart(value: source.address.bytes), .proto(key.proto), .port(key.port)],
                                  data: .verdict(audited ? .jump("audit") : .accept),
                                  comment: String("\(source.container) -> \(names) via the host".prefix(120)))
            }
        }
    }

    /// Every port Docker publishes on the host, as `protocol . host port`.
    static func publishedPorts(_ inventory: Inventory) -> [SetElement] {
        Set(inventory.containers.flatMap { $0.published.map { ProtocolPort(proto: protocolNumber($0.port.proto), port: $0.hostPort) } })
            .sorted { ($0.proto, $0.port) < ($1.proto, $1.port) }
            .map { SetElement(.proto($0.proto), .port($0.port)) }
    }

    private struct ProtocolPort: Hashable {
        var proto: UInt8
        var port: UInt16
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

/// The IP protocol number of a port's protocol (ICMP has no ports, so never published).
func protocolNumber(_ proto: PortProtocol) -> UInt8 {
    VerdictTable.portProtocols.first { $0.0 == proto }?.1 ?? 1
}
