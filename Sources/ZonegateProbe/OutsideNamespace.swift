import CZonegateProbe
import Glibc
import ZonegatePolicy

/// The addresses of the outside namespace: a /30 (IPv4) and a /64 (IPv6) link between the
/// host and the namespace, in documentation ranges, overlapping no CIDR of the policy, no
/// route of the host and no address in use.
public struct OutsideAddressing: Hashable, Sendable {
    public var ipv4: (host: IPAddress, outside: IPAddress)? { v4.map { ($0[0], $0[1]) } }
    public var ipv6: (host: IPAddress, outside: IPAddress)? { v6.map { ($0[0], $0[1]) } }
    var v4: [IPAddress]?
    var v6: [IPAddress]?

    /// Candidate subnets, in order: TEST-NET-3, TEST-NET-1, TEST-NET-2 (RFC 5737) in /30s, and
    /// 2001:db8:7a67:N::/64 (RFC 3849). Routes of length 0 (defaults) do not count.
    public static func pick(avoid: [CIDR], routes: [CIDR], inUse: [IPAddress]) -> OutsideAddressing {
        func free(_ subnet: CIDR) -> Bool {
            let taken = avoid + routes.filter { $0.prefixLength > 0 }
            return !taken.contains { $0.isIPv4 == subnet.isIPv4 && ($0.contains(subnet.network) || subnet.contains($0.network)) }
                && !inUse.contains { subnet.contains($0) }
        }
        var result = OutsideAddressing()
        search4: for base in [[203, 0, 113], [192, 0, 2], [198, 51, 100]] as [[UInt8]] {
            for last in stride(from: 0, to: 256, by: 4) {
                let subnet = CIDR(network: IPAddress(bytes: base + [UInt8(last)])!, prefixLength: 30)
                if free(subnet) {
                    result.v4 = [IPAddress(bytes: base + [UInt8(last + 1)])!, IPAddress(bytes: base + [UInt8(last + 2)])!]
                    break search4
                }
            }
        }
        for n in 0..<256 {
            let prefix: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0x7a, 0x67, 0, UInt8(n)]
            let zeros = [UInt8](repeating: 0, count: 7)
            let subnet = CIDR(network: IPAddress(bytes: prefix + zeros + [0])!, prefixLength: 64)
            if free(subnet) {
                result.v6 = [IPAddress(bytes: prefix + zeros + [1])!, IPAddress(bytes: prefix + zeros + [2])!]
                break
            }
        }
        return result
    }

    public static func == (a: Self, b: Self) -> Bool { a.v4 == b.v4 && a.v6 == b.v6 }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(v4)
        hasher.combine(v6)
    }
}

/// The routes of the calling thread's network namespace (every table), from procfs.
func hostRoutes() -> [CIDR] {
    var routes: [CIDR] = []
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...: addresses as little-endian hex.
    for line in (readSmallFile("/proc/thread-self/net/route") ?? "").split(separator: "\n").dropFirst() {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count > 7, let destination = UInt32(fields[1], radix: 16), let mask = UInt32(fields[7], radix: 16) else { continue }
        let bytes = withUnsafeBytes(of: destination.littleEndian, Array.init)
        routes.append(CIDR(network: IPAddress(bytes: bytes)!, prefixLength: mask.nonzeroBitCount))
    }
    // destination(32 hex) prefix-length(hex) source source-length next-hop metric refs use flags iface.
    for line in (readSmallFile("/proc/thread-self/net/ipv6_route") ?? "").split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count > 2, fields[0].count == 32, let length = Int(fields[1], radix: 16) else { continue }
        var bytes: [UInt8] = []
        var index = fields[0].startIndex
        while index < fields[0].endIndex {
            let next = fields[0].index(index, offsetBy: 2)
            bytes.append(UInt8(fields[0][index..<next], radix: 16) ?? 0)
            index = next
        }
        if let network = IPAddress(bytes: bytes) { routes.append(CIDR(network: network, prefixLength: length)) }
    }
    return routes
}

/// A temporary namespace that plays an outside host for `world` rows: anonymous (made with
/// unshare on the engine's thread, never bind-mounted), linked to the host by a veth pair,
/// with a default route through the host. Its descriptor keeps it alive; closing it (or the
/// process ending) destroys the namespace, and with it the veth pair and the host's
/// connected routes on the link. `remove()` also deletes the host's end at once.
final class OutsideNamespace {
    let namespace: Int32
    let hostLink: String
    let addressing: OutsideAddressing
    /// Why a family has no outside address (no free range, the host does not forward it).
    let unavailable: [Bool: String]
    private let hostNetlink: RouteNetlink
    /// How long the new link is left to settle before the first probe (measured: 200 ms was
    /// enough on the test host, none was not).
    static let settleMilliseconds = 300
    private var hostIndex: Int32

