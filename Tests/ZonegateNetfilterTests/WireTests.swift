import Testing
import Foundation
import CNftnl
@testable import ZonegateNetfilter
import ZonegateTesting

/// Compares the batch zonegate encodes for `SampleRulesets.wire` with the batch nft
/// sends for the same ruleset (`wire.nft`, beside this file). Captured with:
///
///     unshare -n -- nft --debug=mnl -c -f Tests/ZonegateNetfilterTests/wire.nft 2>&1 \
///         | tools/capture-wire.py
///
/// Each line is one message of the batch: nlmsg type, the nfgenmsg header, the
/// attributes. Normalised away: the netlink header's length (implied by the
/// attributes), sequence number and port id (nft numbers from its own counter),
/// and flags (nft's debug print shows only R/M/A/E, and nft -c sends no ACK while
/// zonegate asks for one per message); the batch begin and end messages; and the
/// message order, since nft sends each set's elements right after the set, and
/// zonegate sends all chains and sets before any element (so verdict-map elements
/// can jump to any chain); the order of top-level attributes (nft 1.0.6 builds rule
/// and element messages itself, e.g. a rule's userdata after its expressions, where
/// libnftnl puts it first; the kernel does not care); and, in nft's set userdata, the
/// `NFTNL_UDATA_SET_KEY_TYPEOF` record nft adds for concatenations, which zonegate
/// does not write (`nft list` prints the type from `NFTA_SET_KEY_TYPE`, see the
/// kernel test `nftListShowsTheComments`).
@Suite struct WireTests {
    static let capturedFromNft = """
        2560 01000000 0d0001007a6f6e6567617465000000000800020000000000
        2563 01000000 0d0001007a6f6e6567617465000000000b0003007a6f6e655f610000
        2563 01000000 0d0001007a6f6e6567617465000000000c000300666f7277617264000b00070066696c746572000008000500000000001400048008000100000000020800020000000000
        2569 01000000 0d0001007a6f6e6567617465000000000c000200626c6f636b65640008000300000000000800040000000007080005000000000408000a00000000010a000d000004020000000000
        2572 01000000 0d0001007a6f6e6567617465000000000c000200626c6f636b656400080004000000000114000380100001800c000180080001000a090909
        2569 01000000 0d0001007a6f6e6567617465000000000b000200616c6c6f77340000080003000000008408000400000001cd080005000000000808000a0000000002200009801c0002800c00018008000100000000040c000180080001000000000214000d00000400000000030800040d0000000100
        2572 01000000 0d0001007a6f6e6567617465000000000b000200616c6c6f7734000008000400000000023400038030000180100001800c0001000a0000000050000010000a800c0001000affffff01bb00000a0006000004776562000000
        2569 01000000 0d0001007a6f6e6567617465000000000a000200706f72747300000008000300000000080800040000000029080005000000001008000600ffffff00080007000000000008000a000000000316000d000004010000000104000000000604000000000000
        2572 01000000 0d0001007a6f6e6567617465000000000a000200706f72747300000008000400000000033c000380380001801800018014000100766574683100000000000000000000001c0002801800028008000100fffffffd0b0002007a6f6e655f610000
        2569 01000000 0d0001007a6f6e6567617465000000000b0002006772616e7473000008000300000000300800040000000013080005000000000408000a00000000040c000b0000000000000013880a000d000004010000000000
        2569 01000000 0d0001007a6f6e6567617465000000000a0002006d61726b730000000800030000000008080004000000030d08000500000000080800060000000013080007000000000408000a000000000520000d00000400000000010401000000030800040d0000000100060400000000
        2572 01000000 0d0001007a6f6e6567617465000000000a0002006d61726b7300000008000400000000052400038020000180100001800c000100060000001f9000000c00028008000100901f0600
        2566 01000000 0d0001007a6f6e6567617465000000000c000200666f727761726400c40004802000018007000100637400001400028008000200000000000800010000000001440001800c0001006269747769736500340002800800010000000001080002000000000108000300000000040c00048008000100060000000c00058008000100000000002c00018008000100636d700020000280080001000000000108000200000000010c0003800800010000000000300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c00028008000100000000010e00070000087265706c696573000000
        2566 01000000 0d0001007a6f6e6567617465000000000c000200666f7277617264008001048024000180090001006d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380050001000200000024000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c0800040000000004340001800c0001007061796c6f616400240002800800010000000009080002000000000208000300000000020800040000000002300001800b0001006c6f6f6b757000002000028008000200000000010b000100616c6c6f773400000800040000000002140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001
        2566 01000000 0d0001007a6f6e6567617465000000000c000200666f7277617264006000048024000180090001006d657461000000001400028008000200000000060800010000000001380001800b0001006c6f6f6b7570000028000280080002000000000108000300000000000a000100706f7274730000000800040000000003
        2566 01000000 0d0001007a6f6e6567617465000000000c000200666f7277617264007800048024000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010006000000240001800b00010072656a65637400001400028008000100000000010500020000000000
        2566 01000000 0d0001007a6f6e6567617465000000000c000200666f7277617264006401048024000180090001006d6574610000000014000280080002000000000a08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380080001000000000024000180090001006d657461000000001400028008000200000000100800010000000001340001800c0001007061796c6f616400240002800800010000000009080002000000000208000300000000020800040000000002380001800b0001006c6f6f6b7570000028000280080002000000000108000300000000010a0001006d61726b73000000080004000000000524000180090001006d65746100000000140002800800020000000003080003000000000124000180090001006d657461000000001400028008000200000000030800010000000001380001800b00010064796e736574000028000280080004000000000108000300000000010b0001006772616e747300000800020000000004
        """

