import Foundation
import Glibc
import Testing
import ZonegateNetfilter
import ZonegatePolicy
import ZonegateRuleset
import ZonegateTesting

/// The deny and audit chains log to NFLOG, and `FlowLogReader` hands back exactly the flows the
/// kernel judged, with their addresses, ports, bridge ports and kind. Runs in the test's private
/// network namespace with `PacketVerdictTests`' fake host and policy.
@Suite(.serialized, .enabled(if: try TestLayer.kernel.runs(), "kernel tests: ZONEGATE_KERNEL_TESTS=1 (make test)"))
struct FlowLogReaderTests {
    /// What identifies a logged flow here (the source port is the client's ephemeral one).
    struct Seen: Hashable, CustomStringConvertible {
        var kind: LoggedFlow.Kind
        var source: String, destination: String
        var transport: LoggedFlow.Transport
        var destinationPort: UInt16
        var inInterface: String?, outInterface: String?
        var description: String {
            "\(kind) \(source) -> \(destination) \(transport)/\(destinationPort) via \(inInterface ?? "?") -> \(outInterface ?? "?")"
        }
    }

    /// Everything the reader delivers until `duration` has passed, then stops it.
    private func records(of reader: FlowLogReader, for duration: Duration) async throws -> [FlowLogRecord] {
        let stopper = Task {
            try? await Task.sleep(for: duration)
            reader.stop()
        }
        defer { stopper.cancel() }
        var records: [FlowLogRecord] = []
        for try await record in reader.records { records.append(record) }
        return records
    }

    @Test func deniedAndAuditedFlowsArriveAsLoggedFlows() async throws {
        let host = try PacketVerdictTests.Host([("web1", "web", .primary), ("api1", "api", .primary), ("corp1", "corp", .primary)])
        try host.enforcer.enforce(try host.evaluator())
        let reader = try FlowLogReader()
        let api = host.containers["api1"]!, web = host.containers["web1"]!, corp = host.containers["corp1"]!
        // api's egress is restricted and no rule lets api reach web: denied. corp (audit mode) has
        // restricted ingress and no rule lets web in: it passes, logged as would-be-denied.
        // Half-second probes send one SYN each (the first retransmission is due after a second).
        #expect(try !Probe.tcpConnect(from: api, to: web.ipv4, port: 8443, timeout: .milliseconds(500)))
        #expect(try !Probe.udpExchange(from: api, to: web.ipv4, port: 5353, timeout: .milliseconds(500)))
        #expect(try Probe.tcpConnect(from: web, to: corp.ipv4, port: 8080, timeout: .seconds(2)))
        #expect(try !Probe.tcpConnect(from: api, to: web.ipv6, port: 8443, timeout: .milliseconds(500)))
        // NFLOG flushes its batch within 100 ms; a second leaves room for a slow machine.
        let records = try await records(of: reader, for: .seconds(1))
        let flows = records.compactMap { record -> LoggedFlow? in
            if case .flow(let flow) = record { return flow }
            return nil
        }
        let seen = flows.map {
            Seen(kind: $0.kind, source: $0.source.description, destination: $0.destination.description, transport: $0.transport,
                 destinationPort: $0.destinationPort, inInterface: $0.inInterface, outInterface: $0.outInterface)
        }
        #expect(seen == [
            Seen(kind: .deny, source: api.ipv4, destination: web.ipv4, transport: .tcp, destinationPort: 8443,
                 inInterface: api.hostVeth, outInterface: web.hostVeth),
            Seen(kind: .deny, source: api.ipv4, destination: web.ipv4, transport: .udp, destinationPort: 5353,
                 inInterface: api.hostVeth, outInterface: web.hostVeth),
            Seen(kind: .audit, source: web.ipv4, destination: corp.ipv4, transport: .tcp, destinationPort: 8080,
                 inInterface: web.hostVeth, outInterface: corp.hostVeth),
            Seen(kind: .deny, source: api.ipv6, destination: web.ipv6, transport: .tcp, destinationPort: 8443,
                 inInterface: api.hostVeth, outInterface: web.hostVeth),
        ], "\(records)")
        #expect(flows.allSatisfy { $0.sourcePort >= 1024 }, "clients send from ephemeral ports: \(flows.map(\.sourcePort))")
        #expect(records.count == flows.count, "nothing lost: \(records)")
    }

    @Test func oneReaderPerGroupAndCancellingReleasesIt() async throws {
        let reader = try FlowLogReader()
        #expect { try FlowLogReader() } throws: { ($0 as? NetfilterError)?.errno == EPERM }
        // The daemon stops by cancelling the task that reads: the thread ends and the group is free.
        let consumer = Task { for try await _ in reader.records {} }
        consumer.cancel()
        _ = try? await consumer.value
        var again: FlowLogReader?
        for _ in 0..<20 where again == nil {
            again = try? FlowLogReader()
            if again == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(again != nil, "the group was not released within a second of cancelling")
        again?.stop()
    }
}
