import ArgumentParser
import Foundation
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy

/// The `zonegate` command line of cli.md.
public struct Zonegate: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "zonegate",
        abstract: "Network segmentation for Docker hosts: zone policies enforced with nftables.",
        subcommands: [Run.self, Check.self, Matrix.self, Explain.self, InventoryCommand.self, Plan.self, Verify.self, VerifyReport.self, Teardown.self]
    )

    public init() {}

    /// Runs the command line with cli.md's exit codes: 0 success, 1 policy invalid or an
    /// assertion failed, 2 bad usage or an environment problem. Every error is printed the same
    /// way, whatever the command (`ErrorOutput`).
    public static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Never {
        do {
            try rejectRepeatedOptions(arguments)
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let failure as CommandFailure {
            ErrorOutput.report(failure)
            Foundation.exit(failure.code)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            // cli.md: one clear line saying what is wrong.
            let first = message(for: error).split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? "\(error)"
            ErrorOutput.error("\(first) (see 'zonegate help')")
            Foundation.exit(2)
        }
    }

    /// Every option of zonegate takes one value: given twice, which one was meant is a guess, so
    /// it is refused (exit 2) rather than the last one silently kept.
    static func rejectRepeatedOptions(_ arguments: [String]) throws {
        var seen: Set<String> = []
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--"), argument.count > 2 else { continue }
            let name = String(argument.prefix { $0 != "=" })
            if !seen.insert(name).inserted, name != "--help" {
                throw CommandFailure.usage("\(name) is given more than once; it takes one value")
            }
        }
    }
}

/// A command that ends with cli.md's exit code and one line saying why.
struct CommandFailure: Error {
    var code: Int32
    /// The one line printed as `zonegate: error: MESSAGE`; empty for none (what went wrong is
    /// already printed, as JSON on standard output).
    var message: String
    /// Lines printed before it, already in their final form: a policy's diagnostics,
    /// `FILE:LINE:COL: error: MESSAGE`.
    var diagnostics: [String] = []

    init(code: Int32, message: String, diagnostics: [String] = []) {
        self.code = code
        self.message = message
        self.diagnostics = diagnostics
    }

    static func invalid(_ message: String) -> CommandFailure { CommandFailure(code: 1, message: message) }
    static func environment(_ message: String) -> CommandFailure { CommandFailure(code: 2, message: message) }
    static func usage(_ message: String) -> CommandFailure { CommandFailure(code: 2, message: message) }
}

/// How every command prints what went wrong, on standard error, one line each:
/// - a policy's errors: `FILE:LINE:COL: error: MESSAGE` (the form editors and CI annotate);
/// - every other error: `zonegate: error: MESSAGE`;
/// - warnings: `zonegate: warning: MESSAGE`.
/// Text from outside (file and container names, quoted values) is escaped, so that a newline
/// or a terminal escape in it can neither split the line nor forge another.
enum ErrorOutput {
    static func report(_ failure: CommandFailure) {
        for line in failure.diagnostics { write(line) }
        if !failure.message.isEmpty { error(failure.message) }
    }

    /// A message of several lines (a daemon's startup failure that lists a policy's errors)
    /// becomes several error lines: those already in the diagnostic form stay so, the others get
    /// the prefix.
    static func error(_ message: String) {
        let lines = stripped(message).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        // Otherwise one line, its newlines escaped: a name quoted in it cannot start a line.
        guard lines.count > 1, lines.dropFirst().contains(where: isDiagnostic) else {
            write("zonegate: error: " + Escape.line(stripped(message)))
            return
        }
        for (index, line) in lines.enumerated() {
            write(index > 0 && isDiagnostic(line) ? Escape.line(line) : "zonegate: error: " + Escape.line(line))
        }
    }

