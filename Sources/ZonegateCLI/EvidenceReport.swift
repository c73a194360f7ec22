import Crypto
import Foundation
import ZonegateEngine
import ZonegatePolicy

/// The host a report was made on.
public struct HostFacts: Hashable, Sendable {
    public var hostname: String
    public var kernel: String
    public var dockerVersion: String

    public init(hostname: String, kernel: String, dockerVersion: String) {
        self.hostname = hostname
        self.kernel = kernel
        self.dockerVersion = dockerVersion
    }
}

/// zonegate's version as reports and `--version` name it.
public enum ZonegateVersion {
    public static let current = "1.1.0"
}

/// Everything a report says, as values: the report is a pure function of it (golden tests give
/// fixed ones).
public struct EvidenceInput: Sendable {
    public var time: Date
    public var zonegateVersion: String
    public var host: HostFacts
    /// The policy applied to the live inventory.
    public var evaluator: PolicyEvaluator
    public var rulesetDigest: String
    public var checks: [VerifyCheck]
    public var flows: [EvidenceFlow]
    public var assertions: [AssertionOutcome]

    public init(time: Date, zonegateVersion: String = ZonegateVersion.current, host: HostFacts, evaluator: PolicyEvaluator,
                rulesetDigest: String, checks: [VerifyCheck], flows: [EvidenceFlow], assertions: [AssertionOutcome]) {
        self.time = time
        self.zonegateVersion = zonegateVersion
        self.host = host
        self.evaluator = evaluator
        self.rulesetDigest = rulesetDigest
        self.checks = checks
        self.flows = flows
        self.assertions = assertions
    }

    public var result: VerifyCheck.Result { checks.allSatisfy { $0.result == .pass } ? .pass : .fail }
}

/// `verify --report DIR`: evidence.json, evidence.md and SHA256SUMS.
public enum EvidenceReport {
    /// Probe rows written out in evidence.md, at most (all of them are in evidence.json).
    public static let markdownFlowLimit = 500
    /// CDE flow rows per direction in evidence.md, at most.
    public static let markdownCDELimit = 500

    /// The files of the report, in the order SHA256SUMS lists them, SHA256SUMS last.
    public static func files(_ input: EvidenceInput) -> [(name: String, contents: Data)] {
        let documents = [("evidence.json", Data((json(input).rendered() + "\n").utf8)),
                         ("evidence.md", Data(markdown(input).utf8))]
        return documents + [("SHA256SUMS", Data(checksums(documents).utf8))]
    }

