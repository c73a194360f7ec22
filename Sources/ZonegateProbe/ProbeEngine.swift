import Foundation
import CZonegateProbe
import Glibc
import ZonegatePolicy

/// Lets a caller stop a run from another thread (a signal handler's task, a timeout): attempts
/// in flight end as `not-probed`, and the run cleans up and returns at once.
public final class ProbeCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}
    public func cancel() { lock.withLock { cancelled = true } }
    public var isCancelled: Bool { lock.withLock { cancelled } }
}

/// `verify --probe`'s engine: real connection attempts for each flow of a plan, made by
/// zonegate itself on a thread of its own, which enters each source's network namespace
/// (setns) to create that source's sockets and then drives every socket from one epoll loop.
///
/// ```swift
/// let report = try await ProbeEngine.run(plan)          // or ProbeEngine.runBlocking(plan)
/// for result in report.results where !result.agrees { print(result.flow, result.outcome, result.note ?? "") }
/// ```
public enum ProbeEngine {
    /// Runs the plan on a dedicated thread and waits for it; task cancellation stops it.
    public static func run(_ plan: ProbePlan, options: ProbeOptions = ProbeOptions()) async throws -> ProbeReport {
        let cancellation = ProbeCancellation()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                startThread {
                    continuation.resume(with: Result { try ProbeRun(plan: plan, options: options, cancellation: cancellation).execute() })
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Runs the plan on a dedicated thread and blocks the caller until it is done.
    public static func runBlocking(_ plan: ProbePlan, options: ProbeOptions = ProbeOptions(),
                                   cancellation: ProbeCancellation = ProbeCancellation()) throws -> ProbeReport {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<ProbeReport, Error>?
        startThread {
            outcome = Result { try ProbeRun(plan: plan, options: options, cancellation: cancellation).execute() }
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }

    /// A fresh thread: setns changes only the calling thread, so the run never borrows a
    /// thread of the cooperative pool or the caller's.
    private static func startThread(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = "zonegate-probe"
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// One run: set-up (namespaces, outside host, listeners), the epoll loop, clean-up.
final class ProbeRun {
    let plan: ProbePlan
    let options: ProbeOptions
    let cancellation: ProbeCancellation
    private let start = monotonicNanoseconds()
    private var containers: [String: ProbeContainer] = [:]
    private var hostNamespace: Int32 = -1
    private var currentNamespace: Int32 = -1
    private var namespaces: [String: Int32] = [:]
    private var namespaceFailures: [String: String] = [:]
    private var outside: OutsideNamespace?
    private var outsideFailure: String?
    private var sctpFailure: String?
    private var listeners: [ListenerKey: Listener] = [:]
    private var listenerList: [Listener] = []
    private var attempts: [Attempt] = []
    private var flowNotes: [Int: String] = [:]
    private var epoll: Int32 = -1
    /// Neighbour entries this run may add per family (IPv4 true) within `NeighbourTable.window`.
    private var neighbourBudget: [Bool: Int] = [:]
    /// Until when each neighbour entry a started attempt needs is pinned: it counts against the
    /// budget until the kernel may collect it again.
    private var pairUse: [PairKey: UInt64] = [:]
    private var pairsInWindow: [Bool: Int] = [true: 0, false: 0]
    /// Per window length (so each queue is in time order): when a pair's entry may be collected.
    private var pairExpiry: [UInt64: [(time: UInt64, key: PairKey)]] = [:]
    private var pairExpiryHead: [UInt64: Int] = [:]
    private var tableFullsBefore: [Bool: Int] = [:]
    /// Entries of containers' namespaces that probes create and delete again once no started
    /// attempt needs them, so that they stop counting against the shared table at once instead
    /// of for the seconds the kernel keeps a used entry. Counted here while held.
    private var heldEntries: [PairKey: Int] = [:]
    /// Per container whose namespace's entries can be deleted: a netlink socket made inside it,
    /// its links, and the addresses it had entries for before the run (never deleted).
    private var neighbourAccess: [String: NeighbourAccess] = [:]

    struct NeighbourAccess {
        let netlink: RouteNetlink
        let links: [Int32]
        let before: Set<IPAddress>
    }

    /// A neighbour entry: in `source`'s namespace, for `address` (on the same link), or for
    /// its gateway of that family (`address` nil).
    struct PairKey: Hashable {
        var source: ProbeSource
        var address: IPAddress?
        var ipv4: Bool
    }

    /// The neighbour entries an attempt needs, each with how long it stays pinned after the
    /// attempt starts. Both ends of a link get one: the source resolves the destination (its
    /// entry is pinned `NeighbourTable.window`), and the destination, on the request, records the
    /// source and, once its answer confirms it (the DELAY state's `delay_first_probe_time`, 5 s),
    /// updates it again (pinned `NeighbourTable.answerWindow`). Containers that share no bridge
    /// reach each other through their gateway: the source's entry for it, the host's for the
    /// destination, the destination's for its gateway. The host resolves every container
    /// directly, for its own probes and when it forwards the outside namespace's.
    private func neighbourKeys(_ attempt: Attempt) -> [(key: PairKey, window: UInt64)] {
        let ipv4 = attempt.address.isIPv4
        let window = NeighbourTable.window.nanoseconds, answer = NeighbourTable.answerWindow.nanoseconds
        let destination = ProbeSource.container(plan.flows[attempt.flow].to)
        switch attempt.source {
        case .host:
            return [(PairKey(source: .host, address: attempt.address, ipv4: ipv4), window),
                    (PairKey(source: destination, address: nil, ipv4: ipv4), answer)]
        case .world:
            return [(PairKey(source: .world, address: nil, ipv4: ipv4), window),
                    (PairKey(source: .host, address: attempt.address, ipv4: ipv4), window),
                    (PairKey(source: destination, address: nil, ipv4: ipv4), answer)]
        case .container(let name):
            let ownBridges = containers[name]?.bridges ?? []
            let theirs = containers[plan.flows[attempt.flow].to]?.bridges ?? []
            if !ownBridges.isEmpty && !theirs.isEmpty && Set(ownBridges).isDisjoint(with: theirs) {
                return [(PairKey(source: attempt.source, address: nil, ipv4: ipv4), window),
                        (PairKey(source: .host, address: attempt.address, ipv4: ipv4), window),
                        (PairKey(source: destination, address: nil, ipv4: ipv4), answer)]
            }
            let own = containers[name]?.addresses.first { $0.isIPv4 == ipv4 }
            return [(PairKey(source: attempt.source, address: attempt.address, ipv4: ipv4), window),
                    (PairKey(source: destination, address: own, ipv4: ipv4), answer)]
        }
    }

    init(plan: ProbePlan, options: ProbeOptions, cancellation: ProbeCancellation) {
        self.plan = plan
        self.options = options
        self.cancellation = cancellation
    }

    struct ListenerKey: Hashable {
        var container: String
        var address: IPAddress
        var proto: PortProtocol
        var port: UInt16
    }

    final class Listener {
        let key: ListenerKey
        var fd: Int32 = -1
        var kind: ProbeListener = .none
        /// Why no listener could be placed and the port is not taken either.
        var failure: String?
        init(_ key: ListenerKey) { self.key = key }
    }

    final class Attempt {
        let flow: Int
        let source: ProbeSource
        let address: IPAddress
        let port: ServicePort
        let listener: Listener?
        var fd: Int32 = -1
        /// A second connection, opened when the first has no answer halfway through its time
        /// (a SYN lost to a burst); the first to connect counts.
        var retryFD: Int32 = -1
        var started: UInt64 = 0
        var sends = 0
        var nextSend: UInt64 = 0
        var outcome: ProbeOutcome?
        var detail = ""
        var refused = false
        /// It ended because its time was up (no answer at all).
        var timedOut = false
        /// Replaced by a second try (`retried`), which the report shows instead.
        var superseded = false
        var retried = false
        var elapsed: UInt64 = 0
        var token: [UInt8] = []
        /// The deletable neighbour entries this attempt holds (`heldEntries`) until it ends.
        var heldEntries: [PairKey] = []

        init(flow: Int, source: ProbeSource, address: IPAddress, port: ServicePort, listener: Listener?) {
            self.flow = flow
            self.source = source
            self.address = address
            self.port = port
            self.listener = listener
        }
    }

    private static let listenerTag: UInt64 = 1 << 62
    /// Attempts that may start at once before `launchRate` paces the rest.
    static let launchBurst = 64

    // MARK: - The run

    func execute() throws -> ProbeReport {
        guard plan.flows.count <= min(options.maxFlows, ProbeOptions.flowLimit) else {
            throw ProbeError("\(plan.flows.count) flows to probe: at most \(min(options.maxFlows, ProbeOptions.flowLimit)) per run")
        }
        guard (1...ProbeOptions.inFlightLimit).contains(options.maxInFlight) else {
            throw ProbeError("maxInFlight must be 1...\(ProbeOptions.inFlightLimit), not \(options.maxInFlight)")
        }
        for container in plan.containers { containers[container.name] = container }
        hostNamespace = try Netns.current()
        currentNamespace = hostNamespace
        epoll = try sys("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        defer { cleanUp() }
        raiseDescriptorLimit()
        openNamespaces()
        checkSCTP()
        if plan.flows.contains(where: { $0.from == .world }) {
            do {
                let inUse = plan.containers.flatMap(\.addresses)
                outside = try OutsideNamespace(avoid: plan.avoid, inUse: inUse, hostNamespace: hostNamespace)
                // A first ARP or neighbour solicitation lost while the new link settles is retried
                // only a second later, after the probe's time is up: let it settle first.
                usleep(UInt32(OutsideNamespace.settleMilliseconds * 1000))
                currentNamespace = hostNamespace
            } catch {
                outsideFailure = "the outside namespace could not be made: \(error)"
                currentNamespace = hostNamespace
            }
        }
        planAttempts()
        placeListeners()
        for ipv4 in [true, false] {
            let table = NeighbourTable(ipv4: ipv4)
            neighbourBudget[ipv4] = max(64, table.threshold - table.entries - NeighbourTable.margin)
            tableFullsBefore[ipv4] = table.tableFulls
        }
        try loop(from: 0, maxInFlight: options.maxInFlight)
        try retryUnansweredAllowedFlows()
        checkRefusals()
        var warnings: [String] = []
        for ipv4 in [true, false] {
            let fulls = NeighbourTable(ipv4: ipv4).tableFulls - (tableFullsBefore[ipv4] ?? 0)
            if fulls > 0 {
                warnings.append("the kernel's \(ipv4 ? "ARP" : "IPv6 neighbour") table overflowed \(fulls) times during the run " +
                                "(net.\(ipv4 ? "ipv4" : "ipv6").neigh.default.gc_thresh3, shared by every namespace): a blocked result may be a lost neighbour lookup")
            }
        }
        return report(warnings: warnings)
    }

    private var deadline: UInt64 { start + options.deadline.nanoseconds }

    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = rlim_t(options.maxInFlight + plan.containers.count * 16 + 256)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(limit.rlim_max, wanted)
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
    }

    private func enter(_ namespace: Int32) throws {
        guard namespace != currentNamespace else { return }
        try Netns.enter(namespace)
        currentNamespace = namespace
    }

    private func namespace(of source: ProbeSource) -> Int32? {
        switch source {
        case .host: hostNamespace
        case .world: outside?.namespace
        case .container(let name): namespaces[name]
        }
    }

    private func openNamespaces() {
        var needed: Set<String> = []
        for flow in plan.flows {
            if case .container(let name) = flow.from { needed.insert(name) }
            if flow.port.proto != .icmp { needed.insert(flow.to) }
        }
        for name in needed.sorted() {
            guard let container = containers[name] else { continue }
            guard let handle = container.namespace else {
                namespaceFailures[name] = "\(name) has no network namespace of its own to enter"
                continue
            }
            do {
                let namespace = try Netns.open(handle.path)
                namespaces[name] = namespace
                neighbourAccess[name] = try? readNeighbours(in: namespace)
            } catch {
                namespaceFailures[name] = error.code == ENOENT
                    ? "\(name) has no network namespace (\(handle.path) is gone: the container is not running)"
                    : "the network namespace of \(name) cannot be opened: \(error)"
            }
        }
    }

    /// A netlink socket inside the namespace (it acts where it was made), its links and the
    /// addresses it holds entries for now.
    private func readNeighbours(in namespace: Int32) throws -> NeighbourAccess {
        try enter(namespace)
        let netlink = try RouteNetlink()
        return NeighbourAccess(netlink: netlink, links: try netlink.linkIndexes(), before: Set(try netlink.neighbours().map(\.address)))
    }

    private func checkSCTP() {
        guard plan.flows.contains(where: { $0.port.proto == .sctp }) else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_SCTP))
        if fd >= 0 {
            close(fd)
        } else {
            sctpFailure = "no SCTP in this kernel (socket(IPPROTO_SCTP): \(String(cString: strerror(errno))))"
        }
    }

    /// One attempt per destination address of a family the source has, sorted by pair of
    /// containers (see the end).
    private func planAttempts() {
        let hostFamilies: Set<Bool> = [true, false]
        for (index, flow) in plan.flows.enumerated() {
            guard let destination = containers[flow.to] else {
                flowNotes[index] = "\(flow.to) is not in the inventory"
                continue
            }
            if flow.port.proto == .sctp, let sctpFailure {
                flowNotes[index] = sctpFailure
                continue
            }
            let families: Set<Bool>
            switch flow.from {
            case .host:
                families = hostFamilies
            case .world:
                guard let outside else {
                    flowNotes[index] = outsideFailure ?? "no outside namespace"
                    continue
                }
                families = Set(outside.addresses.map(\.isIPv4))
                if families.isEmpty {
                    flowNotes[index] = outside.unavailable.values.sorted().joined(separator: "; ")
                    continue
                }
            case .container(let name):
                guard let source = containers[name] else {
                    flowNotes[index] = "\(name) is not in the inventory"
                    continue
                }
                if let failure = namespaceFailures[name] {
                    flowNotes[index] = failure
                    continue
                }
                families = Set(source.addresses.map(\.isIPv4))
            }
            let targets = destination.addresses.filter { families.contains($0.isIPv4) }
            guard !targets.isEmpty else {
                let unavailable = flow.from == .world ? outside?.unavailable.values.sorted().joined(separator: "; ") : nil
                flowNotes[index] = unavailable.map { "no address family in common with \(flow.to): \($0)" }
                    ?? "\(flow.from) and \(flow.to) have no address family in common"
                continue
            }
            for address in targets {
                var listener: Listener?
                if flow.port.proto != .icmp {
                    let key = ListenerKey(container: flow.to, address: address, proto: flow.port.proto, port: flow.port.number)
                    if let existing = listeners[key] {
                        listener = existing
                    } else {
                        let made = Listener(key)
                        listeners[key] = made
                        listenerList.append(made)
                        listener = made
                    }
                }
                attempts.append(Attempt(flow: index, source: flow.from, address: address, port: flow.port, listener: listener))
            }
        }
        // Container rows by pair of containers, both directions together: the two neighbour
        // entries a pair needs (one in each namespace) serve both, while both are still pinned.
        func order(_ attempt: Attempt) -> String {
            switch attempt.source {
            case .host: return "0"
            case .world: return "1"
            case .container(let name):
                let other = plan.flows[attempt.flow].to
                return "2" + min(name, other) + "\u{0}" + max(name, other) + "\u{0}" + name
            }
        }
        let keys = attempts.map(order)
        attempts = attempts.indices.sorted { (keys[$0], attempts[$0].flow) < (keys[$1], attempts[$1].flow) }.map { attempts[$0] }
    }

    /// A temporary listener on each destination address and port that has none: binding
    /// fails with EADDRINUSE where the container's own service (or any socket) holds it.
    private func placeListeners() {
        for listener in listenerList {
            let key = listener.key
            guard let namespace = namespaces[key.container] else {
                listener.failure = namespaceFailures[key.container] ?? "\(key.container) has no network namespace"
                continue
            }
            do {
                try enter(namespace)
                let kind = socketKind(key.proto, ipv4: key.address.isIPv4)
                let fd = try openSocket(family: family(of: key.address), type: kind.type, proto: kind.proto)
                if !key.address.isIPv4 { setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
                let bound = SocketAddress(key.address, port: key.port).withPointer { bind(fd, $0, $1) }
                if bound != 0 {
                    let code = errno
                    close(fd)
                    if code == EADDRINUSE {
                        listener.kind = .existing
                    } else if code == EADDRNOTAVAIL {
                        listener.failure = "\(key.container) does not hold \(key.address) in its namespace"
                    } else {
                        listener.failure = "no temporary listener on \(key.address) \(key.port)/\(key.proto.rawValue): \(SystemCallError(function: "bind", code: code))"
                    }
                    continue
                }
                if key.proto != .udp { try sys("listen") { listen(fd, 4096) } }
                listener.fd = fd
                listener.kind = .temporary
                try register(fd, events: UInt32(EPOLLIN.rawValue), tag: Self.listenerTag | UInt64(listenerIndex(listener)))
            } catch {
                listener.failure = "no temporary listener on \(key.address) \(key.port)/\(key.proto.rawValue): \(error)"
            }
        }
    }

    private lazy var listenerIndexes: [ObjectIdentifier: Int] = Dictionary(
        uniqueKeysWithValues: listenerList.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
    private func listenerIndex(_ listener: Listener) -> Int { listenerIndexes[ObjectIdentifier(listener)]! }

    private func register(_ fd: Int32, events: UInt32, tag: UInt64) throws {
        var event = epoll_event(events: events, data: epoll_data_t(u64: tag))
        try sys("epoll_ctl") { epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) }
    }

    // MARK: - The loop

    /// Allowed flows whose every attempt went unanswered are tried once more, a few at a time:
    /// under the load of a full run a lost ARP or neighbour solicitation is retried by the kernel
    /// only after a second, when the attempt's time is up (seen on 50 containers: ~3% of the
    /// allowed flows the first time, none or one the second). A denied flow is not retried: a
    /// leak shows in the first pass already.
    private func retryUnansweredAllowedFlows() throws {
        var byFlow: [Int: [Attempt]] = [:]
        for attempt in attempts { byFlow[attempt.flow, default: []].append(attempt) }
        let start = attempts.count
        for (flow, made) in byFlow.sorted(by: { $0.key < $1.key }) where plan.flows[flow].allowed && options.resends > 0 {
            guard made.allSatisfy({ $0.outcome == .blocked && $0.timedOut }) else { continue }
            for old in made {
                old.superseded = true
                let fresh = Attempt(flow: old.flow, source: old.source, address: old.address, port: old.port, listener: old.listener)
                fresh.retried = true
                attemptIndexes[ObjectIdentifier(fresh)] = attempts.count
                attempts.append(fresh)
            }
        }
        if attempts.count > start { try loop(from: start, maxInFlight: min(options.maxInFlight, 256)) }
    }

    private func loop(from first: Int, maxInFlight: Int) throws {
        var next = first
        var inFlight = 0
        var events = [epoll_event](repeating: epoll_event(), count: 512)
        var lastScan: UInt64 = 0
        let loopStart = monotonicNanoseconds()
        var active: [Int] = []
        while next < attempts.count || inFlight > 0 {
            let now = monotonicNanoseconds()
            let stopping: String? = cancellation.isCancelled ? "the run was cancelled"
                : now >= deadline ? "the run's deadline (\(options.deadline)) passed" : nil
            if let stopping {
                for attempt in attempts where attempt.outcome == nil {
                    finish(attempt, .notProbed, stopping)
                }
                return
            }
            // Paced: a burst of thousands of SYNs (and the ARP they set off, flooded to every
            // bridge port) overflows the per-CPU backlog and loses packets.
            let budget = Int((now - loopStart) / 1_000_000_000 * UInt64(options.launchRate)
                             + (now - loopStart) % 1_000_000_000 * UInt64(options.launchRate) / 1_000_000_000) + Self.launchBurst - (next - first)
            var launched = 0
            expirePairs(now: now)
            while inFlight < maxInFlight && next < attempts.count && launched < budget && neighbourAllows(attempts[next], now: now) {
                launched += 1
                let attempt = attempts[next]
                next += 1
                launch(attempt)
                if attempt.outcome == nil {
                    inFlight += 1
                    active.append(next - 1)
                }
            }
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), 10) }
            if count < 0 && errno != EINTR { throw SystemCallError(function: "epoll_wait", code: errno) }
            for event in events.prefix(max(0, Int(count))) {
                let tag = event.data.u64
                if tag & Self.listenerTag != 0 {
                    serve(listenerList[Int(tag & ~Self.listenerTag)])
                } else {
                    let attempt = attempts[Int(tag)]
                    if attempt.outcome == nil {
                        handle(attempt, events: event.events)
                        if attempt.outcome != nil { inFlight -= 1 }
                    }
                }
            }
            let after = monotonicNanoseconds()
            if after - lastScan >= 5_000_000 {
                lastScan = after
                active.removeAll { attempts[$0].outcome != nil }
                for index in active where timeout(attempts[index], now: after) { inFlight -= 1 }
            }
        }
    }

    /// Every (source, destination address) pair needs a neighbour entry in the source's
    /// namespace (ARP or neighbour discovery; counted per destination even where the gateway
    /// is the next hop, which over-counts). The kernel's tables are shared by all namespaces
    /// and hold gc_thresh3 entries (1024 by default); an entry used in the last 5 s cannot be
    /// collected, and a lookup that finds the table full drops the packet silently, which would
    /// read as `blocked`. So new pairs start only while the run's share of the table allows;
    /// a container's entry for a peer on its link is deleted, and its share freed, as soon as the
    /// last attempt that needs it ends (`release`), the others when the kernel may collect them.
    private func neighbourAllows(_ attempt: Attempt, now: UInt64) -> Bool {
        let keys = neighbourKeys(attempt)
        let ipv4 = attempt.address.isIPv4
        let fresh = keys.count { deletable($0.key) ? heldEntries[$0.key] == nil : pairUse[$0.key] == nil }
        if fresh > 0 {
            guard pairsInWindow[ipv4, default: 0] + fresh <= neighbourBudget[ipv4, default: 64] else { return false }
            pairsInWindow[ipv4, default: 0] += fresh
        }
        for (key, window) in keys {
            if deletable(key) {
                heldEntries[key, default: 0] += 1
                attempt.heldEntries.append(key)
                continue
            }
            let expiry = now + window
            if let held = pairUse[key], held >= expiry { continue }
            pairUse[key] = expiry
            pairExpiry[window, default: []].append((expiry, key))
        }
        return true
    }

    /// A container's entry for a peer on its own link, which the run can delete once used; not
    /// its gateway's (one per container, and shared with its own traffic) nor one it had before.
    private func deletable(_ key: PairKey) -> Bool {
        guard case .container(let name) = key.source, let address = key.address, let access = neighbourAccess[name] else { return false }
        return !access.before.contains(address)
    }

    /// Ends the attempt's hold on its entries; deletes each no other started attempt holds.
    private func release(_ attempt: Attempt) {
        for key in attempt.heldEntries {
            let holders = heldEntries[key, default: 1] - 1
            guard holders == 0 else {
                heldEntries[key] = holders
                continue
            }
            heldEntries[key] = nil
            pairsInWindow[key.ipv4, default: 1] -= 1
            guard case .container(let name) = key.source, let address = key.address, let access = neighbourAccess[name] else { continue }
            for link in access.links { _ = try? access.netlink.deleteNeighbour(address, index: link) }
        }
        attempt.heldEntries = []
    }

    private func expirePairs(now: UInt64) {
        for window in pairExpiry.keys {
            var queue = pairExpiry[window]!, head = pairExpiryHead[window, default: 0]
            while head < queue.count && queue[head].time <= now {
                let (time, key) = queue[head]
                head += 1
                // Only the pair's latest expiry releases it.
                if let held = pairUse[key], held == time {
                    pairUse[key] = nil
                    pairsInWindow[key.ipv4, default: 1] -= 1
                }
            }
            if head > 4096 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            pairExpiry[window] = queue
            pairExpiryHead[window] = head
        }
    }

    /// Creates the attempt's socket in its source's namespace and sends its first packet.
    private func launch(_ attempt: Attempt) {
        guard let namespace = namespace(of: attempt.source) else {
            finish(attempt, .notProbed, "no namespace for \(attempt.source)")
            return
        }
        if let listener = attempt.listener, listener.kind == .none {
            finish(attempt, .notProbed, listener.failure ?? "no listener")
            return
        }
        let ipv4 = attempt.address.isIPv4
        do {
            try enter(namespace)
            let kind = socketKind(attempt.port.proto, ipv4: ipv4)
            attempt.fd = try openSocket(family: family(of: attempt.address), type: kind.type, proto: kind.proto)
        } catch {
            finish(attempt, .notProbed, "no socket in \(attempt.source)'s namespace: \(error)")
            return
        }
        attempt.started = monotonicNanoseconds()
        let tag = UInt64(attemptIndex(attempt))
        let port = attempt.port.proto == .icmp ? 0 : attempt.port.number
        let connected = SocketAddress(attempt.address, port: port).withPointer { connect(attempt.fd, $0, $1) }
        let code = connected == 0 ? 0 : errno
        switch attempt.port.proto {
        case .tcp, .sctp:
            if code == 0 {
                finish(attempt, .reached, "connected")
                return
            }
            guard code == EINPROGRESS else {
                immediateFailure(attempt, code)
                return
            }
            do { try register(attempt.fd, events: UInt32(EPOLLOUT.rawValue), tag: tag) } catch {
                finish(attempt, .notProbed, "\(error)")
            }
        case .udp, .icmp:
            guard code == 0 else {
                immediateFailure(attempt, code)
                return
            }
            attempt.token = Array("zonegate-probe-\(tag)-\(UInt32.random(in: 0...UInt32.max))".utf8)
            do { try register(attempt.fd, events: UInt32(EPOLLIN.rawValue), tag: tag) } catch {
                finish(attempt, .notProbed, "\(error)")
                return
            }
            send(attempt)
        }
    }

    /// Opens the second connection of a TCP or SCTP attempt.
    private func retry(_ attempt: Attempt) {
        guard let namespace = namespace(of: attempt.source), (try? enter(namespace)) != nil else { return }
        let kind = socketKind(attempt.port.proto, ipv4: attempt.address.isIPv4)
        guard let fd = try? openSocket(family: family(of: attempt.address), type: kind.type, proto: kind.proto) else { return }
        attempt.retryFD = fd
        let result = SocketAddress(attempt.address, port: attempt.port.number).withPointer { connect(fd, $0, $1) }
        if result == 0 {
            finish(attempt, .reached, "connected")
        } else if errno == EINPROGRESS {
            try? register(fd, events: UInt32(EPOLLOUT.rawValue), tag: UInt64(attemptIndex(attempt)))
        }
    }

    private lazy var attemptIndexes: [ObjectIdentifier: Int] = Dictionary(
        uniqueKeysWithValues: attempts.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
    // (Built on first use, after planAttempts; retries add their own entries.)
    private func attemptIndex(_ attempt: Attempt) -> Int { attemptIndexes[ObjectIdentifier(attempt)]! }

    private func immediateFailure(_ attempt: Attempt, _ code: Int32) {
        switch code {
        case ENETUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT:
            finish(attempt, .notProbed, "\(attempt.source) has no route to \(attempt.address): \(String(cString: strerror(code)))")
        default:
            blocked(attempt, code)
        }
    }

    private func blocked(_ attempt: Attempt, _ code: Int32) {
        if code == ECONNREFUSED { attempt.refused = true }
        let what: String
        switch code {
        case ECONNREFUSED: what = attempt.port.proto == .udp ? "port unreachable" : "connection refused"
        case EHOSTUNREACH: what = "host unreachable (ICMP)"
        case ENETUNREACH: what = "network unreachable (ICMP)"
        case EACCES, EPERM: what = "refused by a local firewall rule (\(String(cString: strerror(code))))"
        default: what = String(cString: strerror(code)).lowercased()
        }
        finish(attempt, .blocked, what)
    }

    /// Sends (again) the datagram or echo request of a UDP or ICMP attempt.
    private func send(_ attempt: Attempt) {
        let now = monotonicNanoseconds()
        attempt.sends += 1
        attempt.nextSend = now + options.answerTimeout.nanoseconds / UInt64(max(1, options.resends + 1))
        var packet: [UInt8]
        if attempt.port.proto == .udp {
            packet = attempt.token
        } else {
            let identifier = UInt16(truncatingIfNeeded: attemptIndex(attempt) &* 2654435761 >> 7)
            packet = [attempt.address.isIPv4 ? 8 : 128, 0, 0, 0,
                      UInt8(identifier >> 8), UInt8(identifier & 0xff), 0, UInt8(attempt.sends & 0xff)] + attempt.token
            if attempt.address.isIPv4 {
                let sum = internetChecksum(packet)
                packet[2] = UInt8(sum >> 8)
                packet[3] = UInt8(sum & 0xff)
            }
        }
        let sent = packet.withUnsafeBytes { Glibc.send(attempt.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent < 0 && errno != EAGAIN {
            let code = errno
            if attempt.sends == 1 { immediateFailure(attempt, code) } else { blocked(attempt, code) }
        }
    }

    private func handle(_ attempt: Attempt, events: UInt32) {
        switch attempt.port.proto {
        case .tcp, .sctp:
            var errors: [Int32] = []
            for fd in [attempt.fd, attempt.retryFD] where fd >= 0 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = Glibc.poll(&poll, 1, 0) == 1
                if ready && error == 0 {
                    finish(attempt, .reached, "connected")
                    return
                }
                if error != 0 { errors.append(error) }
            }
            if let error = errors.first { blocked(attempt, error) }
        case .udp:
            var buffer = [UInt8](repeating: 0, count: 512)
            while attempt.outcome == nil {
                let count = buffer.withUnsafeMutableBytes { recv(attempt.fd, $0.baseAddress, $0.count, 0) }
                if count < 0 {
                    if errno == EAGAIN { return }
                    blocked(attempt, errno)
                    return
                }
                if Array(buffer.prefix(count)) == attempt.token {
                    finish(attempt, .reached, "answered")
                } else if attempt.listener?.kind == .existing {
                    finish(attempt, .reached, "the service answered")
                }
            }
        case .icmp:
            var buffer = [UInt8](repeating: 0, count: 1500)
            while attempt.outcome == nil {
                let count = buffer.withUnsafeMutableBytes { recv(attempt.fd, $0.baseAddress, $0.count, 0) }
                if count < 0 {
                    if errno != EAGAIN { blocked(attempt, errno) }
                    return
                }
                let packet = Array(buffer.prefix(count))
                // IPv4 raw sockets receive the IP header; ICMPv6 ones do not.
                let headerLength = attempt.address.isIPv4 ? Int((packet.first ?? 0) & 0x0f) * 4 : 0
                guard packet.count >= headerLength + 8 else { continue }
                let icmp = Array(packet[headerLength...])
                let reply: UInt8 = attempt.address.isIPv4 ? 0 : 129
                if icmp[0] == reply && Array(icmp[8...]) == attempt.token {
                    finish(attempt, .reached, "echo reply")
                }
            }
        }
    }

    /// Ends an attempt whose time is up, or sends its datagram again. True when it ended.
    private func timeout(_ attempt: Attempt, now: UInt64) -> Bool {
        let proto = attempt.port.proto
        let limit = (proto == .tcp || proto == .sctp ? options.connectTimeout : options.answerTimeout).nanoseconds
        if now - attempt.started >= limit {
            attempt.timedOut = true
            let seconds = Duration.nanoseconds(Int64(limit))
            switch proto {
            case .tcp, .sctp: finish(attempt, .blocked, "no connection in \(seconds)")
            case .udp:
                let silent = attempt.listener?.kind == .existing ? " (the container's own service listens: one that ignores the datagram looks the same)" : ""
                finish(attempt, .blocked, "no answer in \(seconds) to \(attempt.sends) datagrams\(silent)")
            case .icmp: finish(attempt, .blocked, "no echo reply in \(seconds) to \(attempt.sends) requests")
            }
            return true
        }
        if (proto == .tcp || proto == .sctp) && attempt.retryFD < 0 && options.resends > 0 && now - attempt.started >= limit / 2 {
            retry(attempt)
            return attempt.outcome != nil
        }
        if (proto == .udp || proto == .icmp) && now >= attempt.nextSend && attempt.sends <= options.resends {
            send(attempt)
            return attempt.outcome != nil
        }
        return false
    }

    private func finish(_ attempt: Attempt, _ outcome: ProbeOutcome, _ detail: String) {
        guard attempt.outcome == nil else { return }
        attempt.outcome = outcome
        attempt.detail = detail
        attempt.elapsed = attempt.started == 0 ? 0 : monotonicNanoseconds() - attempt.started
        for fd in [attempt.fd, attempt.retryFD] where fd >= 0 {
            if attempt.port.proto == .tcp && outcome == .reached { closeWithReset(fd) } else { close(fd) }
        }
        attempt.fd = -1
        attempt.retryFD = -1
        release(attempt)
    }

    /// Answers at a temporary listener: accept and close (TCP, SCTP), echo (UDP).
    private func serve(_ listener: Listener) {
        if listener.key.proto == .udp {
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                var peer = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(listener.fd, raw.baseAddress, raw.count, 0, $0, &length) }
                    }
                }
                if count < 0 { return }
                // Only the probes' own datagrams are echoed.
                guard buffer.prefix(15).elementsEqual("zonegate-probe-".utf8) else { continue }
                _ = buffer.withUnsafeBytes { raw in
                    withUnsafePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(listener.fd, raw.baseAddress, count, Int32(MSG_NOSIGNAL), $0, length) }
                    }
                }
            }
        } else {
            while true {
                let connection = czg_accept4_cloexec(listener.fd)
                if connection < 0 { return }
                close(connection)
            }
        }
    }

    // MARK: - After the loop

    /// A refused connection to the container's own service: is it the service itself? Asked
    /// from inside the destination's namespace, where no bridge or host rule is in the way.
    private var refusedByService: Set<ListenerKey> = []

    private func checkRefusals() {
        let keys = Set(attempts.filter { $0.refused && $0.listener?.kind == .existing && plan.flows[$0.flow].allowed }.compactMap { $0.listener?.key })
        for key in keys where key.proto != .udp {
            guard let namespace = namespaces[key.container], (try? enter(namespace)) != nil else { continue }
            let kind = socketKind(key.proto, ipv4: key.address.isIPv4)
            guard let fd = try? openSocket(family: family(of: key.address), type: kind.type, proto: kind.proto) else { continue }
            defer { close(fd) }
            let result = SocketAddress(key.address, port: key.port).withPointer { connect(fd, $0, $1) }
            var code = result == 0 ? 0 : errno
            if code == EINPROGRESS {
                var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if Glibc.poll(&poll, 1, 300) == 1 {
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
                }
            }
            if code == ECONNREFUSED { refusedByService.insert(key) }
        }
    }

    /// The other layer that blocked an allowed flow, when the facts name one.
    private func otherLayer(_ flow: ProbeFlow, _ attempts: [Attempt]) -> String? {
        if let refused = attempts.first(where: { $0.listener.map { refusedByService.contains($0.key) } ?? false }) {
            return "the service in \(flow.to) refuses connections to \(refused.address) port \(flow.port.number) itself (checked from inside its namespace)"
        }
        guard let destination = containers[flow.to] else { return nil }
        let layers = plan.otherLayers
        switch flow.from {
        case .world:
            if layers.outsideNeedsPublishedPort && !destination.publishedPorts.contains(flow.port) && flow.port.proto != .icmp {
                return "Docker publishes no such port: \(flow.to) does not publish \(flow.port), and Docker forwards outside traffic only to published ports"
            }
        case .container(let name):
            guard let source = containers[name] else { return nil }
            let shared = Set(source.bridges).intersection(destination.bridges)
            if shared.isEmpty && layers.networksIsolated && !source.bridges.isEmpty && !destination.bridges.isEmpty {
                return "Docker isolates networks: \(name) and \(flow.to) share no network"
            }
            if !shared.isEmpty && shared.isSubset(of: layers.bridgesWithoutICC) {
                return "inter-container traffic disabled on \(shared.sorted().joined(separator: ", ")) (com.docker.network.bridge.enable_icc=false)"
            }
        case .host:
            break
        }
        return nil
    }

    private func report(warnings: [String]) -> ProbeReport {
        var byFlow: [Int: [Attempt]] = [:]
        for attempt in attempts where !attempt.superseded { byFlow[attempt.flow, default: []].append(attempt) }
        var results: [ProbeResult] = []
        results.reserveCapacity(plan.flows.count)
        for (index, flow) in plan.flows.enumerated() {
            let made = (byFlow[index] ?? []).sorted { $0.address < $1.address }
            let probeAttempts = made.map {
                ProbeAttempt(address: $0.address, outcome: $0.outcome ?? .notProbed, detail: $0.detail,
                             listener: $0.listener?.kind ?? .none, milliseconds: Int($0.elapsed / 1_000_000))
            }
            var outcome = ProbeOutcome.notProbed
            var note = flowNotes[index]
            if probeAttempts.contains(where: { $0.outcome == .reached }) {
                outcome = .reached
            } else if probeAttempts.contains(where: { $0.outcome == .blocked }) {
                outcome = .blocked
            } else if note == nil {
                note = probeAttempts.map(\.detail).first ?? "not attempted"
            }
            if outcome != .notProbed {
                let outcomes = Set(probeAttempts.map(\.outcome))
                if outcome == .blocked || outcomes.count > 1 {
                    note = probeAttempts.map(\.description).joined(separator: "; ")
                }
                if made.contains(where: \.retried) { note = "second try: " + (note ?? outcome.rawValue) }
            }
            let blockedBy = flow.allowed && outcome == .blocked ? otherLayer(flow, made) : nil
            results.append(ProbeResult(flow: flow, outcome: outcome, note: note, blockedBy: blockedBy, attempts: probeAttempts))
        }
        let outsideHost = outside.map { OutsideHost(addresses: $0.addresses, hostAddresses: $0.hostAddresses, hostLink: $0.hostLink) }
        return ProbeReport(results: results, outside: outsideHost,
                           elapsed: .nanoseconds(Int64(monotonicNanoseconds() - start)), attemptCount: attempts.count,
                           warnings: warnings)
    }

    /// Closes every socket and listener, removes the outside namespace, and returns the thread
    /// to the host's namespace. Whatever a crash skips goes with the process: nothing is named
    /// or bind-mounted.
    private func cleanUp() {
        for attempt in attempts {
            for fd in [attempt.fd, attempt.retryFD] where fd >= 0 { close(fd) }
            attempt.fd = -1
            attempt.retryFD = -1
            release(attempt)
        }
        neighbourAccess = [:]
        for listener in listenerList where listener.fd >= 0 {
            close(listener.fd)
            listener.fd = -1
        }
        if hostNamespace >= 0 { _ = try? enter(hostNamespace) }
        outside?.remove()
        for fd in namespaces.values { close(fd) }
        namespaces = [:]
        if epoll >= 0 { close(epoll) }
        if hostNamespace >= 0 { close(hostNamespace) }
    }
}

