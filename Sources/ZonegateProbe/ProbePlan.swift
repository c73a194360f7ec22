import ZonegatePolicy

/// Where a probe starts: inside a container's network namespace, in the host's (the
/// namespace zonegate runs in), or in a temporary namespace that plays an outside host.
public enum ProbeSource: Hashable, Sendable, CustomStringConvertible {
    case container(String)
    case host
    case world

    public var description: String {
        switch self {
        case .container(let name): name
        case .host: "host"
        case .world: "world"
        }
    }
}

/// How to enter a container's network namespace.
public enum NetnsHandle: Hashable, Sendable, CustomStringConvertible {
    /// The namespace of a process: `/proc/PID/ns/net` (Docker inspect's `State.Pid`).
    case pid(Int32)
    /// A namespace file, such as `/run/netns/NAME` or a bind mount.
    case path(String)

    public var path: String {
        switch self {
        case .pid(let pid): "/proc/\(pid)/ns/net"
        case .path(let path): path
        }
    }

    public var description: String { path }
}

/// A container as the probes see it: its addresses (the only addresses ever probed), its
/// namespace, and the Docker facts that can block a flow zonegate allows.
public struct ProbeContainer: Hashable, Sendable {
    public var name: String
    public var addresses: [IPAddress]
    /// nil: it has no namespace of its own to enter (not running, another container's namespace).
    public var namespace: NetnsHandle?
    /// The bridges of its Docker networks.
    public var bridges: [String]
    /// Its own side of the ports Docker publishes (`-p 8080:80/tcp` gives 80/tcp).
    public var publishedPorts: Set<ServicePort>

    public init(name: String, addresses: [IPAddress], namespace: NetnsHandle?, bridges: [String] = [],
                publishedPorts: Set<ServicePort> = []) {
        self.name = name
        self.addresses = addresses
        self.namespace = namespace
        self.bridges = bridges
        self.publishedPorts = publishedPorts
    }
}

/// One flow of the matrix to try, with the verdict the matrix gives it.
public struct ProbeFlow: Hashable, Sendable, CustomStringConvertible {
    public var from: ProbeSource
    /// The destination container's name (a `ProbeContainer` of the plan).
    public var to: String
    /// The port; for ICMP the number is ignored (echo request).
    public var port: ServicePort
    /// The matrix lets it through (`allow` or `audit`).
    public var allowed: Bool

    public init(from: ProbeSource, to: String, port: ServicePort, allowed: Bool) {
        self.from = from
        self.to = to
        self.port = port
        self.allowed = allowed
    }

    public var description: String { "\(from) -> \(to) \(port)" }
}

/// The layers other than zonegate that can stop a flow on a Docker host, as the caller knows
/// them from Docker (networks' options, the daemon's configuration). The engine names one
/// only when these facts say it applies.
public struct OtherLayers: Hashable, Sendable {
    /// Bridges of networks with `com.docker.network.bridge.enable_icc=false`.
    public var bridgesWithoutICC: Set<String>
    /// Docker drops traffic between containers of different bridge networks (its
    /// DOCKER-ISOLATION chains; true on a real Docker host).
    public var networksIsolated: Bool
    /// Docker forwards outside traffic to a container only on the ports it publishes (its
    /// FORWARD policy drop with the DOCKER chain; true on a real Docker host).
    public var outsideNeedsPublishedPort: Bool

    public init(bridgesWithoutICC: Set<String> = [], networksIsolated: Bool = false, outsideNeedsPublishedPort: Bool = false) {
        self.bridgesWithoutICC = bridgesWithoutICC
        self.networksIsolated = networksIsolated
        self.outsideNeedsPublishedPort = outsideNeedsPublishedPort
    }

    /// A Docker host with its defaults: networks isolated, outside traffic only to published ports.
    public static let docker = OtherLayers(networksIsolated: true, outsideNeedsPublishedPort: true)
}

/// Everything one probe run needs.
public struct ProbePlan: Sendable {
    public var containers: [ProbeContainer]
    public var flows: [ProbeFlow]
    /// The policy's CIDRs: the outside namespace takes an address none of them covers.
    public var avoid: [CIDR]
    public var otherLayers: OtherLayers

    public init(containers: [ProbeContainer], flows: [ProbeFlow], avoid: [CIDR] = [], otherLayers: OtherLayers = OtherLayers()) {
        self.containers = containers
        self.flows = flows
        self.avoid = avoid
        self.otherLayers = otherLayers
    }
}

