import FuzzSupport
@testable import ZonegateNetfilter

// Bytes -> one receive buffer of the NFLOG socket -> logged flows, as the flow-log reader's
// thread reads it: packet attributes (libmnl), the sequence gaps, the IP and transport headers.
runFuzzer { start, count in
    guard let messages = try? NetlinkMessage.split(bytes(start, count)[...]) else { return 0 }
    var gaps = SequenceGaps()
    for message in messages {
        guard let packet = try? NFLogPacket(message) else { continue }
        if let sequence = packet.sequence { _ = gaps.missed(before: sequence) }
        _ = packet.flow { index in index % 3 == 0 ? nil : "veth\(index)" }
    }
    return 0
}
