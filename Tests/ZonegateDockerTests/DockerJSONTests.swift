import Foundation
import Testing
import ZonegateDocker
import ZonegatePolicy

/// Real answers of dockerd 20.10 (API 1.41), captured with curl on its socket, in
/// Tests/Fixtures/docker (see Fixtures.swift for how they were made).
struct DockerJSONTests {
    struct InspectCase: Sendable, CustomTestStringConvertible {
        var fixture: String
        var expected: DockerContainer
        var testDescription: String { fixture }
    }

    static let inspectCases: [InspectCase] = [
        // A user-defined network; one port only exposed, one published on loopback, one on both families.
        InspectCase(fixture: "inspect-web-1", expected: DockerContainer(
            id: "fc2e4dc1bc4b78f398371969e99d357aa8db4787d9f941a55f141833878ad07a", name: "web-1",
            labels: ["zonegate.zone": "web"], running: true, pid: 7909, networkMode: "zg-web",
            endpoints: [DockerEndpoint(networkID: "02a4cd9df030239df0d650eb487d40f68ceb831b558a7cb8832e139cc0ace480", networkName: "zg-web",
                                       ipv4: IPAddress("172.31.0.2"), ipv6: nil, macAddress: "02:42:ac:1f:00:02")],
            exposedPorts: [ServicePort(80, .tcp), ServicePort(8080, .tcp), ServicePort(9090, .udp)],
            publishedPorts: [PublishedPort(hostAddress: "127.0.0.1", hostPort: 8081, containerPort: ServicePort(80, .tcp)),
                             PublishedPort(hostAddress: "0.0.0.0", hostPort: 9090, containerPort: ServicePort(9090, .udp)),
                             PublishedPort(hostAddress: "::", hostPort: 9090, containerPort: ServicePort(9090, .udp))])),
        // Two networks, one with IPv6; endpoints come sorted by network name.
        InspectCase(fixture: "inspect-pay-1", expected: DockerContainer(
            id: "ba42b12d6c2fb47d57c55a4f1fe90f9173a436dc0f46cd6198980900251d06cf", name: "pay-1",
            labels: ["zonegate.zone": "payments", "pci": "true"], running: true, pid: 8028, networkMode: "zg-pay",
            endpoints: [DockerEndpoint(networkID: "68526c26fddb13af0e1ce78f934831caee57b14e8e201203819e84299ec85f2e", networkName: "zg-pay",
                                       ipv4: IPAddress("172.30.0.2"), ipv6: IPAddress("fd00:30::2"), macAddress: "02:42:ac:1e:00:02"),
                        DockerEndpoint(networkID: "02a4cd9df030239df0d650eb487d40f68ceb831b558a7cb8832e139cc0ace480", networkName: "zg-web",
                                       ipv4: IPAddress("172.31.0.3"), ipv6: nil, macAddress: "02:42:ac:1f:00:03")],
            exposedPorts: [ServicePort(8443, .tcp)],
            publishedPorts: [PublishedPort(hostAddress: "0.0.0.0", hostPort: 8443, containerPort: ServicePort(8443, .tcp)),
                             PublishedPort(hostAddress: "::", hostPort: 8443, containerPort: ServicePort(8443, .tcp))])),
        // The default bridge, `-p 80`: Docker picks the host port.
        InspectCase(fixture: "inspect-def-1", expected: DockerContainer(
            id: "aa0bffc67e8ad57d87ed7650d074bf56461039616354b1779af24a03d40dea8f", name: "def-1",
            running: true, pid: 8170, networkMode: "default",
            endpoints: [DockerEndpoint(networkID: "f608b3d3312e2f9bbc25227b5b102a24960b925afe5fd748a62e86c1578bce16", networkName: "bridge",
                                       ipv4: IPAddress("172.17.0.2"), ipv6: nil, macAddress: "02:42:ac:11:00:02")],
            exposedPorts: [ServicePort(80, .tcp)],
            publishedPorts: [PublishedPort(hostAddress: "0.0.0.0", hostPort: 32768, containerPort: ServicePort(80, .tcp)),
                             PublishedPort(hostAddress: "::", hostPort: 32768, containerPort: ServicePort(80, .tcp))])),
        // `--network container:web-1`: no networks of its own at all.
        InspectCase(fixture: "inspect-side-1", expected: DockerContainer(
            id: "5eeb09506cd41b8612d9a1de35a65e8c60ed55da35331d8a3adef26164dd973b", name: "side-1", running: true, pid: 8308,
            networkMode: "container:fc2e4dc1bc4b78f398371969e99d357aa8db4787d9f941a55f141833878ad07a")),
        // `--network host`: an endpoint with every field empty.
        InspectCase(fixture: "inspect-hostnet-1", expected: DockerContainer(
            id: "5fc46532a586b37dd0d5c81e0ce45a2d2d5d086f7d2c69b21d3c490b64c9c492", name: "hostnet-1", running: true, pid: 8257,
            networkMode: "host",
            endpoints: [DockerEndpoint(networkID: "e457e39b69b15c538d3bbadabc21f4fcca0b15dd4e40c65c3c7208d8c92cd410", networkName: "host",
                                       ipv4: nil, ipv6: nil, macAddress: "")])),
        InspectCase(fixture: "inspect-mac-1", expected: DockerContainer(
            id: "df8e89aad1207ec4cdbdc37509d008299876422a883d619e4a82d221d98d307e", name: "mac-1", running: true, pid: 8587,
            networkMode: "zg-mac",
            endpoints: [DockerEndpoint(networkID: "f72241e4ae2e4d0b08e33274e06c35fe145ca6d50550bd35f19a765c4b297807", networkName: "zg-mac",
                                       ipv4: IPAddress("10.99.0.2"), ipv6: nil, macAddress: "02:42:0a:63:00:02")])),
        // Created, never started: pid 0, and a `bridge` endpoint without even a network id.
        InspectCase(fixture: "inspect-stopped-1", expected: DockerContainer(
            id: "275fdf78aa411ff750ef263efb55ad614c08a7a083efe7a7b061ec5ad9302509", name: "stopped-1", running: false, pid: 0,
            networkMode: "default",
            endpoints: [DockerEndpoint(networkID: "", networkName: "bridge", ipv4: nil, ipv6: nil, macAddress: "")])),
    ]

