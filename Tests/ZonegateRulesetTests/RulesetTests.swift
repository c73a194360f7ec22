import Testing
import ZonegateRuleset
import ZonegateTesting

@Suite struct ElementConstructorTests {
    @Test func prefixesAndRangesBecomeIntervals() {
        let element = SetElement(.prefix("10.0.0.0/8")!, .ports(80...443))
        // Concatenated fields are padded to 4 bytes each.
        #expect(element.key == [10, 0, 0, 0, 0, 80, 0, 0])
        #expect(element.keyEnd == [10, 255, 255, 255, 1, 187, 0, 0])
        #expect(SetElement(.prefix("fd00::/64")!).keyEnd == [0xfd] + [UInt8](repeating: 0, count: 7) + [UInt8](repeating: 0xff, count: 8))
        #expect(KeyPart.prefix("10.0.0.0/33") == nil)
        #expect(KeyPart.ipv4("10.0.0.256") == nil)
    }

    @Test func singleFieldsAreNotPadded() {
        #expect(SetElement(.port(8080)).key == [0x1f, 0x90])
        #expect(SetElement(.tcp).key == [6])
        #expect(SetElement(.ifname("veth1")).key == Array("veth1".utf8) + [UInt8](repeating: 0, count: 11))
        #expect(SetElement(.mark(1)).key == [1, 0, 0, 0])
    }

    @Test func intervalSetsGiveEveryElementAnEnd() {
        let set = NftSet(name: "s", keyType: [.ipv4Addr], flags: [.interval], elements: [SetElement(.ipv4("10.0.0.1")!)])
        #expect(set.elements[0].keyEnd == [10, 0, 0, 1])
        #expect(set.keyLength == 4)
        #expect(NftSet(name: "c", keyType: [.ipv4Addr, .inetProto, .inetService]).keyLength == 12)
        // As nft encodes them: a concatenation of intervals is the kernel's pipapo, one without a hash.
        #expect(NftSet(name: "c", keyType: [.ipv4Addr, .inetService], flags: [.interval]).kernelFlags == [.interval, .concat])
        #expect(NftSet(name: "c", keyType: [.ipv4Addr, .inetService]).kernelFlags == [])
    }

    @Test func registersUseTheKernelsCanonicalNumbers() {
        #expect(Register.reg32(0) == .reg1)
        #expect(Register(rawValue: 12) == Register(rawValue: 2))
        #expect(Register.reg32(1).rawValue == 9)
        #expect(Register.reg1.advanced(byWords: 3).rawValue == 11)
    }
}

@Suite struct DiffTests {
    static let id = TableID(.inet, "zonegate")

    /// What the packet path wrote into a dynamic set was decided under the old state: a change
    /// flushes it; no change touches nothing.
    @Test func aChangeFlushesTheDynamicSetsItKeeps() throws {
        let wire = SampleRulesets.wire
        #expect(try diff(from: wire, to: wire).isEmpty)
        var changed = wire
        changed.tables[0].sets[0].elements.append(SetElement(.ipv4("10.9.9.8")!))
        let transaction = try diff(from: wire, to: changed)
        #expect(transaction.operations.contains(.flushSet(Self.id, name: "grants")))
        #expect(transaction.description.contains("flush set inet zonegate grants"))
        #expect(transaction.operations.count == 2, "\(transaction)")
    }

    @Test func fromNothingBuildsEverythingInADependencyOrder() throws {
        let transaction = try diff(from: Ruleset(), to: SampleRulesets.full)
        #expect(transaction.result == SampleRulesets.full)
        let kinds = transaction.operations.map { "\($0)".prefix { $0 != "(" } }
        // Chains before the verdict map's elements that jump to them; sets before rules.
        #expect(kinds.firstIndex(of: "addRule")! > kinds.lastIndex(of: "addElements")!)
        #expect(kinds.lastIndex(of: "addChain")! < kinds.firstIndex(of: "addElements")!)
        #expect(try diff(from: SampleRulesets.full, to: SampleRulesets.full).isEmpty)
    }

