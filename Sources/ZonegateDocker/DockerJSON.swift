import Foundation
import ZonegatePolicy

/// Decoding of the Engine API's JSON into zonegate's Docker values (pure; the fixtures in
/// Tests/Fixtures/docker are real dockerd 20.10 answers).
public enum DockerJSON {
    /// `GET /containers/{id}/json`.
    public static func container(fromInspect data: Data) throws -> DockerContainer {
        let inspect = try decode(InspectJSON.self, from: data, what: "container inspect")
        let endpoints = (inspect.NetworkSettings?.Networks ?? [:]).map { name, network in
            DockerEndpoint(networkID: network.NetworkID ?? "", networkName: name,
                           ipv4: address(network.IPAddress), ipv6: address(network.GlobalIPv6Address),
                           macAddress: (network.MacAddress ?? "").lowercased())
        }.sorted { $0.networkName < $1.networkName }
        // `Ports` holds every exposed port, with null for those not published.
        let published = (inspect.NetworkSettings?.Ports ?? [:]).flatMap { key, bindings -> [PublishedPort] in
            guard let port = ServicePort.parse(key) else { return [] }
            return (bindings ?? []).compactMap { binding in
                UInt16(binding.HostPort ?? "").map {
                    PublishedPort(hostAddress: binding.HostIp ?? "", hostPort: $0, containerPort: port)
                }
            }
        }.sorted { ($0.containerPort, $0.hostPort, $0.hostAddress) < ($1.containerPort, $1.hostPort, $1.hostAddress) }
        return DockerContainer(
            id: inspect.Id,
            name: inspect.Name.hasPrefix("/") ? String(inspect.Name.dropFirst()) : inspect.Name,
            labels: inspect.Config?.Labels ?? [:],
            running: inspect.State?.Running ?? false,
            pid: inspect.State?.Pid ?? 0,
            networkMode: inspect.HostConfig?.NetworkMode ?? "default",
            endpoints: endpoints,
            exposedPorts: (inspect.Config?.ExposedPorts ?? [:]).keys.compactMap(ServicePort.parse).sorted(),
            publishedPorts: published)
    }

    /// The ids of `GET /containers/json`.
    public static func containerIDs(fromList data: Data) throws -> [String] {
        try decode([ListedContainerJSON].self, from: data, what: "container list").map(\.Id)
    }

    /// `GET /networks`.
    public static func networks(fromList data: Data) throws -> [DockerNetwork] {
        try decode([NetworkJSON].self, from: data, what: "network list").map {
            DockerNetwork(id: $0.Id, name: $0.Name, driver: $0.Driver ?? "",
                          bridgeNameOption: $0.Options?["com.docker.network.bridge.name"].flatMap { $0.isEmpty ? nil : $0 },
                          interContainerTrafficDisabled: $0.Options?["com.docker.network.bridge.enable_icc"].map(isFalse) ?? false)
        }.sorted { $0.name < $1.name }
    }

    /// The spellings of false Docker accepts for a boolean option (Go's strconv.ParseBool).
    private static func isFalse(_ value: String) -> Bool {
        ["0", "f", "F", "false", "FALSE", "False"].contains(value)
    }

    /// One line of `GET /events`; nil for an event without a type or action (none are expected
    /// since API 1.22, but an unknown shape is no reason to break the stream).
    public static func event(fromLine line: some Collection<UInt8>) throws -> DockerEvent? {
        let event = try decode(EventJSON.self, from: Data(line), what: "event")
        guard let type = event.type, let action = event.action, let actor = event.actor?.ID else { return nil }
        return DockerEvent(type: type, action: action, actorID: actor, attributes: event.actor?.Attributes ?? [:])
    }

