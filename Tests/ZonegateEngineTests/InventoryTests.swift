import Foundation
import XCTest
import ZonegateEngine
import ZonegatePolicy

/// The inventory file of cli.md, and the attachments the dataplane needs.
final class InventoryTests: XCTestCase {
    func testDecodesTheCLIExampleAndAttachments() throws {
        let inventory = try Inventory.decode(Data("""
            {"containers": [
              {"name": "x-a", "id": "3f2c", "labels": {"pod": "a", "ns": "x"}, "addresses": ["172.18.0.2", "fd00:18::2"],
               "ports": ["80/tcp", "81/tcp", "80/udp", "81/sctp"],
               "attachments": [{"bridge": "br-1", "port": "veth1a2b3c4", "addresses": ["172.18.0.2", "fd00:18::2"]}]},
              {"name": "bare"}
            ], "bridges": ["br-1", "docker0"]}
            """.utf8))
        XCTAssertEqual(inventory.containers[0].ports, [ServicePort(80, .tcp), ServicePort(81, .tcp), ServicePort(80, .udp), ServicePort(81, .sctp)])
        XCTAssertEqual(inventory.containers[0].attachments, [BridgeAttachment(bridge: "br-1", port: "veth1a2b3c4",
                                                                              addresses: [IPAddress("172.18.0.2")!, IPAddress("fd00:18::2")!])])
        XCTAssertEqual(inventory.containers[1], Container(name: "bare"))
        XCTAssertEqual(inventory.bridges, ["br-1", "docker0"])
        let roundTrip = try Inventory.decode(JSONEncoder().encode(inventory))
        XCTAssertEqual(roundTrip, inventory)
    }

    func testRejectsInconsistentInventories() {
        let cases: [(String, String)] = [
            (#"{"containers": [{"name": "a"}, {"name": "a"}]}"#, "container name 'a' appears twice"),
            (#"{"containers": [{"name": "a", "addresses": ["10.0.0.1"]}, {"name": "b", "addresses": ["10.0.0.1"]}]}"#,
             "address 10.0.0.1 belongs to both 'a' and 'b'"),
            (#"{"containers": [{"name": "a", "ports": ["80"]}]}"#, "'80' is not a port"),
            (#"{"containers": [{"name": "a", "addresses": ["10.0.0.300"]}]}"#, "is not an IPv4 or IPv6 address"),
            (#"{"containers": [{"name": "a", "attachments": [{"bridge": "b", "port": "v1", "addresses": ["10.0.0.1"]}]}]}"#,
             "'a' has 10.0.0.1 on v1 but not among its addresses"),
            (#"{"containers": [{"name": "a", "attachments": [{"bridge": "b", "port": "v1", "addresses": []}]},"# +
             #" {"name": "b", "attachments": [{"bridge": "b", "port": "v1", "addresses": []}]}]}"#, "bridge port v1 belongs to both"),
            (#"{"pods": []}"#, "missing 'containers'"),
        ]
        for (json, fragment) in cases {
            XCTAssertThrowsError(try Inventory.decode(Data(json.utf8)), json) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }
}
