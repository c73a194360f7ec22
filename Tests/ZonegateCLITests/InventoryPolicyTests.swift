import Testing
@testable import ZonegateCLI
import ZonegateTesting

/// `inventory` uses the policy only for the networks it manages, and still says when it is invalid.
@Suite struct InventoryPolicyTests {
    private let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory("zonegate-inventory") }

    /// Rejected before Docker is asked (the socket here answers nothing): exit 1, each error as
    /// `FILE:LINE:COL: error: ...`. It used to be passed over, and the inventory listed every network.
    @Test func anInvalidPolicyIsRejectedWithItsPositions() async throws {
        let directory = try scratch.directory(["a.yaml": "defaults:\n  networks: 7\n"])
        let command = try Zonegate.InventoryCommand.parse(["--policies", directory, "--docker-host", "unix:///nonexistent/docker.sock"])
        let error = await #expect(throws: CommandFailure.self) { try await command.run() }
        #expect(error?.code == 1, "\(String(describing: error))")
        #expect(error?.message == "policy rejected: 1 error")
        #expect(error?.diagnostics.count == 1)
        #expect(error?.diagnostics.first?.hasPrefix("\(directory)/a.yaml:2:") == true, "\(String(describing: error?.diagnostics))")
        #expect(error?.diagnostics.first.map(ErrorOutput.isDiagnostic) == true)
    }

    @Test func aValidPolicyNamesTheManagedNetworks() throws {
        let listed = try scratch.directory(["a.yaml": "defaults:\n  networks: [front, back]\n"])
        #expect(try PolicyOptions.parse(["--policies", listed]).managedNetworks() == ["front", "back"])
        let all = try scratch.directory(["a.yaml": "defaults:\n  networks: all\n"])
        #expect(try PolicyOptions.parse(["--policies", all]).managedNetworks() == nil, "all networks")
    }

    /// A directory named but missing is an environment error (exit 2), as for `check`.
    @Test func aMissingNamedDirectoryIsAnError() {
        let error = #expect(throws: CommandFailure.self) {
            try PolicyOptions.parse(["--policies", scratch.path("missing")]).managedNetworks()
        }
        #expect(error?.code == 2)
    }
}
