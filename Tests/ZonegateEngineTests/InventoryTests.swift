import Foundation
import Testing
import ZonegateEngine
import ZonegatePolicy

/// The inventory file of cli.md, and the attachments the dataplane needs.
@Suite struct InventoryTests {
    @Test func decodesTheCLIExampleAndAttachments() throws {
        let inventory = try Inventory.decode(Data("""
            {"containers": [
              {"name": "x-a", "id": "3f2c", "labels": {"pod": "a", "ns": "x"}, "addresses": ["172.18.0.2", "fd00:18::2"],
               "ports": ["80/tcp", "81/tcp", "80/udp", "81/sctp"],
               "attachments": [{"bridge": "br-1", "port": "veth1a2b3c4", "addresses": ["172.18.0.2", "fd00:18::2"]}]},
              {"name": "bare"}
            ], "bridges": ["br-1", "docker0"]}
            """.utf8))
        #expect(inventory.containers[0].ports == [ServicePort(80, .tcp), ServicePort(81, .tcp), ServicePort(80, .udp), ServicePort(81, .sctp)])
        #expect(inventory.containers[0].attachments == [BridgeAttachment(bridge: "br-1", port: "veth1a2b3c4",
                                                                              addresses: [IPAddress("172.18.0.2")!, IPAddress("fd00:18::2")!])])
        #expect(inventory.containers[1] == Container(name: "bare"))
        #expect(inventory.bridges == ["br-1", "docker0"])
        let roundTrip = try Inventory.decode(JSONEncoder().encode(inventory))
        #expect(roundTrip == inventory)
    }

    /// Every refusal names the file, line and column, in one line.
    static let invalidInventories: [(json: String, expected: String)] = [
        (#"{"containers": [{"name": "a"}, {"name": "a"}]}"#, "inv.json:1:32: error: invalid inventory: container name 'a' appears twice (first at line 1, column 17)"),
        (#"{"containers": [{"name": "a", "addresses": ["10.0.0.1"]}, {"name": "b", "addresses": ["10.0.0.1"]}]}"#,
         "inv.json:1:59: error: invalid inventory: address 10.0.0.1 belongs to both 'a' and 'b'"),
        (#"{"containers": [{"name": "a", "ports": ["80"]}]}"#, "inv.json:1:41: error: invalid inventory: '80' is not a port; expected PORT/PROTO such as 80/tcp"),
        (#"{"containers": [{"name": "a", "addresses": ["10.0.0.300"]}]}"#, "inv.json:1:45: error: invalid inventory: '10.0.0.300' is not an IPv4 or IPv6 address"),
        (#"{"containers": [{"name": "a", "addresses": ["10.0.0.1\u0000x"]}]}"#, "inv.json:1:45: error: invalid inventory: '10.0.0.1\\u{0}x' is not an IPv4 or IPv6 address"),
        (#"{"containers": [{"name": "a", "attachments": [{"bridge": "b", "port": "v1", "addresses": ["10.0.0.1"]}]}]}"#,
         "inv.json:1:91: error: invalid inventory: 'a' has 10.0.0.1 on 'v1' but not among its addresses"),
        (#"{"containers": [{"name": "a", "attachments": [{"bridge": "b", "port": "v1", "addresses": []}]},"# +
         #" {"name": "b", "attachments": [{"bridge": "b", "port": "v1", "addresses": []}]}]}"#,
         "inv.json:1:97: error: invalid inventory: bridge port 'v1' belongs to both 'a' and 'b'"),
        (#"{"pods": []}"#, "inv.json:1:2: error: invalid inventory: unknown key 'pods' in the inventory; expected one of: containers, bridges, unenforced"),
        (#"{}"#, "inv.json:1:1: error: invalid inventory: the inventory needs 'containers'"),
        (#"{"containers": [{"name": "a", "label": {"x": "y"}}]}"#,
         "inv.json:1:31: error: invalid inventory: unknown key 'label' in a container; expected one of: name, id, labels, addresses, ports, attachments, published"),
        (#"{"containers": [{"name": "a", "name": "b"}]}"#, "inv.json:1:31: error: invalid inventory: duplicate key 'name'"),
        (#"{"containers": [{"name": "a", "labels": {"k": "1", "k": "2"}}]}"#, "inv.json:1:52: error: invalid inventory: duplicate key 'k'"),
        (#"{"containers": [], "containers": []}"#, "inv.json:1:20: error: invalid inventory: duplicate key 'containers'"),
        (#"{"containers": [{"name": "world"}]}"#,
         "inv.json:1:26: error: invalid inventory: container name 'world' is reserved: world, host and any name the other ends of a flow; rename the container"),
        (#"{"containers": [{"name": "host"}]}"#,
         "inv.json:1:26: error: invalid inventory: container name 'host' is reserved: world, host and any name the other ends of a flow; rename the container"),
        (#"{"containers": [{"name": null}]}"#, "inv.json:1:26: error: invalid inventory: expected a container name, found null"),
        (#"{"containers": [{"name": ""}]}"#, "inv.json:1:26: error: invalid inventory: expected a container name, found an empty string"),
        (#"{"containers": [{"name": "a", "labels": {"k": 1}}]}"#, "inv.json:1:47: error: invalid inventory: expected a label value (a string), found a number"),
        (#"{"containers": {}}"#, "inv.json:1:16: error: invalid inventory: containers must be an array, not an object"),
        ("{\"containers\": [\n  {\"name\": \"a\",}\n]}", "inv.json:2:16: error: invalid inventory: expected a key (a string in double quotes)"),
        ("{\"containers\": [\n  {\"name\": \"a\nb\"}]}", "inv.json:2:14: error: invalid inventory: a control character in a string; write it as an escape such as \\n or \\u0000"),
        ("", "inv.json:1:1: error: invalid inventory: the file is empty; expected a JSON object"),
        (#"{"containers": []} x"#, "inv.json:1:20: error: invalid inventory: unexpected text after the JSON value"),
        (#"{"containers": [1, 2"#, "inv.json:1:21: error: invalid inventory: unexpected end of the file; an array is not closed"),
        (#"{"containers": [], "bridges": ["\ud800"]}"#, "inv.json:1:39: error: invalid inventory: a lone UTF-16 surrogate in a \\u escape"),
    ]

    @Test(arguments: invalidInventories)
    func rejectsInvalidInventoriesWithTheirPosition(_ testCase: (json: String, expected: String)) throws {
        let error = try #require(throws: (any Error).self) { try Inventory.decode(Data(testCase.json.utf8), file: "inv.json") }
        #expect("\(error)" == testCase.expected)
    }

    /// A 100,000-deep array is refused at the level past the limit, without recursion.
    @Test(arguments: [String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
                      #"{"containers": "# + String(repeating: "[", count: 100_000),
                      String(repeating: #"{"a":"#, count: 100_000)])
    func deepNestingIsRefusedNotCrashed(json: String) throws {
        let depth = PolicyLimits.Inventory.nestingDepth
        let error = try #require(throws: (any Error).self) { try Inventory.decode(Data(json.utf8), file: "deep.json") }
        #expect("\(error)".hasSuffix("nesting deeper than \(depth) levels (arrays and objects inside each other)"), "\(error)")
    }

    /// Sizes are bounded: containers, labels, addresses, strings.
    @Test func inventoryLimits() throws {
        typealias Limits = PolicyLimits.Inventory
        let containers = #"{"containers": ["# + (0...Limits.containers).map { #"{"name": "c\#($0)"}"# }.joined(separator: ",") + "]}"
        let labels = #"{"containers": [{"name": "a", "labels": {"# + (0...Limits.labelsPerContainer).map { #""k\#($0)": """# }.joined(separator: ",") + "}}]}"
        let longValue = #"{"containers": [{"name": "a", "labels": {"k": ""# + String(repeating: "v", count: Limits.labelValueBytes + 1) + #""}}]}"#
        let addresses = #"{"containers": [{"name": "a", "addresses": ["# + (0...Limits.addressesPerContainer).map { #""10.0.\#($0 / 256).\#($0 % 256)""# }.joined(separator: ",") + "]}]}"
        let cases: [(String, String)] = [
            (containers, "inv.json:1:16: error: invalid inventory: more than \(Limits.containers) entries in containers (see docs/limits.md)"),
            (labels, "inv.json:1:41: error: invalid inventory: more than \(Limits.labelsPerContainer) labels (see docs/limits.md)"),
            (longValue, "inv.json:1:47: error: invalid inventory: a label value (a string) longer than \(Limits.labelValueBytes) bytes: '" + String(repeating: "v", count: 64) + "…' (see docs/limits.md)"),
            (addresses, "inv.json:1:44: error: invalid inventory: more than \(Limits.addressesPerContainer) entries in addresses (see docs/limits.md)"),
        ]
        for (json, expected) in cases {
            let error = #expect(throws: (any Error).self) { try Inventory.decode(Data(json.utf8), file: "inv.json") }
            #expect(error.map { "\($0)" } == expected)
        }
    }

    /// Docker's label values are free text: paths, lists, colons, spaces, newlines, unicode.
    @Test func acceptsArbitraryLabelValues() throws {
        let inventory = try Inventory.decode(Data(#"""
            {"containers": [{"name": "shop-api-1", "labels": {
              "com.docker.compose.project.working_dir": "/srv/shop",
              "com.docker.compose.project.config_files": "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml",
              "com.docker.compose.depends_on": "db:service_started:false",
              "description": "line one\nline two \u00e9 \ud83d\ude00", "empty": ""}}]}
            """#.utf8), file: "inv.json")
        #expect(inventory.containers[0].labels["com.docker.compose.depends_on"] == "db:service_started:false")
        #expect(inventory.containers[0].labels["description"] == "line one\nline two é 😀")
        #expect(inventory.containers[0].labels["empty"] == "")
    }
}

/// An inventory file is read as a regular file of bounded size: a FIFO or a device is refused
/// before any read.
@Suite struct InventoryFileTests {
    @Test func onlyRegularFilesAreRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zonegate-inv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(mkfifo(directory + "/fifo.json", 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: directory + "/zero.json", withDestinationPath: "/dev/zero")
        let cases = [("fifo.json", "the file is a FIFO (named pipe), not a regular file"), ("zero.json", "the file is a character device, not a regular file"),
                     ("missing.json", "the file cannot be read: no such file")]
        for (name, message) in cases {
            let error = #expect(throws: (any Error).self) { try Inventory.load(file: directory + "/" + name) }
            #expect(error.map { "\($0)" } == "\(directory)/\(name):1:1: error: invalid inventory: \(message)")
        }
        try #"{"containers": [{"name": "a"}]}"#.write(toFile: directory + "/ok.json", atomically: false, encoding: .utf8)
        #expect(try Inventory.load(file: directory + "/ok.json").containers.map(\.name) == ["a"])
    }
}
