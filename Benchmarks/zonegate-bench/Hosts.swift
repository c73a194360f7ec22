import ZonegateEngine
import ZonegatePolicy

/// A generated host: `zones` zones, `rules` rules between them, containers spread over the zones
/// round-robin, each on one bridge with its own port, listening on one service port.
struct SyntheticHost {
    let zones: Int
    let rules: Int
    let policy: Policy
    /// The policy as a file, for a daemon to read from its policy directory.
    let policyYAML: String
    let containerCount: Int
    /// Real containers standing in for generated ones, by index: the packet benchmark's namespaces.
    let standIns: [Int: Container]

    init(containers: Int, zones: Int, rules: Int, standIns: [Int: Container] = [:]) {
        self.zones = zones
        self.rules = rules
        containerCount = containers
        self.standIns = standIns
        var yaml = "zones:\n"
        for zone in 0..<zones { yaml += "  - {name: z\(zone), egress: \(zone % 2 == 0 ? "restricted" : "open")}\n" }
        yaml += "rules:\n"
        for rule in 0..<rules { yaml += "  - {from: z\(rule % zones), to: z\(Self.ruleDestination(rule, zones: zones)), ports: [\(Self.rulePort(rule))/tcp]}\n" }
        policyYAML = yaml
        policy = try! PolicyParser.parse([PolicyFile(name: "bench.yaml", text: yaml)])
    }

    static func ruleDestination(_ rule: Int, zones: Int) -> Int { (rule * 7 + 3) % zones }
    static func rulePort(_ rule: Int) -> UInt16 { UInt16(8000 + rule % 100) }
    func zone(ofContainer index: Int) -> Int { index % zones }

    static let bridge = "br-bench"

    func address(_ index: Int) -> IPAddress {
        IPAddress(bytes: [10, UInt8(index >> 16), UInt8((index >> 8) & 255), UInt8(index & 255)])!
    }

    /// Container `index`, in zone `zone` (its round-robin zone unless given).
    func container(_ index: Int, zone: Int? = nil) -> Container {
        let address = address(index)
        return Container(name: "c\(index)", labels: ["zonegate.zone": "z\(zone ?? self.zone(ofContainer: index))"],
                         addresses: [address], ports: [ServicePort(UInt16(8000 + index % 100), .tcp)],
                         attachments: [BridgeAttachment(bridge: Self.bridge, port: "vb\(index)", addresses: [address])])
    }

    func inventory(extra: [Container] = []) -> Inventory {
        Inventory(containers: (0..<containerCount).map { standIns[$0] ?? container($0) } + extra, bridges: [Self.bridge])
    }

    func evaluator(extra: [Container] = []) -> PolicyEvaluator {
        PolicyEvaluator(policy: policy, inventory: inventory(extra: extra))
    }

    /// The pairs of the linear form, in its order, as DFW or ufw-docker would generate them: one per
    /// allowed (source container, destination container, port), by container index.
    func linearPairs() -> [(source: Int, destination: Int, port: UInt16)] {
        var members = [[Int]](repeating: [], count: zones)
        for index in 0..<containerCount { members[zone(ofContainer: index)].append(index) }
        var pairs: [(source: Int, destination: Int, port: UInt16)] = []
        for rule in 0..<rules {
            for source in members[rule % zones] {
                for destination in members[Self.ruleDestination(rule, zones: zones)] where destination != source {
                    pairs.append((source, destination, Self.rulePort(rule)))
                }
            }
        }
        return pairs
    }

    /// The IPv4 address the linear form uses for container `index` (a stand-in's own).
    func linearAddress(_ index: Int) -> IPAddress {
        standIns[index]?.addresses.first(where: \.isIPv4) ?? address(index)
    }

    /// The same policy as a linear rule list: the linear pairs, then a drop for the rest.
    func linearNftScript(table: String) -> (script: String, rules: Int) {
        let pairs = linearPairs()
        var lines = ["table inet \(table) {", "\tchain forward {",
                     "\t\ttype filter hook forward priority -10; policy accept;",
                     "\t\tct state established,related accept"]
        lines += pairs.map { "\t\tip saddr \(linearAddress($0.source)) ip daddr \(linearAddress($0.destination)) tcp dport \($0.port) accept" }
        lines += ["\t\tiifname \"\(Self.bridge)\" drop", "\t}", "}"]
        return (lines.joined(separator: "\n") + "\n", pairs.count)
    }

    /// The linear form as an `iptables-restore` file: a chain of its own jumped to from FORWARD.
    func linearIptablesScript(chain: String) -> (script: String, rules: Int) {
        let pairs = linearPairs()
        var lines = ["*filter", ":FORWARD ACCEPT [0:0]", ":\(chain) - [0:0]", "-A FORWARD -j \(chain)",
                     "-A \(chain) -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
        lines += pairs.map { "-A \(chain) -s \(linearAddress($0.source)) -d \(linearAddress($0.destination)) -p tcp --dport \($0.port) -j ACCEPT" }
        lines += ["-A \(chain) -i \(Self.bridge) -j DROP", "COMMIT"]
        return (lines.joined(separator: "\n") + "\n", pairs.count)
    }
}
