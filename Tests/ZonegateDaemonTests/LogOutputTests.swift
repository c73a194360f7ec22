import Foundation
import Logging
import Testing
import ZonegateDaemon

/// `--log-format json` writes one JSON object per line whatever the values hold; text stays
/// readable and quotes only what needs it.
@Suite struct LogOutputTests {
    static func lines(_ format: LogFormat, _ log: (Logger) -> Void) -> [String] {
        let captured = Locked<[String]>([])
        log(Logger(label: "test") { _ in LineLogHandler(format: format) { line in captured.withLock { $0.append(line) } } })
        return captured.withLock { $0 }
    }

    @Test func jsonLinesParseWithEveryValueIntact() throws {
        let tricky = "p.yaml:3:5: error: \"bogus\"\nis not a key\t\u{1}"
        let lines = Self.lines(.json) { logger in
            logger.error("policy rejected", metadata: ["detail": "\(tricky)", "zones": .array(["web", "api"]), "level": "spoofed"])
        }
        #expect(lines.count == 1 && lines[0].hasSuffix("}\n") && lines[0].dropLast().allSatisfy { $0 != "\n" })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "policy rejected")
        #expect(object["level"] as? String == "error", "metadata cannot replace the line's own level")
        #expect(object["detail"] as? String == tricky)
        #expect(object["zones"] as? [String] == ["web", "api"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test func textLinesQuoteOnlyWhatNeedsIt() {
        let lines = Self.lines(.text) { $0.info("ready", metadata: ["containers": "3", "reason": "start: taking over"]) }
        #expect(lines.count == 1)
        #expect(lines[0].hasSuffix(" info ready containers=3 reason=\"start: taking over\"\n"), "\(lines)")
    }
}
