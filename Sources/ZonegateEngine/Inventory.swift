import Foundation
import ZonegatePolicy

/// Where a container is plugged into one Docker bridge network: what binds its addresses to it.
public struct BridgeAttachment: Hashable, Sendable, Encodable {
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
public struct Container: Hashable, Sendable, Encodable {
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
public struct UnenforcedAttachment: Hashable, Sendable, Encodable, CustomStringConvertible {
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
public struct Inventory: Hashable, Sendable, Encodable {
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

    public func encode(to encoder: Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(containers, forKey: .containers)
        if !bridges.isEmpty { try values.encode(bridges, forKey: .bridges) }
        if !unenforced.isEmpty { try values.encode(unenforced, forKey: .unenforced) }
    }

    /// Why an inventory was refused: what, and where in the file when it was read from one.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var file: String?
        public var line: Int?
        public var column: Int?
        public var message: String

        public init(file: String? = nil, line: Int? = nil, column: Int? = nil, message: String) {
            self.file = file
            self.line = line
            self.column = column
            self.message = message
        }

        /// `FILE:LINE:COLUMN: error: invalid inventory: MESSAGE`, one line.
        public var description: String {
            let place = file.map { file in
                SourceLocation(file: file, line: line ?? 1, column: column ?? 1).description + ": error: "
            } ?? ""
            return place + "invalid inventory: " + DisplayText.escaped(message)
        }
    }

    /// Reads an inventory file: a regular file of at most `PolicyLimits.Inventory.fileBytes`
    /// (a FIFO or a device is refused before any read).
    public static func load(file path: String) throws(Invalid) -> Inventory {
        switch BoundedFile.read(path: path, limit: PolicyLimits.Inventory.fileBytes) {
        case .success(let bytes): return try decode(bytes, file: path)
        case .failure(let failure):
            let text = failure.description
            throw Invalid(file: path, line: 1, column: 1, message: text.hasPrefix("the file") ? text : "the file " + text)
        }
    }

    /// Decodes an inventory file strictly: no unknown or duplicate keys, every value of its
    /// type, names and addresses unique, within `PolicyLimits.Inventory`; errors name the file,
    /// line and column.
    public static func decode(_ data: Data, file: String = "inventory") throws(Invalid) -> Inventory {
        try decode(Array(data), file: file)
    }

    public static func decode(_ bytes: [UInt8], file: String) throws(Invalid) -> Inventory {
        if bytes.count > PolicyLimits.Inventory.fileBytes {
            throw Invalid(file: file, line: 1, column: 1, message: "the file is larger than \(PolicyLimits.Inventory.fileBytes >> 20) MiB (see docs/limits.md)")
        }
        let root: JSONNode
        do {
            root = try JSONReader.parse(bytes, maxDepth: PolicyLimits.Inventory.nestingDepth)
        } catch {
            throw Invalid(file: file, line: error.line, column: error.column, message: error.message)
        }
        return try InventoryFileDecoder(file: file).inventory(root)
    }

    /// Checks an inventory built in memory (from Docker): names, bridge ports and addresses unique.
    public func validate() throws {
        var names: Set<String> = []
        var owners: [IPAddress: String] = [:]
        var portOwners: [String: String] = [:]
        for container in containers {
            guard names.insert(container.name).inserted else {
                throw Invalid(message: "container name \(DisplayText.quoted(container.name)) appears twice")
            }
            for attachment in container.attachments {
                if let owner = portOwners.updateValue(container.name, forKey: attachment.port) {
                    throw Invalid(message: "bridge port \(DisplayText.quoted(attachment.port)) belongs to both \(DisplayText.quoted(owner)) and \(DisplayText.quoted(container.name))")
                }
                if let stray = attachment.addresses.first(where: { !container.addresses.contains($0) }) {
                    throw Invalid(message: "\(DisplayText.quoted(container.name)) has \(stray) on \(DisplayText.quoted(attachment.port)) but not among its addresses")
                }
            }
            for address in container.addresses {
                if let owner = owners.updateValue(container.name, forKey: address), owner != container.name {
                    throw Invalid(message: "address \(address) belongs to both \(DisplayText.quoted(owner)) and \(DisplayText.quoted(container.name))")
                }
            }
        }
    }
}

/// The inventory file's schema (cli.md), read from positioned JSON: each problem located.
private struct InventoryFileDecoder {
    typealias Limits = PolicyLimits.Inventory
    typealias Fields = [String: (node: JSONNode, line: Int, column: Int)]
    let file: String