    /// `GET /version`: the server's API version and the oldest it still accepts.
    public static func version(from data: Data) throws -> DockerServerVersion {
        let version = try decode(VersionJSON.self, from: data, what: "version")
        guard let api = DockerAPIVersion(version.ApiVersion ?? "") else {
            throw DockerError(.malformedResponse, "Docker's /version has no usable ApiVersion ('\(version.ApiVersion ?? "")')")
        }
        return DockerServerVersion(engine: version.Version ?? "unknown", apiVersion: api,
                                   minimumAPIVersion: version.MinAPIVersion.flatMap(DockerAPIVersion.init))
    }

    /// The `message` of an API error body (`{"message": "..."}`), else the body as text: some
    /// answers (an API version too old) are plain text.
    static func errorMessage(from data: Data) -> String {
        let message = (try? JSONDecoder().decode(ErrorJSON.self, from: data))?.message
            ?? String(decoding: data, as: UTF8.self)
        return message.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An empty address field is Docker's way of saying none.
    private static func address(_ text: String?) -> IPAddress? {
        guard let text, !text.isEmpty else { return nil }
        return IPAddress(text)
    }

    private static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            let excerpt = String(decoding: data.prefix(200), as: UTF8.self)
            throw DockerError(.malformedResponse, "cannot read Docker's \(what) answer (\(error)): \(excerpt)")
        }
    }
}

/// What `GET /version` says about the engine.
public struct DockerServerVersion: Sendable, Hashable {
    /// `Version`, such as `20.10.24+dfsg1`.
    public var engine: String
    public var apiVersion: DockerAPIVersion
    /// `MinAPIVersion`; nil from engines too old to report it.
    public var minimumAPIVersion: DockerAPIVersion?

    public init(engine: String, apiVersion: DockerAPIVersion, minimumAPIVersion: DockerAPIVersion?) {
        self.engine = engine
        self.apiVersion = apiVersion
        self.minimumAPIVersion = minimumAPIVersion
    }
}

/// An Engine API version, `1.41`.
public struct DockerAPIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]), major >= 0, minor >= 0 else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: DockerAPIVersion, b: DockerAPIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

// The Engine API's JSON, only the fields zonegate reads, named as Docker spells them.

private struct InspectJSON: Decodable {
    struct StateJSON: Decodable {
        var Running: Bool?
        var Pid: Int32?
    }
    struct ConfigJSON: Decodable {
        var Labels: [String: String]?
        var ExposedPorts: [String: Ignored]?
    }
    struct HostConfigJSON: Decodable {
        var NetworkMode: String?
    }
    struct EndpointJSON: Decodable {
        var NetworkID: String?
        var IPAddress: String?
        var GlobalIPv6Address: String?
        var MacAddress: String?
    }
    struct BindingJSON: Decodable {
        var HostIp: String?
        var HostPort: String?
    }
    struct NetworkSettingsJSON: Decodable {
        var Networks: [String: EndpointJSON]?
        var Ports: [String: [BindingJSON]?]?
    }
    var Id: String
    var Name: String
    var State: StateJSON?
    var Config: ConfigJSON?
    var HostConfig: HostConfigJSON?
    var NetworkSettings: NetworkSettingsJSON?
}

/// A JSON value whose content does not matter (`ExposedPorts` maps each port to `{}`).
private struct Ignored: Decodable {
    init(from decoder: Decoder) throws {}
}

private struct ListedContainerJSON: Decodable {
    var Id: String
}

private struct NetworkJSON: Decodable {
    var Id: String
    var Name: String
    var Driver: String?
    var Options: [String: String]?
}

private struct EventJSON: Decodable {
    struct ActorJSON: Decodable {
        var ID: String?
        var Attributes: [String: String]?
    }
    var type: String?
    var action: String?
    var actor: ActorJSON?

    // Engines before API 1.52 also send the pre-1.22 `status`, `id` and `from`: ignored.
    private enum CodingKeys: String, CodingKey {
        case type = "Type", action = "Action", actor = "Actor"
    }
}

private struct VersionJSON: Decodable {
    var Version: String?
    var ApiVersion: String?
    var MinAPIVersion: String?
}

private struct ErrorJSON: Decodable {
    var message: String
}
