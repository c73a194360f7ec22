import XCTest
@testable import ZonegatePolicy

/// What a valid policy parses into.
final class ParserTests: XCTestCase {
    private func parse(_ files: [(String, String)]) throws -> Policy {
        try PolicyParser.parse(files.map { PolicyFile(name: $0.0, text: $0.1) })
    }

    func testFullZoneRuleAndAssertion() throws {
        let policy = try parse([("a.yaml", """
            version: 1
            defaults: {unzoned: restricted, action: reject, logDenied: false, networks: [shop, pci], mode: audit}
            zones:
              - name: payments
                selector:
                  matchLabels: { tier: payments, pci: "true" }
                  matchExpressions:
                    - { key: env, operator: In, values: [prod, staging] }
                ingress: restricted
                egress: restricted
                mode: enforce
              - name: web
            rules:
              - name: web-to-payments
                from: web
                to: [payments, {cidr: 203.0.113.0/24, except: [203.0.113.8/29]}]
                ports: [8443/tcp, 9000-9100/tcp, 53/udp, 3868/sctp, icmp]
                owner: payments-platform
                ticket: CHG-1234
            assertions:
              - name: web-reaches-payments
                allow: { from: web, to: payments, ports: [8443/tcp] }
              - name: never
                deny: { from: payments, to: world }
            """)])
        XCTAssertEqual(policy.defaults.unzoned, .restricted)
        XCTAssertEqual(policy.defaults.action, .reject)
        XCTAssertFalse(policy.defaults.logDenied)
        XCTAssertEqual(policy.defaults.networks, ["shop", "pci"])
        XCTAssertEqual(policy.defaults.mode, .audit)
        XCTAssertEqual(policy.zones.map(\.name), ["payments", "web"])
        let payments = policy.zones[0]
        XCTAssertEqual(payments.selector.matchLabels, ["tier": "payments", "pci": "true"])
        XCTAssertEqual(payments.selector.matchExpressions, [.init(key: "env", op: .in, values: ["prod", "staging"])])
        XCTAssertEqual(payments.egress, .restricted)
        XCTAssertEqual(policy.mode(of: payments), .enforce)
        let web = policy.zones[1]
        XCTAssertEqual(web.selector, .zoneLabel("web"), "a zone without selector selects zonegate.zone=<name>")
        XCTAssertEqual(web.ingress, .restricted, "ingress defaults to restricted")
        XCTAssertEqual(web.egress, .open, "egress defaults to open")
        XCTAssertEqual(policy.mode(of: web), .audit, "a zone without mode follows defaults.mode")
        let rule = policy.rules[0]
        XCTAssertEqual(rule.from, [.zone("web")])
        XCTAssertEqual(rule.to, [.zone("payments"), .cidr(CIDRBlock(CIDR(network: IPAddress("203.0.113.0")!, prefixLength: 24),
                                                                    except: [CIDR(network: IPAddress("203.0.113.8")!, prefixLength: 29)]))])
        XCTAssertEqual(rule.ports, [PortRange(.tcp, 8443, 8443), PortRange(.tcp, 9000, 9100), PortRange(.udp, 53, 53),
                                    PortRange(.sctp, 3868, 3868), .all(.icmp)])
        XCTAssertEqual(rule.annotations, RuleAnnotations(owner: "payments-platform", ticket: "CHG-1234"))
        XCTAssertEqual(rule.location, SourceLocation(file: "a.yaml", line: 14, column: 5))
        XCTAssertEqual(policy.assertions.map(\.kind), [.allow, .deny])
        XCTAssertEqual(policy.assertions[1].to, [.world])
    }

    func testDefaultsWhenNothingIsSet() throws {
        let policy = try parse([("a.yaml", "zones: [{name: web}]\n")])
        XCTAssertEqual(policy.defaults, Defaults())
        XCTAssertEqual(policy.defaults.unzoned, .open)
        XCTAssertEqual(policy.defaults.action, .drop)
        XCTAssertTrue(policy.defaults.logDenied)
        XCTAssertNil(policy.defaults.networks)
        XCTAssertEqual(policy.defaults.mode, .enforce)
    }