    @Test func elementChangesTouchOnlyElements() throws {
        var desired = SampleRulesets.full
        desired.tables[0].sets[0].elements.append(SetElement(.prefix("10.2.0.0/16")!, .port(53)))
        desired.tables[0].sets[0].elements.removeFirst()
        let transaction = try diff(from: SampleRulesets.full, to: desired)
        #expect(transaction.description == """
            delete element inet zonegate allow4 { 10.0.0.0/8 . 80-443 comment "web" }
            add element inet zonegate allow4 { 10.2.0.0/16 . 53 }
            """)
        #expect(transaction.result == desired)
    }

    @Test func aChangedRuleRefillsItsChainOnly() throws {
        var desired = SampleRulesets.full
        desired.tables[0].chains[0].rules.removeLast()
        let transaction = try diff(from: SampleRulesets.full, to: desired)
        #expect(transaction.operations.first == .flushChain(Self.id, name: "zone_a"))
        #expect(transaction.operations.count == 1 + desired.tables[0].chains[0].rules.count)
        #expect(transaction.result == desired)
    }

    @Test func aRedefinedSetIsRecreatedAndItsUsersRefilled() throws {
        var desired = SampleRulesets.full
        desired.tables[0].sets[1].comment = "changed"  // nets4, used by chain zone_a
        let transaction = try diff(from: SampleRulesets.full, to: desired)
        #expect(transaction.operations.contains(.flushChain(Self.id, name: "zone_a")))
        #expect(transaction.operations.contains(.deleteSet(Self.id, name: "nets4")))
        #expect(!transaction.operations.contains(.flushChain(Self.id, name: "forward")))
        #expect(transaction.result == desired)
    }

    @Test func policyChangesUpdateTheChainInPlace() throws {
        var desired = SampleRulesets.full
        desired.tables[0].chains[1].hook?.policy = .accept
        let transaction = try diff(from: SampleRulesets.full, to: desired)
        #expect(transaction.operations == [.addChain(Self.id, name: "forward", hook: desired.tables[0].chains[1].hook)])
    }

    @Test func removedTablesAreDeletedAndOthersLeftAlone() throws {
        let inetOnly = Ruleset(tables: [SampleRulesets.full.tables[0]])
        let transaction = try diff(from: SampleRulesets.full, to: inetOnly)
        #expect(transaction.operations == [.deleteTable(TableID(.bridge, "zonegate"))])
    }

    @Test func anInconsistentDesiredRulesetIsRefused() {
        var desired = SampleRulesets.full
        desired.tables[0].chains[0].rules.append(Rule([.verdict(.jump("nowhere"))]))
        #expect(throws: TransactionError.self) { try diff(from: Ruleset(), to: desired) }
    }
}

@Suite struct TransactionValidationTests {
    static let id = TableID(.inet, "zonegate")

    @Test func refusesWhatTheKernelWouldRefuse() throws {
        var transaction = Transaction(startingFrom: SampleRulesets.full)
        let refused: [Operation] = [
            .addElements(Self.id, set: "missing", [SetElement(.port(1))]),
            .addElements(Self.id, set: "triples", [SetElement(.port(1))]),
            .addElements(Self.id, set: "triples", [SetElement(.ipv4("10.1.0.2")!, .tcp, .port(5432))]),
            .deleteElements(Self.id, set: "triples", [SetElement(.ipv4("10.1.0.200")!, .tcp, .port(5432))]),
            .addRule(Self.id, chain: "forward", Rule([.verdict(.goto("nowhere"))])),
            .addRule(Self.id, chain: "forward", Rule([.verdict(.jump("forward"))])),
            .deleteSet(Self.id, name: "allow4"),
            .deleteChain(Self.id, name: "zone_a"),
            .addChain(Self.id, name: "forward", hook: BaseChainHook(hook: .input)),
            .addSet(TableID(.ip, "other"), NftSet(name: "s", keyType: [.ipv4Addr])),
            .addRule(Self.id, chain: "forward", Rule([.counter], comment: String(repeating: "x", count: 128))),
        ]
        for operation in refused {
            #expect(throws: TransactionError.self, "\(operation)") { try transaction.add(operation) }
        }
        #expect(transaction.isEmpty)
        try transaction.add(.flushChain(Self.id, name: "forward"))
        try transaction.add(.deleteSet(Self.id, name: "allow4"))
        #expect(transaction.description == "flush chain inet zonegate forward\ndelete set inet zonegate allow4")
    }
}

@Suite struct RenderingTests {
    @Test func rulesRenderAsNftSyntax() {
        let table = SampleRulesets.wire.tables[0]
        let lines = table.nftScript.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for expected in [
            "ct state established,related accept comment \"replies\"",
            "meta nfproto ipv4 meta l4proto tcp ip saddr . th dport @allow4 counter accept",
            "iifname vmap @ports",
            "meta l4proto tcp reject with tcp reset",
            "elements = { 10.0.0.0/8 . 80-443 comment \"web\" }",
            "elements = { \"veth1\" : jump zone_a }",
            "type filter hook forward priority 0; policy drop;",
        ] {
            #expect(lines.contains(expected), "missing: \(expected)\n\(table.nftScript)")
        }
    }

    /// nft reads an element's comment before its data only.
    @Test func anElementCommentComesBeforeItsVerdict() {
        let table = Table(family: .inet, name: "t", chains: [Chain(name: "zone_a")], sets: [
            NftSet(name: "m", keyType: [.ifname], dataType: .verdict,
                   elements: [SetElement(.ifname("veth2"), data: .verdict(.jump("zone_a")), comment: "web-1")]),
        ])
        #expect(table.nftScript.contains("elements = { \"veth2\" comment \"web-1\" : jump zone_a }"), "\(table.nftScript)")
    }
}

@Suite struct FakeDataplaneTests {
    @Test func appliesAllOrNothingAndRecords() throws {
        let fake = FakeDataplane()
        try fake.apply(try diff(from: try fake.readAll(name: "zonegate"), to: SampleRulesets.full))
        #expect(try fake.readAll(name: "zonegate") == SampleRulesets.full)
        #expect(fake.transactions.count == 1)

        // A transaction built on a wrong belief is refused as a whole.
        var transaction = Transaction(startingFrom: Ruleset(tables: [Table(family: .inet, name: "zonegate", sets: [
            NftSet(name: "ghost", keyType: [.inetService]),
        ])]))
        try transaction.add(.addTable(TableID(.ip, "zonegate"), flags: 0))
        try transaction.add(.addElements(TableID(.inet, "zonegate"), set: "ghost", [SetElement(.port(1))]))
        #expect(throws: FakeDataplane.Refused.self) { try fake.apply(transaction) }
        #expect(fake.ruleset == SampleRulesets.full)

        fake.refuseNextApply()
        #expect(throws: (any Error).self) { try fake.apply(try diff(from: fake.ruleset, to: Ruleset())) }
        #expect(try fake.read(family: .bridge, name: "zonegate") != nil)
    }
}
