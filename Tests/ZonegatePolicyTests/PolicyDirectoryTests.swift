import Foundation
import XCTest
@testable import ZonegatePolicy

/// Never half a policy: every entry of the policy directory that could be policy is read whole,
/// or the policy is rejected with an error naming it. Nothing blocks, nothing is read past the
/// size limit.
final class PolicyDirectoryTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-dir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try write("1.yaml", "zones: [{name: a}]\n")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
    }

    /// Each entry, made by `make`, with the one error line it must give (besides 1.yaml's zone).
    func testEveryUnreadableEntryRejectsThePolicy() throws {
        let cases: [(String, () throws -> Void, String)] = [
            ("dangling link", { try FileManager.default.createSymbolicLink(atPath: self.directory + "/2.yaml", withDestinationPath: "missing.yaml") },
             "2.yaml:1:1: error: cannot be read: a symbolic link to nothing (dangling); remove it or fix its target"),
            ("link loop", { try FileManager.default.createSymbolicLink(atPath: self.directory + "/2.yaml", withDestinationPath: "2.yaml") },
             "2.yaml:1:1: error: cannot be read: a loop of symbolic links"),
            ("non-UTF-8 name", {
                let path = Array((self.directory + "/bad").utf8) + [0xFF, 0xFE] + Array(".yaml".utf8) + [0]
                let fd = path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
                XCTAssertGreaterThanOrEqual(fd, 0)
                close(fd)
            }, "bad\\xFF\\xFE.yaml:1:1: error: the file name is not valid UTF-8; rename it (every *.yaml and *.yml file is policy, and this name cannot be read as one)"),
            ("FIFO", { XCTAssertEqual(mkfifo(self.directory + "/2.yaml", 0o644), 0) },
             "2.yaml:1:1: error: is a FIFO (named pipe), not a regular file; a policy file must be a regular file"),
            ("link to /dev/zero", { try FileManager.default.createSymbolicLink(atPath: self.directory + "/2.yml", withDestinationPath: "/dev/zero") },
             "2.yml:1:1: error: is a character device, not a regular file; a policy file must be a regular file"),
            ("directory", { try FileManager.default.createDirectory(atPath: self.directory + "/x.yaml", withIntermediateDirectories: false) },
             "x.yaml:1:1: error: is a directory, not a policy file; rename it or move it out of the policy directory"),
            ("oversized (sparse) file", { XCTAssertEqual(truncate(try self.touch("2.yaml"), off_t(PolicyLimits.fileBytes + 1)), 0) },
             "2.yaml:1:1: error: the file is larger than 4 MiB (see docs/limits.md)"),
            ("a newline in a name", { try self.write("evil\nname.yaml", "bogus: 1\n") },
             "evil\\nname.yaml:1:1: error: unknown key 'bogus' in a policy file; expected one of: version, defaults, zones, rules, assertions"),
        ]
        for (name, make, expected) in cases {
            try tearDownWithError()
            try setUpWithError()
            try make()
            XCTAssertThrowsError(try PolicyDirectory.load(directory), name) { error in
                XCTAssertEqual("\(error)", expected, name)
            }
            if name != "a newline in a name" { // a parse error: its bytes are in the digest
                XCTAssertTrue(PolicyDirectory.fingerprint(directory).contains(expected), "\(name): the fingerprint changes with it")
            }
        }
    }

    /// Unreadable files (only meaningful when not root: root reads anything).
    func testUnreadableFile() throws {
        try XCTSkipIf(geteuid() == 0, "root can read a file of mode 000")
        try write("2.yaml", "zones: []\n")
        XCTAssertEqual(chmod(directory + "/2.yaml", 0), 0)
        XCTAssertThrowsError(try PolicyDirectory.load(directory)) { error in
            XCTAssertEqual("\(error)", "2.yaml:1:1: error: cannot be read: permission denied")
        }
    }

    /// Four files of 4 MiB fill the 16 MiB; the fifth is not read.
    func testTotalSize() throws {
        try FileManager.default.removeItem(atPath: directory + "/1.yaml")
        let line = "# " + String(repeating: "x", count: 1_022) + "\n"
        let full = String(repeating: line, count: PolicyLimits.fileBytes / line.utf8.count)
        for index in 1...5 { try write("\(index).yaml", full) }
        XCTAssertThrowsError(try PolicyDirectory.load(directory)) { error in
            XCTAssertEqual("\(error)", "5.yaml:1:1: error: the policy files together are larger than 16 MiB; this and the later ones are not read (see docs/limits.md)")
        }
    }

    /// Unreadable entries and the readable files' own errors are reported together.
    func testEntryProblemsAndParseErrorsTogether() throws {
        try write("2.yaml", "zones: [{name: Bad}]\n")
        try FileManager.default.createSymbolicLink(atPath: directory + "/3.yaml", withDestinationPath: "gone")
        XCTAssertThrowsError(try PolicyDirectory.load(directory)) { error in
            XCTAssertEqual("\(error)", """
                2.yaml:1:16: error: zone name 'Bad' must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then up to 30 lowercase letters, digits or '-'
                3.yaml:1:1: error: cannot be read: a symbolic link to nothing (dangling); remove it or fix its target
                """)
        }
    }

    private func touch(_ name: String) throws -> String {
        try write(name, "")
        return directory + "/" + name
    }
}
