import CNftnl
import Foundation
import Testing
@testable import ZonegateNetfilter

/// The netlink messages the fuzz targets found crashing the decoders (Fuzz/crashes, replayed by
/// `make test` through the fuzz targets too): each is now refused or decoded to nothing.
struct MalformedMessageTests {
    /// A kept fuzz case, by target and file name.
    static func crashCase(_ target: String, _ name: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return Array(try Data(contentsOf: root.appendingPathComponent("Fuzz/crashes/\(target)/\(name)")))
    }

    @Test func ctnetlinkMessageShorterThanItsHeaders() throws {
        let messages = try NetlinkMessage.split(try Self.crashCase("fuzz-conntrack", "crash-52d2d589b752e5339485edae1f4b32ce422f13d7")[...])
        for message in messages where Int32(message.type) != NLMSG_ERROR && Int32(message.type) != NLMSG_DONE {
            _ = ConntrackTable.decode(message.bytes)
        }
        #expect(ConntrackTable.decode([UInt8](repeating: 0, count: 16)) == nil)
    }

    @Test func truncatedErrorMessageIsNoAck() {
        let header: [UInt8] = [16, 0, 0, 0, UInt8(NLMSG_ERROR), 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        let message = NetlinkMessage(bytes: header)
        #expect(message.ackError == -EBADMSG)
        #expect(message.ackedSequence == 0)
    }

    @Test func unalignedNFLogMessage() throws {
        let bytes = try Self.crashCase("fuzz-nflog", "crash-f59bfb98b746d98bd94565fecf77604005d14c07")
        for message in try NetlinkMessage.split(bytes[...]) {
            _ = try? NFLogPacket(message)
        }
    }

    @Test func ruleExpressionWithoutName() throws {
        let bytes = try Self.crashCase("fuzz-nft-readback", "crash-f7fdf60d0f620b7010356534664cd08120704384")
        let rules = try NetlinkMessage.split(bytes[...]).filter { UInt32($0.type & 0xff) == NFT_MSG_NEWRULE.rawValue }
        #expect(rules.contains { rule in
            do { _ = try NetlinkAttributeCheck.checkRule(rule); return false } catch { return true }
        })
    }

    @Test func setElementAttributeBeyondLibnftnlsTable() throws {
        let bytes = try Self.crashCase("fuzz-nft-readback", "crash-1038eff40b9bf568dd19334e4ab735645c3331c6")
        let elements = try NetlinkMessage.split(bytes[...]).filter { UInt32($0.type & 0xff) == NFT_MSG_NEWSETELEM.rawValue }
        #expect(elements.contains { (try? NetlinkAttributeCheck.check($0, NetlinkAttributeCheck.elementList, what: "set elements")) == nil })
    }
}
