import ArgumentParser
import Testing
@testable import ZonegateCLI

/// `zonegate run`'s options: a `--resync-interval` out of its documented bounds is a usage
/// error (exit 2) saying so, never a conversion that traps.
@Suite struct RunOptionsTests {
    @Test(arguments: ["inf", "infs", "1e300s", "nan", "nans", "-5s", "0", "0s", "0.5s", "999ms", "25h", "1441m", "1e19ms", "s", "30", "5 s", "0x1p1000s"])
    func anOutOfRangeOrMalformedIntervalIsAUsageError(_ text: String) {
        #expect(throws: ValidationError.self) { try ResyncInterval.parse(text) }
        let error = #expect(throws: (any Error).self) { try Zonegate.Run.parse(["--resync-interval=\(text)"]) }
        if let error {
            #expect(Zonegate.exitCode(for: error) != .success)
            #expect(Zonegate.message(for: error).contains("from 1s to 24h"), "\(Zonegate.message(for: error))")
        }
    }

    @Test(arguments: [("1s", Duration.seconds(1)), ("30s", .seconds(30)), ("1000ms", .seconds(1)), ("1.5m", .seconds(90)),
                      ("24h", .seconds(86_400)), ("1440m", .seconds(86_400))])
    func intervalsWithinTheBoundsParse(_ text: String, _ expected: Duration) throws {
        #expect(try ResyncInterval.parse(text) == expected)
        #expect(try Zonegate.Run.parse(["--resync-interval=\(text)"]).resyncInterval == text)
    }

    @Test func theHelpGivesTheBoundsAndTheLock() {
        let help = Zonegate.helpMessage(for: Zonegate.Run.self)
        #expect(help.contains("from 1s to 24h"), "\(help)")
        #expect(help.contains("/run/zonegate.lock"), "\(help)")
    }
}
