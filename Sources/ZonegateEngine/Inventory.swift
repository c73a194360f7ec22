import Foundation
import ZonegatePolicy

/// A managed container as zonegate sees it: identity, labels, addresses, exposed ports.
public struct Container: Hashable, Sendable, Codable {
    public var name: String
    public var id: String?
    public var labels: [String: String]
    public var addresses: [IPAddress]
    /// Exposed or published ports, the container's own side.
    public var ports: [ServicePort]

    public init(name: String, id: String? = nil, labels: [String: String] = [:], addresses: [IPAddress] = [], ports: [ServicePort] = []) {
        self.name = name
        self.id = id
        self.labels = labels
        self.addresses = addresses
        self.ports = ports
    }

    private enum CodingKeys: String, CodingKey { case name, id, labels, addresses, ports }

    public init(from decoder: Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        name = try values.decode(String.self, forKey: .name)
        id = try values.decodeIfPresent(String.self, forKey: .id)
        labels = try values.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        addresses = try values.decodeIfPresent([IPAddress].self, forKey: .addresses) ?? []
        let portTexts = try values.decodeIfPresent([String].self, forKey: .ports) ?? []
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
    }
}

/// The containers of a host at one moment: what `zonegate inventory` prints and `--inventory` reads.
public struct Inventory: Hashable, Sendable, Codable {
    public var containers: [Container]

    public init(containers: [Container]) {
        self.containers = containers
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
        for container in containers {
            guard names.insert(container.name).inserted else {
                throw Invalid(description: "invalid inventory: container name '\(container.name)' appears twice")
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
