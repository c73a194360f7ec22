import Foundation
import Testing
import ZonegateDocker

/// The veth resolver on a fake /proc and /sys/class/net laid out as the kernel does.
struct VethResolverTests {
    /// A temporary tree: `proc/<pid>/root/sys/class/net/<if>/{address,ifindex,iflink}` and
    /// `net/<if>/{ifindex,iflink}` with `master` a symlink to the bridge, as in sysfs.
    final class Tree {
        let root: URL
        var resolver: VethResolver { VethResolver(procRoot: root.path + "/proc", hostNetRoot: root.path + "/net") }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("zg-veth-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("net"), withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: root) }

        func containerInterface(pid: Int32, _ name: String, mac: String, ifindex: Int, iflink: Int) throws {
            try write(root.appendingPathComponent("proc/\(pid)/root/sys/class/net/\(name)"),
                      ["address": mac, "ifindex": "\(ifindex)", "iflink": "\(iflink)"])
        }

        func hostInterface(_ name: String, ifindex: Int, iflink: Int, master: String?) throws {
            let directory = root.appendingPathComponent("net/\(name)")
            try write(directory, ["ifindex": "\(ifindex)", "iflink": "\(iflink)"])
            if let master {
                try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("master").path,
                                                           withDestinationPath: "../../../devices/virtual/net/\(master)")
            }
        }

        /// `proc/<pid>/stat` with the process in `state` (S sleeping, Z zombie).
        func process(pid: Int32, state: String) throws {
            try write(root.appendingPathComponent("proc/\(pid)"), ["stat": "\(pid) (sh (x)) \(state) 1 \(pid) \(pid) 0 -1"])
        }

