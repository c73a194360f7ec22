import CNftnl
import Testing
@testable import ZonegateNetfilter

/// Chains as a dump brings them back: through a NEWCHAIN message's bytes and libnftnl's parser.
/// What zonegate does not model decodes as `foreign`, never as a default.
@Suite struct ChainCodecTests {
    /// What a chain message carries; nil leaves the attribute out.
    struct Attributes: Sendable, CustomTestStringConvertible {
        var family: Family = .inet
        var hook: UInt32? = 2
        var type: String? = "filter"
        var policy: UInt32? = 0
        var testDescription: String { "\(family) hook \(hook.map(String.init) ?? "-") type \(type ?? "-") policy \(policy.map(String.init) ?? "-")" }
    }

    /// Builds the message with libnftnl, parses it back and decodes it.
    static func roundTrip(_ attributes: Attributes) throws -> Chain {
        let built = try #require(nftnl_chain_alloc())
        defer { nftnl_chain_free(built) }
        nftnl_chain_set_str(built, attr(NFTNL_CHAIN_TABLE), "zonegate")
        nftnl_chain_set_str(built, attr(NFTNL_CHAIN_NAME), "forward")
        if let hook = attributes.hook {
            nftnl_chain_set_u32(built, attr(NFTNL_CHAIN_HOOKNUM), hook)
            nftnl_chain_set_s32(built, attr(NFTNL_CHAIN_PRIO), -5)
        }
        if let type = attributes.type { nftnl_chain_set_str(built, attr(NFTNL_CHAIN_TYPE), type) }
        if let policy = attributes.policy { nftnl_chain_set_u32(built, attr(NFTNL_CHAIN_POLICY), policy) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let parsed = try #require(nftnl_chain_alloc())
        defer { nftnl_chain_free(parsed) }
        let status = buffer.withUnsafeMutableBytes { raw -> Int32 in
            let header = nftnl_nlmsg_build_hdr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWCHAIN.rawValue),
                                               UInt16(attributes.family.rawValue), 0, 1)!
            nftnl_chain_nlmsg_build_payload(header, built)
            return nftnl_chain_nlmsg_parse(header, parsed)
        }
        try #require(status >= 0)
        let decoded = ChainCodec.decode(parsed, family: attributes.family)
        #expect(decoded.table == "zonegate")
        return decoded.chain
    }

    static let cases: [(Attributes, BaseChainHook?)] = [
        (Attributes(), BaseChainHook(hook: .forward, priority: -5, type: .filter, policy: .drop)),
        (Attributes(hook: nil), nil),
        (Attributes(family: .netdev, hook: 0, policy: 1), BaseChainHook(hook: .ingress, priority: -5, type: .filter, policy: .accept)),
        (Attributes(hook: 7), BaseChainHook(hook: .foreign(7), priority: -5, type: .filter, policy: .drop)),
        (Attributes(family: .netdev, hook: 1), BaseChainHook(hook: .foreign(1), priority: -5, type: .filter, policy: .drop)),
        (Attributes(type: "xyz"), BaseChainHook(hook: .forward, priority: -5, type: .foreign("xyz"), policy: .drop)),
        (Attributes(type: nil), BaseChainHook(hook: .forward, priority: -5, type: .foreign(nil), policy: .drop)),
        (Attributes(policy: 3), BaseChainHook(hook: .forward, priority: -5, type: .filter, policy: .foreign(3))),
        (Attributes(policy: nil), BaseChainHook(hook: .forward, priority: -5, type: .filter, policy: .foreign(nil))),
    ]

    @Test(arguments: cases)
    func unknownValuesDecodeAsForeign(_ row: (Attributes, BaseChainHook?)) throws {
        let chain = try Self.roundTrip(row.0)
        #expect(chain.name == "forward")
        #expect(chain.hook == row.1)
        #expect(chain.hook?.isForeign ?? false == (row.1?.isForeign ?? false))
    }
}
