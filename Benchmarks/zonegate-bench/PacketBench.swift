import Foundation
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateRuleset
import ZonegateTesting

/// Issue 5 item 1, per-packet cost: TCP round trips between two real containers (namespaces on a
/// bridge, from ZonegateTesting's FakeDockerHost) that stand in for two of 1,000 synthetic ones,
/// with no filter table, with zonegate enforcing, and with the linear form loaded by `nft -f` and
/// by `iptables-nft-restore`. Configurations alternate round by round, so drift hits all alike.
struct PacketBench {
    let kernel: KernelBench
    var rounds = 20
    /// Batches per round and configuration; each batch gives one sample (its mean round trip).
    var batches = 5
    var exchangesPerBatch = 1_000
    var connectionsPerBatch = 200

    /// The bridge must be SyntheticHost's: the one in the ruleset's `bridges` set.
    static let network = FakeNetwork(bridge: SyntheticHost.bridge, ipv4Prefix: "10.250.0", ipv6Prefix: "fd00:250::")
    /// A port no zone tuple allows: the flow each filtering configuration must drop.
    static let deniedPort: UInt16 = 9999
    static let iptablesRestore = "/usr/sbin/iptables-nft-restore"
    static let linearTable = "linear"
    static let linearChain = "LINEAR"

    /// A linear-form pair put where the measured flow falls in the rule list.
    struct Placement {
        let host: SyntheticHost
        let port: UInt16
        /// "rule 10000 of 20000"
        let position: String
    }

    /// One way the host filters the measured flow.
    struct Configuration {
        let name: String
        let port: UInt16
        /// Whether the denied flow must be dropped (false only without a filter table).
        let filters: Bool
        var goal: String? = nil
        let install: () throws -> Void
        let remove: () throws -> Void
        var rr: [Double] = []
        var crr: [Double] = []
    }

    /// Builds the host, measures every configuration, removes everything it made: two rows per
    /// configuration (RR and CRR), each against no filter table.
    func run() throws -> [Result] {
        let docker = try FakeDockerHost(networks: [Self.network])
        defer {
            let leftovers = docker.remove()
            if !leftovers.isEmpty { FileHandle.standardError.write(Data("packet bench left: \(leftovers)\n".utf8)) }
        }
        let client = try docker.addContainer("client")
        let server = try docker.addContainer("server")
        // Its deinit would also end it; ending it before the namespaces go keeps `remove` quiet.
        var echo: ProbeProcess?
        defer { echo?.stop() }

        let plain = SyntheticHost(containers: 1_000, zones: 50, rules: 50)
        let pairs = plain.linearPairs()
        let middle = place(client, server, at: pairs.count / 2 - 1, of: plain)
        let last = place(client, server, at: pairs.count - 1, of: plain)
        echo = try startEchoServer(in: server, ports: [middle.port, last.port, Self.deniedPort])

        let tables = try kernel.nft(["list", "tables"])
        guard !tables.contains("table ip filter"), !tables.contains("table inet \(Self.linearTable)") else {
            throw BenchError(description: "the private namespace already holds a table the packet bench would load: \(tables)")
        }
        let nftFile = try kernel.write(middle.host.linearNftScript(table: Self.linearTable).script, "packet-middle.nft")
        let nftLastFile = try kernel.write(last.host.linearNftScript(table: Self.linearTable).script, "packet-last.nft")
        let iptablesFile = try kernel.write(middle.host.linearIptablesScript(chain: Self.linearChain).script, "packet-middle.iptables")
        let enforcer = Enforcer(dataplane: kernel.dataplane, tracker: nil, hostAddresses: { (try? HostNetwork.addresses()) ?? [] })
        let deleteLinear: () throws -> Void = { try kernel.nft(["delete", "table", "inet", Self.linearTable]) }
        let deleteIptables: () throws -> Void = { try kernel.nft(["delete", "table", "ip", "filter"]) }
        defer {
            // Whatever an error interrupted: only the tables this benchmark loads.
            try? kernel.clearZonegate()
            let left = (try? kernel.nft(["list", "tables"])) ?? ""
            if left.contains("table inet \(Self.linearTable)") { try? deleteLinear() }
            if left.contains("table ip filter") { try? deleteIptables() }
        }

        let size = "\(plain.containerCount) containers x \(plain.rules) zone tuples"
        // Without step 3 (the bridge table binding addresses to ports), which every frame crosses twice.
        let inetOnly = RulesetCompiler.ruleset(middle.host.evaluator()).tables.filter { $0.family == .inet }
        var configurations = [
            Configuration(name: "no filter table", port: middle.port, filters: false, install: {}, remove: {}),
            Configuration(name: "zonegate, \(size)", port: middle.port, filters: true, goal: "<= 1.10", install: {
                enforcer.resync()
                try enforcer.enforce(middle.host.evaluator())
            }, remove: { try kernel.clearZonegate() }),
            Configuration(name: "zonegate inet table only (no bridge table), \(size)", port: middle.port, filters: true, install: {
                try kernel.dataplane.apply(try diff(from: Ruleset(), to: Ruleset(tables: inetOnly)))
            }, remove: { try kernel.clearZonegate() }),
            Configuration(name: "nft linear, pair at \(middle.position)", port: middle.port, filters: true,
                          install: { try kernel.nft(["-f", nftFile]) }, remove: deleteLinear),
            Configuration(name: "nft linear, pair at \(last.position)", port: last.port, filters: true,
                          install: { try kernel.nft(["-f", nftLastFile]) }, remove: deleteLinear),
            Configuration(name: "iptables-nft linear, pair at \(middle.position)", port: middle.port, filters: true,
                          install: { try kernel.run(Self.iptablesRestore, [iptablesFile]) }, remove: deleteIptables),
        ]
        for round in 0..<rounds {
            // Each round starts one configuration further on, so none always follows the same one.
            for offset in configurations.indices {
                let index = (round + offset) % configurations.count
                try configurations[index].install()
                // Bridged traffic reaches the inet forward hook only through br_netfilter.
                guard try HostNetwork.ensureBridgeNetfilter() == .alreadyOn else {
                    throw BenchError(description: "bridge netfilter was off during \(configurations[index].name)")
                }
                if round == 0 { try check(configurations[index], from: client, to: server) }
                configurations[index].rr += try roundTrips(from: client, to: server, port: configurations[index].port, mode: "rr")
                configurations[index].crr += try roundTrips(from: client, to: server, port: configurations[index].port, mode: "crr")
                try configurations[index].remove()
            }
        }

        let none = configurations[0]
        var results: [Result] = []
        for (mode, samples, what) in [("RR", \Configuration.rr, "\(exchangesPerBatch) exchanges on one connection"),
                                      ("CRR", \Configuration.crr, "connect, exchange, close")] {
            let baseline = Sample(seconds: none[keyPath: samples])
            results.append(Result("per-packet \(mode), no filter table (\(what); Docker's NAT stand-in, so conntrack, in all)", baseline,
                                  baseline: "itself", baseline.median))
            for configuration in configurations.dropFirst() {
                results.append(Result("per-packet \(mode), \(configuration.name)", Sample(seconds: configuration[keyPath: samples]),
                                      baseline: "\(mode), no filter table", baseline.median, goal: configuration.goal))
            }
        }
        return results
    }

