import FuzzSupport
import ZonegateDockerDecoders

// Bytes -> the body of `GET /events` -> lines -> events, as the daemon's event stream reads it.
// The first byte sets the size of the chunks the body arrives in (HTTP gives no line boundaries).
runFuzzer { start, count in
    let input = bytes(start, count)
    guard let first = input.first else { return 0 }
    let chunkSize = Int(first % 64) + 1
    var splitter = JSONLineSplitter()
    var index = 1
    while index < input.count {
        let end = min(index + chunkSize, input.count)
        guard let lines = try? splitter.push(input[index..<end]) else { return 0 }
        for line in lines { _ = try? DockerJSON.event(fromLine: line) }
        index = end
    }
    return 0
}
