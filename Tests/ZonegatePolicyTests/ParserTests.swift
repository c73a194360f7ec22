import Foundation
import Testing
@testable import ZonegatePolicy

/// What a valid policy parses into.
@Suite struct ParserTests {
    private func parse(_ files: [(String, String)]) throws -> Policy {
        try PolicyParser.parse(files.map { PolicyFile(name: $0.0, text: $0.1) })
    }

    @Test func fullZoneRuleAndAssertion() throws {
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
        #expect(policy.defaults.unzoned == .restricted)
        #expect(policy.defaults.action == .reject)
        #expect(!policy.defaults.logDenied)
        #expect(policy.defaults.networks == ["shop", "pci"])
        #expect(policy.defaults.mode == .audit)
        #expect(policy.zones.map(\.name) == ["payments", "web"])
        let payments = policy.zones[0]
        #expect(payments.selector.matchLabels == ["tier": "payments", "pci": "true"])
        #expect(payments.selector.matchExpressions == [.init(key: "env", op: .in, values: ["prod", "staging"])])
        #expect(payments.egress == .restricted)
        #expect(policy.mode(of: payments) == .enforce)
        let web = policy.zones[1]
        #expect(web.selector == .zoneLabel("web"), "a zone without selector selects zonegate.zone=<name>")
        #expect(web.ingress == .restricted, "ingress defaults to restricted")
        #expect(web.egress == .open, "egress defaults to open")
        #expect(policy.mode(of: web) == .audit, "a zone without mode follows defaults.mode")
        let rule = policy.rules[0]
        #expect(rule.from == [.zone("web")])
        #expect(rule.to == [.zone("payments"), .cidr(CIDRBlock(CIDR(network: IPAddress("203.0.113.0")!, prefixLength: 24),
                                                                    except: [CIDR(network: IPAddress("203.0.113.8")!, prefixLength: 29)]))])
        #expect(rule.ports == [PortRange(.tcp, 8443, 8443), PortRange(.tcp, 9000, 9100), PortRange(.udp, 53, 53),
                                    PortRange(.sctp, 3868, 3868), .all(.icmp)])
        #expect(rule.annotations == RuleAnnotations(owner: "payments-platform", ticket: "CHG-1234"))
        #expect(rule.location == ZonegatePolicy.SourceLocation(file: "a.yaml", line: 14, column: 5))
        #expect(policy.assertions.map(\.kind) == [.allow, .deny])
        #expect(policy.assertions[1].to == [.world])
    }

    @Test func defaultsWhenNothingIsSet() throws {
        let policy = try parse([("a.yaml", "zones: [{name: web}]\n")])
        #expect(policy.defaults == Defaults())
        #expect(policy.defaults.unzoned == .open)
        #expect(policy.defaults.action == .drop)
        #expect(policy.defaults.logDenied)
        #expect(policy.defaults.networks == nil)
        #expect(policy.defaults.mode == .enforce)
    }

    @Test func unnamedRulesAreNamedAfterFileAndIndex() throws {
        let policy = try parse([("20-rules.yaml", "rules:\n  - {from: any, to: any}\n  - {name: named, from: any, to: any}\n  - {from: world, to: any}\n")])
        #expect(policy.rules.map(\.name) == ["20-rules.yaml#1", "named", "20-rules.yaml#3"])
        #expect(policy.rules[0].ports == nil, "omitted ports cover every port")
        #expect(Set(policy.rules[0].portRanges) == Set(PortProtocol.allCases.map(PortRange.all)))
    }

    @Test func namesMayUseAnyPrintableCharacters() throws {
        let names = ["règle-1", "PCI/DSS:1.2.3", "a#b", String(repeating: "r", count: 128), "ticket→CHG-42"]
        let yaml = "rules:\n" + names.map { "  - {name: \"\($0)\", from: any, to: any}\n" }.joined()
        #expect(try parse([("a.yaml", yaml)]).rules.map(\.name) == names)
    }

    @Test func filesMergeInFileNameOrderAndMayReferToLaterFiles() throws {
        let policy = try parse([("b.yaml", "zones: [{name: second}]\n"),
                                ("a.yaml", "zones: [{name: first}]\nrules: [{from: first, to: second}]\n")])
        #expect(policy.zones.map(\.name) == ["first", "second"])
        #expect(policy.rules.map(\.name) == ["a.yaml#1"])
    }

    @Test func emptyPolicyIsValid() throws {
        #expect(try parse([]).zones == [])
        #expect(try parse([("empty.yaml", ""), ("comments.yaml", "# nothing yet\n")]).rules == [])
        for text in ["---\n", "--- # a stub\n", "~\n", "---\n...\n"] {
            #expect(try parse([("stub.yaml", text)]).zones == [], "one empty document: \(text.debugDescription)")
        }
    }

    @Test func emptySelectorSelectsEveryContainer() throws {
        let policy = try parse([("a.yaml", "zones: [{name: all, selector: {}}]\n")])
        #expect(policy.zones[0].selector.isEmpty)
        #expect(policy.zones[0].selector.matches([:]))
        #expect(policy.zones[0].selector.matches(["x": "y"]))
    }

    @Test func singleEndpointAndPortNeedNoList() throws {
        let policy = try parse([("a.yaml", "rules: [{from: host, to: {cidr: \"fd00::/8\"}, ports: 443/tcp}]\n")])
        #expect(policy.rules[0].from == [.host])
        #expect(policy.rules[0].ports == [PortRange(.tcp, 443, 443)])
        guard case .cidr(let block) = policy.rules[0].to[0] else { Issue.record("expected a CIDR"); return }
        #expect(!block.cidr.isIPv4)
        #expect(block.contains(IPAddress("fd12::1")!))
    }

    @Test func digestCoversNamesAndContentInFileNameOrder() throws {
        // printf 'a.yamlzones: []\nb.ymlversion: 1\n' | sha256sum
        let expected = "sha256:3026dbf603c2f2af9e596e4d5d959305f85e59fcbcdd20967f7c26892301c28d"
        let policy = try parse([("b.yml", "version: 1\n"), ("a.yaml", "zones: []\n")])
        #expect(policy.digest == expected)
        #expect(try parse([("c.yml", "version: 1\n"), ("a.yaml", "zones: []\n")]).digest != expected, "renaming a file changes the digest")
    }

    @Test func directoryReadsOnlyYAMLFilesDirectlyInIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "zones: [{name: a}]\n".write(to: directory.appendingPathComponent("1.yaml"), atomically: true, encoding: .utf8)
        try "zones: [{name: b}]\n".write(to: directory.appendingPathComponent("2.yml"), atomically: true, encoding: .utf8)
        try "zones: [{name: c}]\n".write(to: directory.appendingPathComponent("sub/3.yaml"), atomically: true, encoding: .utf8)
        try "not: [policy".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        #expect(try PolicyDirectory.load(directory.path).zones.map(\.name) == ["a", "b"])
        #expect(throws: PolicyDirectory.ReadError.self) { try PolicyDirectory.load(directory.appendingPathComponent("missing").path) }
    }
}