/// The kernel's neighbour table of one family (ARP or IPv6 neighbour discovery), which every
/// network namespace shares.
struct NeighbourTable {
    /// How long after its last use a pair still holds its entry: the kernel's forced collection
    /// spares entries updated in the last 5 s; one more for the attempt's own time.
    static let window: Duration = .milliseconds(6200)
    /// The answering end's entry: created on the request, moved to DELAY by the answer and
    /// updated again when confirmed `delay_first_probe_time` (5 s) later; 5 s more, and one for the attempt.
    static let answerWindow: Duration = .milliseconds(11200)
    /// Entries left to the rest of the host.
    static let margin = 128

    var entries = 0
    var tableFulls = 0
    var threshold = 1024

    init(ipv4: Bool) {
        // Columns: entries ... table_fulls, in hex, one row per CPU; entries is table-wide.
        // The kernel shows the (host-wide) table only in the host's first namespace: from any other,
        // through pid 1's view.
        let name = ipv4 ? "arp_cache" : "ndisc_cache"
        let text = readSmallFile("/proc/net/stat/\(name)") ?? readSmallFile("/proc/1/net/stat/\(name)") ?? ""
        let rows = text.split(separator: "\n").dropFirst()
        for (index, row) in rows.enumerated() {
            let fields = row.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first, let last = fields.last else { continue }
            if index == 0 { entries = Int(first, radix: 16) ?? 0 }
            tableFulls += Int(last, radix: 16) ?? 0
        }
        // Readable only from the host's first namespace; elsewhere the kernel default stands.
        if let text = readSmallFile("/proc/sys/net/\(ipv4 ? "ipv4" : "ipv6")/neigh/default/gc_thresh3"),
           let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            threshold = value
        }
    }
}