    @Test(arguments: inspectCases)
    func inspectAnswersDecode(_ testCase: InspectCase) throws {
        #expect(try DockerJSON.container(fromInspect: Fixtures.data(testCase.fixture + ".json")) == testCase.expected)
    }

    @Test func noneHasOneEndpointWithoutAddresses() throws {
        let none = try DockerJSON.container(fromInspect: Fixtures.data("inspect-none-1.json"))
        #expect(none.networkMode == "none")
        #expect(none.endpoints.map(\.networkName) == ["none"])
        #expect(none.endpoints[0].ipv4 == nil && none.endpoints[0].ipv6 == nil && none.endpoints[0].macAddress.isEmpty)
    }

    @Test func containerListGivesIDs() throws {
        let ids = try DockerJSON.containerIDs(fromList: Fixtures.data("containers-list.json"))
        #expect(ids.count == 7)
        #expect(ids.contains("fc2e4dc1bc4b78f398371969e99d357aa8db4787d9f941a55f141833878ad07a"))
        // `/containers/json` lists running containers only.
        #expect(!ids.contains("275fdf78aa411ff750ef263efb55ad614c08a7a083efe7a7b061ec5ad9302509"))
    }

    @Test func networkListDecodes() throws {
        let networks = try DockerJSON.networks(fromList: Fixtures.data("networks.json"))
        #expect(networks.map(\.name) == ["bridge", "host", "none", "zg-ipv", "zg-mac", "zg-pay", "zg-web"])
        let byName = Dictionary(uniqueKeysWithValues: networks.map { ($0.name, $0) })
        #expect(byName["bridge"]?.bridgeNameOption == "docker0")
        #expect(byName["bridge"]?.bridgeDevice == "docker0")
        // A user-defined network names its bridge `br-` and 12 characters of its id...
        #expect(byName["zg-web"]?.bridgeNameOption == nil)
        #expect(byName["zg-web"]?.bridgeDevice == "br-02a4cd9df030")
        // ...unless created with `-o com.docker.network.bridge.name=...`.
        #expect(byName["zg-pay"]?.bridgeDevice == "zg-br-pay")
        #expect(byName["none"]?.driver == "null")
        #expect(byName["host"]?.driver == "host")
        #expect(byName["zg-mac"]?.driver == "macvlan" && byName["zg-mac"]?.bridgeDevice == nil)
        #expect(byName["zg-ipv"]?.driver == "ipvlan")
        // The default bridge says `enable_icc: "true"`; the others say nothing: all allow it.
        #expect(networks.allSatisfy { !$0.interContainerTrafficDisabled })
    }