/// Kubernetes LabelSelector semantics.
@Suite struct LabelSelectorTests {
    typealias R = LabelSelector.Requirement
    static let cases: [(name: String, selector: LabelSelector, labels: [String: String], expected: Bool)] = [
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

    @Test(arguments: cases)
    func selectorSemantics(_ testCase: (name: String, selector: LabelSelector, labels: [String: String], expected: Bool)) {
        #expect(testCase.selector.matches(testCase.labels) == testCase.expected, "\(testCase.name)")
    }

    /// Docker's label syntax, not Kubernetes': any value, any key without control characters.
    @Test(arguments: ["app", "app.kubernetes.io/name", "com.docker.compose.project", "a_b-c.d", "A1", "-app", "app-", "a/b/c",
                      "UPPER.example/app", "org.opencontainers.image.source", String(repeating: "k", count: PolicyLimits.labelKeyBytes)])
    func labelKeyAccepted(key: String) {
        #expect(LabelSyntax.problem(withKey: key) == nil)
    }

    @Test(arguments: ["", "a\nb", "tab\there", String(repeating: "k", count: PolicyLimits.labelKeyBytes + 1)])
    func labelKeyRefused(key: String) {
        #expect(LabelSyntax.problem(withKey: key) != nil)
    }

    @Test(arguments: ["", "true", "v1.2_3-x", "has space", "-x", "/srv/shop", "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml",
                      "db:service_started:false", "line\nbreak", String(repeating: "v", count: PolicyLimits.labelValueBytes)])
    func labelValueAccepted(value: String) {
        #expect(LabelSyntax.problem(withValue: value) == nil)
    }

    @Test func labelValueTooLongRefused() {
        #expect(LabelSyntax.problem(withValue: String(repeating: "v", count: PolicyLimits.labelValueBytes + 1)) != nil)
    }
}

/// Addresses, prefixes and ports.
@Suite struct AddressAndPortTests {
    @Test func cidrParsing() throws {
        #expect(try CIDR.parse("10.0.0.0/8").get().description == "10.0.0.0/8")
        #expect(try CIDR.parse("2001:DB8::/32").get().description == "2001:db8::/32")
        #expect(try CIDR.parse("192.0.2.7").get().prefixLength == 32, "a bare address is a single host")
        #expect(try CIDR.parse("::1").get().prefixLength == 128)
        #expect(CIDR.parse("10.0.0.1/8") == .failure(.hostBitsSet(suggestion: "10.0.0.0/8")))
        #expect(CIDR.parse("10.0.0.0/x") == .failure(.badPrefixLength(max: 32)))
        #expect(CIDR.parse("10.0.0.0/-1") == .failure(.badPrefixLength(max: 32)))
        #expect(CIDR.parse("300.0.0.0/8") == .failure(.notAnAddress))
    }