    /// Runs on the engine thread; returns in the host's namespace (`hostNamespace`).
    init(avoid: [CIDR], inUse: [IPAddress], hostNamespace: Int32) throws {
        // The routes read, the host's netlink socket and the veth all belong to the namespace the
        // thread is in: the host's, whichever one the engine last entered.
        try Netns.enter(hostNamespace)
        var addressing = OutsideAddressing.pick(avoid: avoid, routes: hostRoutes(), inUse: inUse)
        var unavailable: [Bool: String] = [:]
        if addressing.v4 == nil { unavailable[true] = "no free IPv4 range for the outside namespace" }
        if addressing.v6 == nil { unavailable[false] = "no free IPv6 range for the outside namespace" }
        // The host must forward between the outside link and the bridges (Docker turns IPv4
        // forwarding on). The probes never change the host's sysctls.
        if addressing.v4 != nil, readSmallFile("/proc/sys/net/ipv4/ip_forward")?.hasPrefix("1") != true {
            addressing.v4 = nil
            unavailable[true] = "the host does not forward IPv4 (net.ipv4.ip_forward=0)"
        }
        if addressing.v6 != nil, readSmallFile("/proc/sys/net/ipv6/conf/all/forwarding")?.hasPrefix("1") != true {
            addressing.v6 = nil
            unavailable[false] = "the host does not forward IPv6 (net.ipv6.conf.all.forwarding=0)"
        }
        self.addressing = addressing
        self.unavailable = unavailable
        hostLink = "zgprobe" + String(UInt32.random(in: 0..<0x100_0000), radix: 16)
        hostNetlink = try RouteNetlink()
        namespace = try Netns.unshareNew()
        hostIndex = 0
        var linkMade = false
        do {
            // The new namespace's own sysctls: its addresses are usable at once.
            _ = writeSysctl("net/ipv6/conf/all/accept_dad", "0")
            _ = writeSysctl("net/ipv6/conf/default/accept_dad", "0")
            let outsideNetlink = try RouteNetlink()
            try Netns.enter(hostNamespace)
            try hostNetlink.addVeth(hostLink, peerName: "eth0", peerNamespace: namespace)
            linkMade = true
            hostIndex = Int32(bitPattern: if_nametoindex(hostLink))
            guard hostIndex > 0 else { throw SystemCallError(function: "if_nametoindex \(hostLink)", code: errno) }
            // Only this link's own setting: it goes with the link.
            _ = writeSysctl("net/ipv6/conf/\(hostLink)/accept_dad", "0")
            if let v4 = addressing.v4 { try hostNetlink.addAddress(v4[0], prefix: 30, index: hostIndex) }
            if let v6 = addressing.v6 { try hostNetlink.addAddress(v6[0], prefix: 64, index: hostIndex) }
            try hostNetlink.setUp(index: hostIndex)
            try Netns.enter(namespace)
            let inside = Int32(bitPattern: if_nametoindex("eth0")), loopback = Int32(bitPattern: if_nametoindex("lo"))
            guard inside > 0, loopback > 0 else { throw SystemCallError(function: "if_nametoindex eth0", code: errno) }
            try outsideNetlink.setUp(index: loopback)
            if let v4 = addressing.v4 { try outsideNetlink.addAddress(v4[1], prefix: 30, index: inside) }
            if let v6 = addressing.v6 { try outsideNetlink.addAddress(v6[1], prefix: 64, index: inside) }
            try outsideNetlink.setUp(index: inside)
            if let v4 = addressing.v4 { try outsideNetlink.addDefaultRoute(via: v4[0], index: inside) }
            if let v6 = addressing.v6 { try outsideNetlink.addDefaultRoute(via: v6[0], index: inside) }
            // Until the kernel's linkwatch marks both ends running (up to a second), packets on
            // the link are dropped: wait for it, bounded.
            let until = monotonicNanoseconds() + 3_000_000_000
            while czg_link_running("eth0") != 1 && monotonicNanoseconds() < until { usleep(5000) }
            try Netns.enter(hostNamespace)
            while czg_link_running(hostLink) != 1 && monotonicNanoseconds() < until { usleep(5000) }
        } catch {
            _ = try? Netns.enter(hostNamespace)
            if linkMade, hostIndex > 0 { try? hostNetlink.deleteLink(index: hostIndex) }
            close(namespace)
            throw error
        }
    }

    /// The outside addresses, sources of `world` probes.
    var addresses: [IPAddress] { [addressing.v4?[1], addressing.v6?[1]].compactMap { $0 } }
    var hostAddresses: [IPAddress] { [addressing.v4?[0], addressing.v6?[0]].compactMap { $0 } }

    /// Deletes the host's end of the veth (its peer goes with it) and lets the namespace go.
    /// Runs on the engine thread in the host's namespace.
    func remove() {
        if hostIndex > 0 { try? hostNetlink.deleteLink(index: hostIndex) }
        hostIndex = 0
        close(namespace)
    }
}
