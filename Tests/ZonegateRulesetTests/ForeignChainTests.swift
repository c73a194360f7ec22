import Testing
import ZonegateRuleset
import ZonegateTesting

/// A base chain read back with a hook, type or policy zonegate does not model is `foreign`: it
/// equals no chain zonegate wants, so the diff rewrites it, `verify` names it, and no transaction
/// writes it.
@Suite struct ForeignChainTests {
    static let id = TableID(.inet, "zonegate")
    /// `SampleRulesets.full`'s base chain: `forward`, `type filter hook forward priority 0; policy drop;`.
    static let forward = 1

    /// The sample ruleset as the kernel might hand it back, its base chain's hook changed.
    static func read(_ change: (inout BaseChainHook) -> Void) -> Ruleset {
        var kernel = SampleRulesets.full
        change(&kernel.tables[0].chains[forward].hook!)
        return kernel
    }

    static let foreignParts: [(String, @Sendable (inout BaseChainHook) -> Void)] = [
        ("hook", { $0.hook = .foreign(7) }),
        ("type", { $0.type = .foreign("xyz") }),
        ("no type", { $0.type = .foreign(nil) }),
    ]

    @Test(arguments: foreignParts.indices)
    func aForeignHookOrTypeIsRecreated(_ index: Int) throws {
        let (what, change) = Self.foreignParts[index]
        let kernel = Self.read(change)
        let desired = SampleRulesets.full
        #expect(kernel != desired, "\(what)")
        let transaction = try diff(from: kernel, to: desired)
        #expect(transaction.operations.contains(.deleteChain(Self.id, name: "forward")), "\(what)")
        #expect(transaction.operations.contains(.addChain(Self.id, name: "forward", hook: desired.tables[0].chains[Self.forward].hook)), "\(what)")
        #expect(transaction.result == desired, "\(what)")
        let differences = RulesetComparison.compare(actual: kernel, desired: desired)
        #expect(differences.map(\.kind) == [.changedChain], "\(what)")
        #expect(differences.first?.text.contains("<foreign") == true, "\(what): \(differences)")
    }

    @Test(arguments: [BaseChainHook.Policy.foreign(3), .foreign(nil)])
    func aForeignPolicyIsReplacedInPlace(_ policy: BaseChainHook.Policy) throws {
        let kernel = Self.read { $0.policy = policy }
        let desired = SampleRulesets.full
        let transaction = try diff(from: kernel, to: desired)
        #expect(transaction.operations == [.addChain(Self.id, name: "forward", hook: desired.tables[0].chains[Self.forward].hook)])
        #expect(transaction.result == desired)
        let text = RulesetComparison.compare(actual: kernel, desired: desired).map(\.description)
        #expect(text == ["changed chain: chain inet zonegate forward has { type filter hook forward priority 0; policy \(policy); }"
                         + " (<foreign>: values zonegate does not know), expected { type filter hook forward priority 0; policy drop; }"])
    }

    @Test func noTransactionWritesAForeignHook() {
        var transaction = Transaction(startingFrom: Ruleset(tables: [Table(family: .inet, name: "zonegate")]))
        for (what, change) in Self.foreignParts {
            var hook = BaseChainHook(hook: .forward)
            change(&hook)
            #expect(throws: TransactionError.self, "\(what)") { try transaction.add(.addChain(Self.id, name: "other", hook: hook)) }
        }
        #expect(throws: TransactionError.self) {
            try transaction.add(.addChain(Self.id, name: "other", hook: BaseChainHook(hook: .forward, policy: .foreign(3))))
        }
        #expect(transaction.isEmpty)
    }

    @Test func kernelNumbersNameHooksByFamily() {
        #expect(BaseChainHook.Hook(kernelNumber: 2, family: .inet) == .forward)
        #expect(BaseChainHook.Hook(kernelNumber: 2, family: .bridge) == .forward)
        #expect(BaseChainHook.Hook(kernelNumber: 0, family: .netdev) == .ingress)
        // netdev's hook 1 is egress, not input; inet's 5 is its own ingress: neither is modelled.
        #expect(BaseChainHook.Hook(kernelNumber: 1, family: .netdev) == .foreign(1))
        #expect(BaseChainHook.Hook(kernelNumber: 5, family: .inet) == .foreign(5))
        for hook in [BaseChainHook.Hook.prerouting, .input, .forward, .output, .postrouting] {
            #expect(BaseChainHook.Hook(kernelNumber: hook.kernelNumber, family: .inet) == hook)
        }
        #expect(BaseChainHook.Policy(kernelValue: 0) == .drop && BaseChainHook.Policy(kernelValue: 1) == .accept)
        #expect(BaseChainHook.ChainType(name: "nat") == .nat && BaseChainHook.ChainType(name: "Filter") == .foreign("Filter"))
    }
}
