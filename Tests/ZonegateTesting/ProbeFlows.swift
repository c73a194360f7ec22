import Foundation

/// A TCP connection held open in the background, exchanging a line every `interval`
/// for at most `duration`, so a test can check that revoking a flow kills it. A reply
/// later than `replyTimeout`, a reset or a close counts as a cut.
public final class LongLivedConnection: @unchecked Sendable {
    /// How the connection ended, or how it stands while it runs.
    public enum State: Sendable, Equatable {
        /// No exchange has completed yet.
        case connecting
        /// Exchanges keep completing.
        case alive(exchanges: Int)
        /// The connection was cut `after` seconds from the start; `reason` says how.
        case cut(after: Double, reason: String)
        /// `duration` ran out with every exchange answered.
        case completed(exchanges: Int)
    }

    private let process: ProbeProcess

    /// Starts the client in `site` against a `ProbeServer` at `address`:`port`.
    public init(
        from site: some ProbeSite, to address: String, port: UInt16, duration: Duration = .seconds(10),
        interval: Duration = .milliseconds(100), replyTimeout: Duration = .seconds(1)
    ) throws {
        process = try ProbeProcess(
            ["python3", "-I", "-c", ProbeScripts.client, "hold", address, String(port),
             String(replyTimeout.seconds), String(duration.seconds), String(interval.seconds)],
            in: site.netnsLocation, lifetime: duration + replyTimeout + .seconds(2))
    }

    /// The state reported so far.
    public var state: State {
        var exchanges = 0
        for line in process.outputLines {
            let words = line.split(separator: " ", maxSplits: 2).map(String.init)
            switch words.first {
            case "up", "ok": exchanges += 1
            case "done": return .completed(exchanges: exchanges)
            case "cut": return .cut(after: Double(words[safe: 1] ?? "") ?? 0, reason: words[safe: 2] ?? "")
            default: continue
            }
        }
        return exchanges == 0 ? .connecting : .alive(exchanges: exchanges)
    }

    /// Waits (at most `timeout`) for the first exchange; false if it never completed.
    public func waitUntilEstablished(timeout: Duration = .seconds(2)) -> Bool {
        poll(timeout: timeout) {
            if case .alive = self.state { return true }
            return false
        }
    }

    /// Waits (at most `timeout`) for the connection to be cut; returns the final state,
    /// which is still `.alive` if it survived the wait.
    public func waitForCut(timeout: Duration = .seconds(3)) -> State {
        _ = poll(timeout: timeout) {
            if case .alive = self.state { return false }
            if case .connecting = self.state { return false }
            return true
        }
        return state
    }

    /// Ends the client now (cleanup; a cut is detected by `waitForCut`).
    public func stop() { process.stop() }
}

/// The outcome of `SteadyTraffic`: which requests got an answer.
public struct SteadyTrafficReport: Sendable, Equatable {
    public let sent: Int
    public let answered: Int
    /// Sequence numbers (0-based) of the requests that got no answer.
    public let unanswered: [Int]

    public init(sent: Int, answered: Int, unanswered: [Int]) {
        self.sent = sent
        self.answered = answered
        self.unanswered = unanswered
    }
}

/// `count` requests sent at a fixed `interval` in the background (UDP datagrams on one
/// socket, or one new TCP connection each), so a test can change policy meanwhile and
/// then check that no allowed request went unanswered.
public final class SteadyTraffic: @unchecked Sendable {
    private let process: ProbeProcess
    private let count: Int
    private let bound: Duration

    /// Starts sending from `site` to a `ProbeServer` at `address`:`port`.
    public init(
        from site: some ProbeSite, to address: String, port: UInt16, transport: ProbeTransport,
        count: Int, interval: Duration = .milliseconds(20), replyTimeout: Duration = .seconds(1)
    ) throws {
        precondition(count > 0, "steady traffic needs at least one request")
        self.count = count
        bound = interval * count + replyTimeout + .seconds(2)
        process = try ProbeProcess(
            ["python3", "-I", "-c", ProbeScripts.client, "steady-\(transport.rawValue)", address, String(port),
             String(replyTimeout.seconds), String(count), String(interval.seconds)],
            in: site.netnsLocation, lifetime: bound)
    }

    /// Waits for the run to end (it ends by itself after about `count * interval` plus
    /// the reply timeout) and reports it.
    public func finish() throws -> SteadyTrafficReport {
        process.waitForExit(timeout: bound + .seconds(1))
        guard let line = process.outputLines.last(where: { $0.hasPrefix("result ") }) else {
            throw NetnsFixtureError("steady traffic reported nothing: \(process.outputTail)")
        }
        let words = line.split(separator: " ")
        let unanswered = words.count == 3 && words[2] != "-" ? words[2].split(separator: ",").compactMap { Int($0) } : []
        return SteadyTrafficReport(sent: count, answered: Int(words[safe: 1] ?? "") ?? 0, unanswered: unanswered)
    }

    /// Ends the run now (cleanup).
    public func stop() { process.stop() }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