    @Test func batchMatchesNft() throws {
        let transaction = try diff(from: Ruleset(), to: SampleRulesets.wire)
        let encoder = try BatchEncoder.encode(transaction, firstSequence: 1)
        let ours = try WireLines.messages(of: encoder.bytes).map(WireLines.normalised)
        let theirs = Self.capturedFromNft.split(separator: "\n").map { WireLines.normalised(String($0)) }
        #expect(ours.count == theirs.count)
        let missing = theirs.filter { !ours.contains($0) }
        let extra = ours.filter { !theirs.contains($0) }
        #expect(missing.isEmpty && extra.isEmpty, "nft sends:\n\(missing.joined(separator: "\n"))\nzonegate sends:\n\(extra.joined(separator: "\n"))")
    }

    @Test func everyMessageAsksForAnAck() throws {
        let transaction = try diff(from: Ruleset(), to: SampleRulesets.wire)
        let encoder = try BatchEncoder.encode(transaction, firstSequence: 100)
        let messages = try NetlinkMessage.split(encoder.bytes[...])
        #expect(messages.count == encoder.messageCount + 2)
        #expect(messages.first?.type == 16 && messages.last?.type == 17)
        for (index, message) in messages.dropFirst().dropLast().enumerated() {
            #expect(UInt16(message.bytes[6]) | UInt16(message.bytes[7]) << 8 & 0x4 != 0, "message \(index) lacks NLM_F_ACK")
            #expect(message.sequence == 101 + UInt32(index))
        }
    }

    @Test func largeElementListsAreSplit() throws {
        let hosts = (0..<3000).map { SetElement(KeyPart(value: [10, 0, UInt8($0 >> 8), UInt8($0 & 0xff)]), comment: "host \($0)") }
        let ruleset = Ruleset(tables: [Table(family: .inet, name: "zonegate", sets: [
            NftSet(name: "hosts", keyType: [.ipv4Addr], elements: hosts),
        ])])
        let encoder = try BatchEncoder.encode(try diff(from: Ruleset(), to: ruleset), firstSequence: 1)
        let messages = try NetlinkMessage.split(encoder.bytes[...])
        #expect(messages.filter { $0.type == 2572 }.count > 1)
        #expect(messages.allSatisfy { $0.bytes.count <= BatchEncoder.messageCapacity })
    }

