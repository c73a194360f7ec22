import CNftnl
import FuzzSupport
@testable import ZonegateNetfilter

// Bytes -> one receive buffer of a ctnetlink dump -> connections, as `ConntrackTable.connections`
// reads it (an error message's code is read too).
runFuzzer { start, count in
    guard let messages = try? NetlinkMessage.split(bytes(start, count)[...]) else { return 0 }
    for message in messages {
        switch Int32(message.type) {
        case NLMSG_DONE: return 0
        case NLMSG_ERROR: _ = message.ackError
        default: _ = ConntrackTable.decode(message.bytes)
        }
    }
    return 0
}
