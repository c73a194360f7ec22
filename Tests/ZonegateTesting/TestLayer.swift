import Foundation

/// The layers of tests that need more than a process, each asked for by a variable that
/// `make test` sets for the run of that layer: the kernel tests (root, private network and
/// mount namespaces) and the end-to-end tests (the same, plus a private dockerd).
///
/// One gate for every suite of a layer: `@Suite(.enabled(if: try TestLayer.kernel.runs()))`.
/// A run that did not ask for the layer skips its suites, so the pure tests pass anywhere; a run
/// that asked for it and misses a prerequisite fails (swift-testing records the error the
/// condition throws), so a wrong launch can never pass with the layer's suites skipped.
public enum TestLayer: String, Sendable {
    case kernel = "ZONEGATE_KERNEL_TESTS"
    case endToEnd = "ZONEGATE_E2E_TESTS"

    /// The environment variable that asks for the layer (`=1`).
    public var variable: String { rawValue }

    /// Whether this run asked for the layer.
    public var isRequested: Bool { ProcessInfo.processInfo.environment[variable] == "1" }

    /// False when the run did not ask for the layer; true when it did and the process may run it;
    /// throws, naming what is missing, when it did but the process may not.
    public func runs() throws -> Bool {
        guard isRequested else { return false }
        if let reason = PrivateNetworkNamespace.unmetPrecondition() {
            throw TestLayerError(description: "\(variable)=1 asks for these tests, but they cannot run here: \(reason)")
        }
        return true
    }
}

/// A layer asked for whose prerequisites are missing.
public struct TestLayerError: Error, CustomStringConvertible {
    public let description: String
}
