import ZonegateEngine
import ZonegatePolicy

/// What zonegate reads from a Docker engine: the real Engine API client (`DockerAPIClient`) in
/// production, `FakeDockerEngine` (ZonegateTesting) in tests.
public protocol DockerEngine: Sendable {
    /// Every running container, inspected.
    func runningContainers() async throws -> [DockerContainer]
    /// One container, inspected; nil when it no longer exists.
    func inspectContainer(id: String) async throws -> DockerContainer?
    /// Every network.
    func networks() async throws -> [DockerNetwork]
    /// Container and network events from now on, until the task is cancelled or the stream
    /// breaks (then it finishes by throwing; the caller reconnects and resynchronises).
    func events() async throws -> AsyncThrowingStream<DockerEvent, Error>
}

/// A container as `GET /containers/{id}/json` reports it, reduced to what zonegate needs.
public struct DockerContainer: Sendable, Hashable {
    public var id: String
    /// Without Docker's leading `/`.
    public var name: String
    public var labels: [String: String]
    public var running: Bool
    /// The process whose network namespace the container uses; 0 when not running.
    public var pid: Int32
    /// `HostConfig.NetworkMode`: `default`, `bridge`, `host`, `none`, `container:<id>` or a network name.
    public var networkMode: String
    public var endpoints: [DockerEndpoint]
    /// `Config.ExposedPorts`.
    public var exposedPorts: [ServicePort]
    /// `NetworkSettings.Ports` entries that have host bindings.
    public var publishedPorts: [PublishedPort]

    public init(id: String, name: String, labels: [String: String] = [:], running: Bool = true, pid: Int32 = 0,
                networkMode: String = "default", endpoints: [DockerEndpoint] = [], exposedPorts: [ServicePort] = [],
                publishedPorts: [PublishedPort] = []) {
        self.id = id
        self.name = name
        self.labels = labels
        self.running = running
        self.pid = pid
        self.networkMode = networkMode
        self.endpoints = endpoints
        self.exposedPorts = exposedPorts
        self.publishedPorts = publishedPorts
    }
}

/// A container's attachment to one network (`NetworkSettings.Networks[name]`).
public struct DockerEndpoint: Sendable, Hashable {
    public var networkID: String
    public var networkName: String
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?
    /// Lower-case `aa:bb:cc:dd:ee:ff`; how the container's interface is found on the bridge.
    public var macAddress: String

    public init(networkID: String, networkName: String, ipv4: IPAddress?, ipv6: IPAddress?, macAddress: String) {
        self.networkID = networkID
        self.networkName = networkName
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.macAddress = macAddress
    }
}

/// A port Docker publishes on the host: `hostPort` on the host forwards to `containerPort`.
public struct PublishedPort: Sendable, Hashable {
    /// Empty or `0.0.0.0`/`::` for every host address.
    public var hostAddress: String
    public var hostPort: UInt16
    public var containerPort: ServicePort

    public init(hostAddress: String, hostPort: UInt16, containerPort: ServicePort) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
    }
}

/// A network as `GET /networks` reports it.
public struct DockerNetwork: Sendable, Hashable {
    public var id: String
    public var name: String
    /// `bridge`, `host`, `null`, `macvlan`, `ipvlan`, `overlay`, ...
    public var driver: String
    /// `Options["com.docker.network.bridge.name"]`: set for the default bridge (`docker0`);
    /// nil for other networks.
    public var bridgeNameOption: String?
    /// `Options["com.docker.network.bridge.enable_icc"]` is false: Docker drops traffic between
    /// two containers of this bridge (on the default bridge, the daemon's `--icc=false`).
    public var interContainerTrafficDisabled: Bool

    public init(id: String, name: String, driver: String, bridgeNameOption: String? = nil, interContainerTrafficDisabled: Bool = false) {
        self.id = id
        self.name = name
        self.driver = driver
        self.bridgeNameOption = bridgeNameOption
        self.interContainerTrafficDisabled = interContainerTrafficDisabled
    }

    /// The Linux bridge device of a bridge network: its name option, else `br-` and the
    /// first 12 characters of its id, as Docker names it.
    public var bridgeDevice: String? {
        guard driver == "bridge" else { return nil }
        return bridgeNameOption ?? "br-" + id.prefix(12)
    }
}

/// One entry of `GET /events`.
public struct DockerEvent: Sendable, Hashable {
    /// `container` or `network`.
    public var type: String
    /// `create`, `start`, `die`, `destroy`, `connect`, `disconnect`, ...
    public var action: String
    /// The container's id, or the network's id.
    public var actorID: String
    /// For network events, `container` holds the container's id.
    public var attributes: [String: String]

    public init(type: String, action: String, actorID: String, attributes: [String: String] = [:]) {
        self.type = type
        self.action = action
        self.actorID = actorID
        self.attributes = attributes
    }

    /// The container the event is about, if any.
    public var containerID: String? {
        switch type {
        case "container": return actorID
        case "network": return attributes["container"]
        default: return nil
        }
    }
}
