import CNftnl
import Glibc
import Testing
@testable import ZonegateNetfilter

/// A batch's acks are counted only when they answer its own sequence numbers.
@Suite struct BatchAcksTests {
    /// An `NLMSG_ERROR` as the kernel writes it: header, error, then the header of the message it
    /// answers (only its sequence number matters here).
    static func ack(_ sequence: UInt32, error: Int32 = 0) -> NetlinkMessage {
        func le(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        let header = le(36) + [UInt8(NLMSG_ERROR), 0, 0, 0] + le(sequence) + le(0)
        let answered = le(20) + [0, 0, 0, 0] + le(sequence) + le(0)
        return NetlinkMessage(bytes: header + le(UInt32(bitPattern: error)) + answered)
    }

    /// A batch of three messages for two operations, its begin at `first`.
    static func batch(_ first: UInt32) -> BatchAcks {
        BatchAcks(firstSequence: first, operationOfMessage: [0, 1, 1], commands: ["add table inet t", "add set inet t s"])
    }

    @Test(arguments: [UInt32(100), UInt32.max - 1, UInt32.max])
    func everyMessageAckedOnceCompletesTheBatch(_ first: UInt32) {
        var acks = Self.batch(first)
        for offset in UInt32(1)...3 {
            #expect(!acks.isComplete)
            acks.take(Self.ack(first &+ offset))
        }
        #expect(acks.isComplete)
        #expect(acks.failure == nil, "\(String(describing: acks.failure))")
    }

    /// Acks for numbers this batch did not send: one left from the batch before, one past its end.
    @Test(arguments: [UInt32(99), 96, 105, 0])
    func anAckForAnotherSequenceIsAnError(_ stray: UInt32) throws {
        var acks = Self.batch(100)
        acks.take(Self.ack(stray))
        #expect(!acks.isComplete, "a stray ack is not one of this batch's")
        let failure = try #require(acks.failure)
        #expect(!failure.isKernelRefusal)
        #expect(failure.description.contains("sequence \(stray), outside this batch's 100...104"), "\(failure)")
        // The batch's own acks are still taken (none is left for the next batch), the failure kept.
        for sequence in UInt32(101)...103 { acks.take(Self.ack(sequence)) }
        #expect(acks.isComplete)
        #expect(acks.failure?.description == failure.description)
    }

    @Test func aSecondAckForOneMessageIsAnError() throws {
        var acks = Self.batch(100)
        acks.take(Self.ack(101))
        acks.take(Self.ack(101))
        #expect(try #require(acks.failure).description.contains("a second ack for sequence 101"))
    }

    @Test func aRefusalNamesItsOperation() throws {
        var acks = Self.batch(100)
        acks.take(Self.ack(101))
        acks.take(Self.ack(103, error: -EEXIST))
        let failure = try #require(acks.failure)
        #expect(failure.isKernelRefusal)
        #expect(failure.errno == EEXIST)
        #expect(failure.operationIndex == 1 && failure.operation == "add set inet t s")
    }

    /// The kernel answers a batch it refuses as a whole (no permission) on the batch's begin.
    @Test func aRefusalOfTheBatchBeginNamesNoOperation() throws {
        var acks = Self.batch(100)
        acks.take(Self.ack(100, error: -EPERM))
        let failure = try #require(acks.failure)
        #expect(failure.isKernelRefusal && failure.errno == EPERM && failure.operation == nil)
    }

    @Test func aTruncatedAckIsMalformed() throws {
        var acks = Self.batch(100)
        acks.take(NetlinkMessage(bytes: Array(Self.ack(101).bytes.prefix(24))))
        #expect(!acks.isComplete)
        #expect(try #require(acks.failure).description.contains("could not decode"))
    }
}
