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
    /// Files are taken in file-name order, whatever order they are given in. Every limit of
    /// `PolicyLimits` is enforced here, so that files from anywhere (the policy directory, a test)
    /// are held to the same ones.
    public static func parse(_ files: [PolicyFile]) throws(PolicyError) -> Policy {
        let ordered = files.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var reader = PolicyReader()
        var totalBytes = 0
        for (index, file) in ordered.enumerated() {
            let start = SourceLocation(file: file.name, line: 1, column: 1)
            if index == PolicyLimits.files {
                reader.error(start, "more than \(PolicyLimits.files) policy files; this and the later ones are not read (see docs/limits.md)")
                break
            }
            totalBytes += file.bytes.count
            if file.bytes.count > PolicyLimits.fileBytes {
                reader.error(start, "the file is larger than \(PolicyLimits.fileBytes >> 20) MiB (see docs/limits.md)")
                continue
            }
            if totalBytes > PolicyLimits.totalBytes {
                reader.error(start, "the policy files together are larger than \(PolicyLimits.totalBytes >> 20) MiB; this and the later ones are not read (see docs/limits.md)")
                break
            }
            reader.read(file)
        }
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
    private(set) var diagnostics: [PolicyDiagnostic] = []
    var defaults = Defaults()
    var zones: [Zone] = []
    var rules: [Rule] = []
    var assertions: [Assertion] = []

    private var defaultsLocation: SourceLocation?
    private var names: [String: (kind: String, location: SourceLocation)] = [:]
    /// Every zone reference, checked once all files are read (a zone may be defined in a later file).
    private var zoneReferences: [(name: String, location: SourceLocation)] = []
    private var file = ""
    /// Entries seen (valid or not), for the limits on zones, rules and assertions.
    private var zoneCount = 0, ruleCount = 0, assertionCount = 0
    /// Endpoints and selector label values seen, for the policy-wide limits on them.
    private var endpointCount = 0, labelValueCount = 0
    private var limitsReported: Set<String> = []

    private static let topLevelKeys = ["version", "defaults", "zones", "rules", "assertions"]

    mutating func read(_ policyFile: PolicyFile) {
        file = policyFile.name
        guard let source = String(validating: policyFile.bytes, as: UTF8.self) else {
            let (line, column) = YAMLShape.firstInvalidUTF8(policyFile.bytes)
            error(SourceLocation(file: file, line: line, column: column), "the file is not valid UTF-8 text; a policy file must be UTF-8")
            return
        }
        // Nesting, node, anchor and alias limits, and characters, checked before Yams builds nodes.
        if let problem = YAMLShape.check(source) {
            error(SourceLocation(file: file, line: problem.line, column: problem.column), problem.message)
            return
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: source)
        } catch let yamlError as YamlError {
            reportSyntax(yamlError)
            return
        } catch {
            self.error(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(String(describing: error).prefix(200))")
            return
        }
        // An empty file, or one empty document (`---` alone), is an empty policy.
        guard let root, !isNull(root) else { return }
        guard let fields = fields(of: root, in: "a policy file", allowed: Self.topLevelKeys) else { return }
        if let version = fields["version"] {
            if isNull(version.value) || version.value.scalar == nil {
                error(version.value, "version must be 1, not \(describe(version.value))")
            } else if version.value.scalar?.string != "1" {
                error(version.value, "unsupported version \(q(text(version.value))); expected 1")
            }
        }
        if let section = fields["defaults"] { readDefaults(section.value, key: section.key) }
        if let section = fields["zones"] {
            for node in list(section.value, "zones", "zone definitions") {
                guard within(\.zoneCount, PolicyLimits.zones, "zones", at: node) else { break }
                readZone(node)
            }
        }
        if let section = fields["rules"] {
            for (index, node) in list(section.value, "rules", "rules").enumerated() {
                guard within(\.ruleCount, PolicyLimits.rules, "rules", at: node) else { break }
                readRule(node, index: index + 1)
            }
        }
        if let section = fields["assertions"] {
            for (index, node) in list(section.value, "assertions", "assertions").enumerated() {
                guard within(\.assertionCount, PolicyLimits.assertions, "assertions", at: node) else { break }
                readAssertion(node, index: index + 1)
            }
        }
    }

    mutating func validateReferences() {
        let defined = Set(zones.map(\.name))
        // Suggest only names that are zones: not the invalid ones already reported.
        let known = defined.filter { isZoneName($0) && !Zone.reservedNames.contains($0) }.sorted().joined(separator: ", ")
        for reference in zoneReferences where !defined.contains(reference.name) {
            error(reference.location, "\(q(reference.name)) is not a defined zone; expected one of: \(known.isEmpty ? "(no zones defined)" : known), world, host, any, or {cidr: ...}")
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
            default: error(field.value, "logDenied must be true or false, not \(describe(field.value))")
            }
        }
        if let field = fields["networks"] {
            if field.value.scalar?.string == "all" {
                defaults.networks = nil
            } else if case .sequence(let items) = field.value, !items.isEmpty, withinList(field.value, "networks") {
                defaults.networks = items.compactMap { item in
                    guard let name = item.scalar?.string, !name.isEmpty, !isNull(item) else {
                        error(item, "expected a Docker network name, found \(describe(item))")
                        return nil
                    }
                    guard name.utf8.count <= PolicyLimits.freeTextBytes else {
                        error(item, "network name \(q(name)) is longer than \(PolicyLimits.freeTextBytes) bytes")
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
        guard let fields = fields(of: node, in: "a zone", allowed: ["name", "selector", "ingress", "egress", "mode", "pci"]) else { return }
        guard let nameField = fields["name"] else {
            error(node, "a zone needs a name")
            return
        }
        guard let name = string(nameField.value, "a zone name") else { return }
        if Zone.reservedNames.contains(name) {
            error(nameField.value, "\(q(name)) is reserved for an endpoint and cannot name a zone")
        } else if !isZoneName(name) {
            error(nameField.value, "zone name \(q(name)) must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'")
        }
        claim(name, kind: "zone", at: nameField.value)
        var zone = Zone(name: name, location: location(nameField.value))
        if let field = fields["selector"], let selector = readSelector(field.value) { zone.selector = selector }
        if let field = fields["ingress"], let value: Access = choice(field.value, "ingress") { zone.ingress = value }
        if let field = fields["egress"], let value: Access = choice(field.value, "egress") { zone.egress = value }
        if let field = fields["mode"], let value: EnforcementMode = choice(field.value, "mode") { zone.mode = value }
        if let field = fields["pci"], let value: PCIScope = choice(field.value, "pci") { zone.pci = value }
        zones.append(zone)
    }

    private mutating func readRule(_ node: Node, index: Int) {
        let keys = ["name", "from", "to", "ports", "owner", "ticket", "justification", "description"]
        guard let fields = fields(of: node, in: "a rule", allowed: keys) else { return }
        let name = fields["name"].map { readName($0.value, kind: "rule") } ?? "\(DisplayText.escaped(file))#\(index)"
        claim(name, kind: "rule", at: fields["name"]?.value ?? node)
        let from = required(fields, "from", in: node, what: "a rule").flatMap { readEndpoints($0) }
        let to = required(fields, "to", in: node, what: "a rule").flatMap { readEndpoints($0) }
        let ports = fields["ports"].map { readPorts($0.value) }
        let annotations = RuleAnnotations(owner: freeText(fields["owner"]), ticket: freeText(fields["ticket"]),
                                          description: freeText(fields["description"]),
                                          justification: freeText(fields["justification"]))
        if let from, let to, ports != .some(nil) {
            rules.append(Rule(name: name, from: from, to: to, ports: ports ?? nil, annotations: annotations, location: location(node)))
        }
    }

    private mutating func readAssertion(_ node: Node, index: Int) {
        guard let fields = fields(of: node, in: "an assertion", allowed: ["name", "deny", "allow"]) else { return }
        let name = fields["name"].map { readName($0.value, kind: "assertion") } ?? "\(DisplayText.escaped(file))#assertion-\(index)"
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
        var requirements = 0, values = 0
        if let field = fields["matchLabels"] {
            if let labels = self.fields(of: field.value, in: "matchLabels", allowed: nil) {
                for (key, pair) in labels.sorted(by: { location($0.value.key) < location($1.value.key) }) {
                    requirements += 1
                    values += 1
                    if requirements > PolicyLimits.selectorRequirements {
                        error(pair.key, "more than \(PolicyLimits.selectorRequirements) labels and expressions in one selector (see docs/limits.md)")
                        return nil
                    }
                    if let problem = LabelSyntax.problem(withKey: key) { error(pair.key, problem); valid = false }
                    guard let value = labelValue(pair.value) else { valid = false; continue }
                    selector.matchLabels[key] = value
                }
            } else { valid = false }
        }
        if let field = fields["matchExpressions"] {
            for item in list(field.value, "matchExpressions", "label requirements") {
                requirements += 1
                if requirements > PolicyLimits.selectorRequirements {
                    error(item, "more than \(PolicyLimits.selectorRequirements) labels and expressions in one selector (see docs/limits.md)")
                    return nil
                }
                if let requirement = readRequirement(item) {
                    values += requirement.values.count
                    if values > PolicyLimits.selectorValues {
                        error(item, "more than \(PolicyLimits.selectorValues) label values in one selector (see docs/limits.md)")
                        return nil
                    }
                    selector.matchExpressions.append(requirement)
                } else { valid = false }
            }
        }
        labelValueCount += values - 1
        guard within(\.labelValueCount, PolicyLimits.labelValues, "label values in selectors", at: node) else { return nil }
        return valid ? selector : nil
    }

    /// A label value: any string (Docker's values are free text), but not null, a list or a mapping.
    private mutating func labelValue(_ node: Node) -> String? {
        guard node.scalar != nil, !isNull(node) else {
            error(node, "expected a label value (a string), found \(describe(node)); write \"\" for the empty value")
            return nil
        }
        if let problem = LabelSyntax.problem(withValue: text(node)) {
            error(node, problem)
            return nil
        }
        return text(node)
    }

    private mutating func readRequirement(_ node: Node) -> LabelSelector.Requirement? {
        guard let fields = fields(of: node, in: "a label requirement", allowed: ["key", "operator", "values"]),
              let keyField = required(fields, "key", in: node, what: "a label requirement"),
              let opField = required(fields, "operator", in: node, what: "a label requirement") else { return nil }
        guard let key = string(keyField, "a label key") else { return nil }
        var valid = true
        if let problem = LabelSyntax.problem(withKey: key) { error(keyField, problem); valid = false }
        let operators = LabelSelector.Requirement.Operator.allCases.map(\.rawValue)
        guard let op = LabelSelector.Requirement.Operator(rawValue: text(opField)), opField.scalar != nil else {
            error(opField, "unknown operator \(describe(opField)); expected one of: \(operators.joined(separator: ", "))")
            return nil
        }
        var values: [String] = []
        if let valuesField = fields["values"] {
            if case .sequence(let items) = valuesField.value {
                if items.count > PolicyLimits.selectorValues {
                    error(valuesField.value, "more than \(PolicyLimits.selectorValues) values in one list (see docs/limits.md)")
                    return nil
                }
                for item in items {
                    if let value = labelValue(item) { values.append(value) } else { valid = false }
                }
            } else {
                error(valuesField.value, "values must be a list of label values, found \(describe(valuesField.value))")
                valid = false
            }
        }
        switch op {
        case .in, .notIn:
            if values.isEmpty && valid {
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
            guard withinList(node, "endpoints") else { return nil }
        } else {
            items = [node]
        }
        endpointCount += items.count - 1
        guard within(\.endpointCount, PolicyLimits.endpoints, "endpoints of rules and assertions", at: node) else { return nil }
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
                    error(exceptField.value, "except must be a list of CIDRs, found \(describe(exceptField.value))")
                    return nil
                }
                guard withinList(exceptField.value, "CIDRs in except") else { return nil }
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
            error(node, "expected an endpoint: a zone name, world, host, any, or {cidr: ..., except: [...]}; found \(describe(node))")
            return nil
        }
    }

    private mutating func readCIDR(_ node: Node) -> CIDR? {
        guard node.scalar != nil, !isNull(node) else {
            error(node, "expected a CIDR such as 203.0.113.0/24 or fd00::/8, found \(describe(node))")
            return nil
        }
        let value = text(node)
        switch CIDR.parse(value) {
        case .success(let cidr): return cidr
        case .failure(.notAnAddress):
            error(node, "\(q(value)) is not a CIDR; expected ADDRESS/LENGTH such as 203.0.113.0/24 or fd00::/8")
        case .failure(.badPrefixLength(let max)):
            error(node, "\(q(value)) has an invalid prefix length; expected 0 to \(max)")
        case .failure(.hostBitsSet(let suggestion)):
            error(node, "\(q(value)) has bits set past its prefix length; did you mean \(suggestion)?")
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
            error(node, "expected a list of ports such as [8443/tcp, 9000-9100/tcp, 53/udp, icmp], found \(describe(node))")
            return nil
        }
        if items.isEmpty {
            error(node, "ports must not be empty; omit 'ports' to cover every port")
            return nil
        }
        guard withinList(node, "ports") else { return nil }
        var ranges: [PortRange] = []
        let expected = "expected PORT/PROTO, LOW-HIGH/PROTO or PROTO, with PROTO one of tcp, udp, sctp, or icmp alone"
        for item in items {
            guard item.scalar != nil, !isNull(item) else {
                error(item, "expected a port, found \(describe(item)); \(expected)")
                continue
            }
            let value = text(item)
            switch PortRange.parse(value) {
            case .success(let range): ranges.append(range)
            case .failure(let failure):
                switch failure {
                case .syntax: error(item, "invalid port \(q(value)); \(expected)")
                case .unknownProtocol(let proto): error(item, "unknown protocol \(q(proto)) in \(q(value)); \(expected)")
                case .outOfRange(let number): error(item, "port \(DisplayText.quoted(number).dropFirst().dropLast()) in \(q(value)) is out of range; expected 1 to 65535")
                case .reversed: error(item, "port range \(q(value)) is reversed; expected LOW-HIGH with LOW <= HIGH")
                case .icmpHasNoPorts: error(item, "icmp has no ports; write 'icmp' alone")
                }
            }
        }
        return ranges.count == items.count ? ranges : nil
    }

    /// `owner`, `ticket`, `justification`, `description`: free text, so a non-empty scalar (null, a list or a
    /// mapping is a mistake).
    private mutating func freeText(_ field: (key: Node, value: Node)?) -> String? {
        guard let field else { return nil }
        guard field.value.scalar != nil, !isNull(field.value), !text(field.value).isEmpty else {
            error(field.value, "\(text(field.key)) must be non-empty free text, not \(describe(field.value)); omit it instead")
            return nil
        }
        let value = text(field.value)
        if value.utf8.count > PolicyLimits.freeTextBytes {
            error(field.value, "\(text(field.key)) is longer than \(PolicyLimits.freeTextBytes) bytes (see docs/limits.md)")
        }
        return value
    }

    private mutating func readName(_ node: Node, kind: String) -> String {
        let name = text(node)
        // Printable: no control, format (zero-width), unassigned or private-use characters, no space of any kind.
        let unprintable: Set<Unicode.GeneralCategory> = [.control, .format, .unassigned, .privateUse, .surrogate,
                                                         .spaceSeparator, .lineSeparator, .paragraphSeparator]
        let printable = name.unicodeScalars.allSatisfy { !unprintable.contains($0.properties.generalCategory) && !$0.properties.isWhitespace }
        let limit = PolicyLimits.ruleNameCharacters
        if node.scalar == nil || isNull(node) {
            error(node, "\(kind) name must be 1 to \(limit) printable characters without spaces, not \(describe(node))")
        } else if name.isEmpty || name.count > limit || !printable {
            error(node, "\(kind) name \(q(name)) must be 1 to \(limit) printable characters without spaces")
        }
        return name
    }

    private func isZoneName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, ("a"..."z").contains(first), scalars.count <= PolicyLimits.zoneNameCharacters else { return false }
        return scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// Records that a name is taken; a second use anywhere, of any kind, is an error.
    private mutating func claim(_ name: String, kind: String, at node: Node) {
        if let earlier = names[name] {
            error(node, "the name \(q(name)) is already used by the \(earlier.kind) at \(earlier.location); names must be unique across zones, rules and assertions")
        } else {
            names[name] = (kind, location(node))
        }
    }

    // MARK: - Limits

    /// Counts one more zone, rule, assertion (or what the caller added beforehand); false
    /// (reported once, where the limit was crossed) past the limit.
    private mutating func within(_ counter: WritableKeyPath<PolicyReader, Int>, _ limit: Int, _ what: String, at node: Node) -> Bool {
        self[keyPath: counter] += 1
        let count = self[keyPath: counter]
        if count > limit && !limitsReported.contains(what) {
            limitsReported.insert(what)
            error(node, "more than \(limit) \(what) in the policy; this and the later ones are not read (see docs/limits.md)")
        }
        return count <= limit
    }

    /// Whether a list is within `PolicyLimits.listItems` (reported when not).
    private mutating func withinList(_ node: Node, _ what: String) -> Bool {
        guard case .sequence(let items) = node, items.count > PolicyLimits.listItems else { return true }
        error(node, "more than \(PolicyLimits.listItems) \(what) in one list (see docs/limits.md)")
        return false
    }

    // MARK: - YAML helpers

    /// The entries of a mapping by key text; reports unknown, duplicate and non-string keys.
    /// `allowed` nil accepts any key.
    private mutating func fields(of node: Node, in context: String, allowed: [String]?) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            error(node, "expected a mapping for \(context), found \(describe(node))")
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard key.scalar != nil, !isNull(key) else {
                error(key, "expected a key (a string) in \(context), found \(describe(key))")
                continue
            }
            let name = text(key)
            if let allowed, !allowed.contains(name) {
                error(key, "unknown key \(q(name)) in \(context); expected one of: \(allowed.joined(separator: ", "))")
                continue
            }
            if let earlier = result[name] {
                error(key, "duplicate key \(q(name)) in \(context) (first at \(location(earlier.key)))")
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

    /// The text of a scalar where a non-empty string is required: nil (reported) for null, an
    /// empty string, a list or a mapping.
    private mutating func string(_ node: Node, _ what: String) -> String? {
        guard node.scalar != nil, !isNull(node), !text(node).isEmpty else {
            error(node, "expected \(what), found \(describe(node))")
            return nil
        }
        return text(node)
    }

    private mutating func list(_ node: Node, _ key: String, _ what: String) -> [Node] {
        if case .sequence(let items) = node { return Array(items) }
        if isNull(node) { return [] }
        error(node, "\(key) must be a list of \(what), found \(describe(node))")
        return []
    }

    private mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ key: String) -> T? where T.RawValue == String {
        if let value = T(rawValue: text(node)), node.scalar != nil { return value }
        error(node, "\(key) must be one of: \(T.allCases.map(\.rawValue).joined(separator: ", ")), not \(describe(node))")
        return nil
    }

    private func text(_ node: Node) -> String { node.scalar?.string ?? "" }

    private func q(_ text: String) -> String { DisplayText.quoted(text) }

    /// A plain `null`, `~` or empty value, as YAML reads `key:` with nothing after it.
    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar where isNull(node): return "nothing"
        case .scalar(let scalar) where scalar.string.isEmpty: return "an empty string"
        case .scalar(let scalar): return q(scalar.string)
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    private func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    private mutating func error(_ node: Node, _ message: String) { error(location(node), message) }

    /// Records a problem; past `PolicyLimits.diagnostics`, one last one says that more were left out.
    mutating func error(_ location: SourceLocation, _ message: String) {
        if diagnostics.count < PolicyLimits.diagnostics {
            diagnostics.append(PolicyDiagnostic(location, message))
        } else if diagnostics.count == PolicyLimits.diagnostics {
            diagnostics.append(PolicyDiagnostic(location, "more than \(PolicyLimits.diagnostics) errors; the rest are not reported"))
        }
    }

    private mutating func reportSyntax(_ yamlError: YamlError) {
        switch yamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            error(SourceLocation(file: file, line: mark.line, column: mark.column), "invalid YAML: \(problem)")
        default:
            error(SourceLocation(file: file, line: 1, column: 1), "invalid YAML")
        }
    }
}
