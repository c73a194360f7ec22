import Foundation

/// A listening unix stream socket, for the stand-ins of dockerd that tests and benchmarks serve.
public enum UnixSocketListener {
    /// Binds a socket at `path` (replacing a stale one) and listens; returns its descriptor.
    public static func listen(at path: String, backlog: Int32) throws -> Int32 {
        unlink(path)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard listener >= 0, bound == 0, Glibc.listen(listener, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            if listener >= 0 { close(listener) }
            throw NetnsFixtureError("unix socket \(path): \(reason)")
        }
        return listener
    }
}
