import Testing
@testable import ZonegatePolicy

/// Every kind of policy error, with the position it must name.
@Suite struct ParserErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var files: [(String, String)]
        /// (file, line, column, a fragment of the message)
        var expected: [(String, Int, Int, String)]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "unknown top-level key", files: [("a.yaml", "version: 1\nzone:\n  - name: web\n")],
             expected: [("a.yaml", 2, 1, "unknown key 'zone' in a policy file; expected one of: version, defaults, zones, rules, assertions")]),
        Case(name: "unknown zone key", files: [("a.yaml", "zones:\n  - name: web\n    ingres: open\n")],
             expected: [("a.yaml", 3, 5, "unknown key 'ingres' in a zone")]),
        Case(name: "duplicate YAML key", files: [("a.yaml", "zones:\n  - name: web\n    name: api\n")],
             expected: [("a.yaml", 3, 5, "duplicate key 'name' in a zone (first at a.yaml:2:5)")]),
        Case(name: "duplicate zone names across files",
             files: [("a.yaml", "zones:\n  - name: web\n"), ("b.yaml", "zones:\n  - name: web\n")],
             expected: [("b.yaml", 2, 11, "the name 'web' is already used by the zone at a.yaml:2:11")]),
        Case(name: "a rule named like a zone",
             files: [("a.yaml", "zones:\n  - name: web\nrules:\n  - name: web\n    from: web\n    to: web\n")],
             expected: [("a.yaml", 4, 11, "the name 'web' is already used by the zone")]),
        Case(name: "an assertion named like a rule",
             files: [("a.yaml", "zones: [{name: web}]\nrules:\n  - {name: r, from: web, to: web}\nassertions:\n  - {name: r, deny: {from: web, to: web}}\n")],
             expected: [("a.yaml", 5, 12, "the name 'r' is already used by the rule at a.yaml:3:12")]),
        Case(name: "undefined zone", files: [("a.yaml", "zones: [{name: web}]\nrules:\n  - from: web\n    to: [web, paymnts]\n")],
             expected: [("a.yaml", 4, 15, "'paymnts' is not a defined zone; expected one of: web, world, host, any")]),
        Case(name: "undefined zone in an assertion", files: [("a.yaml", "zones: [{name: web}]\nassertions:\n  - name: x\n    deny: {from: corp, to: web}\n")],
             expected: [("a.yaml", 4, 18, "'corp' is not a defined zone")]),
        Case(name: "port out of range", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: [0/tcp, 65536/udp]}\n")],
             expected: [("a.yaml", 2, 34, "port 0 in '0/tcp' is out of range; expected 1 to 65535"),
                        ("a.yaml", 2, 41, "port 65536 in '65536/udp' is out of range")]),
        Case(name: "unknown protocol", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: [80/http]}\n")],
             expected: [("a.yaml", 2, 34, "unknown protocol 'http' in '80/http'")]),
        Case(name: "port without protocol", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: [80]}\n")],
             expected: [("a.yaml", 2, 34, "invalid port '80'; expected PORT/PROTO")]),
        Case(name: "reversed range", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: [9100-9000/tcp]}\n")],
             expected: [("a.yaml", 2, 34, "port range '9100-9000/tcp' is reversed")]),
        Case(name: "icmp with a port", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: [8/icmp]}\n")],
             expected: [("a.yaml", 2, 34, "icmp has no ports")]),
        Case(name: "empty ports", files: [("a.yaml", "rules:\n  - {from: any, to: any, ports: []}\n")],
             expected: [("a.yaml", 2, 33, "ports must not be empty")]),
        Case(name: "not a CIDR", files: [("a.yaml", "rules:\n  - from: {cidr: 10.0.0/8}\n    to: any\n")],
             expected: [("a.yaml", 2, 18, "'10.0.0/8' is not a CIDR; expected ADDRESS/LENGTH")]),
        Case(name: "prefix too long", files: [("a.yaml", "rules:\n  - from: {cidr: 10.0.0.0/33}\n    to: any\n")],
             expected: [("a.yaml", 2, 18, "invalid prefix length; expected 0 to 32")]),
        Case(name: "IPv6 prefix too long", files: [("a.yaml", "rules:\n  - from: {cidr: \"fd00::/129\"}\n    to: any\n")],
             expected: [("a.yaml", 2, 18, "invalid prefix length; expected 0 to 128")]),
        Case(name: "host bits set", files: [("a.yaml", "rules:\n  - from: {cidr: 10.1.2.3/8}\n    to: any\n")],
             expected: [("a.yaml", 2, 18, "did you mean 10.0.0.0/8?")]),
        Case(name: "except outside the CIDR", files: [("a.yaml", "rules:\n  - from: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}\n    to: any\n")],
             expected: [("a.yaml", 2, 39, "except 11.0.0.0/16 is not inside 10.0.0.0/8")]),
        Case(name: "unknown endpoint key", files: [("a.yaml", "rules:\n  - from: {zone: web}\n    to: any\n")],
             expected: [("a.yaml", 2, 12, "unknown key 'zone' in a CIDR endpoint"), ("a.yaml", 2, 11, "a CIDR endpoint needs 'cidr'")]),
        Case(name: "rule without to", files: [("a.yaml", "rules:\n  - from: any\n")],
             expected: [("a.yaml", 2, 5, "a rule needs 'to'")]),
        Case(name: "unknown selector operator",
             files: [("a.yaml", "zones:\n  - name: web\n    selector:\n      matchExpressions:\n        - {key: env, operator: Equals, values: [a]}\n")],
             expected: [("a.yaml", 5, 32, "unknown operator 'Equals'; expected one of: In, NotIn, Exists, DoesNotExist")]),
        Case(name: "In without values",
             files: [("a.yaml", "zones:\n  - name: web\n    selector:\n      matchExpressions:\n        - {key: env, operator: In}\n")],
             expected: [("a.yaml", 5, 32, "operator In needs a non-empty list of values")]),
        Case(name: "Exists with values",
             files: [("a.yaml", "zones:\n  - name: web\n    selector:\n      matchExpressions:\n        - {key: env, operator: Exists, values: [a]}\n")],
             expected: [("a.yaml", 5, 48, "operator Exists takes no values")]),
        Case(name: "bad label key and value",
             files: [("a.yaml", "zones:\n  - name: web\n    selector:\n      matchLabels: {\"\": ok, \"a\\tb\": x, good: ~, also: [x]}\n")],
             expected: [("a.yaml", 4, 21, "a label key must not be empty"),
                        ("a.yaml", 4, 29, "label key 'a\\tb' must not contain control characters"),
                        ("a.yaml", 4, 46, "expected a label value (a string), found nothing; write \"\" for the empty value"),
                        ("a.yaml", 4, 55, "expected a label value (a string), found a list")]),
        Case(name: "selector that is not a mapping", files: [("a.yaml", "zones:\n  - name: web\n    selector: [a]\n")],
             expected: [("a.yaml", 3, 15, "expected a mapping for a selector, found a list")]),
        Case(name: "zone name with capitals", files: [("a.yaml", "zones:\n  - name: Web\n")],
             expected: [("a.yaml", 2, 11, "zone name 'Web' must match [a-z][a-z0-9-]{0,30}")]),
        Case(name: "zone name too long", files: [("a.yaml", "zones:\n  - name: \(String(repeating: "a", count: 32))\n")],
             expected: [("a.yaml", 2, 11, "must match [a-z][a-z0-9-]{0,30}")]),
        Case(name: "reserved zone name", files: [("a.yaml", "zones:\n  - name: world\n")],
             expected: [("a.yaml", 2, 11, "'world' is reserved")]),
        Case(name: "zone without a name", files: [("a.yaml", "zones:\n  - ingress: open\n")],
             expected: [("a.yaml", 2, 5, "a zone needs a name")]),
        Case(name: "rule name with a space", files: [("a.yaml", "rules:\n  - {name: my rule, from: any, to: any}\n")],
             expected: [("a.yaml", 2, 12, "rule name 'my rule' must be 1 to 128 printable characters without spaces")]),
        Case(name: "unprintable rule and assertion names",
             files: [("a.yaml", "rules:\n  - {name: \"zero\\u200Bwidth\", from: any, to: any}\n  - {name: \"nb\\u00A0sp\", from: any, to: any}\n"
                      + "assertions:\n  - {name: \"tab\\there\", deny: {from: any, to: any}}\n")],
             expected: [("a.yaml", 2, 12, "rule name"), ("a.yaml", 3, 12, "rule name"), ("a.yaml", 5, 12, "assertion name")]),
        Case(name: "rule name too long", files: [("a.yaml", "rules:\n  - {name: \(String(repeating: "r", count: 129)), from: any, to: any}\n")],
             expected: [("a.yaml", 2, 12, "rule name")]),
        Case(name: "bad access value", files: [("a.yaml", "zones:\n  - {name: web, ingress: closed}\n")],
             expected: [("a.yaml", 2, 26, "ingress must be one of: open, restricted, not 'closed'")]),
        Case(name: "bad mode", files: [("a.yaml", "zones:\n  - {name: web, mode: dryrun}\n")],
             expected: [("a.yaml", 2, 23, "mode must be one of: enforce, audit")]),
        Case(name: "unsupported version", files: [("a.yaml", "version: 2\n")],
             expected: [("a.yaml", 1, 10, "unsupported version '2'; expected 1")]),
        Case(name: "defaults set twice",
             files: [("a.yaml", "defaults: {action: drop}\n"), ("b.yaml", "defaults:\n  action: reject\n")],
             expected: [("b.yaml", 1, 1, "defaults are already set at a.yaml:1:1")]),
        Case(name: "bad defaults values", files: [("a.yaml", "defaults:\n  unzoned: closed\n  action: block\n  logDenied: maybe\n  networks: []\n")],
             expected: [("a.yaml", 2, 12, "unzoned must be one of: open, restricted"), ("a.yaml", 3, 11, "action must be one of: drop, reject"),
                        ("a.yaml", 4, 14, "logDenied must be true or false"), ("a.yaml", 5, 13, "networks must be 'all' or a non-empty list")]),
        Case(name: "assertion with both deny and allow",
             files: [("a.yaml", "assertions:\n  - name: x\n    deny: {from: any, to: any}\n    allow: {from: any, to: any}\n")],
             expected: [("a.yaml", 2, 5, "an assertion needs exactly one of 'deny' or 'allow'")]),
        Case(name: "YAML syntax error", files: [("a.yaml", "zones:\n  - name: web\n   bad: [\n")],
             expected: [("a.yaml", 3, 4, "invalid YAML")]),
        Case(name: "not a mapping at the top", files: [("a.yaml", "- just\n- a list\n")],
             expected: [("a.yaml", 1, 1, "expected a mapping for a policy file, found a list")]),
        Case(name: "zones not a list", files: [("a.yaml", "zones: web\n")],
             expected: [("a.yaml", 1, 8, "zones must be a list of zone definitions, found 'web'")]),
        Case(name: "an undefined zone suggests only valid zone names, each once",
             files: [("a.yaml", "zones: [{name: Web}, {name: world}, {name: api}, {name: api}]\nrules:\n  - {from: web, to: api}\n")],
             expected: [("a.yaml", 1, 16, "zone name 'Web'"), ("a.yaml", 1, 29, "'world' is reserved"),
                        ("a.yaml", 1, 57, "the name 'api' is already used"),
                        ("a.yaml", 3, 12, "'web' is not a defined zone; expected one of: api, world, host, any, or {cidr: ...}")]),
        Case(name: "annotations are free text",
             files: [("a.yaml", "rules:\n  - {from: any, to: any, owner: {team: a}, ticket: [1, 2]}\n")],
             expected: [("a.yaml", 2, 33, "owner must be non-empty free text, not a mapping"), ("a.yaml", 2, 52, "ticket must be non-empty free text, not a list")]),
        Case(name: "every error is reported, not only the first",
             files: [("a.yaml", "zones:\n  - name: Web\nrules:\n  - {from: nowhere, to: any, ports: [80/tcpp]}\n"),
                     ("b.yaml", "bogus: 1\n")],
             expected: [("a.yaml", 2, 11, "zone name 'Web'"), ("a.yaml", 4, 38, "unknown protocol 'tcpp'"),
                        ("a.yaml", 4, 12, "'nowhere' is not a defined zone"), ("b.yaml", 1, 1, "unknown key 'bogus'")]),
    ]

    @Test(arguments: cases)
    func everyErrorKindNamesItsPosition(_ testCase: Case) throws {
        let files = testCase.files.map { PolicyFile(name: $0.0, text: $0.1) }
        do {
            let policy = try PolicyParser.parse(files)
            Issue.record("expected a rejection, parsed \(policy)")
        } catch {
            let found = error.diagnostics
            #expect(found.count == testCase.expected.count, "\(error)")
            for (file, line, column, fragment) in testCase.expected {
                #expect(found.contains { $0.location == ZonegatePolicy.SourceLocation(file: file, line: line, column: column) && $0.message.contains(fragment) },
                        "no error '\(fragment)' at \(file):\(line):\(column) in:\n\(error)")
            }
        }
    }

    @Test func diagnosticsReadAsFileLineColumn() throws {
        let error = try #require(throws: (any Error).self) {
            try PolicyParser.parse([PolicyFile(name: "10-zones.yaml", text: "zones:\n  - name: UPPER\n")])
        }
        #expect("\(error)".hasPrefix("10-zones.yaml:2:11: error: zone name 'UPPER'"), "\(error)")
    }
}
