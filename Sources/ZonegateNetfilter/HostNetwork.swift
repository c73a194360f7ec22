import CNftnl
import Foundation
import Glibc
import ZonegatePolicy

extension ConntrackTable: ConnectionTracker {}

/// Facts about the host's own network that the dataplane needs.
public enum HostNetwork {
    /// The host's own addresses (every interface, or only those named in `interfaces`), which
    /// the policy calls `host`.
    public static func addresses(onInterfaces interfaces: Set<String>? = nil) throws -> Set<IPAddress> {
        var list: UnsafeMutablePointer<ifaddrs>?
        try cCall("getifaddrs") { getifaddrs(&list) }
        defer { freeifaddrs(list) }
        var result: Set<IPAddress> = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            if let interfaces, !interfaces.contains(String(cString: entry.pointee.ifa_name)) { continue }
            if let parsed = IPAddress(socketAddress: address) { result.insert(parsed) }
        }
        return result
    }

    /// What `ensureBridgeNetfilter` found and did.
    public enum BridgeNetfilterState: Equatable, Sendable {
        case alreadyOn
        /// It was off for these sysctls and zonegate turned it on (log it).
        case turnedOn([String])
        /// The br_netfilter module is not loaded: bridged traffic never reaches zonegate's rules.
        case moduleMissing
    }

    static let bridgeSysctls = ["/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"]

    /// Bridged traffic reaches the inet hooks (and so zonegate's stateful rules) only while
    /// bridge netfilter is on; Docker turns it on too. Turns it on where it is off.
    public static func ensureBridgeNetfilter() throws -> BridgeNetfilterState {
        guard bridgeSysctls.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else { return .moduleMissing }
        var changed: [String] = []
        for path in bridgeSysctls {
            let value = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            if value != "1" {
                try "1\n".write(toFile: path, atomically: false, encoding: .utf8)
                changed.append((path as NSString).lastPathComponent)
            }
        }
        return changed.isEmpty ? .alreadyOn : .turnedOn(changed)
    }
}