    /// `sha256sum` format: the hex digest, two spaces, the file name.
    public static func checksums(_ files: [(String, Data)]) -> String {
        files.map { "\(hex(SHA256.hash(data: $0.1)))  \($0.0)\n" }.joined()
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    // MARK: - The zones

    struct ZoneFacts {
        var zone: Zone
        var members: [String]
    }

    static func zones(_ evaluator: PolicyEvaluator) -> [ZoneFacts] {
        var members = [[String]](repeating: [], count: evaluator.policy.zones.count)
        for index in evaluator.inventory.containers.indices {
            for zone in evaluator.zonesOfContainer[index] { members[zone].append(evaluator.name(of: .container(index))) }
        }
        return evaluator.policy.zones.enumerated().map { ZoneFacts(zone: $0.element, members: members[$0.offset].sorted()) }
    }

    // MARK: - evidence.json

    public static func json(_ input: EvidenceInput) -> JSONValue {
        let evaluator = input.evaluator
        return .object([
            ("result", .string(input.result.rawValue)),
            ("time", .string(timestamp(input.time))),
            ("zonegateVersion", .string(input.zonegateVersion)),
            ("host", .object([("hostname", .string(input.host.hostname)), ("kernel", .string(input.host.kernel)),
                              ("dockerVersion", .string(input.host.dockerVersion))])),
            ("policyDigest", .string(evaluator.policy.digest)),
            ("rulesetDigest", .string(input.rulesetDigest)),
            ("checks", .array(input.checks.map { check in
                .object([("name", .string(check.name)), ("result", .string(check.result.rawValue)), ("details", .strings(check.details))])
            })),
            ("zones", .array(zones(evaluator).map { facts in
                .object([("name", .string(facts.zone.name)), ("pci", facts.zone.pci.map { .string($0.rawValue) } ?? .null),
                         ("members", .strings(facts.members))])
            })),
            ("flows", .array(input.flows.map { row in
                var fields: [(String, JSONValue)] = [
                    ("from", .string(row.flow.from)), ("to", .string(row.flow.to)),
                    ("port", .number(Int(row.flow.port.number))), ("proto", .string(row.flow.port.proto.rawValue)),
                    ("verdict", .string(row.flow.verdict.rawValue)), ("rules", .strings(row.flow.rules)),
                    ("probe", .string(row.probe.rawValue)),
                ]
                if let note = row.probeNote { fields.append(("probeNote", .string(note))) }
                if let layer = row.blockedBy { fields.append(("blockedBy", .string(layer))) }
                return .object(fields)
            })),
            ("assertions", .array(input.assertions.map { outcome in
                .object([("name", .string(outcome.name)), ("result", .string(outcome.holds ? "hold" : "fail")),
                         ("violations", .strings(outcome.violations))])
            })),
            ("unenforced", .array(evaluator.inventory.unenforced.map { item in
                .object([("container", .string(item.container)), ("network", .string(item.network)), ("reason", .string(item.reason))])
            })),
            ("rules", .array(evaluator.policy.rules.map { rule in
                .object([("name", .string(rule.name)), ("from", .strings(rule.from.map(\.description))),
                         ("to", .strings(rule.to.map(\.description))),
                         ("ports", .strings(rule.ports.map { $0.map(\.description) } ?? ["all"])),
                         ("owner", rule.annotations.owner.map(JSONValue.string) ?? .null),
                         ("ticket", rule.annotations.ticket.map(JSONValue.string) ?? .null),
                         ("justification", rule.annotations.justification.map(JSONValue.string) ?? .null)])
            })),
        ])
    }

    // MARK: - evidence.md

    /// Text from outside (names, labels, free text) in a Markdown cell: escaped, no raw HTML.
    static func md(_ text: String) -> String {
        Escape.text(text, markdown: true).replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public static func markdown(_ input: EvidenceInput) -> String {
        let evaluator = input.evaluator
        let policy = evaluator.policy
        let zoneFacts = zones(evaluator)
        var out: [String] = []
        out.append("# Network segmentation evidence: \(md(input.host.hostname))")
        out.append("")
        out.append("Produced by `zonegate verify` on the host itself. zonegate enforces a segmentation policy (zones of Docker "
            + "containers and the flows allowed between them) with nftables; this report compares what the host enforces with "
            + "that policy. `evidence.json` holds the same facts, every flow included; `SHA256SUMS` the files' digests.")
        out.append("")
        out.append("## Summary")
        out.append("")
        out.append("**Result: \(input.result == .pass ? "PASS" : "FAIL")**")
        out.append("")
        out.append("| check | result | what it establishes |")
        out.append("| --- | --- | --- |")
        let meaning = ["ruleset": "the firewall tables in the kernel are exactly what the policy calls for (PCI DSS 1.2.8)",
                       "assertions": "the policy's stated promises hold for the containers running now",
                       "probes": "real connection attempts for every flow agree with the policy (PCI DSS 11.4.5)"]
        for check in input.checks {
            out.append("| \(check.name) | \(check.result == .pass ? "pass" : "**FAIL**") | \(meaning[check.name] ?? "") |")
        }
        out.append("")
        out.append("| | |")
        out.append("| --- | --- |")
        out.append("| time (UTC) | \(timestamp(input.time)) |")
        out.append("| host | \(md(input.host.hostname)) |")
        out.append("| kernel | \(md(input.host.kernel)) |")
        out.append("| Docker | \(md(input.host.dockerVersion)) |")
        out.append("| zonegate | \(md(input.zonegateVersion)) |")
        out.append("| containers | \(evaluator.inventory.containers.count) |")
        out.append("| policy digest | `\(policy.digest)` |")
        out.append("| ruleset digest | `\(input.rulesetDigest)` |")
        for check in input.checks where !check.details.isEmpty {
            out.append("")
            out.append("### \(check.name): \(check.result.rawValue)")
            out.append("")
            out += check.details.prefix(50).map { "- " + md($0) }
            if check.details.count > 50 { out.append("- ... \(check.details.count - 50) more lines in evidence.json") }
        }

        out.append("")
        out.append("## Zones and PCI DSS scope")
        out.append("")
        out.append("Each container belongs to the zones whose label selectors match it. `cde`: the cardholder-data environment; "
            + "`connected`: connected to or able to affect it; `out-of-scope`: segmented from it; blank: not stated.")
        out.append("")
        out.append("| zone | PCI scope | inbound | outbound | mode | members |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        for facts in zoneFacts {
            let zone = facts.zone
            out.append("| \(zone.name) | \(zone.pci?.rawValue ?? "") | \(zone.ingress.rawValue) | \(zone.egress.rawValue) | "
                + "\(policy.mode(of: zone).rawValue) | \(facts.members.isEmpty ? "(none)" : facts.members.map(md).joined(separator: ", ")) |")
        }
        let unzoned = evaluator.inventory.containers.indices.filter { evaluator.zonesOfContainer[$0].isEmpty }
        if !unzoned.isEmpty {
            out.append("")
            out.append("Containers in no zone (inbound: \(policy.defaults.unzoned.rawValue)): "
                + unzoned.map { md(evaluator.name(of: .container($0))) }.joined(separator: ", "))
        }

        out.append("")
        out.append("## Data-flow diagram (PCI DSS 1.2.4)")
        out.append("")
        out.append("Zones and the flows allowed between them for the containers running now, with their ports. "
            + "`world` is any outside address, `host` the Docker host itself.")
        out.append("")
        out.append("```mermaid")
        out.append(mermaid(input))
        out.append("```")

        out.append("")
        out.append("## Allowed services and ports with their justification (PCI DSS 1.2.5)")
        out.append("")
        out.append("Every rule of the policy. Rules only allow; everything a rule does not allow into a restricted zone is denied.")
        out.append("")
        out.append("| rule | from | to | ports | owner | ticket | justification |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for rule in policy.rules {
            out.append("| \(md(rule.name)) | \(md(rule.from.map(\.description).joined(separator: ", "))) | "
                + "\(md(rule.to.map(\.description).joined(separator: ", "))) | \(md(rule.ports.map { $0.map(\.description).joined(separator: ", ") } ?? "all")) | "
                + "\(md(rule.annotations.owner ?? "")) | \(md(rule.annotations.ticket ?? "")) | \(md(rule.annotations.justification ?? "")) |")
        }

        let rulesByName = Dictionary(policy.rules.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for facts in zoneFacts where facts.zone.pci == .cde {
            let members = Set(facts.members)
            for (title, requirement, selected) in [
                ("into", "1.3.1", input.flows.filter { $0.allowed && members.contains($0.flow.to) && !members.contains($0.flow.from) }),
                ("out of", "1.3.2", input.flows.filter { $0.allowed && members.contains($0.flow.from) && !members.contains($0.flow.to) }),
            ] {
                out.append("")
                out.append("## CDE zone \(facts.zone.name): flows allowed \(title) it (PCI DSS \(requirement))")
                out.append("")
                // Flows to or from addresses that are no container of this host (world, the host, CIDR
                // blocks) are no rows of the matrix: the rules that allow them are listed instead.
                let outsideRules = policy.rules.filter { rule in
                    let inner = title == "into" ? rule.to : rule.from
                    let outer = title == "into" ? rule.from : rule.to
                    let namesZone = inner.contains { $0 == .any || $0 == .zone(facts.zone.name) }
                    let reachesOutside = outer.contains { endpoint in
                        switch endpoint {
                        case .world, .host, .any, .cidr: return true
                        case .zone: return false
                        }
                    }
                    return namesZone && reachesOutside
                }
                if !outsideRules.isEmpty {
                    out.append("Rules allowing flows \(title) it \(title == "into" ? "from" : "to") addresses other than this host's containers:")
                    out.append("")
                    out.append("| rule | \(title == "into" ? "from" : "to") | ports | owner | ticket | justification |")
                    out.append("| --- | --- | --- | --- | --- | --- |")
                    for rule in outsideRules {
                        let outer = (title == "into" ? rule.from : rule.to).filter { if case .zone = $0 { return false } else { return true } }
                        out.append("| \(md(rule.name)) | \(md(outer.map(\.description).joined(separator: ", "))) | "
                            + "\(md(rule.ports.map { $0.map(\.description).joined(separator: ", ") } ?? "all")) | \(md(rule.annotations.owner ?? "")) | "
                            + "\(md(rule.annotations.ticket ?? "")) | \(md(rule.annotations.justification ?? "")) |")
                    }
                    out.append("")
                }
                if selected.isEmpty {
                    out.append("No flow \(title) the zone \(title == "into" ? "from" : "to") another of this host's containers\(title == "into" ? " or from world or host" : "") is allowed.")
                    continue
                }
                out.append("Flows \(title) it of the containers running now:")
                out.append("")
                out.append("| from | to | port | verdict | rules | owner | ticket | justification |")
                out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
                for row in selected.prefix(markdownCDELimit) {
                    let rules = row.flow.rules.compactMap { rulesByName[$0] }
                    func joined(_ values: [String?]) -> String { md(values.map { $0 ?? "(none)" }.joined(separator: "; ")) }
                    out.append("| \(md(row.flow.from)) | \(md(row.flow.to)) | \(row.flow.port) | \(row.flow.verdict.rawValue) | "
                        + "\(row.flow.rules.isEmpty ? "(open zones)" : md(row.flow.rules.joined(separator: ", "))) | "
                        + "\(joined(rules.map(\.annotations.owner))) | \(joined(rules.map(\.annotations.ticket))) | "
                        + "\(joined(rules.map(\.annotations.justification))) |")
                }
                if selected.count > markdownCDELimit { out.append("\n\(selected.count - markdownCDELimit) more rows in evidence.json.") }
            }
        }

        out.append("")
        out.append("## Configuration matches the policy (PCI DSS 1.2.8)")
        out.append("")
        if let ruleset = input.checks.first(where: { $0.name == "ruleset" }) {
            out.append(ruleset.result == .pass
                ? "The kernel's zonegate tables, read back through netlink, are exactly those the policy and the running containers call for."
                : "The kernel's zonegate tables differ from what the policy and the running containers call for:")
            out += ruleset.details.prefix(50).map { "- `" + $0.replacingOccurrences(of: "`", with: "'") + "`" }
        }

        out.append("")
        out.append("## Assertions")
        out.append("")
        out.append("Promises the policy makes, checked against the containers running now (`zonegate check` proves them for any containers).")
        out.append("")
        if input.assertions.isEmpty { out.append("The policy states none.") } else {
            out.append("| assertion | kind | result | violations |")
            out.append("| --- | --- | --- | --- |")
            let kinds = Dictionary(policy.assertions.map { ($0.name, $0.kind.rawValue) }, uniquingKeysWith: { a, _ in a })
            for outcome in input.assertions {
                out.append("| \(md(outcome.name)) | \(kinds[outcome.name] ?? "") | \(outcome.holds ? "hold" : "**fail**") | "
                    + "\(outcome.violations.prefix(5).map(md).joined(separator: "; "))\(outcome.violations.count > 5 ? "; ..." : "") |")
            }
        }

        out.append("")
        out.append("## Segmentation tested (PCI DSS 11.4.5)")
        out.append("")
        let probed = input.flows.contains { $0.probe != .notProbed }
        if !probed {
            out.append("No flow was probed in this run (`verify` without `--probe`).")
        } else {
            out.append("Every flow below was tried with a real connection (TCP connect, UDP and ICMP answers) from inside the "
                + "source container's network namespace, from the host, or from a temporary outside host routed through it.")
            out.append("")
            out.append("| policy | reached | blocked | not probed |")
            out.append("| --- | --- | --- | --- |")
            for allowed in [true, false] {
                let rows = input.flows.filter { $0.allowed == allowed }
                out.append("| \(allowed ? "allowed" : "denied") | \(rows.count { $0.probe == .reached }) | \(rows.count { $0.probe == .blocked }) | "
                    + "\(rows.count { $0.probe == .notProbed }) |")
            }
            out.append("")
            // Disagreements first, so that a bounded table never hides one.
            let ordered = input.flows.filter { $0.disagreement != nil } + input.flows.filter { $0.disagreement == nil }
            out.append("| from | to | port | policy | probe | agrees | note |")
            out.append("| --- | --- | --- | --- | --- | --- | --- |")
            for row in ordered.prefix(markdownFlowLimit) {
                let agrees = row.disagreement != nil ? "**no**" : row.probe == .notProbed ? "not probed" : "yes"
                let note = [row.blockedBy.map { "blocked by \($0)" }, row.probeNote].compactMap { $0 }.joined(separator: "; ")
                out.append("| \(md(row.flow.from)) | \(md(row.flow.to)) | \(row.flow.port) | \(row.flow.verdict.rawValue) | \(row.probe.rawValue) | \(agrees) | \(md(note)) |")
            }
            if ordered.count > markdownFlowLimit {
                out.append("")
                out.append("\(ordered.count - markdownFlowLimit) more rows (all agreeing or not probed) are in evidence.json.")
            }
        }
        out.append("")
        out.append("This is zonegate's own test of its segmentation. It does not replace the independent segmentation "
            + "penetration test that PCI DSS 11.4.5 requires.")

        out.append("")
        out.append("## Unenforced containers")
        out.append("")
        let unenforced = evaluator.inventory.unenforced
        if unenforced.isEmpty {
            out.append("None: every running container is on a network zonegate enforces.")
        } else {
            out.append("zonegate cannot enforce these attachments (host network, macvlan, ipvlan, overlay, another container's namespace); "
                + "their traffic is not covered by this report.")
            out.append("")
            out += unenforced.map { "- \(md($0.container)) on \(md($0.network)): \(md($0.reason))" }
        }

        out.append("")
        out.append("## Digests")
        out.append("")
        out.append("- policy: `\(policy.digest)` (SHA-256 over each policy file's name and content, in file-name order)")
        out.append("- ruleset: `\(input.rulesetDigest)` (SHA-256 of zonegate's canonical nft rendering of the tables read back)")
        out.append("- `SHA256SUMS` lists the SHA-256 of evidence.json and evidence.md (`sha256sum -c SHA256SUMS`); "
            + "`evidence.sig`, when present, is an Ed25519 signature of SHA256SUMS (`zonegate verify-report DIR --public-key KEY`).")
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: - The diagram

    /// A Mermaid `flowchart` of zones (and world, host, unzoned containers) with one edge per
    /// zone pair that has allowed flows, labelled with their ports. Node ids are generated
    /// (`z0`, `z1`, ...), labels are quoted with Mermaid's entity codes for quotes and angle
    /// brackets, so any name keeps the diagram valid.
    public static func mermaid(_ input: EvidenceInput) -> String {
        let evaluator = input.evaluator
        let policy = evaluator.policy
        var lines = ["flowchart LR"]
        var ids: [String: String] = [:]
        var order: [String] = []
        func node(_ key: String) -> String {
            if let id = ids[key] { return id }
            let id = "z\(ids.count)"
            ids[key] = id
            order.append(key)
            return id
        }
        for zone in policy.zones { _ = node("zone:" + zone.name) }
        var indexOf: [String: Int] = [:]
        for index in evaluator.inventory.containers.indices { indexOf[evaluator.name(of: .container(index))] = index }
        func groups(_ name: String) -> [String] {
            guard let index = indexOf[name] else { return [name] }  // world, host
            let zones = evaluator.zoneNames(ofContainer: index)
            return zones.isEmpty ? ["unzoned"] : zones.map { "zone:" + $0 }
        }
        var edges: [String: [String: Set<ServicePort>]] = [:]
        var edgeOrder: [(String, String)] = []
        for row in input.flows where row.allowed {
            for from in groups(row.flow.from) {
                for to in groups(row.flow.to) where from != to {
                    if edges[from]?[to] == nil { edgeOrder.append((from, to)) }
                    edges[from, default: [:]][to, default: []].insert(row.flow.port)
                }
            }
        }
        for (from, to) in edgeOrder { _ = node(from); _ = node(to) }
        for key in order {
            let label: String
            if key.hasPrefix("zone:") {
                let name = String(key.dropFirst(5))
                let scope = policy.zone(named: name)?.pci.map { " (\($0 == .cde ? "CDE" : $0.rawValue))" } ?? ""
                label = name + scope
            } else {
                label = key == "unzoned" ? "containers in no zone" : key
            }
            lines.append("    \(ids[key]!)[\"\(mermaidText(label))\"]")
        }
        for (from, to) in edgeOrder {
            let ports = edges[from]![to]!.sorted()
            let shown = ports.prefix(6).map(\.description).joined(separator: ", ") + (ports.count > 6 ? ", +\(ports.count - 6) more" : "")
            lines.append("    \(ids[from]!) -->|\"\(mermaidText(shown))\"| \(ids[to]!)")
        }
        let cde = policy.zones.filter { $0.pci == .cde }.compactMap { ids["zone:" + $0.name] }
        if !cde.isEmpty {
            lines.append("    classDef cde fill:#fde0e0,stroke:#c00000,stroke-width:2px")
            lines.append("    class \(cde.joined(separator: ",")) cde")
        }
        return lines.joined(separator: "\n")
    }

    /// Text inside a quoted Mermaid label: quotes, angle brackets, `#` and `;` as entity codes,
    /// control characters and backticks escaped.
    static func mermaidText(_ text: String) -> String {
        var result = ""
        for character in DisplayText.escaped(text) {
            switch character {
            case "\"": result += "#quot;"
            case "#": result += "#35;"
            case "<": result += "#lt;"
            case ">": result += "#gt;"
            case ";": result += "#59;"
            case "|": result += "#124;"
            case "`": result += "#96;"
            default: result.append(character)
            }
        }
        return result
    }
}
