import Foundation
import Testing
import ZonegateDaemon

/// One `zonegate run` per host: the second refuses, naming the first's pid; the lock ends with
/// its holder.
@Suite struct HostLockTests {
    static func scratchPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-lock-\(UUID().uuidString)").path
    }

    @Test func aSecondLockRefusesNamingTheFirstsPidAndTheFirstsEndFreesIt() throws {
        let path = Self.scratchPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var first: HostLock? = try HostLock(path: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "\(getpid())\n")
        // flock locks belong to open files: a second open in the same process conflicts as
        // another process's would.
        #expect(throws: HostLock.Refusal.self) { try HostLock(path: path) }
        do {
            _ = try HostLock(path: path)
            Issue.record("a second lock was taken")
        } catch let refusal as HostLock.Refusal {
            #expect(refusal.holder == getpid())
            #expect(refusal.description.contains("pid \(getpid())"), "\(refusal)")
        }
        withExtendedLifetime(first) {}
        first = nil
        let again = try HostLock(path: path)
        withExtendedLifetime(again) {}
    }

    /// The kernel says who holds the lock, whatever the file holds (a stale pid from a file that
    /// a daemon without root could not write, or nothing yet).
    @Test func theHolderIsFoundThroughTheKernelWhenTheFileSaysOtherwise() throws {
        let path = Self.scratchPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try HostLock(path: path)
        // Overwritten in place (same inode), as a stale or missing pid would read.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data("1\n".utf8))
        try handle.close()
        do {
            _ = try HostLock(path: path)
            Issue.record("a second lock was taken")
        } catch let refusal as HostLock.Refusal {
            #expect(refusal.holder == getpid(), "\(refusal)")
        }
        withExtendedLifetime(first) {}
    }

    @Test func aLockThatCannotBeOpenedIsARefusalSayingWhy() {
        #expect { try HostLock(path: "/nonexistent-dir-\(UUID().uuidString)/zonegate.lock") } throws: { error in
            (error as? HostLock.Refusal)?.description.contains("cannot open the lock file") == true
        }
    }
}
