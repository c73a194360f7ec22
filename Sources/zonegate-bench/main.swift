import Foundation
import ZonegateEngine
import ZonegatePolicy

// `make bench`: each figure is a ratio against a baseline measured in the same run, reported as
// median and p99 over repetitions, printed as a table and written as JSON.

/// Timings of one measured body, in seconds.
struct Sample {
    var seconds: [Double]

    var median: Double { percentile(0.5) }
    var p99: Double { percentile(0.99) }

    private func percentile(_ fraction: Double) -> Double {
        let sorted = seconds.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded(.up)))]
    }
}

func measure(repetitions: Int, _ body: () -> Void) -> Sample {
    body()  // warm-up
    return Sample(seconds: (0..<repetitions).map { _ in
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    })
}

/// A host with `containers` containers over `zones` zones and `rules` rules between them.
func syntheticHost(containers: Int, zones: Int, rules: Int) -> (Policy, Inventory) {
    var yaml = "zones:\n"
    for zone in 0..<zones { yaml += "  - {name: z\(zone), egress: \(zone % 2 == 0 ? "restricted" : "open")}\n" }
    yaml += "rules:\n"
    for rule in 0..<rules { yaml += "  - {from: z\(rule % zones), to: z\((rule * 7 + 3) % zones), ports: [\(8000 + rule % 100)/tcp]}\n" }
    let policy = try! PolicyParser.parse([PolicyFile(name: "bench.yaml", text: yaml)])
    let inventory = Inventory(containers: (0..<containers).map { (index: Int) -> Container in
        let address: [UInt8] = [10, UInt8(index >> 16), UInt8((index >> 8) & 255), UInt8(index & 255)]
        let port = ServicePort(UInt16(8000 + index % 100), .tcp)
        return Container(name: "c\(index)", labels: ["zonegate.zone": "z\(index % zones)"],
                         addresses: [IPAddress(bytes: address)!], ports: [port])
    })
    return (policy, inventory)
}

struct Result: Encodable {
    var name: String
    var median: Double
    var p99: Double
    var baseline: String
    var baselineMedian: Double
    var ratio: Double
}

var results: [Result] = []

// 1. Matrix summary of 10,000 containers and 1,000 rules, reasoning per identity, against the
//    per-pair evaluation it replaces (measured on a 1% sample of source containers, scaled up).
do {
    let (policy, inventory) = syntheticHost(containers: 10_000, zones: 50, rules: 1_000)
    let summary = measure(repetitions: 5) {
        _ = ReachabilityMatrix(PolicyEvaluator(policy: policy, inventory: inventory)).summary()
    }
    let evaluator = PolicyEvaluator(policy: policy, inventory: inventory)
    let sampledSources = 100
    let perPair = measure(repetitions: 3) {
        for source in 0..<sampledSources {
            for destination in inventory.containers.indices where destination != source {
                for port in inventory.containers[destination].ports {
                    _ = evaluator.decide(from: .container(source), to: .container(destination), port: port)
                }
            }
        }
    }
    let scale = Double(inventory.containers.count + 2) / Double(sampledSources)
    let baseline = perPair.median * scale
    results.append(Result(name: "matrix summary, 10k containers x 1k rules", median: summary.median, p99: summary.p99,
                          baseline: "per-pair evaluation (extrapolated)", baselineMedian: baseline, ratio: summary.median / baseline))
}

let header = ["benchmark", "median", "p99", "baseline", "baseline median", "ratio"]
let rows = results.map { [$0.name, String(format: "%.4f s", $0.median), String(format: "%.4f s", $0.p99), $0.baseline,
                          String(format: "%.4f s", $0.baselineMedian), String(format: "%.4f", $0.ratio)] }
let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
for row in [header] + rows {
    print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
}
let output = CommandLine.arguments.dropFirst().first ?? "bench-results.json"
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try encoder.encode(results).write(to: URL(fileURLWithPath: output))
print("written: \(output)")