    /// `plain` with the pair at `index` of its linear form replaced by the two real containers.
    func place(_ client: FakeContainer, _ server: FakeContainer, at index: Int, of plain: SyntheticHost) -> Placement {
        let pairs = plain.linearPairs()
        let pair = pairs[index]
        func standIn(_ real: FakeContainer, for synthetic: Int) -> Container {
            var container = plain.container(synthetic)
            container.addresses = [IPAddress(real.ipv4)!, IPAddress(real.ipv6)!]
            container.ports = [ServicePort(pair.port, .tcp)]
            container.attachments = [BridgeAttachment(bridge: real.network.bridge, port: real.hostVeth, addresses: container.addresses)]
            return container
        }
        let host = SyntheticHost(containers: plain.containerCount, zones: plain.zones, rules: plain.rules,
                                 standIns: [pair.source: standIn(client, for: pair.source), pair.destination: standIn(server, for: pair.destination)])
        return Placement(host: host, port: pair.port, position: "rule \(index + 1) of \(pairs.count)")
    }

    /// The echo server in the server's namespace, once it listens on every port.
    func startEchoServer(in server: FakeContainer, ports: [UInt16]) throws -> ProbeProcess {
        let lifetime = 900
        let process = try ProbeProcess(Self.realTime + [try Self.executable(), "--echo-server", String(lifetime)] + ports.map(String.init),
                                       in: server.netnsLocation, lifetime: .seconds(lifetime + 1))
        guard process.waitForLine(timeout: .seconds(10), where: { $0 == "ready" }) else {
            let output = process.outputTail
            process.stop()
            throw BenchError(description: "the echo server did not start: \(output)")
        }
        return process
    }