        private func write(_ directory: URL, _ files: [String: String]) throws {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, value) in files { try Data((value + "\n").utf8).write(to: directory.appendingPathComponent(name)) }
        }
    }

    static let container = DockerContainer(id: "c1", name: "web-1", pid: 4242)
    static let endpoint = DockerEndpoint(networkID: "n1", networkName: "zg-web", ipv4: nil, ipv6: nil, macAddress: "02:42:ac:1f:00:02")

    /// web-1 with eth0 (index 7, peer 8) on br-web and eth1 (index 9, peer 10) on br-pay.
    static func standardTree() throws -> Tree {
        let tree = try Tree()
        try tree.process(pid: 4242, state: "S")
        try tree.containerInterface(pid: 4242, "lo", mac: "00:00:00:00:00:00", ifindex: 1, iflink: 1)
        try tree.containerInterface(pid: 4242, "eth0", mac: "02:42:ac:1f:00:02", ifindex: 7, iflink: 8)
        try tree.containerInterface(pid: 4242, "eth1", mac: "02:42:ac:1e:00:03", ifindex: 9, iflink: 10)
        try tree.hostInterface("lo", ifindex: 1, iflink: 1, master: nil)
        try tree.hostInterface("br-web", ifindex: 3, iflink: 3, master: nil)
        try tree.hostInterface("vethaaaa", ifindex: 8, iflink: 7, master: "br-web")
        try tree.hostInterface("vethbbbb", ifindex: 10, iflink: 9, master: "br-pay")
        return tree
    }

    @Test func findsThePeerOnTheBridge() throws {
        let tree = try Self.standardTree()
        #expect(try tree.resolver.bridgePort(of: Self.container, on: Self.endpoint, bridge: "br-web") == "vethaaaa")
        var second = Self.endpoint
        second.macAddress = "02:42:AC:1E:00:03"  // case does not matter
        #expect(try tree.resolver.bridgePort(of: Self.container, on: second, bridge: "br-pay") == "vethbbbb")
    }

    struct FailureCase: Sendable, CustomTestStringConvertible {
        var name: String
        var fragment: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        FailureCase(name: "wrong bridge", fragment: "vethaaaa, the peer of eth0 of web-1, is a port of br-web, not of br-other"),
        FailureCase(name: "no bridge", fragment: "vethcccc, the peer of eth2 of web-1, is a port of no bridge"),
        FailureCase(name: "unknown MAC", fragment: "no interface with MAC 02:42:00:00:00:99 in"),
        FailureCase(name: "no pid", fragment: "web-1 has no process (not running)"),
        FailureCase(name: "no MAC", fragment: "Docker reports no MAC address for web-1 on zg-web"),
        FailureCase(name: "peer elsewhere", fragment: "no interface with ifindex 40, the peer of eth3 of web-1"),
        FailureCase(name: "not the peer", fragment: "vethaaaa (ifindex 8) is not the peer of eth4 of web-1"),
        FailureCase(name: "not a veth", fragment: "eth5 of web-1 is not one end of a veth pair"),
        FailureCase(name: "no container root", fragment: "the process 777 of web-1 is gone (the container ended)"),
    ])
    func saysWhyNot(_ testCase: FailureCase) throws {
        let tree = try Self.standardTree()
        try tree.containerInterface(pid: 4242, "eth2", mac: "02:42:00:00:00:02", ifindex: 11, iflink: 12)
        try tree.hostInterface("vethcccc", ifindex: 12, iflink: 11, master: nil)
        try tree.containerInterface(pid: 4242, "eth3", mac: "02:42:00:00:00:03", ifindex: 39, iflink: 40)
        // eth4 claims vethaaaa as its peer, which belongs to eth0 (an ifindex from another namespace).
        try tree.containerInterface(pid: 4242, "eth4", mac: "02:42:00:00:00:04", ifindex: 41, iflink: 8)
        try tree.containerInterface(pid: 4242, "eth5", mac: "02:42:00:00:00:05", ifindex: 43, iflink: 43)
        var container = Self.container
        var endpoint = Self.endpoint
        var bridge = "br-web"
        switch testCase.name {
        case "wrong bridge": bridge = "br-other"
        case "no bridge": endpoint.macAddress = "02:42:00:00:00:02"
        case "unknown MAC": endpoint.macAddress = "02:42:00:00:00:99"
        case "no pid": container.pid = 0
        case "no MAC": endpoint.macAddress = ""
        case "peer elsewhere": endpoint.macAddress = "02:42:00:00:00:03"
        case "not the peer": endpoint.macAddress = "02:42:00:00:00:04"
        case "not a veth": endpoint.macAddress = "02:42:00:00:00:05"
        case "no container root": container.pid = 777
        default: Issue.record("unknown case \(testCase.name)")
        }
        let error = #expect(throws: (any Error).self) { try tree.resolver.bridgePort(of: container, on: endpoint, bridge: bridge) }
        #expect("\(error.map { "\($0)" } ?? "")".contains(testCase.fragment), "\(error.map { "\($0)" } ?? "none")")
    }

    @Test func oneResolverSeesAVethCreatedAfterItsFirstLookup() throws {
        let tree = try Self.standardTree()
        let resolve = tree.resolver.resolver()
        #expect(try resolve(Self.container, Self.endpoint, "br-web") == "vethaaaa")
        let late = DockerContainer(id: "c2", name: "late-1", pid: 4343)
        try tree.containerInterface(pid: 4343, "eth0", mac: "02:42:ac:1f:00:09", ifindex: 20, iflink: 21)
        try tree.hostInterface("vethdddd", ifindex: 21, iflink: 20, master: "br-web")
        var endpoint = Self.endpoint
        endpoint.macAddress = "02:42:ac:1f:00:09"
        #expect(try resolve(late, endpoint, "br-web") == "vethdddd")
    }

    /// A short-lived container ends between Docker's event and the look into it: the failure
    /// says it is gone (no warning), not that zonegate needs root; a live one's failure does not.
    @Test func aContainerThatEndedIsGoneNotAFailureOfPrivileges() throws {
        let tree = try Self.standardTree()
        var exited = Self.container
        exited.pid = 5555  // no /proc/5555: the process is gone
        var failure = #expect(throws: VethResolver.Failure.self) { try tree.resolver.bridgePort(of: exited, on: Self.endpoint, bridge: "br-web") }
        #expect(failure?.containerGone == true)
        #expect(failure?.description.contains("needs root") == false)
        // A zombie: its init exited and its namespace went, dockerd has not reaped it yet.
        try tree.process(pid: 6666, state: "Z")
        exited.pid = 6666
        failure = #expect(throws: VethResolver.Failure.self) { try tree.resolver.bridgePort(of: exited, on: Self.endpoint, bridge: "br-web") }
        #expect(failure?.containerGone == true)
        // Its namespace torn down first: the interface is gone while the process exits.
        try tree.containerInterface(pid: 6666, "lo", mac: "00:00:00:00:00:00", ifindex: 1, iflink: 1)
        failure = #expect(throws: VethResolver.Failure.self) { try tree.resolver.bridgePort(of: exited, on: Self.endpoint, bridge: "br-web") }
        #expect(failure?.containerGone == true)
        // Exiting: still "running" in its stat, but its root is gone (a dangling link here).
        try tree.process(pid: 7777, state: "R")
        try FileManager.default.createSymbolicLink(atPath: tree.root.appendingPathComponent("proc/7777/root").path,
                                                   withDestinationPath: tree.root.appendingPathComponent("nowhere").path)
        exited.pid = 7777
        failure = #expect(throws: VethResolver.Failure.self) { try tree.resolver.bridgePort(of: exited, on: Self.endpoint, bridge: "br-web") }
        #expect(failure?.containerGone == true, "\(String(describing: failure))")
        // A live container whose interface is missing is a real failure.
        var endpoint = Self.endpoint
        endpoint.macAddress = "02:42:00:00:00:99"
        failure = #expect(throws: VethResolver.Failure.self) { try tree.resolver.bridgePort(of: Self.container, on: endpoint, bridge: "br-web") }
        #expect(failure?.containerGone == false)
    }
}
