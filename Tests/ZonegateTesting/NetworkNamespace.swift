import Foundation

/// Guards for tests that change the kernel: they run only when asked to, as root, and inside
/// network and mount namespaces of their own (`unshare --net --mount`), never the host's.
public enum KernelTestGuard {
    /// The environment variable that opts in to kernel tests.
    public static let variable = "ZONEGATE_KERNEL_TESTS"

    /// Why kernel tests cannot run here; nil when they can.
    public static var reasonToSkip: String? {
        guard ProcessInfo.processInfo.environment[variable] == "1" else {
            return "kernel tests skipped: set \(variable)=1 and run them through `make test`"
        }
        return PrivateNetworkNamespace.unmetPrecondition()
    }
}
