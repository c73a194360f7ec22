import Crypto
import Yams

/// One policy file as read from disk: its base name and its bytes.
public struct PolicyFile: Hashable, Sendable {
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    public init(name: String, text: String) {
        self.init(name: name, bytes: Array(text.utf8))
    }
}

/// Turns policy files into one validated `Policy`, or rejects them whole with every problem found.
public enum PolicyParser {
    /// Files are taken in file-name order, whatever order they are given in.
    public static func parse(_ files: [PolicyFile]) throws(PolicyError) -> Policy {
        let ordered = files.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var reader = PolicyReader()
        for file in ordered { reader.read(file) }
        reader.validateReferences()
        if !reader.diagnostics.isEmpty { throw PolicyError(reader.diagnostics) }
        return Policy(defaults: reader.defaults, zones: reader.zones, rules: reader.rules,
                      assertions: reader.assertions, digest: digest(of: ordered))
    }

    /// `sha256:` and the hex SHA-256 over each file's base name then content, in file-name order.
    public static func digest(of files: [PolicyFile]) -> String {
        var hasher = SHA256()
        for file in files.sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) {
            hasher.update(data: Array(file.name.utf8))
            hasher.update(data: file.bytes)
        }
        return "sha256:" + hasher.finalize().map { String(format2hex: $0) }.joined()
    }
}

extension String {
    init(format2hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}

/// The parse of all files, accumulating diagnostics instead of stopping at the first.
private struct PolicyReader {
    var diagnostics: [PolicyDiagnostic] = []
    var defaults = Defaults()
    var zones: [Zone] = []
    var rules: [Rule] = []
    var assertions: [Assertion] = []

    private var defaultsLocation: SourceLocation?
    private var names: [String: (kind: String, location: SourceLocation)] = [:]
    /// Every zone reference, checked once all files are read (a zone may be defined in a later file).
    private var zoneReferences: [(name: String, location: SourceLocation)] = []
    private var file = ""

    private static let topLevelKeys = ["version", "defaults", "zones", "rules", "assertions"]

    mutating func read(_ policyFile: PolicyFile) {
        file = policyFile.name
        guard let source = String(validating: policyFile.bytes, as: UTF8.self) else {
            error(SourceLocation(file: file, line: 1, column: 1), "the file is not valid UTF-8 text")
            return
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: source)
        } catch let yamlError as YamlError {
            reportSyntax(yamlError)
            return
        } catch {
            self.error(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
            return
        }
        // An empty file, or one empty document (`---` alone), is an empty policy.
        guard let root, !isNull(root) else { return }
        guard let fields = fields(of: root, in: "a policy file", allowed: Self.topLevelKeys) else { return }
        if let version = fields["version"] {
            if version.value.scalar?.string != "1" {
                error(version.value, "unsupported version '\(text(version.value))'; expected 1")
            }
        }
        if let section = fields["defaults"] { readDefaults(section.value, key: section.key) }
        if let section = fields["zones"] { list(section.value, "zones", "zone definitions").forEach { readZone($0) } }
        if let section = fields["rules"] {
            for (index, node) in list(section.value, "rules", "rules").enumerated() { readRule(node, index: index + 1) }
        }
        if let section = fields["assertions"] {
            for (index, node) in list(section.value, "assertions", "assertions").enumerated() { readAssertion(node, index: index + 1) }
        }
    }

    mutating func validateReferences() {
        let defined = Set(zones.map(\.name))
        // Suggest only names that are zones: not the invalid ones already reported.
        let known = defined.filter { isZoneName($0) && !Zone.reservedNames.contains($0) }.sorted().joined(separator: ", ")
        for reference in zoneReferences where !defined.contains(reference.name) {
            error(reference.location, "'\(reference.name)' is not a defined zone; expected one of: \(known.isEmpty ? "(no zones defined)" : known), world, host, any, or {cidr: ...}")
        }
    }

    // MARK: - Sections

    private mutating func readDefaults(_ node: Node, key: Node) {
        if let earlier = defaultsLocation {
            error(key, "defaults are already set at \(earlier); at most one file may set them")
            return
        }
        defaultsLocation = location(key)
        guard let fields = fields(of: node, in: "defaults", allowed: ["unzoned", "action", "logDenied", "networks", "mode"]) else { return }
        if let field = fields["unzoned"], let value: Access = choice(field.value, "unzoned") { defaults.unzoned = value }
        if let field = fields["action"], let value: DenyAction = choice(field.value, "action") { defaults.action = value }
        if let field = fields["mode"], let value: EnforcementMode = choice(field.value, "mode") { defaults.mode = value }
        if let field = fields["logDenied"] {
            switch field.value.scalar?.string.lowercased() {
            case "true": defaults.logDenied = true
            case "false": defaults.logDenied = false
            default: error(field.value, "logDenied must be true or false, not '\(text(field.value))'")
            }
        }
        if let field = fields["networks"] {
            if field.value.scalar?.string == "all" {
                defaults.networks = nil
            } else if case .sequence(let items) = field.value, !items.isEmpty {
                defaults.networks = items.compactMap { item in
                    guard let name = item.scalar?.string, !name.isEmpty, !isNull(item) else {
                        error(item, "expected a Docker network name")
                        return nil
                    }
                    return name
                }
            } else {
                error(field.value, "networks must be 'all' or a non-empty list of Docker network names")
            }
        }
    }