    /// The measured flow passes; a flow no zone tuple allows is dropped wherever a ruleset filters,
    /// which shows the ruleset is really on the packets' path.
    func check(_ configuration: Configuration, from client: FakeContainer, to server: FakeContainer) throws {
        guard try Probe.tcpConnect(from: client, to: server.ipv4, port: configuration.port, timeout: .seconds(2)) else {
            throw BenchError(description: "\(configuration.name): the measured flow is dropped")
        }
        let denied = try !Probe.tcpConnect(from: client, to: server.ipv4, port: Self.deniedPort, timeout: .seconds(1))
        guard denied == configuration.filters else {
            throw BenchError(description: "\(configuration.name): the flow to port \(Self.deniedPort) is \(denied ? "dropped" : "let through")")
        }
    }

    /// One client run in the client's namespace: a mean round trip per batch, in seconds.
    func roundTrips(from client: FakeContainer, to server: FakeContainer, port: UInt16, mode: String) throws -> [Double] {
        let perBatch = mode == "rr" ? exchangesPerBatch : connectionsPerBatch
        let output = try NetnsCommand.check(Self.realTime + [try Self.executable(), "--echo-client", mode, server.ipv4, String(port), String(batches), String(perBatch)],
                                            in: client.netnsLocation, timeout: .seconds(120))
        let samples = output.split(separator: "\n").compactMap { Double($0) }
        guard samples.count == batches else { throw BenchError(description: "echo client printed \(output)") }
        return samples
    }

    /// Both ends share one core under SCHED_FIFO: on a 2-core machine shared with compilers, a
    /// round trip otherwise measures how soon the scheduler wakes the other end, and on which core,
    /// more than the ruleset. Both block in every exchange, so they never hold the core for long.
    static let realTime = ["/usr/bin/taskset", "--cpu-list", String(ProcessInfo.processInfo.activeProcessorCount - 1),
                           "/usr/bin/chrt", "--fifo", "50"]

    /// This executable by absolute path: `ip netns exec` runs it in another namespace.
    static func executable() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}

extension KernelBench {
    /// Issue 5 item 2, the `iptables-restore` baseline: the linear form loaded by
    /// iptables-nft-restore (parse included, as with `nft -f`), beside zonegate's netlink full
    /// resync and `nft -f` of the same form, the three interleaved.
    func iptablesResync(_ host: SyntheticHost, repetitions: Int) throws -> [Result] {
        let transaction = try diff(from: Ruleset(), to: RulesetCompiler.ruleset(host.evaluator()))
        let (iptables, rules) = host.linearIptablesScript(chain: PacketBench.linearChain)
        let iptablesFile = try write(iptables, "linear.iptables")
        let nftFile = try write(host.linearNftScript(table: PacketBench.linearTable).script, "linear.nft")
        guard try !nft(["list", "tables"]).contains("table ip filter") else {
            throw BenchError(description: "the private namespace already holds table ip filter")
        }
        var netlink: [Double] = []
        var restore: [Double] = []
        var nftLinear: [Double] = []
        for repetition in 0...repetitions {
            try clearZonegate()
            let (_, applied) = try timed { try dataplane.apply(transaction) }
            try clearZonegate()
            let (_, restored) = try timed { try run(PacketBench.iptablesRestore, [iptablesFile]) }
            try nft(["delete", "table", "ip", "filter"])
            let (_, loaded) = try timed { try nft(["-f", nftFile]) }
            try nft(["delete", "table", "inet", PacketBench.linearTable])
            guard repetition > 0 else { continue }  // the first one warms up
            netlink.append(applied)
            restore.append(restored)
            nftLinear.append(loaded)
        }
        let size = "\(host.containerCount) containers, \(host.rules) zone tuples"
        let restoreName = "iptables-nft-restore linear (\(rules) rules)"
        let restoreSample = Sample(seconds: restore)
        return [
            Result("full resync netlink, \(size) (\(transaction.operations.count) ops)", Sample(seconds: netlink),
                   baseline: restoreName, restoreSample.median, goal: "<= 0.25"),
            Result("\(restoreName), \(size)", restoreSample, baseline: "nft -f linear (\(rules) rules)", Sample(seconds: nftLinear).median),
        ]
    }
}

/// The two ends of the measured flow, run by this executable inside the containers' namespaces
/// (`--echo-server`, `--echo-client`). Blocking sockets, one connection at a time: the client is
/// serial. Both are bounded: the server by its lifetime, the client by its counts and timeouts.
/// The server answers each line as ProbeServer does ("echo " + line), so `Probe.tcpConnect`
/// can check the measured flow against it.
enum EchoEnds {
    /// One line, newline included.
    static let request = [UInt8](repeating: UInt8(ascii: "x"), count: 63) + [UInt8(ascii: "\n")]
    static let echoPrefix = Array("echo ".utf8)
    /// No send, receive or connect waits longer than this.
    static let socketTimeout = 2