    @Test func cidrMembershipAndExcept() throws {
        let block = CIDRBlock(try CIDR.parse("203.0.113.0/24").get(), except: [try CIDR.parse("203.0.113.8/29").get()])
        #expect(block.contains(IPAddress("203.0.113.7")!))
        #expect(!block.contains(IPAddress("203.0.113.8")!))
        #expect(!block.contains(IPAddress("203.0.113.15")!))
        #expect(block.contains(IPAddress("203.0.113.16")!))
        #expect(!block.contains(IPAddress("203.0.114.1")!))
        #expect(!block.contains(IPAddress("::ffff:203.0.113.7")!), "an IPv6 address is never in an IPv4 block")
        let v6 = CIDRBlock(try CIDR.parse("fd00:18::/64").get())
        #expect(v6.contains(IPAddress("fd00:18::2")!))
        #expect(!v6.contains(IPAddress("fd00:19::2")!))
        #expect(try CIDR.parse("0.0.0.0/0").get().contains(IPAddress("8.8.8.8")!))
    }

    @Test func portParsing() throws {
        #expect(try PortRange.parse("8443/tcp").get() == PortRange(.tcp, 8443, 8443))
        #expect(try PortRange.parse("9000-9100/udp").get() == PortRange(.udp, 9000, 9100))
        #expect(try PortRange.parse("sctp").get() == .all(.sctp))
        #expect(try PortRange.parse("icmp").get() == .all(.icmp))
        #expect(try PortRange.parse("65535/tcp").get().high == 65535)
        #expect(PortRange.parse("80") == .failure(.syntax))
        #expect(PortRange.parse("80/TCP") == .failure(.unknownProtocol("TCP")))
        #expect(PortRange.parse("1-2-3/tcp") == .failure(.syntax))
        #expect(PortRange.parse("+80/tcp") == .failure(.syntax))
        #expect(PortRange.parse("0/udp") == .failure(.outOfRange("0")))
        #expect(PortRange.parse("8/icmp") == .failure(.icmpHasNoPorts))
        #expect(PortRange(.tcp, 9000, 9100).contains(ServicePort(9050, .tcp)))
        #expect(!(PortRange(.tcp, 9000, 9100).contains(ServicePort(9050, .udp))))
        #expect(PortRange.all(.icmp).contains(ServicePort(0, .icmp)))
        #expect(ServicePort.parse("80/tcp") == ServicePort(80, .tcp))
        #expect(ServicePort.parse("80-81/tcp") == nil)
    }
}