    func testUnnamedRulesAreNamedAfterFileAndIndex() throws {
        let policy = try parse([("20-rules.yaml", "rules:\n  - {from: any, to: any}\n  - {name: named, from: any, to: any}\n  - {from: world, to: any}\n")])
        XCTAssertEqual(policy.rules.map(\.name), ["20-rules.yaml#1", "named", "20-rules.yaml#3"])
        XCTAssertNil(policy.rules[0].ports, "omitted ports cover every port")
        XCTAssertEqual(Set(policy.rules[0].portRanges), Set(PortProtocol.allCases.map(PortRange.all)))
    }

    func testNamesMayUseAnyPrintableCharacters() throws {
        let names = ["règle-1", "PCI/DSS:1.2.3", "a#b", String(repeating: "r", count: 128), "ticket→CHG-42"]
        let yaml = "rules:\n" + names.map { "  - {name: \"\($0)\", from: any, to: any}\n" }.joined()
        XCTAssertEqual(try parse([("a.yaml", yaml)]).rules.map(\.name), names)
    }

    func testFilesMergeInFileNameOrderAndMayReferToLaterFiles() throws {
        let policy = try parse([("b.yaml", "zones: [{name: second}]\n"),
                                ("a.yaml", "zones: [{name: first}]\nrules: [{from: first, to: second}]\n")])
        XCTAssertEqual(policy.zones.map(\.name), ["first", "second"])
        XCTAssertEqual(policy.rules.map(\.name), ["a.yaml#1"])
    }

    func testEmptyPolicyIsValid() throws {
        XCTAssertEqual(try parse([]).zones, [])
        XCTAssertEqual(try parse([("empty.yaml", ""), ("comments.yaml", "# nothing yet\n")]).rules, [])
        for text in ["---\n", "--- # a stub\n", "~\n", "---\n...\n"] {
            XCTAssertEqual(try parse([("stub.yaml", text)]).zones, [], "one empty document: \(text.debugDescription)")
        }
    }

    func testEmptySelectorSelectsEveryContainer() throws {
        let policy = try parse([("a.yaml", "zones: [{name: all, selector: {}}]\n")])
        XCTAssertTrue(policy.zones[0].selector.isEmpty)
        XCTAssertTrue(policy.zones[0].selector.matches([:]))
        XCTAssertTrue(policy.zones[0].selector.matches(["x": "y"]))
    }

    func testSingleEndpointAndPortNeedNoList() throws {
        let policy = try parse([("a.yaml", "rules: [{from: host, to: {cidr: \"fd00::/8\"}, ports: 443/tcp}]\n")])
        XCTAssertEqual(policy.rules[0].from, [.host])
        XCTAssertEqual(policy.rules[0].ports, [PortRange(.tcp, 443, 443)])
        guard case .cidr(let block) = policy.rules[0].to[0] else { return XCTFail("expected a CIDR") }
        XCTAssertFalse(block.cidr.isIPv4)
        XCTAssertTrue(block.contains(IPAddress("fd12::1")!))
    }

    func testDigestCoversNamesAndContentInFileNameOrder() throws {
        // printf 'a.yamlzones: []\nb.ymlversion: 1\n' | sha256sum
        let expected = "sha256:3026dbf603c2f2af9e596e4d5d959305f85e59fcbcdd20967f7c26892301c28d"
        let policy = try parse([("b.yml", "version: 1\n"), ("a.yaml", "zones: []\n")])
        XCTAssertEqual(policy.digest, expected)
        XCTAssertNotEqual(try parse([("c.yml", "version: 1\n"), ("a.yaml", "zones: []\n")]).digest, expected,
                          "renaming a file changes the digest")
    }

    func testDirectoryReadsOnlyYAMLFilesDirectlyInIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "zones: [{name: a}]\n".write(to: directory.appendingPathComponent("1.yaml"), atomically: true, encoding: .utf8)
        try "zones: [{name: b}]\n".write(to: directory.appendingPathComponent("2.yml"), atomically: true, encoding: .utf8)
        try "zones: [{name: c}]\n".write(to: directory.appendingPathComponent("sub/3.yaml"), atomically: true, encoding: .utf8)
        try "not: [policy".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try PolicyDirectory.load(directory.path).zones.map(\.name), ["a", "b"])
        XCTAssertThrowsError(try PolicyDirectory.load(directory.appendingPathComponent("missing").path)) { error in
            XCTAssertTrue(error is PolicyDirectory.ReadError)
        }
    }
}

