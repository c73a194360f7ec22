#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a policy directory: every `*.yaml` and `*.yml` file directly in it.
///
/// Never half a policy: each entry whose name ends in `.yaml` or `.yml`, or whose name is not
/// UTF-8 (zonegate cannot tell what it is), is either read whole or makes the policy invalid with
/// an error naming it: a dangling symbolic link, a directory, a FIFO or a device (opened
/// non-blocking and refused by type before any read), an unreadable or oversized file.
public enum PolicyDirectory {
    /// Why a policy directory could not be read at all (as opposed to read and found invalid).
    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The files read, in file-name order, and the entries that could not be read: each of those
    /// is an error that rejects the policy.
    public struct Listing: Sendable {
        public var files: [PolicyFile]
        public var problems: [PolicyDiagnostic]
    }

    public static func listing(_ path: String) throws(ReadError) -> Listing {
        guard let directory = opendir(path) else {
            let reason = errno == EACCES ? "cannot be read (permission denied)" : "does not exist or is not a directory"
            throw ReadError(description: "policy directory '\(DisplayText.escaped(path))' \(reason)")
        }
        defer { closedir(directory) }
        let directoryFD = dirfd(directory)
        var problems: [PolicyDiagnostic] = []
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == Array(".".utf8) || name == Array("..".utf8) { continue }
            guard let text = String(validating: name, as: UTF8.self) else {
                problems.append(problem(DisplayText.fileName(name),
                                        "the file name is not valid UTF-8; rename it (every *.yaml and *.yml file is policy, and this name cannot be read as one)"))
                continue
            }
            if text.hasSuffix(".yaml") || text.hasSuffix(".yml") { names.append(name) }
        }
        names.sort { $0.lexicographicallyPrecedes($1) }

        var files: [PolicyFile] = []
        var total = 0
        for (index, name) in names.enumerated() {
            let text = String(decoding: name, as: UTF8.self)
            if index == PolicyLimits.files {
                problems.append(problem(text, "more than \(PolicyLimits.files) policy files; this and the later ones are not read (see docs/limits.md)"))
                break
            }
            switch BoundedFile.read(name, relativeTo: directoryFD, limit: min(PolicyLimits.fileBytes, PolicyLimits.totalBytes - total)) {
            case .success(let bytes):
                total += bytes.count
                files.append(PolicyFile(name: text, bytes: bytes))
            case .failure(.tooLarge) where total + PolicyLimits.fileBytes > PolicyLimits.totalBytes:
                problems.append(problem(text, "the policy files together are larger than \(PolicyLimits.totalBytes >> 20) MiB; this and the later ones are not read (see docs/limits.md)"))
                return Listing(files: files, problems: problems)
            case .failure(.tooLarge):
                problems.append(problem(text, "the file is larger than \(PolicyLimits.fileBytes >> 20) MiB (see docs/limits.md)"))
            case .failure(.directory):
                problems.append(problem(text, "is a directory, not a policy file; rename it or move it out of the policy directory"))
            case .failure(.notRegular(let kind)):
                problems.append(problem(text, "is \(kind), not a regular file; a policy file must be a regular file"))
            case .failure(let failure):
                problems.append(problem(text, failure.description))
            }
        }
        return Listing(files: files, problems: problems)
    }

    /// The policy files, or an error for the first entry that could not be read.
    public static func files(in path: String) throws -> [PolicyFile] {
        let listing = try listing(path)
        if !listing.problems.isEmpty { throw PolicyError(listing.problems) }
        return listing.files
    }

    /// Changes whenever a policy file is added, removed or edited: the digest of the files and
    /// what could not be read. Cheap enough to poll: files are read up to the size limit only.
    public static func fingerprint(_ path: String) -> String {
        do {
            let listing = try listing(path)
            return PolicyParser.digest(of: listing.files) + listing.problems.map { "\n\($0)" }.joined()
        } catch {
            return "unreadable: \(error)"
        }
    }

    /// Reads and parses; throws `ReadError` or `PolicyError` (every unreadable entry and every
    /// problem of the files that could be read, together).
    public static func load(_ path: String) throws -> Policy {
        let listing = try listing(path)
        var diagnostics = listing.problems
        do {
            let policy = try PolicyParser.parse(listing.files)
            if diagnostics.isEmpty { return policy }
        } catch {
            diagnostics += error.diagnostics
        }
        throw PolicyError(diagnostics)
    }

    private static func problem(_ file: String, _ message: String) -> PolicyDiagnostic {
        PolicyDiagnostic(SourceLocation(file: file, line: 1, column: 1), message)
    }
}
