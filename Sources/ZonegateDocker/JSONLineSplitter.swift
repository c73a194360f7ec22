/// Cuts a byte stream into newline-delimited JSON documents, as `GET /events` sends them: one
/// object per line, where a chunk of the HTTP body may hold several lines or part of one.
public struct JSONLineSplitter: Sendable {
    /// A longer line is no Docker event: stop before it grows without bound.
    public static let maximumLineLength = 1 << 20

    private var partial: [UInt8] = []

    public init() {}

    /// The complete lines `bytes` finishes, without their newline; blank lines are dropped. The
    /// rest waits for the next chunk.
    public mutating func push(_ bytes: some Sequence<UInt8>) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if partial.contains(where: { !Self.isSpace($0) }) { lines.append(partial) }
                partial.removeAll(keepingCapacity: true)
            } else {
                guard partial.count < Self.maximumLineLength else {
                    throw DockerError(.malformedResponse, "Docker sent an event line longer than \(Self.maximumLineLength) bytes")
                }
                partial.append(byte)
            }
        }
        return lines
    }

    /// Bytes of a line not yet ended by a newline.
    public var pendingByteCount: Int { partial.count }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }
}
