import Foundation
import ZonegateTesting
import Testing
@testable import ZonegatePolicy

/// Inputs a hostile or careless user can write: each is rejected with one located line per
/// problem, never a crash, a hang, a huge allocation or half a policy.
@Suite struct HostileInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        /// (line, column, the whole message)
        var expected: [(Int, Int, String)]
        var testDescription: String { name }
    }

    private static let depth = PolicyLimits.nestingDepth
    private static let nesting = "nesting deeper than \(depth) levels (lists and mappings inside each other); see docs/limits.md"

    /// A few thousand levels of every kind of nesting: stopped at the level past the limit, before
    /// Yams builds (and recurses over) a node tree.
    static let cases: [Case] = [
        // `zones: ` is 7 columns; the top-level mapping is level 1, the k-th bracket level k + 1.
        Case(name: "flow sequences", text: "zones: " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "\n",
             expected: [(1, 7 + depth, nesting)]),
        Case(name: "flow mappings", text: "zones: " + String(repeating: "{a: ", count: 5_000) + "b" + String(repeating: "}", count: 5_000) + "\n",
             expected: [(1, 8 + 4 * (depth - 1), nesting)]),
        Case(name: "unclosed flow sequences", text: "zones: " + String(repeating: "[", count: 100_000),
             expected: [(1, 7 + depth, nesting)]),
        Case(name: "block sequences on one line", text: String(repeating: "- ", count: 5_000) + "x\n",
             expected: [(1, 1 + 2 * depth, nesting)]),
        Case(name: "nested block mappings",
             text: (0..<2_000).map { String(repeating: " ", count: $0) + "a:\n" }.joined() + String(repeating: " ", count: 2_000) + "b\n",
             expected: [(depth + 1, depth + 1, nesting)]),
        // Ten nodes, then each line ten aliases of the one before: 10^10 nodes expanded. The count
        // passes a million at the eighth alias of line 6 (`f`, 111,111 nodes each).
        Case(name: "billion laughs",
             text: "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + (1...9).map { "\(Character(UnicodeScalar(UInt8(97 + $0)))): &\(Character(UnicodeScalar(UInt8(97 + $0)))) [" + Array(repeating: "*\(Character(UnicodeScalar(UInt8(96 + $0))))", count: 10).joined(separator: ", ") + "]\n" }.joined(),
             expected: [(6, 36, "more than \(PolicyLimits.nodesPerFile) YAML nodes (an alias counts as every node it repeats); see docs/limits.md")]),
        Case(name: "an alias before its anchor", text: "zones: *z\n", expected: [(1, 8, "alias *z refers to no anchor defined before it (or to one that contains it)")]),
        Case(name: "too many aliases", text: "x: &x 1\ny: [" + Array(repeating: "*x", count: PolicyLimits.aliasesPerFile + 1).joined(separator: ",") + "]\n",
             expected: [(2, 5 + 3 * PolicyLimits.aliasesPerFile, "more than \(PolicyLimits.aliasesPerFile) YAML aliases in one file; see docs/limits.md")]),
        Case(name: "too many anchors", text: "y: [" + (0...PolicyLimits.anchorsPerFile).map { "&a\($0) 1" }.joined(separator: ",") + "]\n",
             expected: [(1, 5 + (0..<PolicyLimits.anchorsPerFile).map { "&a\($0) 1,".count }.reduce(0, +),
                         "more than \(PolicyLimits.anchorsPerFile) YAML anchors in one file; see docs/limits.md")]),
        Case(name: "a control character", text: "zones:\n  - name: a\u{7}b\n",
             expected: [(2, 12, "control character U+0007 is not allowed in YAML; in a double-quoted string write it as \\u0007")]),
        Case(name: "a control character after CR LF line breaks", text: "zones:\r\n  - name: web\r\n\u{1B}[31m\r\n",
             expected: [(3, 1, "control character U+001B is not allowed in YAML; in a double-quoted string write it as \\u001B")]),
        Case(name: "a YAML syntax error is one line", text: "zones:\n  - name: web\n   bad: [\n",
             expected: [(3, 4, "invalid YAML: did not find expected '-' indicator (while parsing a block collection at 2:3)")]),
        Case(name: "a huge value is quoted short", text: "version: " + String(repeating: "9", count: 100_000) + "\n",
             expected: [(1, 10, "unsupported version '" + String(repeating: "9", count: 64) + "…'; expected 1")]),
        Case(name: "a multi-line value is escaped", text: "zones:\n  - name: \"web\\nforged.yaml:1:1: error: x\"\n",
             expected: [(2, 11, "zone name 'web\\nforged.yaml:1:1: error: x' must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'")]),
        Case(name: "terminal escapes in an unknown key", text: "\"\\e[2J\": 1\n",
             expected: [(1, 1, "unknown key '\\u{1b}[2J' in a policy file; expected one of: version, defaults, zones, rules, assertions")]),
    ]

    @Test(arguments: cases)
    func hostileYAMLIsRejectedWithOneLocatedLine(_ testCase: Case) {
        assertRejected(testCase.name, [PolicyFile(name: "a.yaml", text: testCase.text)], testCase.expected.map { ("a.yaml", $0.0, $0.1, $0.2) })
    }

    /// The limit is exact: 64 levels pass the shape check, 65 do not, whatever the kind of nesting.
    @Test(arguments: [("[", "]"), ("{a: ", "}"), ("- ", "")])
    func nestingLimitIsExact(_ brackets: (open: String, close: String)) {
        let depth = PolicyLimits.nestingDepth
        let within = String(repeating: brackets.open, count: depth) + "x" + String(repeating: brackets.close, count: depth)
        let beyond = String(repeating: brackets.open, count: depth + 1) + "x" + String(repeating: brackets.close, count: depth + 1)
        #expect(YAMLShape.check(within) == nil)
        #expect(YAMLShape.check(beyond)?.message.hasPrefix("nesting deeper than \(depth) levels") == true)
    }

    @Test func invalidUTF8IsLocated() {
        let bytes = Array("zones:\n  - name: caf".utf8) + [0xE9] + Array("\n".utf8)
        assertRejected("Latin-1", [PolicyFile(name: "a.yaml", bytes: bytes)],
                       [("a.yaml", 2, 14, "the file is not valid UTF-8 text; a policy file must be UTF-8")])
    }

    /// Null or empty where a string is required is an error, in every field that takes one.
    static let nullCases: [Case] = [
        Case(name: "rule name", text: "rules:\n  - {name: ~, from: any, to: any}\n",
             expected: [(2, 12, "rule name must be 1 to 128 printable characters without spaces, not nothing")]),
        Case(name: "empty rule name", text: "rules:\n  - {name: '', from: any, to: any}\n",
             expected: [(2, 12, "rule name '' must be 1 to 128 printable characters without spaces")]),
        Case(name: "assertion name", text: "assertions:\n  - {name: null, deny: {from: any, to: any}}\n",
             expected: [(2, 12, "assertion name must be 1 to 128 printable characters without spaces, not nothing")]),
        Case(name: "zone name", text: "zones:\n  - name:\n", expected: [(2, 10, "expected a zone name, found nothing")]),
        Case(name: "from", text: "rules:\n  - {from: ~, to: any}\n",
             expected: [(2, 12, "expected an endpoint: a zone name, world, host, any, or {cidr: ..., except: [...]}; found nothing")]),
        Case(name: "to in a list", text: "rules:\n  - {from: any, to: [any, ~]}\n",
             expected: [(2, 27, "expected an endpoint: a zone name, world, host, any, or {cidr: ..., except: [...]}; found nothing")]),
        Case(name: "ports", text: "rules:\n  - {from: any, to: any, ports: ~}\n",
             expected: [(2, 33, "expected a list of ports such as [8443/tcp, 9000-9100/tcp, 53/udp, icmp], found nothing")]),
        Case(name: "a port", text: "rules:\n  - {from: any, to: any, ports: [~]}\n",
             expected: [(2, 34, "expected a port, found nothing; expected PORT/PROTO, LOW-HIGH/PROTO or PROTO, with PROTO one of tcp, udp, sctp, or icmp alone")]),
        Case(name: "version", text: "version: ~\n", expected: [(1, 10, "version must be 1, not nothing")]),
        Case(name: "version as a list", text: "version: [1]\n", expected: [(1, 10, "version must be 1, not a list")]),
        Case(name: "cidr", text: "rules:\n  - {from: {cidr: ~}, to: any}\n", expected: [(2, 19, "expected a CIDR such as 203.0.113.0/24 or fd00::/8, found nothing")]),
        Case(name: "owner", text: "rules:\n  - {from: any, to: any, owner: ~}\n", expected: [(2, 33, "owner must be non-empty free text, not nothing; omit it instead")]),
        Case(name: "ticket", text: "rules:\n  - {from: any, to: any, ticket: ''}\n",
             expected: [(2, 34, "ticket must be non-empty free text, not an empty string; omit it instead")]),
        Case(name: "ingress", text: "zones: [{name: web, ingress: ~}]\n", expected: [(1, 30, "ingress must be one of: open, restricted, not nothing")]),
        Case(name: "label key", text: "zones:\n  - name: web\n    selector: {matchExpressions: [{key: ~, operator: Exists}]}\n",
             expected: [(3, 41, "expected a label key, found nothing")]),
        Case(name: "operator", text: "zones:\n  - name: web\n    selector: {matchExpressions: [{key: a, operator: ~}]}\n",
             expected: [(3, 54, "unknown operator nothing; expected one of: In, NotIn, Exists, DoesNotExist")]),
        Case(name: "a value", text: "zones:\n  - name: web\n    selector: {matchExpressions: [{key: a, operator: In, values: [x, ~]}]}\n",
             expected: [(3, 70, "expected a label value (a string), found nothing; write \"\" for the empty value")]),
        Case(name: "a null key", text: "zones:\n  - name: web\n    selector: {matchLabels: {~: x}}\n",
             expected: [(3, 30, "expected a key (a string) in matchLabels, found nothing")]),
        Case(name: "logDenied", text: "defaults: {logDenied: ~}\n", expected: [(1, 23, "logDenied must be true or false, not nothing")]),
        Case(name: "a network", text: "defaults: {networks: [a, '']}\n", expected: [(1, 26, "expected a Docker network name, found an empty string")]),
    ]

    @Test(arguments: nullCases)
    func nullIsNeverAString(_ testCase: Case) {
        assertRejected(testCase.name, [PolicyFile(name: "a.yaml", text: testCase.text)], testCase.expected.map { ("a.yaml", $0.0, $0.1, $0.2) })
    }

    /// Selectors see every Docker label: Compose's real keys and values are accepted as they are.
    @Test func composeLabelsAreSelectable() throws {
        let policy = try PolicyParser.parse([PolicyFile(name: "a.yaml", text: """
            zones:
              - name: shop
                selector:
                  matchLabels:
                    com.docker.compose.project.working_dir: /srv/shop
                    com.docker.compose.project.config_files: /srv/shop/compose.yaml,/srv/shop/compose.override.yaml
                    com.docker.compose.depends_on: "db:service_started:false"
                  matchExpressions:
                    - {key: org.opencontainers.image.title, operator: In, values: ["My Shop (beta)", "", "ünïcode"]}
            """)])
        let labels = ["com.docker.compose.project.working_dir": "/srv/shop",
                      "com.docker.compose.project.config_files": "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml",
                      "com.docker.compose.depends_on": "db:service_started:false",
                      "org.opencontainers.image.title": "My Shop (beta)"]
        #expect(policy.zones[0].selector.matches(labels))
        #expect(policy.zones[0].selector.matchExpressions[0].values == ["My Shop (beta)", "", "ünïcode"])
    }

    /// One line per error, whatever is in a file name or a value.
    @Test func everyErrorIsOneLine() throws {
        let files = [PolicyFile(name: "evil\n.yaml", text: "zones:\n  - name: \"a\\r\\nb\"\n"),
                     PolicyFile(name: "\u{1B}[2J.yaml", text: "bogus: \"\\u2028\"\n")]
        do {
            _ = try PolicyParser.parse(files)
            Issue.record("expected a rejection")
        } catch {
            let lines = error.description.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines == ["\\u{1b}[2J.yaml:1:1: error: unknown key 'bogus' in a policy file; expected one of: version, defaults, zones, rules, assertions",
                                   "evil\\n.yaml:2:11: error: zone name 'a\\r\\nb' must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'"])
        }
    }

    /// Limits on sizes and counts, each with its own error at the place that crossed it.
    @Test func countAndSizeLimits() {
        let zones = "zones:\n" + (0...PolicyLimits.zones).map { "  - {name: z\($0)}\n" }.joined()
        assertRejected("zones", [PolicyFile(name: "a.yaml", text: zones)],
                       [("a.yaml", PolicyLimits.zones + 2, 5, "more than \(PolicyLimits.zones) zones in the policy; this and the later ones are not read (see docs/limits.md)")])
        let rules = "rules:\n" + String(repeating: "  - {from: any, to: any}\n", count: PolicyLimits.rules + 1)
        assertRejected("rules", [PolicyFile(name: "a.yaml", text: rules)],
                       [("a.yaml", PolicyLimits.rules + 2, 5, "more than \(PolicyLimits.rules) rules in the policy; this and the later ones are not read (see docs/limits.md)")])
        let assertions = "assertions:\n" + String(repeating: "  - {deny: {from: any, to: any}}\n", count: PolicyLimits.assertions + 1)
        assertRejected("assertions", [PolicyFile(name: "a.yaml", text: assertions)],
                       [("a.yaml", PolicyLimits.assertions + 2, 5, "more than \(PolicyLimits.assertions) assertions in the policy; this and the later ones are not read (see docs/limits.md)")])
        let ports = "rules:\n  - from: any\n    to: any\n    ports: [" + Array(repeating: "80/tcp", count: PolicyLimits.listItems + 1).joined(separator: ", ") + "]\n"
        assertRejected("ports", [PolicyFile(name: "a.yaml", text: ports)],
                       [("a.yaml", 4, 12, "more than \(PolicyLimits.listItems) ports in one list (see docs/limits.md)")])
        let endpoints = "rules:\n  - from: [" + Array(repeating: "any", count: PolicyLimits.listItems + 1).joined(separator: ", ") + "]\n    to: any\n"
        assertRejected("endpoints", [PolicyFile(name: "a.yaml", text: endpoints)],
                       [("a.yaml", 2, 11, "more than \(PolicyLimits.listItems) endpoints in one list (see docs/limits.md)")])
        let values = "zones:\n  - name: a\n    selector: {matchExpressions: [{key: k, operator: In, values: ["
            + (0...PolicyLimits.selectorValues).map { "v\($0)" }.joined(separator: ", ") + "]}]}\n"
        assertRejected("selector values", [PolicyFile(name: "a.yaml", text: values)],
                       [("a.yaml", 3, 66, "more than \(PolicyLimits.selectorValues) values in one list (see docs/limits.md)")])
        let labels = "zones:\n  - name: a\n    selector:\n      matchLabels:\n" + (0...PolicyLimits.selectorRequirements).map { "        k\($0): v\n" }.joined()
        assertRejected("selector labels", [PolicyFile(name: "a.yaml", text: labels)],
                       [("a.yaml", 5 + PolicyLimits.selectorRequirements, 9, "more than \(PolicyLimits.selectorRequirements) labels and expressions in one selector (see docs/limits.md)")])
        let longValue = "zones:\n  - name: a\n    selector: {matchLabels: {k: " + String(repeating: "v", count: PolicyLimits.labelValueBytes + 1) + "}}\n"
        assertRejected("label value length", [PolicyFile(name: "a.yaml", text: longValue)],
                       [("a.yaml", 3, 33, "label value '" + String(repeating: "v", count: 64) + "…' is longer than \(PolicyLimits.labelValueBytes) bytes")])
        let endpointRules = "rules:\n" + String(repeating: "  - {from: [" + Array(repeating: "any", count: 1_001).joined(separator: ", ") + "], to: any}\n", count: 100)
        assertRejected("endpoints in the policy", [PolicyFile(name: "a.yaml", text: endpointRules)],
                       [("a.yaml", 101, 12, "more than \(PolicyLimits.endpoints) endpoints of rules and assertions in the policy; this and the later ones are not read (see docs/limits.md)")])
        let valueZones = "zones:\n" + (0..<11).map { "  - name: z\($0)\n    selector: {matchExpressions: [{key: k, operator: In, values: ["
            + (0..<10_000).map { "v\($0)" }.joined(separator: ", ") + "]}]}\n" }.joined()
        assertRejected("label values in the policy", [PolicyFile(name: "a.yaml", text: valueZones)],
                       [("a.yaml", 23, 15, "more than \(PolicyLimits.labelValues) label values in selectors in the policy; this and the later ones are not read (see docs/limits.md)")])
        let big = PolicyFile(name: "big.yaml", bytes: [UInt8](repeating: UInt8(ascii: "#"), count: PolicyLimits.fileBytes + 1))
        assertRejected("file size", [big], [("big.yaml", 1, 1, "the file is larger than 4 MiB (see docs/limits.md)")])
        let quarter = [UInt8](repeating: UInt8(ascii: "#"), count: PolicyLimits.fileBytes)
        let five = (1...5).map { PolicyFile(name: "\($0).yaml", bytes: quarter) }
        assertRejected("total size", five, [("5.yaml", 1, 1, "the policy files together are larger than 16 MiB; this and the later ones are not read (see docs/limits.md)")])
        let many = (0...PolicyLimits.files).map { PolicyFile(name: String(format: "%05d.yaml", $0), text: "") }
        assertRejected("file count", many, [("01024.yaml", 1, 1, "more than \(PolicyLimits.files) policy files; this and the later ones are not read (see docs/limits.md)")])
    }

    /// Errors are capped: a policy of 20,000 bad ports reports 1,000 and says so.
    @Test func errorsAreCapped() throws {
        let text = "rules:\n" + String(repeating: "  - {from: any, to: any, ports: [" + Array(repeating: "x", count: 20).joined(separator: ", ") + "]}\n", count: 1_000)
        let error = try #require(throws: PolicyError.self) { try PolicyParser.parse([PolicyFile(name: "a.yaml", text: text)]) }
        #expect(error.diagnostics.count == PolicyLimits.diagnostics + 1)
        #expect(error.diagnostics.contains { $0.message == "more than \(PolicyLimits.diagnostics) errors; the rest are not reported" })
    }

    /// A large real policy passes well within the limits: 200 zones, 2,000 rules, a selector of
    /// 5,000 values, anchors and aliases used as people use them.
    @Test func largePolicyPasses() throws {
        let policy = try PolicyParser.parse([PolicyFile(name: "large.yaml", text: Self.largePolicy())])
        #expect(policy.zones.count == 200)
        #expect(policy.rules.count == 2_000)
        #expect(policy.zones[0].selector.matchExpressions[0].values.count == 5_000)
        #expect(policy.rules[1].ports == [PortRange(.tcp, 443, 443), PortRange(.tcp, 8443, 8443)])
    }

    static func largePolicy() -> String {
        var text = "version: 1\nzones:\n"
        text += "  - name: z0\n    selector:\n      matchExpressions:\n        - key: app\n          operator: In\n          values: ["
            + (0..<5_000).map { "v\($0)" }.joined(separator: ", ") + "]\n"
        for zone in 1..<200 { text += "  - name: z\(zone)\n    selector: {matchLabels: {app: a\(zone), com.docker.compose.project: shop}}\n    egress: restricted\n" }
        text += "rules:\n"
        for rule in 0..<2_000 {
            let ports = rule == 0 ? "&web [443/tcp, 8443/tcp]" : "*web"
            text += "  - name: r\(rule)\n    from: z\(rule % 200)\n    to: [z\((rule * 7 + 1) % 200), {cidr: 10.\(rule % 250).0.0/16}]\n    ports: \(ports)\n"
        }
        return text
    }

    /// Seeded random edits of a real policy (brackets, indicators, control bytes, invalid UTF-8,
    /// anchors, aliases, deletions): each parses or is rejected with one line per error.
    @Test func randomEditsNeverCrashAndGiveOneLinePerError() throws {
        let base = Array("""
            version: 1
            defaults: {unzoned: open, action: drop, networks: [front, back]}
            zones:
              - name: web
                selector: {matchLabels: {app: web}, matchExpressions: [{key: env, operator: In, values: [prod, "a b"]}]}
              - {name: db, ingress: restricted, egress: restricted}
            rules:
              - name: web-db
                from: [web, {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
                to: db
                ports: &p [5432/tcp, 9000-9100/udp, icmp]
                owner: team
              - {from: any, to: web, ports: *p}
            assertions:
              - {name: no-ssh, deny: {from: web, to: db, ports: [22/tcp]}}
            """.utf8)
        let pieces: [[UInt8]] = ["[", "]", "{", "}", ": ", "- ", "\n  ", "&a ", "*a", "~", "\"", "'", "#", "? ", "|\n", "\t", "!!str ", ","].map { Array($0.utf8) }
            + [[0x00], [0x07], [0x1B], [0xFF], [0xC3], [0xE2, 0x80, 0xA8]]
        var random = SplitMix64(seed: 10)
        for _ in 0..<400 {
            var bytes = base
            for _ in 0..<Int(random.next() % 6 + 1) {
                let at = Int(random.next() % UInt64(bytes.count + 1))
                if random.next() % 3 == 0, at < bytes.count {
                    bytes.removeSubrange(at..<min(bytes.count, at + Int(random.next() % 8)))
                } else {
                    let piece = pieces[Int(random.next() % UInt64(pieces.count))]
                    bytes.insert(contentsOf: Array(repeating: piece, count: Int(random.next() % 3 == 0 ? random.next() % 200 : 1)).joined(), at: at)
                }
            }
            do {
                _ = try PolicyParser.parse([PolicyFile(name: "r.yaml", bytes: bytes)])
            } catch {
                #expect(error.description.split(separator: "\n", omittingEmptySubsequences: false).count == error.diagnostics.count)
                #expect(!error.description.unicodeScalars.contains { $0.properties.generalCategory == .control && $0 != "\n" })
            }
        }
    }

    private func assertRejected(_ name: String, _ files: [PolicyFile], _ expected: [(String, Int, Int, String)],
                                sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        do {
            let policy = try PolicyParser.parse(files)
            Issue.record("\(name): expected a rejection, parsed \(policy.zones.count) zones", sourceLocation: sourceLocation)
        } catch {
            let found = error.diagnostics.map { "\($0.location.file):\($0.location.line):\($0.location.column): \($0.message)" }
            let wanted = expected.map { "\($0.0):\($0.1):\($0.2): \($0.3)" }
            #expect(found == wanted, "\(name)", sourceLocation: sourceLocation)
            #expect(!error.description.contains { $0 == "\r" }, "\(name)", sourceLocation: sourceLocation)
            #expect(error.description.split(separator: "\n").count == error.diagnostics.count, "\(name)", sourceLocation: sourceLocation)
        }
    }
}