/// The bounds of a run. The defaults suit a matrix of ~5,000 flows on a small host.
public struct ProbeOptions: Sendable {
    /// How long a TCP or SCTP connect may take.
    public var connectTimeout: Duration = .seconds(1)
    /// How long a UDP or ICMP probe waits for its answer.
    public var answerTimeout: Duration = .seconds(1)
    /// How many times a UDP datagram or ICMP echo is sent again within `answerTimeout`.
    public var resends = 2
    /// The whole run, set-up included: attempts not finished by then are `not-probed`.
    public var deadline: Duration = .seconds(120)
    /// Attempts in flight at once (each holds one socket).
    public var maxInFlight = 2048
    /// Attempts started per second at most. A burst of thousands of SYNs, with the ARP and
    /// neighbour solicitations they set off (flooded to every port of a bridge), overflows the
    /// kernel's per-CPU backlog (net.core.netdev_max_backlog, 1000) and loses packets; a lost
    /// ARP request is retried only after a second, when the probe's time is up.
    public var launchRate = 3000
    /// More flows than this are refused (`ProbeError`): a run is bounded in number too.
    public var maxFlows = ProbeOptions.flowLimit

    /// The largest `maxFlows` accepted.
    public static let flowLimit = 50_000
    /// The largest `maxInFlight` accepted.
    public static let inFlightLimit = 8192

    public init() {}
}

/// What happened to one flow.
public enum ProbeOutcome: String, Hashable, Sendable, Codable {
    /// The connection was made, or the answer came back.
    case reached
    /// Nothing came back in time, or the connection was refused or reported unreachable.
    case blocked
    /// The probe could not be made (`note` says why); it never counts as agreeing.
    case notProbed = "not-probed"
}

/// Who answered at the destination.
public enum ProbeListener: String, Hashable, Sendable, Codable {
    /// The container's own service (the port was taken when the probe tried to bind it).
    case existing
    /// A temporary listener of the probe, removed afterwards.
    case temporary
    /// None (ICMP: the destination's kernel answers).
    case none
}

/// One attempt: one destination address of a flow.
public struct ProbeAttempt: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var outcome: ProbeOutcome
    /// What was seen: "connected", "no answer in 1 s", "connection refused", ...
    public var detail: String
    public var listener: ProbeListener
    /// Milliseconds from the first packet to the outcome.
    public var milliseconds: Int

    public var description: String { "\(address): \(outcome.rawValue) (\(detail))" }
}

/// The result of one flow.
public struct ProbeResult: Hashable, Sendable {
    public var flow: ProbeFlow
    /// `reached` when any address of the destination was reached, `blocked` when every
    /// attempted one was blocked, `not-probed` when none could be attempted.
    public var outcome: ProbeOutcome
    /// Why it was not probed, or what was seen when attempts differ or were blocked.
    public var note: String?
    /// For an allowed flow that did not get through: the other layer that blocked it, when the
    /// engine can name it; nil means "blocked, cause unknown".
    public var blockedBy: String?
    public var attempts: [ProbeAttempt]

    /// Whether the probe agrees with the matrix: an allowed flow reached (or blocked by a named
    /// other layer), a denied flow blocked. A flow not probed never agrees.
    public var agrees: Bool {
        switch outcome {
        case .reached: flow.allowed
        case .blocked: !flow.allowed || blockedBy != nil
        case .notProbed: false
        }
    }
}

/// The outside namespace a run used for `world` rows.
public struct OutsideHost: Hashable, Sendable {
    /// The outside namespace's own addresses (the sources of `world` probes).
    public var addresses: [IPAddress]
    /// The host's side of the link.
    public var hostAddresses: [IPAddress]
    /// The host's end of the veth pair (removed with the namespace).
    public var hostLink: String
}

/// The results of a run, one per flow of the plan, in the plan's order.
public struct ProbeReport: Sendable {
    public var results: [ProbeResult]
    public var outside: OutsideHost?
    /// Wall-clock time of the run, set-up and clean-up included.
    public var elapsed: Duration
    /// Individual attempts made (one per destination address tried).
    public var attemptCount: Int
    /// What may make results wrong (the kernel's neighbour table overflowed).
    public var warnings: [String] = []

    public func count(_ outcome: ProbeOutcome) -> Int { results.count { $0.outcome == outcome } }
    public var disagreements: [ProbeResult] { results.filter { !$0.agrees } }
}

/// A run that could not start or was refused.
public struct ProbeError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
