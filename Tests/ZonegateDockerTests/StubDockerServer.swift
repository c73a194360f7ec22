import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ZonegateTesting

/// A stand-in for dockerd on a unix socket of a temporary directory: for each connection it
/// reads one request head and writes the pieces `respond` gives for it (a pause between them, so
/// that they arrive as separate reads), then closes. It records the request heads.
final class StubDockerServer: @unchecked Sendable {
    let socketPath: String
    var host: String { "unix://" + socketPath }
    private let listener: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    init(respond: @escaping @Sendable (_ head: String) -> [String]) throws {
        socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("zg-stub-\(UUID().uuidString.prefix(8)).sock").path
        listener = try UnixSocketListener.listen(at: socketPath, backlog: 8)
        let thread = Thread { [self] in serve(respond) }
        thread.start()
    }

    /// The request heads received so far.
    var requests: [String] { lock.withLock { heads } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        finished.wait()
        unlink(socketPath)
    }

    private func serve(_ respond: @Sendable (String) -> [String]) {
        defer { finished.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)), read(connection, &byte, 1) == 1 { head.append(byte) }
            let text = String(decoding: head, as: UTF8.self)
            lock.withLock { heads.append(text) }
            for (index, piece) in respond(text).enumerated() {
                if index > 0 { usleep(50_000) }
                let bytes = Array(piece.utf8)
                _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            }
            close(connection)
        }
    }

    /// A complete answer with a JSON body.
    static func answer(_ status: String, _ body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The head of a chunked answer, then its chunks.
    static func chunked(_ chunks: [String]) -> [String] {
        ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"]
            + chunks.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }
    }

    static let version = answer("200 OK", #"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#)
}
