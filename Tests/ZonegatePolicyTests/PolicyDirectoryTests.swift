import Foundation
import Testing
@testable import ZonegatePolicy

/// Never half a policy: every entry of the policy directory that could be policy is read whole,
/// or the policy is rejected with an error naming it. Nothing blocks, nothing is read past the
/// size limit.
@Suite final class PolicyDirectoryTests {
    /// A fresh directory per test (and per argument), holding one valid file.
    private let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-dir-\(UUID().uuidString)").path

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try write("1.yaml", "zones: [{name: a}]\n")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
    }

    /// Each entry, made by `make` in the directory, with the one error line it must give (besides 1.yaml's zone).
    static let unreadableEntries: [(name: String, make: @Sendable (PolicyDirectoryTests) throws -> Void, expected: String)] = [
        ("dangling link", { try FileManager.default.createSymbolicLink(atPath: $0.directory + "/2.yaml", withDestinationPath: "missing.yaml") },
         "2.yaml:1:1: error: cannot be read: a symbolic link to nothing (dangling); remove it or fix its target"),
        ("link loop", { try FileManager.default.createSymbolicLink(atPath: $0.directory + "/2.yaml", withDestinationPath: "2.yaml") },
         "2.yaml:1:1: error: cannot be read: a loop of symbolic links"),
        ("non-UTF-8 name", {
            let path = Array(($0.directory + "/bad").utf8) + [0xFF, 0xFE] + Array(".yaml".utf8) + [0]
            let fd = path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
            #expect(fd >= 0)
            close(fd)
        }, "bad\\xFF\\xFE.yaml:1:1: error: the file name is not valid UTF-8; rename it (every *.yaml and *.yml file is policy, and this name cannot be read as one)"),
        ("FIFO", { #expect(mkfifo($0.directory + "/2.yaml", 0o644) == 0) },
         "2.yaml:1:1: error: is a FIFO (named pipe), not a regular file; a policy file must be a regular file"),
        ("link to /dev/zero", { try FileManager.default.createSymbolicLink(atPath: $0.directory + "/2.yml", withDestinationPath: "/dev/zero") },
         "2.yml:1:1: error: is a character device, not a regular file; a policy file must be a regular file"),
        ("directory", { try FileManager.default.createDirectory(atPath: $0.directory + "/x.yaml", withIntermediateDirectories: false) },
         "x.yaml:1:1: error: is a directory, not a policy file; rename it or move it out of the policy directory"),
        ("oversized (sparse) file", { let path = try $0.touch("2.yaml"); #expect(truncate(path, off_t(PolicyLimits.fileBytes + 1)) == 0) },
         "2.yaml:1:1: error: the file is larger than 4 MiB (see docs/limits.md)"),
        ("a newline in a name", { try $0.write("evil\nname.yaml", "bogus: 1\n") },
         "evil\\nname.yaml:1:1: error: unknown key 'bogus' in a policy file; expected one of: version, defaults, zones, rules, assertions"),
    ]

    @Test(arguments: unreadableEntries)
    func everyUnreadableEntryRejectsThePolicy(_ entry: (name: String, make: @Sendable (PolicyDirectoryTests) throws -> Void, expected: String)) throws {
        try entry.make(self)
        let error = try #require(throws: (any Error).self) { try PolicyDirectory.load(self.directory) }
        #expect("\(error)" == entry.expected)
        if entry.name != "a newline in a name" { // a parse error: its bytes are in the digest
            #expect(PolicyDirectory.fingerprint(directory).contains(entry.expected), "the fingerprint changes with it")
        }
    }

    /// Unreadable files. Root reads anything, so as root the directory is read with the thread's
    /// filesystem user id set to nobody's: the kernel then checks permissions as for nobody.
    @Test func unreadableFile() throws {
        try write("2.yaml", "zones: []\n")
        #expect(chmod(directory + "/2.yaml", 0) == 0)
        let error = try #require(throws: (any Error).self) { try Self.withoutRootFileAccess { try PolicyDirectory.load(self.directory) } }
        #expect("\(error)" == "2.yaml:1:1: error: cannot be read: permission denied")
    }

    /// Runs `body` on this thread with filesystem user id 65534 when root (`setfsuid(2)`: per
    /// thread, and it drops CAP_DAC_OVERRIDE until set back to 0); Glibc's module does not import
    /// <sys/fsuid.h>, hence the lookup.
    private static func withoutRootFileAccess<T>(_ body: () throws -> T) throws -> T {
        guard geteuid() == 0 else { return try body() }
        typealias SetFSUID = @convention(c) (uid_t) -> Int32
        let setfsuid = unsafeBitCast(try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setfsuid")), to: SetFSUID.self)
        _ = setfsuid(65534)
        defer { _ = setfsuid(0) }
        return try body()
    }

    /// Four files of 4 MiB fill the 16 MiB; the fifth is not read.
    @Test func totalSize() throws {
        try FileManager.default.removeItem(atPath: directory + "/1.yaml")
        let line = "# " + String(repeating: "x", count: 1_022) + "\n"
        let full = String(repeating: line, count: PolicyLimits.fileBytes / line.utf8.count)
        for index in 1...5 { try write("\(index).yaml", full) }
        let error = try #require(throws: (any Error).self) { try PolicyDirectory.load(self.directory) }
        #expect("\(error)" == "5.yaml:1:1: error: the policy files together are larger than 16 MiB; this and the later ones are not read (see docs/limits.md)")
    }

    /// Unreadable entries and the readable files' own errors are reported together.
    @Test func entryProblemsAndParseErrorsTogether() throws {
        try write("2.yaml", "zones: [{name: Bad}]\n")
        try FileManager.default.createSymbolicLink(atPath: directory + "/3.yaml", withDestinationPath: "gone")
        let error = try #require(throws: (any Error).self) { try PolicyDirectory.load(self.directory) }
        #expect("\(error)" == """
            2.yaml:1:16: error: zone name 'Bad' must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'
            3.yaml:1:1: error: cannot be read: a symbolic link to nothing (dangling); remove it or fix its target
            """)
    }

    private func touch(_ name: String) throws -> String {
        try write(name, "")
        return directory + "/" + name
    }
}
