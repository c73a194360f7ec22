import ArgumentParser
import Crypto
import Dispatch
import Foundation
import Glibc
import ZonegateDocker
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateProbe
import ZonegateRuleset

/// `zonegate verify --format`.
enum VerifyFormat: String, CaseIterable, ExpressibleByArgument {
    case table, json
}

extension Zonegate {
    /// `zonegate verify`: evidence that the host enforces the policy (cli.md, "verify").
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evidence that the host enforces the policy: ruleset, assertions and (--probe) real connections.",
            discussion: """
                Three checks, a pass/fail line each: ruleset (zonegate's tables read back through netlink equal what the \
                policy and the running containers call for; each difference in nft syntax), assertions (each holds for the \
                running containers), probes (with --probe: a real connection attempt for every flow of the matrix). \
                verify never writes to zonegate's tables. Exit 0 when every check passes, 1 when one fails, 2 for an \
                environment problem. --report DIR writes evidence.json, evidence.md and SHA256SUMS (and evidence.sig \
                with --sign-key, a PKCS#8 PEM Ed25519 key as `openssl genpkey -algorithm ed25519` writes it).
                """)

        @OptionGroup var options: PolicyOptions
        @OptionGroup var docker: DockerOptions

        @Flag(name: .long, help: "Try every flow of the matrix with a real connection.")
        var probe = false

        @Option(name: .long, help: ArgumentHelp("Write the evidence report (evidence.json, evidence.md, SHA256SUMS) into DIR.", valueName: "DIR"))
        var report: String?

        @Option(name: .long, help: ArgumentHelp("Sign SHA256SUMS into evidence.sig with this Ed25519 private key (PKCS#8 PEM).", valueName: "FILE"))
        var signKey: String?

        @Option(name: .long, help: "table or json (the evidence.json document).")
        var format: VerifyFormat = .table

        func validate() throws {
            if signKey != nil && report == nil { throw ValidationError("--sign-key signs a report: give --report DIR too") }
        }

        func run() async throws {
            let policy = try options.load()
            // Read before anything slow, so that a bad key or an unwritable directory fails first.
            let key = try signKey.map { path in
                do { return try EvidenceSigning.privateKey(file: path) } catch { throw CommandFailure.usage("--sign-key \(path): \(error)") }
            }
            if let report { try EvidenceWriter.prepare(directory: report) }

            let live = try await LiveDocker.read(docker, managedNetworks: policy.defaults.networks)
            try InventoryOptions.refuse(live.inventory, beyond: ReachabilityMatrix.maximumContainers, for: "verify")
            let evaluator = PolicyEvaluator(policy: policy, inventory: live.inventory,
                                            hostAddresses: (try? HostNetwork.addresses()) ?? [])
            let matrix = ReachabilityMatrix(evaluator).flows()

            // 1. ruleset: read back, never written.
            let actual = try kernelRuleset(for: "verify")
            let desired = RulesetCompiler.ruleset(evaluator)
            let rulesetCheck = VerifyChecks.ruleset(RulesetComparison.compare(actual: actual, desired: desired))
            let rulesetDigest = "sha256:" + EvidenceReport.hex(SHA256.hash(data: Data(RulesetComparison.canonicalText(actual).utf8)))

            // 2. assertions over the running containers.
            let outcomes = VerifyChecks.assertions(evaluator, matrix: matrix)

            // 3. probes.
            var flows = matrix.map { EvidenceFlow($0) }
            var probeWarnings: [String] = []
            if probe {
                (flows, probeWarnings) = try VerifyProbes.run(flows, evaluator: evaluator, pids: live.pids, otherLayers: live.otherLayers)
            } else {
                for index in flows.indices { flows[index].probeNote = "not probed: verify ran without --probe" }
            }
            var probesCheck = VerifyChecks.probes(flows, ran: probe)
            // What may make blocked results wrong (the kernel's neighbour table overflowed) comes first.
            probesCheck.details.insert(contentsOf: probeWarnings.map { "warning: " + $0 }, at: min(1, probesCheck.details.count))
            let checks = [rulesetCheck, VerifyChecks.assertionsCheck(outcomes), probesCheck]
            let input = EvidenceInput(time: Date(), host: HostFacts.current(dockerVersion: live.dockerVersion), evaluator: evaluator,
                                      rulesetDigest: rulesetDigest, checks: checks, flows: flows, assertions: outcomes)

            switch format {
            case .json: print(EvidenceReport.json(input).rendered())
            case .table: print(Self.text(input))
            }
            if let report {
                try EvidenceWriter.write(EvidenceReport.files(input), to: report, signingKey: key)
                if format == .table { print("report: \(Escape.line(report)) (evidence.md, evidence.json, SHA256SUMS\(key == nil ? "" : ", evidence.sig"))") }
            }
            if input.result == .fail { throw CommandFailure(code: 1, message: "") }
        }

        static func text(_ input: EvidenceInput) -> String {
            var lines: [String] = []
            for check in input.checks {
                lines.append("\(check.name): \(check.result == .pass ? "pass" : "FAIL")")
                lines += check.details.map { "  " + Escape.line($0) }
            }
            lines.append("result: \(input.result == .pass ? "pass" : "FAIL") (policy \(input.evaluator.policy.digest), "
                + "\(input.evaluator.inventory.containers.count) containers, \(input.flows.count) flows)")
            return lines.joined(separator: "\n")
        }
    }
}