    func fail(_ node: JSONNode, _ message: String) -> Inventory.Invalid {
        Inventory.Invalid(file: file, line: node.line, column: node.column, message: message)
    }

    func inventory(_ root: JSONNode) throws(Inventory.Invalid) -> Inventory {
        let fields = try object(root, "the inventory", allowed: ["containers", "bridges", "unenforced"], required: ["containers"])
        var containers: [Container] = []
        var names: [String: JSONNode] = [:]
        var addressOwners: [IPAddress: String] = [:]
        var portOwners: [String: String] = [:]
        for node in try array(fields["containers"]!.node, "containers", limit: Limits.containers) {
            let container = try container(node)
            if let first = names[container.name] {
                throw fail(node, "container name \(DisplayText.quoted(container.name)) appears twice (first at line \(first.line), column \(first.column))")
            }
            names[container.name] = node
            for attachment in container.attachments {
                if let owner = portOwners.updateValue(container.name, forKey: attachment.port) {
                    throw fail(node, "bridge port \(DisplayText.quoted(attachment.port)) belongs to both \(DisplayText.quoted(owner)) and \(DisplayText.quoted(container.name))")
                }
            }
            for address in container.addresses {
                if let owner = addressOwners.updateValue(container.name, forKey: address), owner != container.name {
                    throw fail(node, "address \(address) belongs to both \(DisplayText.quoted(owner)) and \(DisplayText.quoted(container.name))")
                }
            }
            containers.append(container)
        }
        let bridges = try fields["bridges"].map { field throws(Inventory.Invalid) in
            try array(field.node, "bridges", limit: Limits.bridges).map { node throws(Inventory.Invalid) in try string(node, "a bridge name") }
        } ?? []
        let unenforced = try fields["unenforced"].map { field throws(Inventory.Invalid) in
            try array(field.node, "unenforced", limit: Limits.unenforced).map { node throws(Inventory.Invalid) -> UnenforcedAttachment in
                let entry = try object(node, "an unenforced attachment", allowed: ["container", "network", "reason"], required: ["container", "network", "reason"])
                return UnenforcedAttachment(container: try string(entry["container"]!.node, "a container name"),
                                            network: try string(entry["network"]!.node, "a network name"),
                                            reason: try string(entry["reason"]!.node, "a reason", allowEmpty: true))
            }
        } ?? []
        return Inventory(containers: containers, bridges: bridges, unenforced: unenforced)
    }