/// Kubernetes LabelSelector semantics.
final class LabelSelectorTests: XCTestCase {
    func testSelectorSemantics() {
        typealias R = LabelSelector.Requirement
        let cases: [(String, LabelSelector, [String: String], Bool)] = [
            ("matchLabels all present", .init(matchLabels: ["a": "1", "b": "2"]), ["a": "1", "b": "2", "c": "3"], true),
            ("matchLabels one differs", .init(matchLabels: ["a": "1", "b": "2"]), ["a": "1", "b": "3"], false),
            ("matchLabels one missing", .init(matchLabels: ["a": "1", "b": "2"]), ["a": "1"], false),
            ("In matches a listed value", .init(matchExpressions: [R(key: "env", op: .in, values: ["prod", "staging"])]), ["env": "staging"], true),
            ("In rejects other values", .init(matchExpressions: [R(key: "env", op: .in, values: ["prod"])]), ["env": "dev"], false),
            ("In rejects an absent key", .init(matchExpressions: [R(key: "env", op: .in, values: ["prod"])]), [:], false),
            ("NotIn rejects a listed value", .init(matchExpressions: [R(key: "env", op: .notIn, values: ["prod"])]), ["env": "prod"], false),
            ("NotIn matches other values", .init(matchExpressions: [R(key: "env", op: .notIn, values: ["prod"])]), ["env": "dev"], true),
            ("NotIn matches an absent key", .init(matchExpressions: [R(key: "env", op: .notIn, values: ["prod"])]), [:], true),
            ("Exists with any value", .init(matchExpressions: [R(key: "pci", op: .exists)]), ["pci": ""], true),
            ("Exists without the key", .init(matchExpressions: [R(key: "pci", op: .exists)]), ["other": "x"], false),
            ("DoesNotExist without the key", .init(matchExpressions: [R(key: "pci", op: .doesNotExist)]), [:], true),
            ("DoesNotExist with the key", .init(matchExpressions: [R(key: "pci", op: .doesNotExist)]), ["pci": "x"], false),
            ("labels and expressions together", .init(matchLabels: ["app": "db"], matchExpressions: [R(key: "env", op: .notIn, values: ["dev"])]),
             ["app": "db", "env": "prod"], true),
            ("empty selector selects everything", .init(), ["anything": "at all"], true),
            ("default zone selector", .zoneLabel("web"), ["zonegate.zone": "web"], true),
            ("default zone selector, other zone", .zoneLabel("web"), ["zonegate.zone": "api"], false),
            ("compose labels", .init(matchLabels: ["com.docker.compose.project": "shop", "com.docker.compose.service": "api"]),
             ["com.docker.compose.project": "shop", "com.docker.compose.service": "api", "com.docker.compose.version": "2"], true),
        ]
        for (name, selector, labels, expected) in cases {
            XCTAssertEqual(selector.matches(labels), expected, name)
        }
    }

    /// Docker's label syntax, not Kubernetes': any value, any key without control characters.
    func testLabelSyntax() {
        for key in ["app", "app.kubernetes.io/name", "com.docker.compose.project", "a_b-c.d", "A1", "-app", "app-", "a/b/c",
                    "UPPER.example/app", "org.opencontainers.image.source", String(repeating: "k", count: PolicyLimits.labelKeyBytes)] {
            XCTAssertNil(LabelSyntax.problem(withKey: key), key)
        }
        for key in ["", "a\nb", "tab\there", String(repeating: "k", count: PolicyLimits.labelKeyBytes + 1)] {
            XCTAssertNotNil(LabelSyntax.problem(withKey: key), key)
        }
        for value in ["", "true", "v1.2_3-x", "has space", "-x", "/srv/shop", "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml",
                      "db:service_started:false", "line\nbreak", String(repeating: "v", count: PolicyLimits.labelValueBytes)] {
            XCTAssertNil(LabelSyntax.problem(withValue: value), value)
        }
        XCTAssertNotNil(LabelSyntax.problem(withValue: String(repeating: "v", count: PolicyLimits.labelValueBytes + 1)))
    }
}

