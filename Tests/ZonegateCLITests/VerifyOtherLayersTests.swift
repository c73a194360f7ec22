import Testing
@testable import ZonegateCLI
import ZonegateDocker
import ZonegateProbe

/// What verify tells the probe engine Docker blocks, from the networks Docker lists.
struct VerifyOtherLayersTests {
    @Test func bridgesWithoutInterContainerTrafficComeFromTheNetworksOptions() {
        let networks = [
            // The default bridge of a daemon started with `--icc=false`: its name option.
            DockerNetwork(id: "9a1b2c3d4e5f60718293a4b5", name: "bridge", driver: "bridge", bridgeNameOption: "docker0",
                          interContainerTrafficDisabled: true),
            DockerNetwork(id: "5e1f0c2a9b7d8e9f00112233", name: "zg-noicc", driver: "bridge", interContainerTrafficDisabled: true),
            DockerNetwork(id: "0a1b2c3d4e5f000000000000", name: "zg-web", driver: "bridge"),
            // Not a bridge: Docker's ICC option has no bridge to apply to.
            DockerNetwork(id: "77aa88bb99cc000000000000", name: "zg-mac", driver: "macvlan", interContainerTrafficDisabled: true),
        ]
        let layers = OtherLayers.docker(networks)
        #expect(layers.bridgesWithoutICC == ["docker0", "br-5e1f0c2a9b7d"])
        // Docker's other defaults stay.
        #expect(layers.networksIsolated && layers.outsideNeedsPublishedPort)
        #expect(OtherLayers.docker([networks[2]]) == .docker)
    }
}