    private mutating func readZone(_ node: Node) {
        guard let fields = fields(of: node, in: "a zone", allowed: ["name", "selector", "ingress", "egress", "mode"]) else { return }
        guard let nameField = fields["name"] else {
            error(node, "a zone needs a name")
            return
        }
        let name = text(nameField.value)
        if Zone.reservedNames.contains(name) {
            error(nameField.value, "'\(name)' is reserved for an endpoint and cannot name a zone")
        } else if !isZoneName(name) {
            error(nameField.value, "zone name '\(name)' must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'")
        }
        claim(name, kind: "zone", at: nameField.value)
        var zone = Zone(name: name, location: location(nameField.value))
        if let field = fields["selector"], let selector = readSelector(field.value) { zone.selector = selector }
        if let field = fields["ingress"], let value: Access = choice(field.value, "ingress") { zone.ingress = value }
        if let field = fields["egress"], let value: Access = choice(field.value, "egress") { zone.egress = value }
        if let field = fields["mode"], let value: EnforcementMode = choice(field.value, "mode") { zone.mode = value }
        zones.append(zone)
    }

    private mutating func readRule(_ node: Node, index: Int) {
        let keys = ["name", "from", "to", "ports", "owner", "ticket", "description"]
        guard let fields = fields(of: node, in: "a rule", allowed: keys) else { return }
        let name = fields["name"].map { readName($0.value, kind: "rule") } ?? "\(file)#\(index)"
        claim(name, kind: "rule", at: fields["name"]?.value ?? node)
        let from = required(fields, "from", in: node, what: "a rule").flatMap { readEndpoints($0) }
        let to = required(fields, "to", in: node, what: "a rule").flatMap { readEndpoints($0) }
        let ports = fields["ports"].map { readPorts($0.value) }
        let annotations = RuleAnnotations(owner: freeText(fields["owner"]), ticket: freeText(fields["ticket"]),
                                          description: freeText(fields["description"]))
        if let from, let to, ports != .some(nil) {
            rules.append(Rule(name: name, from: from, to: to, ports: ports ?? nil, annotations: annotations, location: location(node)))
        }
    }

    private mutating func readAssertion(_ node: Node, index: Int) {
        guard let fields = fields(of: node, in: "an assertion", allowed: ["name", "deny", "allow"]) else { return }
        let name = fields["name"].map { readName($0.value, kind: "assertion") } ?? "\(file)#assertion-\(index)"
        claim(name, kind: "assertion", at: fields["name"]?.value ?? node)
        let kinds = [Assertion.Kind.deny, .allow].filter { fields[$0.rawValue] != nil }
        guard kinds.count == 1, let kind = kinds.first, let body = fields[kind.rawValue]?.value else {
            error(node, "an assertion needs exactly one of 'deny' or 'allow'")
            return
        }
        guard let flow = self.fields(of: body, in: "an assertion's flow", allowed: ["from", "to", "ports"]) else { return }
        let from = required(flow, "from", in: body, what: "an assertion").flatMap { readEndpoints($0) }
        let to = required(flow, "to", in: body, what: "an assertion").flatMap { readEndpoints($0) }
        let ports = flow["ports"].map { readPorts($0.value) }
        if let from, let to, ports != .some(nil) {
            assertions.append(Assertion(name: name, kind: kind, from: from, to: to, ports: ports ?? nil, location: location(node)))
        }
    }

    // MARK: - Values

    private mutating func readSelector(_ node: Node) -> LabelSelector? {
        guard let fields = fields(of: node, in: "a selector", allowed: ["matchLabels", "matchExpressions"]) else { return nil }
        var selector = LabelSelector()
        var valid = true
        if let field = fields["matchLabels"] {
            if let labels = self.fields(of: field.value, in: "matchLabels", allowed: nil) {
                for (key, pair) in labels {
                    let value = text(pair.value)
                    if let problem = LabelSyntax.problem(withKey: key) { error(pair.key, problem); valid = false }
                    if pair.value.scalar == nil { error(pair.value, "expected a label value (a string)"); valid = false }
                    else if let problem = LabelSyntax.problem(withValue: value) { error(pair.value, problem); valid = false }
                    selector.matchLabels[key] = value
                }
            } else { valid = false }
        }
        if let field = fields["matchExpressions"] {
            for item in list(field.value, "matchExpressions", "label requirements") {
                if let requirement = readRequirement(item) { selector.matchExpressions.append(requirement) } else { valid = false }
            }
        }
        return valid ? selector : nil
    }

