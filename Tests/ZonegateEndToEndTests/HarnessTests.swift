import Foundation
import Testing
import ZonegateTesting

/// The fixture itself, without zonegate: a private dockerd whose containers reach each other
/// on a user-defined network (IPv4 and IPv6) and on the default bridge, whose published ports
/// are reachable from the outside namespace and through the host, and which leaves nothing
/// behind. The other suites trust these paths when they expect a flow to pass.
@Suite(.serialized, .enabled(if: try TestLayer.endToEnd.runs(), "end-to-end tests: ZONEGATE_E2E_TESTS=1 (make test)"))
struct HarnessTests {
    @Test(arguments: [true, false])
    func privateDockerConnectsContainersWithoutZonegate(userlandProxy: Bool) throws {
        let host = try EndToEndHost(userlandProxy: userlandProxy)
        defer { host.close() }
        let a = try host.add("h-a", zone: "web")
        let b = try host.add("h-b", zone: "api", publish: [(18080, 8080)])
        let c = try host.add("h-c", zone: "web", network: PrivateDocker.defaultNetwork, publish: [(18000, 80)])
        let d = try host.add("h-d", zone: "", network: PrivateDocker.defaultNetwork)
        let outside = try host.docker.addOutsideWorld()
        let gateway = "172.30.0.1"

        let b4 = try #require(b.ipv4(on: userNetwork)), b6 = try #require(b.ipv6(on: userNetwork))
        let c4 = try #require(c.ipv4(on: PrivateDocker.defaultNetwork))
        let answers = try BatchProbe.tcp([
            (a, [ProbeTarget(b4, 8080), ProbeTarget(b6, 8080), ProbeTarget(b4, 9999), ProbeTarget(gateway, 18080)]),
            (d, [ProbeTarget(c4, 80)]),
            (outside, [ProbeTarget(outside.hostIPv4, 18000), ProbeTarget(outside.hostIPv4, 18080)]),
            (NetnsLocation.privateHost, [ProbeTarget(b4, 9100), ProbeTarget(c4, 80)]),
        ])
        #expect(answers[0] == [ProbeTarget(b4, 8080): true, ProbeTarget(b6, 8080): true, ProbeTarget(b4, 9999): false,
                               ProbeTarget(gateway, 18080): true])
        #expect(answers[1] == [ProbeTarget(c4, 80): true])
        #expect(answers[2] == [ProbeTarget(outside.hostIPv4, 18000): true, ProbeTarget(outside.hostIPv4, 18080): true])
        #expect(answers[3] == [ProbeTarget(b4, 9100): true, ProbeTarget(c4, 80): true])
        // Docker isolates bridge networks from each other: a probe that must fail does.
        #expect(try reaches(a, c4, 80) == false)
    }
}