    /// `docker network create -o com.docker.network.bridge.enable_icc=VALUE`: Docker parses VALUE
    /// with Go's strconv.ParseBool and keeps the text as given.
    @Test(arguments: [("false", true), ("0", true), ("f", true), ("F", true), ("FALSE", true), ("False", true),
                      ("true", false), ("1", false), ("", false), (nil, false)] as [(String?, Bool)])
    func interContainerTrafficOptionDecodes(value: String?, disabled: Bool) throws {
        let options = value.map { #"{"com.docker.network.bridge.enable_icc": "\#($0)"}"# } ?? "{}"
        let json = #"[{"Name": "zg-noicc", "Id": "5e1f0c2a9b7d", "Driver": "bridge", "Options": \#(options)}]"#
        let network = try #require(try DockerJSON.networks(fromList: Data(json.utf8)).first)
        #expect(network.interContainerTrafficDisabled == disabled, "enable_icc \(value ?? "absent")")
        #expect(network.bridgeDevice == "br-5e1f0c2a9b7d")
    }

    @Test func versionDecodes() throws {
        let version = try DockerJSON.version(from: Fixtures.data("version.json"))
        #expect(version == DockerServerVersion(engine: "20.10.24+dfsg1", apiVersion: DockerAPIVersion(1, 41),
                                               minimumAPIVersion: DockerAPIVersion(1, 12)))
        #expect(try DockerAPIClient.negotiate(version) == DockerAPIVersion(1, 41))
    }

    @Test func capturedEventsDecode() throws {
        var splitter = JSONLineSplitter()
        let lines = try splitter.push(Fixtures.data("events.jsonl"))
        let events = try lines.compactMap { try DockerJSON.event(fromLine: $0) }
        let container = "8666db15020560371e6422fa138abc396a4921181d17d196a2d4f4e75c72f03f"
        #expect(events.map { "\($0.type) \($0.action)" } == [
            "container create", "network connect", "container start", "network connect", "network disconnect",
            // dockerd 20.10 really does send this disconnect twice.
            "network disconnect", "container kill", "container die", "network disconnect", "container destroy",
        ])
        #expect(events.allSatisfy { $0.containerID == container })
        #expect(events[0].attributes == ["image": "zg-busybox", "name": "ev-1", "zonegate.zone": "web"])
        #expect(events[1] == DockerEvent(type: "network", action: "connect",
                                         actorID: "02a4cd9df030239df0d650eb487d40f68ceb831b558a7cb8832e139cc0ace480",
                                         attributes: ["container": container, "name": "zg-web", "type": "bridge"]))
    }

    @Test func eventsWithoutTypeAreSkippedAndGarbageThrows() throws {
        #expect(try DockerJSON.event(fromLine: Array(#"{"status":"pull","id":"busybox"}"#.utf8)) == nil)
        #expect(throws: DockerError.self) { try DockerJSON.event(fromLine: Array("not json".utf8)) }
    }

    @Test func malformedAnswersNameWhatFailed() {
        let error = #expect(throws: DockerError.self) { try DockerJSON.container(fromInspect: Data("[]".utf8)) }
        #expect(error?.code == .malformedResponse)
        #expect(error?.message.contains("container inspect") == true)
    }

    struct NegotiationCase: Sendable, CustomTestStringConvertible {
        var server: String
        var minimum: String?
        var expected: String?
        var failure: String?
        var testDescription: String { "server \(server) min \(minimum ?? "-")" }
    }

    @Test(arguments: [
        NegotiationCase(server: "1.41", minimum: "1.12", expected: "1.41"),
        // A newer engine is asked for the newest version zonegate knows, as the Docker CLI does.
        NegotiationCase(server: "1.52", minimum: "1.44", expected: "1.51"),
        NegotiationCase(server: "1.24", minimum: nil, expected: "1.24"),
        NegotiationCase(server: "1.23", minimum: "1.12", failure: "zonegate needs 1.24 or newer"),
        NegotiationCase(server: "1.60", minimum: "1.55", failure: "accepts Engine API 1.55 and newer; zonegate speaks at most 1.51: upgrade zonegate"),
    ])
    func apiVersionNegotiation(_ testCase: NegotiationCase) throws {
        let server = DockerServerVersion(engine: "x", apiVersion: DockerAPIVersion(testCase.server)!,
                                         minimumAPIVersion: testCase.minimum.flatMap(DockerAPIVersion.init))
        if let expected = testCase.expected {
            #expect(try DockerAPIClient.negotiate(server) == DockerAPIVersion(expected))
        } else {
            let error = #expect(throws: DockerError.self) { try DockerAPIClient.negotiate(server) }
            #expect(error?.code == .unsupportedAPIVersion)
            #expect(error?.message.contains(testCase.failure!) == true, "\(error?.message ?? "")")
        }
    }

    @Test func apiVersionsParseAndOrderNumerically() {
        #expect(DockerAPIVersion("1.41") == DockerAPIVersion(1, 41))
        #expect(DockerAPIVersion(1, 9) < DockerAPIVersion(1, 41))
        for bad in ["", "1", "1.", "a.b", "1.2.3", "-1.2"] { #expect(DockerAPIVersion(bad) == nil, "\(bad)") }
    }

    @Test(arguments: [
        ("unix:///var/run/docker.sock", "/var/run/docker.sock"),
        ("unix:///tmp/zg/docker.sock", "/tmp/zg/docker.sock"),
    ])
    func unixHostsGiveTheirSocket(_ host: String, _ path: String) throws {
        #expect(try DockerAPIClient.socketPath(of: host) == path)
    }

    @Test(arguments: [
        ("tcp://127.0.0.1:2375", "tcp:// is not supported"),
        ("ssh://me@host", "ssh:// is not supported"),
        ("/var/run/docker.sock", "expected unix:///path/to/docker.sock"),
        ("unix://docker.sock", "must be absolute"),
    ])
    func otherHostsAreRefused(_ host: String, _ fragment: String) {
        let error = #expect(throws: DockerError.self) { try DockerAPIClient.socketPath(of: host) }
        #expect(error?.code == .unsupportedHost)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }
}
