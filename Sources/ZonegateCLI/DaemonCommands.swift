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
            discussion: """
                SIGHUP or a change in the policy directory reloads the policy. The rules stay in the kernel when it stops.
                One run per host: it holds an exclusive lock on \(HostLock.defaultPath) (holding its pid), and a second \
                refuses to start (exit 2, naming the first's pid) before it touches the kernel.
                """)

        @OptionGroup var options: PolicyOptions
        @OptionGroup var docker: DockerOptions

        @Option(name: .long, help: ArgumentHelp(
            "The full comparison with Docker and the kernel that repairs drift, every DURATION: \(ResyncInterval.bounds), such as 30s, 5m or 1.5h.",
            valueName: "DURATION"))
        var resyncInterval = "30s"

        @Option(name: .long, help: "text or json (one object a line; counts and durations are JSON numbers, lists arrays).")
        var logFormat: LogFormat = .text

        func validate() throws {
            _ = try ResyncInterval.parse(resyncInterval)
        }

        func run() async throws {
            let resync = try ResyncInterval.parse(resyncInterval)
            // Before anything that touches the kernel (sysctls, tables): a second daemon refuses here.
            let lock: HostLock
            do {
                lock = try HostLock()
            } catch {
                throw CommandFailure.environment("zonegate run: \(error)")
            }
            defer { withExtendedLifetime(lock) {} }
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
            let reconciler = Reconciler(environment: environment, timing: ReconcilerTiming(resyncInterval: resync),
                                        logger: logger)
            logger.info("starting", metadata: ["policies": "\(directory)", "docker": "\(docker.url)",
                                               "resync_interval": "\(resyncInterval)", "pid": .number(Int(getpid()))])
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
            let managed = try options.managedNetworks()
            let inventory = try await docker.inventory(for: "inventory", managedNetworks: managed)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(inventory), as: UTF8.self))
            for attachment in inventory.unenforced { ErrorOutput.warning("\(attachment)") }
        }
    }
}

/// `--resync-interval`: a number and a unit (`ms`, `s`, `m`, `h`), within `bounds`. Anything else
/// (`inf`, `nan`, `1e300s`, `0`, negative) is a usage error, never a conversion that traps.
enum ResyncInterval {
    static let minimum: Duration = .seconds(1)
    static let maximum: Duration = .seconds(24 * 3600)
    static let bounds = "from 1s to 24h"

    static func parse(_ text: String) throws -> Duration {
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        let invalid = ValidationError("--resync-interval '\(text.prefix(40))' is not a duration \(bounds), such as 30s, 5m or 1.5h")
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) && Double(text.dropLast($0.suffix.count)) != nil }),
              let value = Double(text.dropLast(unit.suffix.count)), value.isFinite else { throw invalid }
        let milliseconds = value * unit.milliseconds
        // Compared as Double first: only a value known to be in range is converted to an integer.
        guard milliseconds >= 1000, milliseconds <= 86_400_000 else {
            throw ValidationError("--resync-interval \(text.prefix(40)) is out of range: it must be \(bounds)")
        }
        return .milliseconds(Int64(milliseconds.rounded()))
    }
}