    /// `FILE:LINE:COL: error: MESSAGE`.
    static func isDiagnostic(_ line: String) -> Bool {
        guard let range = line.range(of: ": error: ") else { return false }
        let fields = line[..<range.lowerBound].split(separator: ":", omittingEmptySubsequences: false)
        return fields.count >= 3 && fields.suffix(2).allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    static func warning(_ message: String) { write("zonegate: warning: " + Escape.line(stripped(message))) }

    /// `FILE:LINE:COL: error: MESSAGE`, the file's path as given (directory joined).
    static func diagnostic(_ diagnostic: PolicyDiagnostic, directory: String?) -> String {
        var shown = diagnostic
        if let directory { shown.location.file = (directory as NSString).appendingPathComponent(diagnostic.location.file) }
        // Its description escapes the file name and the message (DisplayText); once more changes nothing.
        return Escape.line(shown.description)
    }

    /// Without the older prefixes (`zonegate run: `, `error: `): the line has its own.
    static func stripped(_ message: String) -> String {
        var text = Substring(message)
        if text.hasPrefix("zonegate"), let colon = text.firstIndex(of: ":"),
           text[..<colon].split(separator: " ").count <= 2, !text[..<colon].contains("/") {
            text = text[text.index(after: colon)...].drop { $0 == " " }
        }
        if text.hasPrefix("error: ") { text = text.dropFirst("error: ".count) }
        return String(text)
    }

    private static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// `--policies DIR`, shared by every subcommand.
struct PolicyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The policy directory.", valueName: "DIR"))
    var policies: String?

    /// `policies/` in the working directory; where there is none, the installed service's directory.
    var directory: String {
        if let policies { return policies }
        let installed = "/etc/zonegate/policies"
        return !FileManager.default.fileExists(atPath: "policies") && FileManager.default.fileExists(atPath: installed)
            ? installed : "policies"
    }

    /// The parsed policy or why it is invalid; throws only when the directory cannot be read.
    /// Valid means parsed and every rule that can reach a `pci: cde` zone justified (policy.md):
    /// every command that reads a policy rejects one that is not, as the daemon does.
    func read() throws -> Result<Policy, PolicyError> {
        do {
            let policy = try PolicyDirectory.load(directory)
            try CDEJustification(policy: policy).validate()
            return .success(policy)
        } catch let error as PolicyError {
            return .failure(error)
        } catch {
            throw CommandFailure.environment("\(error)")
        }
    }

    /// The parsed policy, or a failure whose lines give every problem as path:line:column.
    func load() throws -> Policy {
        switch try read() {
        case .success(let policy): return policy
        case .failure(let error): throw rejection(error)
        }
    }

    /// The networks the policy manages (nil: all), for `inventory`, which lists them without
    /// judging anything: with no policy directory (and none named) there is no policy and every
    /// network is listed; an invalid policy is rejected as every command rejects it, rather than
    /// passed over for an inventory of other networks than the daemon would enforce.
    func managedNetworks() throws -> [String]? {
        if policies == nil, !FileManager.default.fileExists(atPath: directory) { return nil }
        return try load().defaults.networks
    }

    func rejection(_ error: PolicyError) -> CommandFailure {
        let count = error.diagnostics.count
        return CommandFailure(code: 1, message: "policy rejected: \(count) error\(count == 1 ? "" : "s")",
                              diagnostics: error.diagnostics.map { ErrorOutput.diagnostic($0, directory: directory) })
    }
}

/// `--inventory FILE` (else the live Docker host) and `--format`, shared by the commands that
/// evaluate containers.
struct InventoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("An inventory file (JSON, as `zonegate inventory` prints); default: the live Docker host.", valueName: "FILE"))
    var inventory: String?

    @OptionGroup var docker: DockerOptions

    @Option(name: .long, help: "table, json or markdown (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    var outputFormat: OutputFormat {
        format ?? (isatty(STDOUT_FILENO) != 0 ? .table : .json)
    }

    /// The policy applied to the inventory: what matrix, explain and plan work from.
    func evaluator(for command: String, _ policyOptions: PolicyOptions, maximumContainers: Int? = nil) async throws -> PolicyEvaluator {
        let policy = try policyOptions.load()
        let inventory = try await load(for: command, managedNetworks: policy.defaults.networks)
        if let maximumContainers { try Self.refuse(inventory, beyond: maximumContainers, for: command) }
        return PolicyEvaluator(policy: policy, inventory: inventory, hostAddresses: hostAddresses(of: inventory))
    }

    /// An inventory of more containers than a command covers is bad usage (exit 2), said in one
    /// line before any output.
    static func refuse(_ inventory: Inventory, beyond maximum: Int, for command: String) throws {
        guard inventory.containers.count > maximum else { return }
        throw CommandFailure.usage("the inventory has \(inventory.containers.count) containers; a \(command) covers at most \(maximum)")
    }

    /// The host's own addresses, which cli.md calls `host`. Live: every address of the host's
    /// interfaces (the bridges' gateways among them). An inventory file records none; the
    /// closest faithful answer is the addresses this machine holds on the bridges the file
    /// names (`bridges` and the attachments'): their gateways, when the file describes this
    /// host, and nothing when it has no such bridge.
    func hostAddresses(of inventory: Inventory) -> Set<IPAddress> {
        guard self.inventory != nil else { return (try? HostNetwork.addresses()) ?? [] }
        let bridges = Set(inventory.bridges).union(inventory.containers.flatMap { $0.attachments.map(\.bridge) })
        guard !bridges.isEmpty else { return [] }
        return (try? HostNetwork.addresses(onInterfaces: bridges)) ?? []
    }

    func load(for command: String, managedNetworks: [String]?) async throws -> Inventory {
        guard let inventory else {
            return try await docker.inventory(for: command, managedNetworks: managedNetworks)
        }
        do {
            // Bounded (a FIFO or /dev/zero is refused before any read), strict, and located.
            return try Inventory.load(file: inventory)
        } catch {
            // `FILE:LINE:COL: error: invalid inventory: MESSAGE`: a located error in a file, in the
            // form of a policy's.
            throw error.file == nil ? CommandFailure.environment("\(error)")
                : CommandFailure(code: 2, message: "", diagnostics: [Escape.line(error.description)])
        }
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// `check --format`: the formats `check` prints (no Markdown form of it exists).
enum CheckFormat: String, CaseIterable, ExpressibleByArgument {
    case table, json
}

extension Zonegate {
    /// `zonegate check`: parse, validate and prove the assertions.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse and validate the policy and prove its assertions; no Docker, no root.")

        @OptionGroup var options: PolicyOptions

        @Option(name: .long, help: "table or json.")
        var format: CheckFormat = .table

        func run() throws {
            let policy: Policy
            let read: Result<Policy, PolicyError>
            do {
                read = try options.read()
            } catch let failure as CommandFailure where format == .json {
                // Programs get JSON whatever went wrong: here the directory itself (exit 2).
                print(Render.checkJSON(policy: nil, diagnostics: [], results: [], error: failure.message).rendered())
                throw CommandFailure(code: failure.code, message: failure.message)
            }
            switch read {
            case .success(let parsed): policy = parsed
            case .failure(let error) where format == .json:
                print(Render.checkJSON(policy: nil, diagnostics: error.diagnostics, results: []).rendered())
                throw options.rejection(error)
            case .failure(let error): throw options.rejection(error)
            }
            var failed: [String] = []
            if format == .json {
                let results = AssertionProver(policy: policy).prove()
                failed = results.filter { !$0.holds }.map(\.assertion.name)
                print(Render.checkJSON(policy: policy, diagnostics: [], results: results).rendered())
            } else {
                // Streamed: each assertion printed as soon as it is proved, then dropped (a
                // policy at the limits can fail with millions of lines), through one buffer.
                var output = StandardOutput()
                do {
                    try output.write("\(Escape.line(options.directory)): valid policy: \(policy.zones.count) zones, \(policy.rules.count) rules, \(policy.assertions.count) assertions (\(policy.digest))\n")
                    try AssertionProver(policy: policy).prove { result in
                        if !result.holds { failed.append(result.assertion.name) }
                        try output.write("\(result.holds ? "PASS" : "FAIL")  \(Escape.line(result.assertion.name))\n")
                        for failure in result.failures { try output.write("      \(Escape.line(failure))\n") }
                    }
                    try output.flush()
                } catch let error as StandardOutput.WriteError {
                    throw CommandFailure.environment("\(error)")
                }
            }
            if !failed.isEmpty {
                throw CommandFailure.invalid("\(failed.count) of \(policy.assertions.count) assertions failed: \(failed.joined(separator: ", "))")
            }
        }
    }

    /// `zonegate matrix`: the reachability matrix for an inventory, written as it is computed.
    struct Matrix: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The reachability matrix the policy gives for an inventory.",
            discussion: "Rows are written as they are computed, so memory does not grow with them. At most \(ReachabilityMatrix.maximumContainers) containers.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var inventoryOptions: InventoryOptions

        func run() async throws {
            let evaluator = try await inventoryOptions.evaluator(for: "matrix", options, maximumContainers: ReachabilityMatrix.maximumContainers)
            let unenforced = evaluator.inventory.unenforced
            let format = inventoryOptions.outputFormat
            var output = StandardOutput()
            do {
                try MatrixRenderer(format: format, digest: evaluator.policy.digest, unenforced: format == .json ? [] : unenforced)
                    .render(ReachabilityMatrix(evaluator), to: &output)
            } catch let error as StandardOutput.WriteError {
                throw CommandFailure.environment("\(error)")
            }
            if format == .json {
                for attachment in unenforced { ErrorOutput.warning("\(attachment)") }
            }
        }
    }

    /// `zonegate explain`: the verdict of one flow and why.
    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The verdict of one flow, with the rules or defaults that decide it.",
            discussion: """
                SRC and DST are container names, addresses, world or host. `world` and `host` always mean those ends and \
                an address always means the address; `container:NAME` names a container whatever its name (a container \
                named world, host, any or like an address is shown so). An address of the host's own is `host`.
                """)

        @OptionGroup var options: PolicyOptions
        @OptionGroup var inventoryOptions: InventoryOptions

        @Option(name: .long, help: ArgumentHelp("A container name, container:NAME, an address, world or host.", valueName: "SRC"))
        var from: String

        @Option(name: .long, help: ArgumentHelp("A container name, container:NAME, an address, world or host.", valueName: "DST"))
        var to: String

        @Option(name: .long, help: ArgumentHelp("PORT/PROTO (80/tcp, 53/udp, 3868/sctp) or icmp.", valueName: "PORT"))
        var port: String

        func validate() throws {
            guard ServicePort.parse(port) != nil else {
                throw ValidationError("--port '\(port)' is not a port; expected PORT/PROTO such as 80/tcp, or icmp")
            }
        }

        func run() async throws {
            let evaluator = try await inventoryOptions.evaluator(for: "explain", options)
            guard let source = evaluator.peer(named: from) else {
                throw CommandFailure.usage("--from '\(from)' is no container of the inventory, address, world or host")
            }
            guard let destination = evaluator.peer(named: to) else {
                throw CommandFailure.usage("--to '\(to)' is no container of the inventory, address, world or host")
            }
            let explanation = evaluator.explain(from: source, to: destination, port: ServicePort.parse(port)!)
            switch inventoryOptions.outputFormat {
            case .json: print(Render.explanationJSON(explanation).rendered())
            case .table: print(Render.explanationText(explanation, markdown: false))
            case .markdown: print(Render.explanationText(explanation, markdown: true))
            }
        }
    }
}

