import Foundation
import ZonegatePolicy

/// Where a container is plugged into one Docker bridge network: what binds its addresses to it.
public struct BridgeAttachment: Hashable, Sendable, Codable {
    /// The Linux bridge device of the network (`docker0`, `br-<id>`).
    public var bridge: String
    /// The host side of the container's veth: the bridge port its packets arrive on.
    public var port: String
    public var addresses: [IPAddress]

    public init(bridge: String, port: String, addresses: [IPAddress]) {
        self.bridge = bridge
        self.port = port
        self.addresses = addresses
    }
}

/// A port Docker publishes on the host for a container: `hostPort` there forwards to the
/// container's own `port` (`18080->8080/tcp`). Docker forwards it by NAT, or through its userland
/// proxy, which would make a container's connection arrive from the host; either way the flow is
/// judged as one to the container.
public struct HostPortMapping: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var hostPort: UInt16
    public var port: ServicePort

    public init(hostPort: UInt16, port: ServicePort) {
        self.hostPort = hostPort
        self.port = port
    }

    public var description: String { "\(hostPort)->\(port)" }

    /// Parses `HOSTPORT->PORT/PROTO`.
    public static func parse(_ text: String) -> HostPortMapping? {
        let parts = text.components(separatedBy: "->")
        guard parts.count == 2, let hostPort = UInt16(parts[0]), hostPort > 0, let port = ServicePort.parse(parts[1]), port.proto.hasPorts
        else { return nil }
        return HostPortMapping(hostPort: hostPort, port: port)
    }

    public static func < (a: HostPortMapping, b: HostPortMapping) -> Bool { (a.port.proto, a.hostPort, a.port.number) < (b.port.proto, b.hostPort, b.port.number) }
}

/// A managed container as zonegate sees it: identity, labels, addresses, exposed ports.
public struct Container: Hashable, Sendable, Codable {
    public var name: String
    public var id: String?
    public var labels: [String: String]
    public var addresses: [IPAddress]
    /// Exposed or published ports, the container's own side.
    public var ports: [ServicePort]
    /// Its bridge ports (optional in a hand-written file; the dataplane binds addresses to them).
    public var attachments: [BridgeAttachment]
    /// The host ports Docker publishes for it (optional in a hand-written file).
    public var published: [HostPortMapping]

    public init(name: String, id: String? = nil, labels: [String: String] = [:], addresses: [IPAddress] = [],
                ports: [ServicePort] = [], attachments: [BridgeAttachment] = [], published: [HostPortMapping] = []) {
        self.name = name
        self.id = id
        self.labels = labels
        self.addresses = addresses
        self.ports = ports
        self.attachments = attachments
        self.published = published
    }

    private enum CodingKeys: String, CodingKey { case name, id, labels, addresses, ports, attachments, published }

    public init(from decoder: Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        name = try values.decode(String.self, forKey: .name)
        id = try values.decodeIfPresent(String.self, forKey: .id)
        labels = try values.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        addresses = try values.decodeIfPresent([IPAddress].self, forKey: .addresses) ?? []
        let portTexts = try values.decodeIfPresent([String].self, forKey: .ports) ?? []
        attachments = try values.decodeIfPresent([BridgeAttachment].self, forKey: .attachments) ?? []
        published = try (values.decodeIfPresent([String].self, forKey: .published) ?? []).map { text in
            guard let mapping = HostPortMapping.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .published, in: values,
                    debugDescription: "'\(text)' is not a published port; expected HOSTPORT->PORT/PROTO such as 18080->8080/tcp")
            }
            return mapping
        }
        ports = try portTexts.map { text in
            guard let port = ServicePort.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .ports, in: values,
                    debugDescription: "'\(text)' is not a port; expected PORT/PROTO such as 80/tcp")
            }
            return port
        }
    }

    public func encode(to encoder: Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(name, forKey: .name)
        try values.encodeIfPresent(id, forKey: .id)
        try values.encode(labels, forKey: .labels)
        try values.encode(addresses, forKey: .addresses)
        try values.encode(ports.map(\.description), forKey: .ports)
        if !attachments.isEmpty { try values.encode(attachments, forKey: .attachments) }
        if !published.isEmpty { try values.encode(published.map(\.description), forKey: .published) }
    }
}

/// A container attachment zonegate cannot enforce on (host network, macvlan, ipvlan, overlay,
/// another container's namespace): reported, never silently ignored.
public struct UnenforcedAttachment: Hashable, Sendable, Codable, CustomStringConvertible {
    public var container: String
    /// The Docker network (`host`, a macvlan network's name, `container:<name>`).
    public var network: String
    public var reason: String

    public init(container: String, network: String, reason: String) {
        self.container = container
        self.network = network
        self.reason = reason
    }

    public var description: String { "\(container) on \(network): unenforced (\(reason))" }
}

/// The containers of a host at one moment: what `zonegate inventory` prints and `--inventory` reads.
public struct Inventory: Hashable, Sendable, Codable {
    public var containers: [Container]
    /// The bridge devices zonegate manages, with or without containers on them yet: an address
    /// on one of them that no container of the inventory holds sends and receives nothing.
    public var bridges: [String]
    /// Attachments on networks zonegate cannot enforce on.
    public var unenforced: [UnenforcedAttachment]

    public init(containers: [Container], bridges: [String] = [], unenforced: [UnenforcedAttachment] = []) {
        self.containers = containers
        self.bridges = bridges
        self.unenforced = unenforced
    }

    private enum CodingKeys: String, CodingKey { case containers, bridges, unenforced }

    public init(from decoder: Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        containers = try values.decode([Container].self, forKey: .containers)
        bridges = try values.decodeIfPresent([String].self, forKey: .bridges) ?? []
        unenforced = try values.decodeIfPresent([UnenforcedAttachment].self, forKey: .unenforced) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(containers, forKey: .containers)
        if !bridges.isEmpty { try values.encode(bridges, forKey: .bridges) }
        if !unenforced.isEmpty { try values.encode(unenforced, forKey: .unenforced) }
    }

    /// Why an inventory file was refused.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Decodes and checks that names and addresses are unique.
    public static func decode(_ data: Data) throws -> Inventory {
        let inventory: Inventory
        do {
            inventory = try JSONDecoder().decode(Inventory.self, from: data)
        } catch let error as DecodingError {
            throw Invalid(description: "invalid inventory: \(describe(error))")
        }
        try inventory.validate()
        return inventory
    }

    public func validate() throws {
        var names: Set<String> = []
        var owners: [IPAddress: String] = [:]
        var portOwners: [String: String] = [:]
        for container in containers {
            guard names.insert(container.name).inserted else {
                throw Invalid(description: "invalid inventory: container name '\(container.name)' appears twice")
            }
            for attachment in container.attachments {
                if let owner = portOwners.updateValue(container.name, forKey: attachment.port) {
                    throw Invalid(description: "invalid inventory: bridge port \(attachment.port) belongs to both '\(owner)' and '\(container.name)'")
                }
                if let stray = attachment.addresses.first(where: { !container.addresses.contains($0) }) {
                    throw Invalid(description: "invalid inventory: '\(container.name)' has \(stray) on \(attachment.port) but not among its addresses")
                }
            }
            for address in container.addresses {
                if let owner = owners.updateValue(container.name, forKey: address), owner != container.name {
                    throw Invalid(description: "invalid inventory: address \(address) belongs to both '\(owner)' and '\(container.name)'")
                }
            }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context): return "\(path(context)): missing '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