/// Addresses, prefixes and ports.
final class AddressAndPortTests: XCTestCase {
    func testCIDRParsing() {
        XCTAssertEqual(try CIDR.parse("10.0.0.0/8").get().description, "10.0.0.0/8")
        XCTAssertEqual(try CIDR.parse("2001:DB8::/32").get().description, "2001:db8::/32")
        XCTAssertEqual(try CIDR.parse("192.0.2.7").get().prefixLength, 32, "a bare address is a single host")
        XCTAssertEqual(try CIDR.parse("::1").get().prefixLength, 128)
        XCTAssertEqual(CIDR.parse("10.0.0.1/8"), .failure(.hostBitsSet(suggestion: "10.0.0.0/8")))
        XCTAssertEqual(CIDR.parse("10.0.0.0/x"), .failure(.badPrefixLength(max: 32)))
        XCTAssertEqual(CIDR.parse("10.0.0.0/-1"), .failure(.badPrefixLength(max: 32)))
        XCTAssertEqual(CIDR.parse("300.0.0.0/8"), .failure(.notAnAddress))
    }

    func testCIDRMembershipAndExcept() throws {
        let block = CIDRBlock(try CIDR.parse("203.0.113.0/24").get(), except: [try CIDR.parse("203.0.113.8/29").get()])
        XCTAssertTrue(block.contains(IPAddress("203.0.113.7")!))
        XCTAssertFalse(block.contains(IPAddress("203.0.113.8")!))
        XCTAssertFalse(block.contains(IPAddress("203.0.113.15")!))
        XCTAssertTrue(block.contains(IPAddress("203.0.113.16")!))
        XCTAssertFalse(block.contains(IPAddress("203.0.114.1")!))
        XCTAssertFalse(block.contains(IPAddress("::ffff:203.0.113.7")!), "an IPv6 address is never in an IPv4 block")
        let v6 = CIDRBlock(try CIDR.parse("fd00:18::/64").get())
        XCTAssertTrue(v6.contains(IPAddress("fd00:18::2")!))
        XCTAssertFalse(v6.contains(IPAddress("fd00:19::2")!))
        XCTAssertTrue(try CIDR.parse("0.0.0.0/0").get().contains(IPAddress("8.8.8.8")!))
    }

    func testPortParsing() {
        XCTAssertEqual(try PortRange.parse("8443/tcp").get(), PortRange(.tcp, 8443, 8443))
        XCTAssertEqual(try PortRange.parse("9000-9100/udp").get(), PortRange(.udp, 9000, 9100))
        XCTAssertEqual(try PortRange.parse("sctp").get(), .all(.sctp))
        XCTAssertEqual(try PortRange.parse("icmp").get(), .all(.icmp))
        XCTAssertEqual(try PortRange.parse("65535/tcp").get().high, 65535)
        XCTAssertEqual(PortRange.parse("80"), .failure(.syntax))
        XCTAssertEqual(PortRange.parse("80/TCP"), .failure(.unknownProtocol("TCP")))
        XCTAssertEqual(PortRange.parse("1-2-3/tcp"), .failure(.syntax))
        XCTAssertEqual(PortRange.parse("+80/tcp"), .failure(.syntax))
        XCTAssertEqual(PortRange.parse("0/udp"), .failure(.outOfRange("0")))
        XCTAssertEqual(PortRange.parse("8/icmp"), .failure(.icmpHasNoPorts))
        XCTAssertTrue(PortRange(.tcp, 9000, 9100).contains(ServicePort(9050, .tcp)))
        XCTAssertFalse(PortRange(.tcp, 9000, 9100).contains(ServicePort(9050, .udp)))
        XCTAssertTrue(PortRange.all(.icmp).contains(ServicePort(0, .icmp)))
        XCTAssertEqual(ServicePort.parse("80/tcp"), ServicePort(80, .tcp))
        XCTAssertNil(ServicePort.parse("80-81/tcp"))
    }
}