    @Test func kernelEnumValuesMatchTheHeaders() {
        #expect(MetaKey.l4proto.rawValue == UInt32(NFT_META_L4PROTO.rawValue))
        #expect(MetaKey.protocol_.rawValue == UInt32(NFT_META_PROTOCOL.rawValue))
        #expect(MetaKey.nfproto.rawValue == UInt32(NFT_META_NFPROTO.rawValue))
        #expect(MetaKey.iifname.rawValue == UInt32(NFT_META_IIFNAME.rawValue))
        #expect(MetaKey.oifname.rawValue == UInt32(NFT_META_OIFNAME.rawValue))
        #expect(MetaKey.mark.rawValue == UInt32(NFT_META_MARK.rawValue))
        #expect(CtKey.state.rawValue == UInt32(NFT_CT_STATE.rawValue))
        #expect(CtKey.status.rawValue == UInt32(NFT_CT_STATUS.rawValue))
        #expect(CtKey.mark.rawValue == UInt32(NFT_CT_MARK.rawValue))
        #expect(Register.reg32(1).rawValue == UInt32(NFT_REG32_01.rawValue))
        #expect(Register.reg32(cnftnl_reg32_count() - 1).rawValue == UInt32(NFT_REG32_15.rawValue))
        #expect(Family.bridge.rawValue == UInt8(NFPROTO_BRIDGE))
        #expect(Family.ip6.rawValue == UInt8(NFPROTO_IPV6))
        #expect(NftSet.Flags.interval.rawValue == UInt32(NFT_SET_INTERVAL.rawValue))
        #expect(NftSet.Flags.concat.rawValue == UInt32(NFT_SET_CONCAT.rawValue))
    }
}

/// Our batch in the capture's line format, and the normalisation described above.
enum WireLines {
    /// `type nfgenmsg attribute attribute ...`, attributes sorted, KEY_TYPEOF dropped.
    static func normalised(_ line: String) -> String {
        let fields = line.split(separator: " ").map(String.init)
        var body = bytes(fromHex: fields[2])
        var attributes: [String] = []
        while body.count >= 4 {
            let length = Int(body[0]) | Int(body[1]) << 8
            let type = Int(body[2]) | Int(body[3]) << 8
            var attribute = Array(body.prefix(length))
            // NFTA_SET_USERDATA (13) of NEWSET (2569).
            if fields[0] == "2569", type == 13 { attribute = withoutKeyTypeof(attribute) }
            attributes.append(attribute.map { String(format: "%02x", $0) }.joined())
            body.removeFirst(min(body.count, (length + 3) & ~3))
        }
        return ([fields[0], fields[1]] + attributes.sorted()).joined(separator: " ")
    }

    /// The userdata attribute without TLV 3 (`NFTNL_UDATA_SET_KEY_TYPEOF`), padding dropped.
    private static func withoutKeyTypeof(_ attribute: [UInt8]) -> [UInt8] {
        var kept: [UInt8] = []
        var index = 4
        while index + 2 <= attribute.count {
            let length = Int(attribute[index + 1])
            if attribute[index] != 3 { kept += attribute[index..<min(attribute.count, index + 2 + length)] }
            index += 2 + length
        }
        return [UInt8(truncatingIfNeeded: kept.count + 4), UInt8((kept.count + 4) >> 8), 13, 0] + kept
    }

    private static func bytes(fromHex hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    static func messages(of batch: [UInt8]) throws -> [String] {
        try NetlinkMessage.split(batch[...]).filter { $0.type != 16 && $0.type != 17 }.map { message in
            let hex = { (bytes: ArraySlice<UInt8>) in bytes.map { String(format: "%02x", $0) }.joined() }
            return "\(message.type) \(hex(message.bytes[16..<20])) \(hex(message.bytes[20...]))"
        }
    }
}