/// The live Docker host as verify needs it: the inventory, each container's pid (its network
/// namespace for the probes), what Docker itself blocks, and Docker's version.
struct LiveDocker {
    var inventory: Inventory
    /// By the name the matrix shows.
    var pids: [String: Int32]
    var otherLayers: OtherLayers
    var dockerVersion: String

    static func read(_ options: DockerOptions, managedNetworks: [String]?) async throws -> LiveDocker {
        try await options.withClient(for: "verify") { client in
            let version = try await client.version()
            let (containers, networks, inventory) = try await DockerOptions.snapshot(client, managedNetworks: managedNetworks)
            var pids: [String: Int32] = [:]
            for container in containers where container.pid > 0 {
                pids[PolicyEvaluator.displayName(ofContainer: container.name)] = container.pid
            }
            return LiveDocker(inventory: inventory, pids: pids, otherLayers: .docker(networks),
                              dockerVersion: "\(version.engine) (API \(version.apiVersion))")
        }
    }
}

extension OtherLayers {
    /// A Docker host with these networks: its defaults, and the bridges of the networks whose
    /// options disable inter-container traffic.
    static func docker(_ networks: [DockerNetwork]) -> OtherLayers {
        var layers = OtherLayers.docker
        layers.bridgesWithoutICC = Set(networks.filter(\.interContainerTrafficDisabled).compactMap(\.bridgeDevice))
        return layers
    }
}

extension HostFacts {
    /// This machine: its host name and kernel release.
    static func current(dockerVersion: String) -> HostFacts {
        var name = [CChar](repeating: 0, count: 256)
        _ = gethostname(&name, name.count - 1)
        var system = utsname()
        _ = uname(&system)
        let release = withUnsafeBytes(of: &system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return HostFacts(hostname: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                         kernel: "Linux " + release, dockerVersion: dockerVersion)
    }
}

/// `verify --probe`: the matrix's flows as a plan for the probe engine, run with SIGINT and
/// SIGTERM stopping it (the engine then removes what it made), and its results set on the rows.
enum VerifyProbes {
    /// The rows with their probes, and the engine's warnings (what may make a result wrong).
    static func run(_ rows: [EvidenceFlow], evaluator: PolicyEvaluator, pids: [String: Int32],
                    otherLayers: OtherLayers) throws -> ([EvidenceFlow], [String]) {
        let inventory = evaluator.inventory
        let containers = inventory.containers.indices.map { index -> ProbeContainer in
            let container = inventory.containers[index]
            let name = evaluator.name(of: .container(index))
            return ProbeContainer(name: name, addresses: container.addresses, namespace: pids[name].map(NetnsHandle.pid),
                                  bridges: Array(Set(container.attachments.map(\.bridge))).sorted(),
                                  publishedPorts: Set(container.published.map(\.port)))
        }
        let flows = rows.map { row -> ProbeFlow in
            let source: ProbeSource = switch row.flow.from {
            case "world": .world
            case "host": .host
            default: .container(row.flow.from)
            }
            return ProbeFlow(from: source, to: row.flow.to, port: row.flow.port, allowed: row.allowed)
        }
        guard flows.count <= ProbeOptions.flowLimit else {
            throw CommandFailure.usage("the matrix has \(flows.count) flows; verify --probe tries at most \(ProbeOptions.flowLimit)")
        }
        let plan = ProbePlan(containers: containers, flows: flows, avoid: PolicyEvaluator.cidrBlocks(of: evaluator.policy).map(\.cidr),
                             otherLayers: otherLayers)
        let cancellation = ProbeCancellation()
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { cancellation.cancel() }
            source.resume()
            sources.append(source)
        }
        defer {
            sources.forEach { $0.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        let report: ProbeReport
        do {
            report = try ProbeEngine.runBlocking(plan, cancellation: cancellation)
        } catch {
            throw CommandFailure.environment("verify --probe: \(error)")
        }
        if cancellation.isCancelled { throw CommandFailure(code: 130, message: "verify interrupted; the probes left nothing behind") }
        var result = rows
        for (index, probe) in report.results.enumerated() where index < result.count {
            result[index].probe = switch probe.outcome {
            case .reached: .reached
            case .blocked: .blocked
            case .notProbed: .notProbed
            }
            result[index].probeNote = probe.note
            result[index].blockedBy = probe.blockedBy
        }
        return (result, report.warnings)
    }
}

/// Writes a report's files; SHA256SUMS is signed into evidence.sig when a key is given.
enum EvidenceWriter {
    static func prepare(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure.environment("--report \(directory): cannot create the directory (\(error.localizedDescription))")
        }
    }

    static func write(_ files: [(name: String, contents: Data)], to directory: String, signingKey: Curve25519.Signing.PrivateKey?) throws {
        var all = files
        if let signingKey, let sums = files.first(where: { $0.name == "SHA256SUMS" }) {
            all.append(("evidence.sig", Data((try EvidenceSigning.sign(sums.contents, with: signingKey) + "\n").utf8)))
        }
        for file in all {
            let path = (directory as NSString).appendingPathComponent(file.name)
            do {
                try file.contents.write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CommandFailure.environment("--report: cannot write \(path) (\(error.localizedDescription))")
            }
        }
    }
}
