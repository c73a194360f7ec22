import Foundation

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

/// Seconds taken by `body`, and what it returned.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let value = try body()
    return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func measure(repetitions: Int, _ body: () throws -> Void) rethrows -> Sample {
    try body()  // warm-up
    return Sample(seconds: try (0..<repetitions).map { _ in try timed(body).1 })
}

/// One row of the table: a figure, the baseline it is divided by, and the goal where the issue sets one.
struct Result: Encodable {
    var name: String
    var median: Double
    var p99: Double
    var repetitions: Int
    var baseline: String
    var baselineMedian: Double
    var ratio: Double
    var goal: String?
    /// "s" for timings, "MB" for memory.
    var unit: String

    init(_ name: String, _ sample: Sample, baseline: String, _ baselineMedian: Double, goal: String? = nil, unit: String = "s") {
        self.name = name
        self.unit = unit
        median = sample.median
        p99 = sample.p99
        repetitions = sample.seconds.count
        self.baseline = baseline
        self.baselineMedian = baselineMedian
        ratio = sample.median / baselineMedian
        self.goal = goal
    }
}

func formatted(_ value: Double, _ unit: String) -> String {
    guard unit == "s" else { return String(format: "%.1f %@", value, unit) }
    return value < 0.01 ? String(format: "%.3f ms", value * 1e3) : String(format: "%.4f s", value)
}

func printTable(_ results: [Result]) {
    let header = ["benchmark", "median", "p99", "n", "baseline", "baseline median", "ratio", "goal"]
    let rows = results.map { [$0.name, formatted($0.median, $0.unit), formatted($0.p99, $0.unit), String($0.repetitions), $0.baseline,
                              formatted($0.baselineMedian, $0.unit), String(format: "%.4f", $0.ratio), $0.goal ?? ""] }
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
    for row in [header] + rows {
        print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}
