import CZonegateProbe
import Glibc
import ZonegatePolicy

/// A failed system call: the function and errno.
struct SystemCallError: Error, CustomStringConvertible {
    var function: String
    var code: Int32

    var description: String { "\(function): \(String(cString: strerror(code))) (errno \(code))" }
}

/// Runs a call returning -1 on failure, throwing with the function's name and errno.
@discardableResult
func sys(_ function: String, _ call: () -> Int32) throws(SystemCallError) -> Int32 {
    let result = call()
    if result < 0 { throw SystemCallError(function: function, code: errno) }
    return result
}

/// Nanoseconds on the monotonic clock.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// A socket address for an IP address and port, as bytes for bind/connect/sendto.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t

    init(_ address: IPAddress, port: UInt16) {
        if address.isIPv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: address.bytes) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) } }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: address.bytes) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: sin6) { raw.copyMemory(from: $0) } }
        }
    }

    func withPointer<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    /// The address of a `sockaddr_storage` filled by recvfrom or accept.
    static func address(of storage: sockaddr_storage) -> IPAddress? {
        withUnsafeBytes(of: storage) { IPAddress(socketAddress: $0.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }
}

func family(of address: IPAddress) -> Int32 { address.isIPv4 ? AF_INET : AF_INET6 }

/// The socket type and protocol of a transport.
func socketKind(_ proto: PortProtocol, ipv4: Bool) -> (type: Int32, proto: Int32) {
    switch proto {
    case .tcp: (Int32(SOCK_STREAM.rawValue), Int32(IPPROTO_TCP))
    case .udp: (Int32(SOCK_DGRAM.rawValue), Int32(IPPROTO_UDP))
    case .sctp: (Int32(SOCK_STREAM.rawValue), Int32(IPPROTO_SCTP))
    case .icmp: (Int32(SOCK_RAW.rawValue), ipv4 ? Int32(IPPROTO_ICMP) : Int32(IPPROTO_ICMPV6))
    }
}

/// A non-blocking, close-on-exec socket in the calling thread's network namespace.
func openSocket(family: Int32, type: Int32, proto: Int32) throws(SystemCallError) -> Int32 {
    try sys("socket") { socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto) }
}

func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
    var value = value
    _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
}

/// Closes a connected TCP socket with a reset, so that no TIME_WAIT is left behind.
func closeWithReset(_ fd: Int32) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    close(fd)
}

/// The Internet checksum (RFC 1071), for ICMP echo requests over IPv4 (the kernel computes
/// ICMPv6's).
func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
}

/// Network namespaces. `setns` changes only the calling thread's namespace, so these are
/// called only on the engine's own thread; a socket keeps the namespace it was made in.
enum Netns {
    /// Opens a namespace file (O_RDONLY is what setns needs).
    static func open(_ path: String) throws(SystemCallError) -> Int32 {
        try sys("open \(path)") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
    }

    /// The calling thread's current network namespace.
    static func current() throws(SystemCallError) -> Int32 {
        try open("/proc/thread-self/ns/net")
    }

    static func enter(_ fd: Int32) throws(SystemCallError) {
        try sys("setns") { czg_setns_net(fd) }
    }

    /// Moves the calling thread into a new, anonymous network namespace and returns a
    /// descriptor for it. Nothing names it: it ends when the descriptor and every socket
    /// made in it are closed, also when the process dies.
    static func unshareNew() throws(SystemCallError) -> Int32 {
        try sys("unshare(CLONE_NEWNET)") { czg_unshare_net() }
        return try current()
    }
}

/// Writes a sysctl of the calling thread's network namespace (its /proc/sys/net view).
func writeSysctl(_ path: String, _ value: String) -> Bool {
    let fd = open("/proc/sys/" + path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let bytes = Array((value + "\n").utf8)
    return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}

/// Reads a small text file (procfs), nil when it cannot.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while result.count < 16 << 20 {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        result += buffer.prefix(count)
    }
    return String(decoding: result, as: UTF8.self)
}
