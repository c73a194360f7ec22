import Foundation

/// A temporary directory that lives as long as the value: a suite instance holds one, so each
/// test (and each argument of a parameterized test) gets its own, removed when the test ends.
public final class ScratchDirectory: Sendable {
    public let path: String

    /// Creates `$TMPDIR/PREFIX-UUID`.
    public init(_ prefix: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` inside the directory (not created).
    public func path(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name` inside the directory; returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    /// A new subdirectory holding `files` (name: text), as a policy directory; returns its path.
    public func directory(_ files: [String: String]) throws -> String {
        let directory = path("policies-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
        return directory
    }
}
