import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import ZonegateDaemon
import ZonegateDocker
import ZonegateEngine
import ZonegateNetfilter
import ZonegatePolicy

extension LogFormat: ExpressibleByArgument {}

extension Zonegate {
    /// `zonegate run`: the daemon.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The daemon: watch Docker, compile, program nftables, reconcile until SIGTERM/SIGINT.",
            discussion: "SIGHUP or a change in the policy directory reloads the policy. The rules stay in the kernel when it stops.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var docker: DockerOptions

        @Option(name: .long, help: ArgumentHelp("The full comparison with Docker and the kernel that repairs drift.", valueName: "DURATION"))
        var resyncInterval = DurationArgument(argument: "30s")!

        @Option(name: .long, help: "text or json (one object a line).")
        var logFormat: LogFormat = .text

        func run() async throws {
            let format = logFormat
            LoggingSystem.bootstrap { _ in LineLogHandler(format: format) }
            let logger = Logger(label: "zonegate")
            let client = try docker.client(for: "run")
            let hostAddresses: @Sendable () -> Set<IPAddress> = { (try? HostNetwork.addresses()) ?? [] }
            let enforcer: Enforcer
            do {
                enforcer = Enforcer(dataplane: try NetlinkDataplane(), tracker: try ConntrackTable(), hostAddresses: hostAddresses)
            } catch {
                throw CommandFailure.environment("zonegate run: cannot open netlink (\(error)); run as root or with CAP_NET_ADMIN")
            }
            // Denied-flow events are worth having, not worth refusing to enforce without.
            var flowLog: FlowLogReader?
            do {
                flowLog = try FlowLogReader()
            } catch {
                logger.warning("denied flows will not be logged: cannot read NFLOG group \(RulesetCompiler.logGroup)", metadata: [
                    "error": "\(error)", "action": "another program may hold the group; stop it and restart zonegate",
                ])
            }
            defer { flowLog?.stop() }
            let directory = options.directory
            let environment = ReconcilerEnvironment(
                engine: client, enforcer: enforcer,
                loadPolicy: { try PolicyDirectory.load(directory) },
                policyFingerprint: { PolicyDirectory.fingerprint(directory) },
                bridgePorts: { VethResolver().resolver() },
                prepareHost: {
                    switch try HostNetwork.ensureBridgeNetfilter() {
                    case .alreadyOn: return nil
                    case .turnedOn(let sysctls): return "bridge netfilter was off; turned on \(sysctls.joined(separator: ", ")) so that bridged traffic reaches zonegate's rules (as Docker does)"
                    case .moduleMissing: return "br_netfilter is not loaded: traffic between containers on one bridge is not filtered (modprobe br_netfilter)"
                    }
                },
                hostAddresses: hostAddresses, flowLog: flowLog?.records)
            let reconciler = Reconciler(environment: environment, timing: ReconcilerTiming(resyncInterval: resyncInterval.duration),
                                        logger: logger)
            logger.info("starting", metadata: ["policies": "\(directory)", "docker": "\(docker.url)",
                                               "resync_interval": "\(resyncInterval)"])
            let hangups = Task {
                for await _ in await UnixSignalsSequence(trapping: .sighup) { reconciler.requestReload(reason: "SIGHUP") }
            }
            defer { hangups.cancel() }
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: reconciler, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
                try? await client.shutdown()
            } catch let failure as StartupFailure {
                try? await client.shutdown()
                throw CommandFailure(code: failure.kind == .invalidPolicy ? 1 : 2, message: "zonegate run: \(failure)")
            }
        }
    }

    /// `zonegate inventory`: the live host's containers as an inventory file.
    struct InventoryCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inventory", abstract: "The live Docker host's containers as an inventory file.")

        @OptionGroup var options: PolicyOptions
        @OptionGroup var docker: DockerOptions

        func run() async throws {
            // The policy chooses the networks zonegate manages; without a readable policy, all of them.
            let managed = (try? options.read()).flatMap { try? $0.get() }?.defaults.networks
            let inventory = try await docker.inventory(for: "inventory", managedNetworks: managed)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(inventory), as: UTF8.self))
            for attachment in inventory.unenforced { printError("warning: \(attachment)") }
        }
    }
}
