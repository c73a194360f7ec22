import Foundation
import Testing
import ZonegateDocker

/// Docker answers and events that are not what the Engine API documents (missing fields, wrong
/// types, huge values, invalid UTF-8, deep nesting, endless lines): each is a `DockerError` or a
/// value, never a trap, and never a buffer that grows without bound. `zonegate run` reads all
/// of them, so one bad answer must not end it.
@Suite(.serialized)
struct HostileDockerInputTests {
    static let validInspect = #"{"Id":"c1","Name":"/a","State":{"Running":true,"Pid":42},"Config":{"Labels":{"k":"v"}},"# +
        #""HostConfig":{"NetworkMode":"default"},"NetworkSettings":{"Networks":{"bridge":{"NetworkID":"n1","IPAddress":"172.17.0.2","MacAddress":"02:42:AC:11:00:02"}},"# +
        #""Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}}}"#

    /// Each either decodes or throws `malformedResponse`.
    static let inspectAnswers: [(String, [UInt8])] = {
        func text(_ name: String, _ json: String) -> (String, [UInt8]) { (name, Array(json.utf8)) }
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        return [
            text("valid", validInspect),
            text("no Id", #"{"Name":"/a"}"#),
            text("Id a number", #"{"Id":7,"Name":"/a"}"#),
            text("Running a string", #"{"Id":"c1","Name":"/a","State":{"Running":"yes","Pid":1}}"#),
            text("Pid beyond Int32", #"{"Id":"c1","Name":"/a","State":{"Running":true,"Pid":99999999999999999999999}}"#),
            text("Pid a float", #"{"Id":"c1","Name":"/a","State":{"Running":true,"Pid":1e300}}"#),
            text("Pid negative", #"{"Id":"c1","Name":"/a","State":{"Running":true,"Pid":-5}}"#),
            text("labels not strings", #"{"Id":"c1","Name":"/a","Config":{"Labels":{"k":[1,2]}}}"#),
            text("ports garbage", #"{"Id":"c1","Name":"/a","NetworkSettings":{"Ports":{"":null,"/":[],"99999/tcp":[{"HostPort":"70000"}],"80/tcp":[{"HostPort":"-1"},{}],"x/y/z":null}}}"#),
            text("addresses garbage", #"{"Id":"c1","Name":"/a","NetworkSettings":{"Networks":{"n":{"IPAddress":"999.1.1.1","GlobalIPv6Address":"::::","MacAddress":"\u0000"}}}}"#),
            text("networks an array", #"{"Id":"c1","Name":"/a","NetworkSettings":{"Networks":[]}}"#),
            text("deeply nested", deep),
            text("nested in a field", #"{"Id":"c1","Name":"/a","Extra":"# + deep + "}"),
            ("invalid UTF-8", Array(#"{"Id":"c1","Name":"/"#.utf8) + [0xFF, 0xFE, 0xC0] + Array(#""}"#.utf8)),
            text("empty", ""),
            text("NUL", "\u{0}"),
            text("huge string", #"{"Id":"c1","Name":"/"# + String(repeating: "a", count: 4 << 20) + #""}"#),
            text("truncated", String(validInspect.prefix(100))),
        ]
    }()

    @Test func inspectAnswersDecodeOrThrowMalformed() {
        for (name, bytes) in Self.inspectAnswers {
            do {
                let container = try DockerJSON.container(fromInspect: Data(bytes))
                #expect(!container.id.isEmpty, "\(name)")
            } catch let error as DockerError {
                #expect(error.code == .malformedResponse, "\(name): \(error)")
                #expect(error.message.count < 1000, "\(name): the message quotes at most an excerpt")
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }

    @Test func oddButWellTypedFieldsAreDroppedNotTrusted() throws {
        let ports = try DockerJSON.container(fromInspect: Data(Self.inspectAnswers.first { $0.0 == "ports garbage" }!.1))
        #expect(ports.publishedPorts.isEmpty && ports.exposedPorts.isEmpty)
        let addresses = try DockerJSON.container(fromInspect: Data(Self.inspectAnswers.first { $0.0 == "addresses garbage" }!.1))
        #expect(addresses.endpoints.count == 1 && addresses.endpoints[0].ipv4 == nil && addresses.endpoints[0].ipv6 == nil)
        let negative = try DockerJSON.container(fromInspect: Data(Self.inspectAnswers.first { $0.0 == "Pid negative" }!.1))
        #expect(negative.pid == -5, "kept as Docker said; the veth resolver refuses pids below 1")
    }

    @Test func eventLinesDecodeSkipOrThrowMalformed() {
        let deep = String(repeating: "{\"a\":", count: 100_000)
        let lines: [(String, [UInt8])] = [
            ("no actor", Array(#"{"Type":"container","Action":"start"}"#.utf8)),
            ("wrong types", Array(#"{"Type":1,"Action":["start"],"Actor":"x"}"#.utf8)),
            ("attributes not strings", Array(#"{"Type":"network","Action":"connect","Actor":{"ID":"n","Attributes":{"container":5}}}"#.utf8)),
            ("invalid UTF-8", Array(#"{"Type":"container","Action":""#.utf8) + [0xC3, 0x28] + Array(#"","Actor":{"ID":"x"}}"#.utf8)),
            ("deep", Array(deep.utf8)),
            ("a number", Array("12345678901234567890123456789".utf8)),
            ("huge id", Array((#"{"Type":"container","Action":"start","Actor":{"ID":""# + String(repeating: "f", count: 900_000) + #""}}"#).utf8)),
        ]
        for (name, line) in lines {
            do {
                _ = try DockerJSON.event(fromLine: line)
            } catch let error as DockerError {
                #expect(error.code == .malformedResponse, "\(name)")
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }

    /// A 100 MB line is refused after `maximumLineLength` bytes, holding no more than that.
    @Test func aHundredMegabyteLineIsRefusedWithBoundedMemory() {
        var splitter = JSONLineSplitter()
        let chunk = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        var fed = 0
        let error = #expect(throws: DockerError.self) {
            while fed < 100 << 20 {
                _ = try splitter.push(chunk)
                fed += chunk.count
                #expect(splitter.pendingByteCount <= JSONLineSplitter.maximumLineLength)
            }
        }
        #expect(error?.code == .malformedResponse)
        #expect(fed <= 2 * JSONLineSplitter.maximumLineLength, "refused within the first few megabytes, not after 100")
    }

    /// Over the socket: an endless event line ends the stream with an error (the daemon then
    /// reconnects and resynchronises), and a container whose inspect answer is garbage or larger
    /// than the bound is left out of a listing rather than failing it.
    @Test func theClientSurvivesAnEndlessEventLineAndAGarbageInspect() async throws {
        let line = String(repeating: "x", count: 256 << 10)
        let server = try StubDockerServer { head in
            let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            switch path {
            case "/version": return [StubDockerServer.version]
            case "/v1.41/containers/json": return [StubDockerServer.answer("200 OK", #"[{"Id":"good"},{"Id":"bad"},{"Id":"huge"}]"#)]
            case "/v1.41/containers/huge/json":
                // Over the 64 MiB bound: refused as the head announces it, before the body is read.
                return ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(65 << 20)\r\n\r\n{\"Id\":\"huge\""]
            case "/v1.41/containers/good/json": return [StubDockerServer.answer("200 OK", Self.validInspect)]
            case "/v1.41/containers/bad/json": return [StubDockerServer.answer("200 OK", #"{"Id":"bad","Name":"/b","State":{"Pid":"many"}}"#)]
            default:
                // An event line longer than the bound (1.25 MiB in chunks, no newline): the last chunk crosses it.
                return StubDockerServer.chunked(Array(repeating: line, count: 5))
            }
        }
        defer { server.stop() }
        try await DockerAPIClient.withClient(host: server.host) { client async throws in
            let listed = try await client.runningContainers()
            #expect(listed.map(\.id) == ["c1"])
            let error = await #expect(throws: DockerError.self) {
                for try await _ in try await client.events() {}
            }
            #expect(error?.code == .malformedResponse || error?.code == .streamEnded, "\(String(describing: error))")
        }
    }
}
