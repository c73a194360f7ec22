import Foundation

/// Reads a policy directory: every `*.yaml` and `*.yml` file directly in it.
public enum PolicyDirectory {
    /// Why a policy directory could not be read at all (as opposed to read and found invalid).
    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func files(in path: String) throws -> [PolicyFile] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReadError(description: "policy directory '\(path)' does not exist or is not a directory")
        }
        let directory = URL(fileURLWithPath: path, isDirectory: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        return try names.compactMap { name in
            let url = directory.appendingPathComponent(name)
            var fileIsDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &fileIsDirectory), !fileIsDirectory.boolValue else { return nil }
            return PolicyFile(name: name, bytes: Array(try Data(contentsOf: url)))
        }
    }

    /// Changes whenever a policy file is added, removed or edited: the digest of the files (or
    /// why they cannot be read). Cheap enough to poll: policy files are small.
    public static func fingerprint(_ path: String) -> String {
        do {
            return PolicyParser.digest(of: try files(in: path))
        } catch {
            return "unreadable: \(error)"
        }
    }

    /// Reads and parses; throws `ReadError` or `PolicyError`.
    public static func load(_ path: String) throws -> Policy {
        try PolicyParser.parse(files(in: path))
    }
}
