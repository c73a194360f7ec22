import Foundation
import Testing
import ZonegateTesting

/// The package's root: the commands run from it, as a user in a checkout would (`--policies policies`).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// What a finished command gave.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `command` (argv, no shell) from the package root and waits for it.
func run(_ command: [String]) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst())
    process.currentDirectoryURL = packageRoot
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}

/// Runs the built `zonegate` binary with `arguments`.
func zonegate(_ arguments: [String]) throws -> Run {
    try run([ZonegateBinary.path] + arguments)
}

/// A scratch directory for a suite that runs the binary, failing the test (not skipping it)
/// when the binary was not built: `swift build --build-tests` builds it.
func binaryScratch(_ prefix: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> ScratchDirectory {
    try #require(FileManager.default.isExecutableFile(atPath: ZonegateBinary.path), "build the zonegate product first (make test does)",
                 sourceLocation: sourceLocation)
    return try ScratchDirectory(prefix)
}
