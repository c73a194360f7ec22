import Foundation
import Testing
import ZonegateDocker

/// `GET /events` sends one JSON object per line, cut into HTTP chunks anywhere.
struct JSONLineSplitterTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var chunks: [String]
        var lines: [String]
        var pending: Int = 0
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(name: "one per chunk", chunks: ["{\"a\":1}\n", "{\"b\":2}\n"], lines: [#"{"a":1}"#, #"{"b":2}"#]),
        Case(name: "several in one chunk", chunks: ["{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"], lines: [#"{"a":1}"#, #"{"b":2}"#, #"{"c":3}"#]),
        Case(name: "one split across chunks", chunks: ["{\"a\"", ":1", "}\n"], lines: [#"{"a":1}"#]),
        Case(name: "the end of one and the start of the next", chunks: ["{\"a\":1}\n{\"b\"", ":2}\n"], lines: [#"{"a":1}"#, #"{"b":2}"#]),
        Case(name: "newline alone in a chunk", chunks: ["{\"a\":1}", "\n"], lines: [#"{"a":1}"#]),
        Case(name: "blank and CRLF lines are dropped", chunks: ["\n\r\n  \n{\"a\":1}\n"], lines: [#"{"a":1}"#]),
        Case(name: "an unfinished line waits", chunks: ["{\"a\":1}\n{\"b\":"], lines: [#"{"a":1}"#], pending: 5),
    ])
    func splits(_ testCase: Case) throws {
        var splitter = JSONLineSplitter()
        var lines: [String] = []
        for chunk in testCase.chunks {
            lines += try splitter.push(Array(chunk.utf8)).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(lines == testCase.lines)
        #expect(splitter.pendingByteCount == testCase.pending)
    }

    @Test func characterSplitMidSequenceIsWhole() throws {
        let bytes = Array("{\"name\":\"café\"}\n".utf8)
        let cut = bytes.firstIndex(of: 0xC3)! + 1
        var splitter = JSONLineSplitter()
        let lines = try splitter.push(bytes[..<cut]) + splitter.push(bytes[cut...])
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["{\"name\":\"café\"}"])
    }

    /// The captured stream cut at every byte offset into two chunks gives the same events.
    @Test func capturedStreamSplitAnywhere() throws {
        let bytes = Array(try Fixtures.data("events.jsonl"))
        var whole = JSONLineSplitter()
        let expected = try whole.push(bytes)
        #expect(expected.count == 10)
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            var splitter = JSONLineSplitter()
            let lines = try splitter.push(bytes[..<cut]) + splitter.push(bytes[cut...])
            #expect(lines == expected, "cut at \(cut)")
        }
    }

    @Test func endlessLineIsRefused() throws {
        var splitter = JSONLineSplitter()
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
        let error = #expect(throws: DockerError.self) {
            for _ in 0...(JSONLineSplitter.maximumLineLength / chunk.count) { _ = try splitter.push(chunk) }
        }
        #expect(error?.code == .malformedResponse)
    }
}
