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
        subcommands: [Run.self, Check.self, Matrix.self, Explain.self, InventoryCommand.self, Plan.self, Teardown.self]
    )

    public init() {}

    /// Runs the command line with cli.md's exit codes: 0 success, 1 policy invalid or an
    /// assertion failed, 2 bad usage or an environment problem.
    public static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let failure as CommandFailure {
            if !failure.message.isEmpty { printError(failure.message) }
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
            printError("zonegate: error: \(message(for: error)) (see 'zonegate help')")
            Foundation.exit(2)
        }
    }
}

/// A command that ends with cli.md's exit code and one line saying why.
struct CommandFailure: Error {
    var code: Int32
    var message: String

    static func invalid(_ message: String) -> CommandFailure { CommandFailure(code: 1, message: message) }
    static func environment(_ message: String) -> CommandFailure { CommandFailure(code: 2, message: message) }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
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
    func read() throws -> Result<Policy, PolicyError> {
        do {
            return .success(try PolicyDirectory.load(directory))
        } catch let error as PolicyError {
            return .failure(error)
        } catch {
            throw CommandFailure.environment("error: \(error)")
        }
    }

    /// The parsed policy, or a failure whose message lists every problem as path:line:column.
    func load() throws -> Policy {
        switch try read() {
        case .success(let policy): return policy
        case .failure(let error): throw rejection(error)
        }
    }

    func rejection(_ error: PolicyError) -> CommandFailure {
        let count = error.diagnostics.count
        return .invalid(diagnosticsText(error.diagnostics) + "\npolicy rejected: \(count) error\(count == 1 ? "" : "s")")
    }

    func diagnosticsText(_ diagnostics: [PolicyDiagnostic]) -> String {
        diagnostics.map { diagnostic in
            var shown = diagnostic
            shown.location.file = (directory as NSString).appendingPathComponent(diagnostic.location.file)
            return shown.description
        }.joined(separator: "\n")
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
    func evaluator(for command: String, _ policyOptions: PolicyOptions) async throws -> PolicyEvaluator {
        let policy = try policyOptions.load()
        return PolicyEvaluator(policy: policy, inventory: try await load(for: command, managedNetworks: policy.defaults.networks))
    }

    func load(for command: String, managedNetworks: [String]?) async throws -> Inventory {
        guard let inventory else {
            return try await docker.inventory(for: command, managedNetworks: managedNetworks)
        }
        guard let data = FileManager.default.contents(atPath: inventory) else {
            throw CommandFailure.environment("zonegate \(command): cannot read inventory file '\(inventory)'")
        }
        do {
            return try Inventory.decode(data)
        } catch {
            throw CommandFailure.environment("zonegate \(command): \(inventory): \(error)")
        }
    }
}

extension OutputFormat: ExpressibleByArgument {}

extension Zonegate {
    /// `zonegate check`: parse, validate and prove the assertions.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse and validate the policy and prove its assertions; no Docker, no root.")

        @OptionGroup var options: PolicyOptions

        @Option(name: .long, help: "table or json (markdown prints as table).")
        var format: OutputFormat = .table

        func run() throws {
            let policy: Policy
            switch try options.read() {
            case .success(let parsed): policy = parsed
            case .failure(let error) where format == .json:
                print(Render.checkJSON(policy: nil, diagnostics: error.diagnostics, results: []).rendered())
                throw CommandFailure(code: 1, message: "")
            case .failure(let error): throw options.rejection(error)
            }
            let results = AssertionProver(policy: policy).prove()
            let failed = results.filter { !$0.holds }
            if format == .json {
                print(Render.checkJSON(policy: policy, diagnostics: [], results: results).rendered())
            } else {
                print("\(options.directory): valid policy: \(policy.zones.count) zones, \(policy.rules.count) rules, \(policy.assertions.count) assertions (\(policy.digest))")
                for result in results {
                    print("\(result.holds ? "PASS" : "FAIL")  \(result.assertion.name)")
                    for failure in result.failures { print("      \(failure)") }
                }
            }
            if !failed.isEmpty {
                throw CommandFailure.invalid("\(failed.count) of \(results.count) assertions failed: \(failed.map(\.assertion.name).joined(separator: ", "))")
            }
        }
    }

    /// `zonegate matrix`: the reachability matrix for an inventory.
    struct Matrix: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The reachability matrix the policy gives for an inventory.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var inventoryOptions: InventoryOptions

        func run() async throws {
            let evaluator = try await inventoryOptions.evaluator(for: "matrix", options)
            let policy = evaluator.policy
            let flows = ReachabilityMatrix(evaluator).flows()
            let unenforced = evaluator.inventory.unenforced
            switch inventoryOptions.outputFormat {
            case .json:
                print(Render.matrixJSON(digest: policy.digest, flows: flows).rendered())
                for attachment in unenforced { printError("warning: \(attachment)") }
            case .table: print(Render.matrixTable(digest: policy.digest, flows: flows, markdown: false, unenforced: unenforced))
            case .markdown: print(Render.matrixTable(digest: policy.digest, flows: flows, markdown: true, unenforced: unenforced))
            }
        }
    }

    /// `zonegate explain`: the verdict of one flow and why.
    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The verdict of one flow, with the rules or defaults that decide it.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var inventoryOptions: InventoryOptions

        @Option(name: .long, help: ArgumentHelp("A container name, an address, world or host.", valueName: "SRC"))
        var from: String

        @Option(name: .long, help: ArgumentHelp("A container name, an address, world or host.", valueName: "DST"))
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
                throw CommandFailure.environment("zonegate explain: --from '\(from)' is no container of the inventory, address, world or host")
            }
            guard let destination = evaluator.peer(named: to) else {
                throw CommandFailure.environment("zonegate explain: --to '\(to)' is no container of the inventory, address, world or host")
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
            abstract: "Remove zonegate's nftables tables (uninstall); no other table is touched.")

        @OptionGroup var options: PolicyOptions

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
                throw CommandFailure.environment("zonegate teardown: \(error)")
            }
            print(actual.tables.map { "removed table \($0.family) \($0.name)" }.joined(separator: "\n"))
        }
    }
}

/// zonegate's tables as the kernel holds them; an environment failure (exit 2) without netlink access.
private func kernelRuleset(for command: String) throws -> Ruleset {
    do {
        return try NetlinkDataplane().readAll(name: RulesetCompiler.tableName)
    } catch {
        throw CommandFailure.environment("zonegate \(command): cannot read nftables through netlink (\(error)); run as root or with CAP_NET_ADMIN")
    }
}