    private mutating func readRequirement(_ node: Node) -> LabelSelector.Requirement? {
        guard let fields = fields(of: node, in: "a label requirement", allowed: ["key", "operator", "values"]),
              let keyField = required(fields, "key", in: node, what: "a label requirement"),
              let opField = required(fields, "operator", in: node, what: "a label requirement") else { return nil }
        let key = text(keyField)
        var valid = true
        if let problem = LabelSyntax.problem(withKey: key) { error(keyField, problem); valid = false }
        let operators = LabelSelector.Requirement.Operator.allCases.map(\.rawValue)
        guard let op = LabelSelector.Requirement.Operator(rawValue: text(opField)) else {
            error(opField, "unknown operator '\(text(opField))'; expected one of: \(operators.joined(separator: ", "))")
            return nil
        }
        var values: [String] = []
        if let valuesField = fields["values"] {
            if case .sequence(let items) = valuesField.value {
                for item in items {
                    guard item.scalar != nil else { error(item, "expected a label value (a string)"); valid = false; continue }
                    if let problem = LabelSyntax.problem(withValue: text(item)) { error(item, problem); valid = false }
                    values.append(text(item))
                }
            } else {
                error(valuesField.value, "values must be a list of label values")
                valid = false
            }
        }
        switch op {
        case .in, .notIn:
            if values.isEmpty {
                error(opField, "operator \(op.rawValue) needs a non-empty list of values")
                valid = false
            }
        case .exists, .doesNotExist:
            if let valuesField = fields["values"], !values.isEmpty {
                error(valuesField.value, "operator \(op.rawValue) takes no values")
                valid = false
            }
        }
        return valid ? LabelSelector.Requirement(key: key, op: op, values: values) : nil
    }

    /// One endpoint or a list of them; nil when any of them is invalid.
    private mutating func readEndpoints(_ node: Node) -> [Endpoint]? {
        let items: [Node]
        if case .sequence(let sequence) = node {
            items = Array(sequence)
            if items.isEmpty { error(node, "expected at least one endpoint"); return nil }
        } else {
            items = [node]
        }
        var endpoints: [Endpoint] = []
        for item in items {
            if let endpoint = readEndpoint(item) { endpoints.append(endpoint) }
        }
        return endpoints.count == items.count ? endpoints : nil
    }

    private mutating func readEndpoint(_ node: Node) -> Endpoint? {
        switch node {
        case .scalar where !isNull(node):
            switch text(node) {
            case "world": return .world
            case "host": return .host
            case "any": return .any
            case let name:
                zoneReferences.append((name, location(node)))
                return .zone(name)
            }
        case .mapping:
            guard let fields = fields(of: node, in: "a CIDR endpoint", allowed: ["cidr", "except"]),
                  let cidrNode = required(fields, "cidr", in: node, what: "a CIDR endpoint"),
                  let cidr = readCIDR(cidrNode) else { return nil }
            var except: [CIDR] = []
            if let exceptField = fields["except"] {
                guard case .sequence(let items) = exceptField.value else {
                    error(exceptField.value, "except must be a list of CIDRs")
                    return nil
                }
                for item in items {
                    guard let excluded = readCIDR(item) else { return nil }
                    guard cidr.contains(excluded) else {
                        error(item, "except \(excluded) is not inside \(cidr)")
                        return nil
                    }
                    except.append(excluded)
                }
            }
            return .cidr(CIDRBlock(cidr, except: except))
        default:
            error(node, "expected an endpoint: a zone name, world, host, any, or {cidr: ..., except: [...]}")
            return nil
        }
    }

    private mutating func readCIDR(_ node: Node) -> CIDR? {
        let value = text(node)
        switch CIDR.parse(value) {
        case .success(let cidr): return cidr
        case .failure(.notAnAddress):
            error(node, "'\(value)' is not a CIDR; expected ADDRESS/LENGTH such as 203.0.113.0/24 or fd00::/8")
        case .failure(.badPrefixLength(let max)):
            error(node, "'\(value)' has an invalid prefix length; expected 0 to \(max)")
        case .failure(.hostBitsSet(let suggestion)):
            error(node, "'\(value)' has bits set past its prefix length; did you mean \(suggestion)?")
        }
        return nil
    }

