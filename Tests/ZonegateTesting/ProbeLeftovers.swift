import Foundation

/// What a probe run could leave behind, as sorted lines to compare before and after: named
/// network namespaces (`ip netns list` and the files under /run/netns), the ids the host gives
/// other namespaces (`ip netns list-id`: a namespace still alive on the other end of a veth
/// keeps one), links, routes (every table, both families), the sockets listening in the
/// host's namespace and in each site (protocol and local address), and the contents of nft
/// tables with their counters cleared (the probes' own packets move them).
public enum ProbeLeftovers {
    public static func snapshot(sites: [any ProbeSite], nftTables: [(family: String, name: String)] = []) throws -> [String] {
        func lines(_ command: [String], in site: NetnsLocation = .privateHost) throws -> [Substring] {
            try NetnsCommand.check(command, in: site).split(separator: "\n")
        }
        var result: [String] = []
        result += try lines(["ip", "netns", "list"]).map { "netns \($0)" }
        result += ((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []).map { "file /run/netns/\($0)" }
        result += try lines(["ip", "netns", "list-id"]).map { "netns-id \($0)" }
        result += try lines(["ip", "-o", "link", "show"]).map { "link \($0)" }
        result += try lines(["ip", "-4", "route", "show", "table", "all"]).map { "route \($0)" }
        result += try lines(["ip", "-6", "route", "show", "table", "all"]).map { "route6 \($0)" }
        for site in [NetnsLocation.privateHost] + sites.map(\.netnsLocation) {
            // Netid State Recv-Q Send-Q Local Peer: the queues move with the traffic.
            result += try lines(["ss", "-Hlntuw"], in: site).map { line in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                return "\(site) listens \(fields.first ?? "") \(fields.count > 4 ? fields[4] : "")"
            }
        }
        for table in nftTables {
            let text = try NetnsCommand.check(["nft", "list", "table", table.family, table.name])
            // Numbered: the rules' order counts.
            result += text.split(separator: "\n").enumerated().map { index, line in
                "nft \(table.family) \(table.name) \(String(format: "%05d", index)): "
                    + line.replacing(/counter packets \d+ bytes \d+/, with: "counter").replacing(/\sexpires [0-9dhms.]+/, with: "")
            }
        }
        return result.sorted()
    }

    /// A snapshot once two taken `interval` apart agree (at most `timeout`): new links get their
    /// IPv6 link-local routes a second or two after they come up.
    public static func settled(sites: [any ProbeSite], nftTables: [(family: String, name: String)] = [],
                               interval: Duration = .seconds(1), timeout: Duration = .seconds(15)) throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        var last = try snapshot(sites: sites, nftTables: nftTables)
        while ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: interval.seconds)
            let next = try snapshot(sites: sites, nftTables: nftTables)
            if next == last { return next }
            last = next
        }
        throw NetnsFixtureError("the host did not settle within \(timeout): \(difference(last, try snapshot(sites: sites, nftTables: nftTables)))")
    }

    /// The lines of `after` not in `before`, and those gone, for a failure message.
    public static func difference(_ before: [String], _ after: [String]) -> String {
        "added: \(Set(after).subtracting(before).sorted()), removed: \(Set(before).subtracting(after).sorted())"
    }
}
