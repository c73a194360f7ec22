import Foundation
import FuzzSupport
@testable import ZonegateDockerDecoders

// Bytes -> each Engine API answer zonegate decodes: container inspect, container list, network
// list, version, an error body.
runFuzzer { start, count in
    let data = Data(bytes(start, count))
    _ = try? DockerJSON.container(fromInspect: data)
    _ = try? DockerJSON.containerIDs(fromList: data)
    _ = try? DockerJSON.networks(fromList: data)
    _ = try? DockerJSON.version(from: data)
    _ = DockerJSON.errorMessage(from: data)
    return 0
}
