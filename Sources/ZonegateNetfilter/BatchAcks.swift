import Glibc

/// The acks of one batch as they arrive, checked against the batch: each must answer one of its
/// sequence numbers (the batch's begin and end included: the kernel answers a refused batch on its
/// begin), and each only once. An ack for any other number means the socket's replies are out of
/// step with its requests (one left over from an earlier batch, or a reply to nothing sent): that
/// is an error, not an ack to count, since what this batch did can no longer be told from them;
/// the caller then forgets what it wrote and reads the kernel again.
struct BatchAcks {
    /// The batch begin's sequence number; message `i` has `firstSequence + 1 + i`.
    let firstSequence: UInt32
    /// For each message of the batch, the index of the operation it encodes.
    let operationOfMessage: [Int]
    /// The transaction's operations as nft text, to name a refused one.
    let commands: [String]
    private var acked: Set<UInt32> = []
    /// The first problem met: the kernel's refusal or a reply out of step. Later acks are still
    /// taken, so that none is left on the socket for the next batch.
    private(set) var failure: NetfilterError?

    init(firstSequence: UInt32, operationOfMessage: [Int], commands: [String]) {
        self.firstSequence = firstSequence
        self.operationOfMessage = operationOfMessage
        self.commands = commands
    }

    /// Every message of the batch answered.
    var isComplete: Bool { acked.count >= operationOfMessage.count }

    /// Takes one `NLMSG_ERROR` message (an ack when its error is 0).
    mutating func take(_ message: NetlinkMessage) {
        guard message.bytes.count >= 32 else {
            record(.malformedReply("nfnetlink batch ack of \(message.bytes.count) bytes"))
            return
        }
        let sequence = message.ackedSequence
        // Wrapping: sequence numbers go round past UInt32.max.
        let offset = sequence &- firstSequence
        guard offset <= UInt32(operationOfMessage.count) + 1 else {
            record(.unexpectedReply("nfnetlink batch: an ack for sequence \(sequence), outside this batch's "
                + "\(firstSequence)...\(firstSequence &+ UInt32(operationOfMessage.count) &+ 1)"))
            return
        }
        guard acked.insert(sequence).inserted else {
            record(.unexpectedReply("nfnetlink batch: a second ack for sequence \(sequence)"))
            return
        }
        guard message.ackError != 0 else { return }
        let position = Int(offset) - 1
        let index = operationOfMessage.indices.contains(position) ? operationOfMessage[position] : nil
        record(.kernelRefused(errno: -message.ackError, operationIndex: index, operation: index.map { commands[$0] }))
    }

    private mutating func record(_ problem: NetfilterError) {
        if failure == nil { failure = problem }
    }
}