    /// nil when the list is invalid (reported).
    private mutating func readPorts(_ node: Node) -> [PortRange]? {
        let items: [Node]
        switch node {
        case .sequence(let sequence): items = Array(sequence)
        case .scalar where !isNull(node): items = [node]
        default:
            error(node, "expected a list of ports such as [8443/tcp, 9000-9100/tcp, 53/udp, icmp]")
            return nil
        }
        if items.isEmpty {
            error(node, "ports must not be empty; omit 'ports' to cover every port")
            return nil
        }
        var ranges: [PortRange] = []
        for item in items {
            let value = text(item)
            switch PortRange.parse(value) {
            case .success(let range): ranges.append(range)
            case .failure(let failure):
                let expected = "expected PORT/PROTO, LOW-HIGH/PROTO or PROTO, with PROTO one of tcp, udp, sctp, or icmp alone"
                switch failure {
                case .syntax: error(item, "invalid port '\(value)'; \(expected)")
                case .unknownProtocol(let proto): error(item, "unknown protocol '\(proto)' in '\(value)'; \(expected)")
                case .outOfRange(let number): error(item, "port \(number) in '\(value)' is out of range; expected 1 to 65535")
                case .reversed: error(item, "port range '\(value)' is reversed; expected LOW-HIGH with LOW <= HIGH")
                case .icmpHasNoPorts: error(item, "icmp has no ports; write 'icmp' alone")
                }
            }
        }
        return ranges.count == items.count ? ranges : nil
    }

    /// `owner`, `ticket`, `description`: free text, so a scalar (a list or mapping is a mistake).
    private mutating func freeText(_ field: (key: Node, value: Node)?) -> String? {
        guard let field else { return nil }
        if field.value.scalar == nil { error(field.value, "\(text(field.key)) must be free text, not \(describe(field.value))") }
        return text(field.value)
    }

    private mutating func readName(_ node: Node, kind: String) -> String {
        let name = text(node)
        // Printable: no control, format (zero-width), unassigned or private-use characters, no space of any kind.
        let unprintable: Set<Unicode.GeneralCategory> = [.control, .format, .unassigned, .privateUse, .surrogate,
                                                         .spaceSeparator, .lineSeparator, .paragraphSeparator]
        let printable = name.unicodeScalars.allSatisfy { !unprintable.contains($0.properties.generalCategory) && !$0.properties.isWhitespace }
        if name.isEmpty || name.count > 128 || !printable || node.scalar == nil {
            error(node, "\(kind) name '\(name)' must be 1 to 128 printable characters without spaces")
        }
        return name
    }

    private func isZoneName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, ("a"..."z").contains(first), scalars.count <= 31 else { return false }
        return scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// Records that a name is taken; a second use anywhere, of any kind, is an error.
    private mutating func claim(_ name: String, kind: String, at node: Node) {
        if let earlier = names[name] {
            error(node, "the name '\(name)' is already used by the \(earlier.kind) at \(earlier.location); names must be unique across zones, rules and assertions")
        } else {
            names[name] = (kind, location(node))
        }
    }

    // MARK: - YAML helpers

    /// The entries of a mapping by key text; reports unknown and duplicate keys. `allowed` nil accepts any key.
    private mutating func fields(of node: Node, in context: String, allowed: [String]?) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            error(node, "expected a mapping for \(context), found \(describe(node))")
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            let name = text(key)
            if let allowed, !allowed.contains(name) {
                error(key, "unknown key '\(name)' in \(context); expected one of: \(allowed.joined(separator: ", "))")
                continue
            }
            if let earlier = result[name] {
                error(key, "duplicate key '\(name)' in \(context) (first at \(location(earlier.key)))")
                continue
            }
            result[name] = (key, value)
        }
        return result
    }

    private mutating func required(_ fields: [String: (key: Node, value: Node)], _ key: String, in node: Node, what: String) -> Node? {
        if let field = fields[key] { return field.value }
        error(node, "\(what) needs '\(key)'")
        return nil
    }

    private mutating func list(_ node: Node, _ key: String, _ what: String) -> [Node] {
        if case .sequence(let items) = node { return Array(items) }
        if isNull(node) { return [] }
        error(node, "\(key) must be a list of \(what), found \(describe(node))")
        return []
    }

    private mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ key: String) -> T? where T.RawValue == String {
        if let value = T(rawValue: text(node)), node.scalar != nil { return value }
        error(node, "\(key) must be one of: \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text(node))'")
        return nil
    }

    private func text(_ node: Node) -> String { node.scalar?.string ?? "" }

    /// A plain `null`, `~` or empty value, as YAML reads `key:` with nothing after it.
    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar where isNull(node): return "nothing"
        case .scalar(let scalar): return "'\(scalar.string)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    private func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    private mutating func error(_ node: Node, _ message: String) { error(location(node), message) }

    private mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(PolicyDiagnostic(location, message))
    }

    private mutating func reportSyntax(_ yamlError: YamlError) {
        switch yamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            error(SourceLocation(file: file, line: mark.line, column: mark.column), "invalid YAML: \(problem)")
        default:
            error(SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(yamlError)")
        }
    }
}