    func container(_ node: JSONNode) throws(Inventory.Invalid) -> Container {
        let keys = ["name", "id", "labels", "addresses", "ports", "attachments", "published"]
        let fields = try object(node, "a container", allowed: keys, required: ["name"])
        let nameNode = fields["name"]!.node
        let name = try string(nameNode, "a container name")
        if Zone.reservedNames.contains(name) {
            throw fail(nameNode, "container name \(DisplayText.quoted(name)) is reserved: world, host and any name the other ends of a flow; rename the container")
        }
        var container = Container(name: name)
        if let field = fields["id"] { container.id = try string(field.node, "a container id") }
        if let field = fields["labels"] {
            guard case .object(let members) = field.node.value else { throw fail(field.node, "labels must be an object of label keys and values, not \(field.node.kind)") }
            if members.count > Limits.labelsPerContainer {
                throw fail(field.node, "more than \(Limits.labelsPerContainer) labels (see docs/limits.md)")
            }
            for member in members {
                let key = JSONNode(value: .string(member.key), line: member.keyLine, column: member.keyColumn)
                _ = try string(key, "a label key", maxBytes: Limits.labelKeyBytes)
                container.labels[member.key] = try string(member.value, "a label value (a string)", maxBytes: Limits.labelValueBytes, allowEmpty: true)
            }
        }
        if let field = fields["addresses"] {
            container.addresses = try array(field.node, "addresses", limit: Limits.addressesPerContainer).map { node throws(Inventory.Invalid) -> IPAddress in
                let text = try string(node, "an address")
                guard let address = IPAddress(text) else { throw fail(node, "\(DisplayText.quoted(text)) is not an IPv4 or IPv6 address") }
                return address
            }
        }
        if let field = fields["ports"] {
            container.ports = try array(field.node, "ports", limit: Limits.portsPerContainer).map { node throws(Inventory.Invalid) -> ServicePort in
                let text = try string(node, "a port")
                guard let port = ServicePort.parse(text) else { throw fail(node, "\(DisplayText.quoted(text)) is not a port; expected PORT/PROTO such as 80/tcp") }
                return port
            }
        }
        if let field = fields["published"] {
            container.published = try array(field.node, "published", limit: Limits.portsPerContainer).map { node throws(Inventory.Invalid) -> HostPortMapping in
                let text = try string(node, "a published port")
                guard let mapping = HostPortMapping.parse(text) else {
                    throw fail(node, "\(DisplayText.quoted(text)) is not a published port; expected HOSTPORT->PORT/PROTO such as 18080->8080/tcp")
                }
                return mapping
            }
        }
        if let field = fields["attachments"] {
            container.attachments = try array(field.node, "attachments", limit: Limits.attachmentsPerContainer).map { node throws(Inventory.Invalid) -> BridgeAttachment in
                let entry = try object(node, "an attachment", allowed: ["bridge", "port", "addresses"], required: ["bridge", "port", "addresses"])
                let port = try string(entry["port"]!.node, "a bridge port name")
                let addresses = try array(entry["addresses"]!.node, "addresses", limit: Limits.addressesPerContainer).map { node throws(Inventory.Invalid) -> IPAddress in
                    let text = try string(node, "an address")
                    guard let address = IPAddress(text) else { throw fail(node, "\(DisplayText.quoted(text)) is not an IPv4 or IPv6 address") }
                    guard container.addresses.contains(address) else {
                        throw fail(node, "\(DisplayText.quoted(name)) has \(address) on \(DisplayText.quoted(port)) but not among its addresses")
                    }
                    return address
                }
                return BridgeAttachment(bridge: try string(entry["bridge"]!.node, "a bridge name"), port: port, addresses: addresses)
            }
        }
        return container
    }

    func object(_ node: JSONNode, _ what: String, allowed: [String], required: [String]) throws(Inventory.Invalid) -> Fields {
        guard case .object(let members) = node.value else { throw fail(node, "expected \(what) (a JSON object), found \(node.kind)") }
        var fields: Fields = [:]
        for member in members {
            guard allowed.contains(member.key) else {
                throw Inventory.Invalid(file: file, line: member.keyLine, column: member.keyColumn,
                                        message: "unknown key \(DisplayText.quoted(member.key)) in \(what); expected one of: \(allowed.joined(separator: ", "))")
            }
            fields[member.key] = (member.value, member.keyLine, member.keyColumn)
        }
        if let missing = required.first(where: { fields[$0] == nil }) { throw fail(node, "\(what) needs \(DisplayText.quoted(missing))") }
        return fields
    }

    func array(_ node: JSONNode, _ what: String, limit: Int) throws(Inventory.Invalid) -> [JSONNode] {
        guard case .array(let elements) = node.value else { throw fail(node, "\(what) must be an array, not \(node.kind)") }
        if elements.count > limit { throw fail(node, "more than \(limit) entries in \(what) (see docs/limits.md)") }
        return elements
    }

    func string(_ node: JSONNode, _ what: String, maxBytes: Int = Limits.stringBytes, allowEmpty: Bool = false) throws(Inventory.Invalid) -> String {
        guard case .string(let text) = node.value else { throw fail(node, "expected \(what), found \(node.kind)") }
        if text.isEmpty && !allowEmpty { throw fail(node, "expected \(what), found an empty string") }
        if text.utf8.count > maxBytes { throw fail(node, "\(what) longer than \(maxBytes) bytes: \(DisplayText.quoted(text)) (see docs/limits.md)") }
        return text
    }
}