extension Zonegate {
    /// `zonegate plan`: the transaction `run` would apply now, as nft commands.
    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What `run` would change in the kernel right now, without changing it.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var inventoryOptions: InventoryOptions

        func run() async throws {
            let evaluator = try await inventoryOptions.evaluator(for: "plan", options)
            let desired = RulesetCompiler.ruleset(evaluator)
            let actual = try kernelRuleset(for: "plan")
            let transaction = try diff(from: actual, to: desired)
            if transaction.isEmpty {
                print("# the kernel already enforces \(evaluator.policy.digest) for these \(evaluator.inventory.containers.count) containers")
            } else {
                print("# \(transaction.operations.count) operations, applied as one transaction")
                print(transaction.description)
            }
        }
    }

    /// `zonegate teardown`: remove zonegate's tables, and nothing else.
    struct Teardown: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove zonegate's nftables tables (uninstall); no other table is touched.",
            discussion: """
                --policies is accepted, as by every subcommand, and not used: teardown removes zonegate's tables \
                whatever the policy, so that it works when the policy is invalid or gone.
                """)

        /// cli.md: every subcommand takes --policies. Not read: the way out must not depend on
        /// a valid policy.
        @Option(name: .long, help: ArgumentHelp("Accepted and not used: teardown removes zonegate's tables whatever the policy.", valueName: "DIR"))
        var policies: String?

        func run() throws {
            let actual = try kernelRuleset(for: "teardown")
            let transaction = try diff(from: actual, to: Ruleset())
            guard !transaction.isEmpty else {
                print("no zonegate tables to remove")
                return
            }
            do {
                try NetlinkDataplane().apply(transaction)
            } catch {
                throw CommandFailure.environment("cannot remove zonegate's tables: \(error)")
            }
            print(actual.tables.map { "removed table \($0.family) \($0.name)" }.joined(separator: "\n"))
        }
    }
}

/// zonegate's tables as the kernel holds them; an environment failure (exit 2) without netlink access.
func kernelRuleset(for command: String) throws -> Ruleset {
    do {
        return try NetlinkDataplane().readAll(name: RulesetCompiler.tableName)
    } catch {
        throw CommandFailure.environment("\(command): cannot read nftables through netlink (\(error)); run as root or with CAP_NET_ADMIN")
    }
}
