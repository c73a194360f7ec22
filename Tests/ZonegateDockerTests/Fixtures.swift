import Foundation

/// Tests/Fixtures/docker: answers of a private dockerd 20.10 (API 1.41), captured with
/// `curl --unix-socket S http://localhost/v1.41/...` (`/version`, `/containers/json`, `/networks`,
/// `/containers/NAME/json` for each of: web-1 on a user network with exposed and published ports;
/// pay-1 on an IPv6 network with a named bridge and on a second network; def-1 on the default
/// bridge with `-p 80`; side-1 with `--network container:web-1`; hostnet-1 with `--network host`;
/// none-1 with `--network none`; mac-1 on a macvlan network; stopped-1 created, never started)
/// and `/events?filters={"type":["container","network"]}` while ev-1 was run, connected to and
/// disconnected from a network, and removed.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/docker")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }
}
