/// Whether a side of a zone (ingress or egress) accepts any peer or only those a rule allows.
public enum Access: String, Hashable, Sendable, CaseIterable {
    case open, restricted
}

/// Whether a zone's denials are enforced or only logged.
public enum EnforcementMode: String, Hashable, Sendable, CaseIterable {
    case enforce, audit
}

/// A zone's PCI DSS scope (`pci:`). It changes no verdict: evidence reports list the flows into and
/// out of `cde` zones, and `check` requires a justification on the rules that can reach them.
public enum PCIScope: String, Hashable, Sendable, CaseIterable {
    case cde
    case connected
    case outOfScope = "out-of-scope"
}

/// What happens to a denied packet.
public enum DenyAction: String, Hashable, Sendable, CaseIterable {
    case drop, reject
}

/// Host-wide behaviour, the `defaults` section.
public struct Defaults: Hashable, Sendable {
    public var unzoned: Access = .open
    public var action: DenyAction = .drop
    public var logDenied = true
    /// nil manages every bridge network; otherwise only the named Docker networks.
    public var networks: [String]? = nil
    public var mode: EnforcementMode = .enforce

    public init() {}
}

/// A named set of containers, chosen by label selector.
public struct Zone: Hashable, Sendable {
    public var name: String
    public var selector: LabelSelector
    public var ingress: Access
    public var egress: Access
    /// The zone's own mode; nil follows `defaults.mode`.
    public var mode: EnforcementMode?
    /// The zone's PCI DSS scope; nil when the policy does not say.
    public var pci: PCIScope?
    public var location: SourceLocation?

    public init(name: String, selector: LabelSelector? = nil, ingress: Access = .restricted, egress: Access = .open,
                mode: EnforcementMode? = nil, pci: PCIScope? = nil, location: SourceLocation? = nil) {
        self.name = name
        self.selector = selector ?? .zoneLabel(name)
        self.ingress = ingress
        self.egress = egress
        self.mode = mode
        self.pci = pci
        self.location = location
    }

    public static let reservedNames: Set<String> = ["world", "host", "any"]
}

/// An address prefix less some exceptions: `{cidr: 203.0.113.0/24, except: [203.0.113.8/29]}`.
public struct CIDRBlock: Hashable, Sendable, CustomStringConvertible {
    public var cidr: CIDR
    public var except: [CIDR]

    public init(_ cidr: CIDR, except: [CIDR] = []) {
        self.cidr = cidr
        self.except = except
    }

    public func contains(_ address: IPAddress) -> Bool {
        cidr.contains(address) && !except.contains { $0.contains(address) }
    }

    public var description: String {
        except.isEmpty ? cidr.description : "\(cidr) except \(except.map(\.description).joined(separator: ", "))"
    }
}

/// One side of a rule or assertion.
public enum Endpoint: Hashable, Sendable, CustomStringConvertible {
    case zone(String)
    case world
    case host
    case any
    case cidr(CIDRBlock)

    public var description: String {
        switch self {
        case .zone(let name): return name
        case .world: return "world"
        case .host: return "host"
        case .any: return "any"
        case .cidr(let block): return block.description
        }
    }
}

/// The metadata a rule may carry for people: shown in explain, logs and evidence.
public struct RuleAnnotations: Hashable, Sendable {
    public var owner: String?
    public var ticket: String?
    public var description: String?
    /// The business need for the flow (PCI DSS 1.2.5); required on rules that reach a CDE zone.
    public var justification: String?

    public init(owner: String? = nil, ticket: String? = nil, description: String? = nil, justification: String? = nil) {
        self.owner = owner
        self.ticket = ticket
        self.description = description
        self.justification = justification
    }
}

/// One allowed flow: sources, destinations and the ports it covers.
public struct Rule: Hashable, Sendable {
    public var name: String
    public var from: [Endpoint]
    public var to: [Endpoint]
    /// nil covers every port of every protocol.
    public var ports: [PortRange]?
    public var annotations: RuleAnnotations
    public var location: SourceLocation?

    public init(name: String, from: [Endpoint], to: [Endpoint], ports: [PortRange]? = nil,
                annotations: RuleAnnotations = .init(), location: SourceLocation? = nil) {
        self.name = name
        self.from = from
        self.to = to
        self.ports = ports
        self.annotations = annotations
        self.location = location
    }

    /// The port ranges covered, every protocol in full when `ports` is omitted.
    public var portRanges: [PortRange] { ports ?? PortProtocol.allCases.map(PortRange.all) }
}

/// A promise about the policy that `check` proves.
public struct Assertion: Hashable, Sendable {
    /// `deny`: no such flow is possible; `allow`: every such flow is allowed.
    public enum Kind: String, Hashable, Sendable { case deny, allow }

    public var name: String
    public var kind: Kind
    public var from: [Endpoint]
    public var to: [Endpoint]
    /// nil: every port of every protocol.
    public var ports: [PortRange]?
    public var location: SourceLocation?

    public init(name: String, kind: Kind, from: [Endpoint], to: [Endpoint], ports: [PortRange]? = nil,
                location: SourceLocation? = nil) {
        self.name = name
        self.kind = kind
        self.from = from
        self.to = to
        self.ports = ports
        self.location = location
    }

    public var portRanges: [PortRange] { ports ?? PortProtocol.allCases.map(PortRange.all) }
}

/// A whole, validated policy: every file of the policy directory merged.
public struct Policy: Hashable, Sendable {
    public var defaults: Defaults
    public var zones: [Zone]
    public var rules: [Rule]
    public var assertions: [Assertion]
    /// `sha256:<hex>` over the files that made it (see cli.md).
    public var digest: String

    public init(defaults: Defaults = .init(), zones: [Zone] = [], rules: [Rule] = [], assertions: [Assertion] = [],
                digest: String = "") {
        self.defaults = defaults
        self.zones = zones
        self.rules = rules
        self.assertions = assertions
        self.digest = digest
    }

    public func zone(named name: String) -> Zone? { zones.first { $0.name == name } }

    /// A zone's mode, its own or the host-wide default.
    public func mode(of zone: Zone) -> EnforcementMode { zone.mode ?? defaults.mode }
}