    /// Handles the subcommands, exiting when it did; returns otherwise.
    static func runIfAsked(_ arguments: [String]) {
        guard arguments.count > 1, ["--echo-server", "--echo-client"].contains(arguments[1]) else { return }
        do {
            if arguments[1] == "--echo-server" {
                try serve(lifetime: Double(arguments[2])!, ports: arguments.dropFirst(3).map { UInt16($0)! })
            } else {
                try measure(mode: arguments[2], address: arguments[3], port: UInt16(arguments[4])!,
                            batches: Int(arguments[5])!, perBatch: Int(arguments[6])!)
            }
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(1)
        }
    }

    /// Echoes every request on `ports` until `lifetime` seconds have passed.
    static func serve(lifetime: Double, ports: [UInt16]) throws -> Never {
        let listeners = try ports.map { port in
            let socket = try newSocket()
            var address = socketAddress(INADDR_ANY, port)
            try check("bind", withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            })
            try check("listen", listen(socket, 128))
            return pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        }
        // Unbuffered: the bench waits for this line while the server runs on.
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        let deadline = Date().addingTimeInterval(lifetime)
        var ready = listeners
        while Date() < deadline {
            guard poll(&ready, nfds_t(ready.count), 100) > 0 else { continue }
            for listener in ready where listener.revents & Int16(POLLIN) != 0 {
                let connection = accept(listener.fd, nil, nil)
                guard connection >= 0 else { continue }
                configure(connection)
                answerLines(connection)
                close(connection)
            }
        }
        exit(0)
    }

    /// Answers every line until the peer closes, resets or stays silent too long.
    static func answerLines(_ connection: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var pending: [UInt8] = []
        while true {
            let count = read(connection, &buffer, buffer.count)
            guard count > 0 else { return }
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let reply = echoPrefix + pending[...newline]
                pending.removeSubrange(...newline)
                guard writeAll(connection, reply, count: reply.count) else { return }
            }
        }
    }

    /// Prints the mean round trip of each of `batches` batches, after one warm-up batch. "rr":
    /// exchanges over one connection; "crr": a new connection per exchange.
    static func measure(mode: String, address: String, port: UInt16, batches: Int, perBatch: Int) throws {
        var server = socketAddress(0, port)
        guard inet_pton(AF_INET, address, &server.sin_addr) == 1 else { throw BenchError(description: "not an IPv4 address: \(address)") }
        let responseSize = echoPrefix.count + request.count
        var response = [UInt8](repeating: 0, count: responseSize)
        func connected() throws -> Int32 {
            let socket = try newSocket()
            configure(socket)
            try check("connect", withUnsafePointer(to: &server) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            })
            return socket
        }
        func exchange(_ socket: Int32) throws {
            guard writeAll(socket, request, count: request.count) else { throw BenchError(description: "send: errno \(errno)") }
            var received = 0
            while received < responseSize {
                let count = response.withUnsafeMutableBytes { read(socket, $0.baseAddress! + received, responseSize - received) }
                guard count > 0 else { throw BenchError(description: "receive: \(count == 0 ? "closed" : "errno \(errno)")") }
                received += count
            }
        }
        let persistent: Int32? = try mode == "rr" ? connected() : nil
        defer { if let persistent { close(persistent) } }
        for batch in 0...batches {
            let (_, seconds) = try timed {
                for _ in 0..<perBatch {
                    if let persistent {
                        try exchange(persistent)
                    } else {
                        let socket = try connected()
                        defer { closeAbortively(socket) }
                        try exchange(socket)
                    }
                }
            }
            if batch > 0 { print(seconds / Double(perBatch)) }
        }
    }

    static func newSocket() throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try check("socket", socket)
        var one: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return socket
    }

    /// No Nagle delay; bounded waits (on Linux the send timeout bounds connect too).
    static func configure(_ socket: Int32) {
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: socketTimeout, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            setsockopt(socket, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Closes with a reset: tens of thousands of connections would otherwise leave as many
    /// TIME_WAIT sockets and conntrack entries, and run out of ephemeral ports.
    static func closeAbortively(_ socket: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(socket)
    }

    static func socketAddress(_ address: UInt32, _ port: UInt16) -> sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = port.bigEndian
        result.sin_addr.s_addr = address
        return result
    }

    static func writeAll(_ socket: Int32, _ bytes: [UInt8], count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let written = bytes.withUnsafeBytes { write(socket, $0.baseAddress! + sent, count - sent) }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }

    static func check(_ call: String, _ result: Int32) throws {
        guard result >= 0 else { throw BenchError(description: "\(call): \(String(cString: strerror(errno)))") }
    }
}
