import ZonegatePolicy

/// Ingress or egress.
enum Side: String, Hashable { case ingress, egress }

/// What the prover knows of one policy, computed once for all its assertions: each zone's
/// selector compiled, every CIDR block of the rules and assertions, and the address regions they
/// cut the address space into. Answers "can some peer meet these constraints?" exactly, with a
/// cache (the searches ask the same questions many times).
final class ProverModel {
    let policy: Policy
    private let zoneIndex: [String: Int]
    private let selectors: [CompiledSelector]
    private let blockIndex: [CIDRBlock: Int]
    /// The distinct sets of blocks (indices) that one address can lie in: one per region class.
    private let regions: [Set<Int>]
    /// Per block, the region classes inside it.
    private let regionsInBlock: [[Int]]
    private var cache: [Query: Bool] = [:]
    private var labelCache: [LabelQuery: Bool] = [:]
    private var candidates: [CandidateKey: [Int]] = [:]
    private var openSides: [CandidateKey: [(zone: String, text: String)]?] = [:]
    /// Per party and side, the restricting zone that last showed a restricted member exists.
    private var lastRestricting: [CandidateKey: Int] = [:]
    /// Per endpoint, the rules that name it in `from` (and in `to`).
    private let rulesNamingInFrom: [Endpoint: [Int]]
    private let rulesNamingInTo: [Endpoint: [Int]]
    private var reachable: [ReachKey: RuleReach] = [:]
    private var compatible: [Endpoint: Set<Int>] = [:]

    /// `also`: assertions outside the policy whose CIDR endpoints must be known too.
    init(policy: Policy, also extra: [Assertion] = []) {
        self.policy = policy
        zoneIndex = Dictionary(policy.zones.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        selectors = policy.zones.map { CompiledSelector($0.selector) }
        var blocks: [CIDRBlock] = []
        var blockIndex: [CIDRBlock: Int] = [:]
        let endpoints = policy.rules.flatMap { $0.from + $0.to } + (policy.assertions + extra).flatMap { $0.from + $0.to }
        for case .cidr(let block) in endpoints where blockIndex[block] == nil {
            blockIndex[block] = blocks.count
            blocks.append(block)
        }
        self.blockIndex = blockIndex
        (regions, regionsInBlock) = Self.regionClasses(blocks)
        var inFrom: [Endpoint: [Int]] = [:], inTo: [Endpoint: [Int]] = [:]
        for (index, rule) in policy.rules.enumerated() {
            for endpoint in Set(rule.from) { inFrom[endpoint, default: []].append(index) }
            for endpoint in Set(rule.to) { inTo[endpoint, default: []].append(index) }
        }
        rulesNamingInFrom = inFrom
        rulesNamingInTo = inTo
    }

    /// Drops the answers about searches' constraints (they rarely recur from one assertion to
    /// the next, and grow with the rules); keeps those about parties.
    func forgetSearches() {
        cache.removeAll()
        labelCache.removeAll()
    }

    // MARK: - Rules a party can meet

    /// The rules whose `from` (or `to`) some member of the party matches, and those whose side a
    /// container of the party matches: one check per distinct endpoint of the rules, not per rule.
    func rules(_ side: RuleSide, meeting party: Endpoint) -> RuleReach {
        let key = ReachKey(side: side, party: party)
        if let known = reachable[key] { return known }
        var reach = RuleReach(any: RuleBits(count: policy.rules.count), containers: RuleBits(count: policy.rules.count))
        let peer = PeerConstraint(party: party)
        let hasContainers = containerSatisfiable(peer)
        let partySelectors = containerSelectors(party)?.selectors ?? []
        // Zones: one label question per zone and party, shared by both sides.
        let zones = hasContainers ? compatibleZones(party, partySelectors) : []
        let outsideOrHost = outsideSatisfiable(peer) || hostSatisfiable(peer)
        for (endpoint, rules) in side == .from ? rulesNamingInFrom : rulesNamingInTo {
            let container: Bool
            switch endpoint {
            case .zone(let name): container = zoneIndex[name].map(zones.contains) ?? false
            // A container may hold an address in any block besides the party's: no label question.
            case .cidr(let block): container = hasContainers && blockIndex[block].map { !regionsInBlock[$0].isEmpty } ?? false
            case .any: container = hasContainers
            case .world, .host: container = false
            }
            guard container || (outsideOrHost && (outsideSatisfiable(peer, matching: endpoint) || hostSatisfiable(peer, matching: endpoint)))
            else { continue }
            for rule in rules {
                reach.any.insert(rule)
                if container { reach.containers.insert(rule) }
            }
        }
        reachable[key] = reach
        return reach
    }

    /// The zones that can share a container with a member of the party.
    private func compatibleZones(_ party: Endpoint, _ partySelectors: [CompiledSelector]) -> Set<Int> {
        if let known = compatible[party] { return known }
        let found = Set(policy.zones.indices.filter {
            LabelSatisfiability.satisfiable(matching: partySelectors + [selectors[$0]], notMatching: [])
        })
        compatible[party] = found
        return found
    }

    enum RuleSide: Hashable { case from, to }

    struct RuleReach {
        var any: RuleBits
        var containers: RuleBits
    }

    private struct ReachKey: Hashable {
        var side: RuleSide
        var party: Endpoint
    }

    // MARK: - Address regions

    /// Cuts each address family at every boundary of the blocks (and their exceptions): inside a
    /// piece every address lies in the same blocks. Pieces in the same blocks form one class.
    private static func regionClasses(_ blocks: [CIDRBlock]) -> ([Set<Int>], [[Int]]) {
        let ranges = blocks.map(AddressRanges.init)
        var signatures: [[Int]] = []
        for ipv4 in [true, false] {
            var cuts: Set<IPAddress> = [IPAddress.lowest(ipv4: ipv4)]
            for block in ranges {
                for range in block.ranges where range.low.isIPv4 == ipv4 {
                    cuts.insert(range.low)
                    if let next = range.high.successor { cuts.insert(next) }
                }
            }
            let starts = cuts.sorted()
            var pieces = Array(repeating: [Int](), count: starts.count)
            // Block by block in index order, so each piece's list comes out sorted.
            for (index, block) in ranges.enumerated() {
                for range in block.ranges where range.low.isIPv4 == ipv4 {
                    var piece = firstIndex(in: starts, notBefore: range.low)
                    while piece < starts.count, !(range.high < starts[piece]) {
                        pieces[piece].append(index)
                        piece += 1
                    }
                }
            }
            signatures += pieces
        }
        var seen: [[Int]: Int] = [:]
        var classes: [Set<Int>] = []
        var inBlock = Array(repeating: [Int](), count: blocks.count)
        for signature in signatures where seen[signature] == nil {
            seen[signature] = classes.count
            for block in signature { inBlock[block].append(classes.count) }
            classes.append(Set(signature))
        }
        return (classes, inBlock)
    }

    private static func firstIndex(in sorted: [IPAddress], notBefore value: IPAddress) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    // MARK: - Constraints on one peer

    func zone(_ name: String) -> Int? { zoneIndex[name] }

    func block(_ block: CIDRBlock) -> Int? { blockIndex[block] }

    /// Whether some peer meets the constraints (and, when given, matches `endpoint`).
    func satisfiable(_ peer: PeerConstraint, matching endpoint: Endpoint? = nil) -> Bool {
        let query = Query(peer: peer, endpoint: endpoint)
        if let known = cache[query] { return known }
        let answer = containerSatisfiable(peer, matching: endpoint) || outsideSatisfiable(peer, matching: endpoint)
            || hostSatisfiable(peer, matching: endpoint)
        cache[query] = answer
        return answer
    }

    /// Whether some peer meets the constraints and matches one of the endpoints.
    func satisfiable(_ peer: PeerConstraint, matchingAnyOf endpoints: [Endpoint]) -> Bool {
        endpoints.contains { satisfiable(peer, matching: $0) }
    }

    /// The label requirements of a party (and of an endpoint it must match); nil when the kind
    /// cannot be a container.
    private func containerSelectors(_ endpoint: Endpoint?) -> (selectors: [CompiledSelector], block: Int?)? {
        switch endpoint {
        case nil, .any?: return ([], nil)
        case .zone(let name)?: return zoneIndex[name].map { ([selectors[$0]], nil) } ?? ([CompiledSelector.never], nil)
        case .cidr(let block)?: return ([], blockIndex[block])
        case .world?, .host?: return nil
        }
    }

    func containerSatisfiable(_ peer: PeerConstraint, matching endpoint: Endpoint? = nil) -> Bool {
        guard !peer.excludesEverything, let party = containerSelectors(peer.party),
              let wanted = containerSelectors(endpoint) else { return false }
        // Addresses: a container holds one or more, each in some region class; none may be in an
        // excluded block, and each block it must be in needs one of them.
        let allowed = { (region: Int) in self.regions[region].isDisjoint(with: peer.excludedBlocks) }
        let needed = [party.block, wanted.block].compactMap { $0 }
        if needed.isEmpty {
            if !regions.indices.contains(where: allowed) { return false }
        } else if !needed.allSatisfy({ regionsInBlock[$0].contains(where: allowed) }) {
            return false
        }
        // Labels: cached apart, as many questions differ only in addresses.
        let key = LabelQuery(party: zoneNumber(peer.party), wanted: zoneNumber(endpoint), excluded: peer.excludedZones,
                             restricted: peer.restricted)
        if let known = labelCache[key] { return known }
        let answer = labelsSatisfiable(required: party.selectors + wanted.selectors, peer)
        labelCache[key] = answer
        return answer
    }

    private func zoneNumber(_ endpoint: Endpoint?) -> Int? {
        if case .zone(let name)? = endpoint { return zoneIndex[name] ?? -1 }
        return nil
    }

    private func labelsSatisfiable(required: [CompiledSelector], _ peer: PeerConstraint) -> Bool {
        let excluded = peer.excludedZones.sorted().map { selectors[$0] }
        guard let side = peer.restricted else {
            return LabelSatisfiability.satisfiable(matching: required, notMatching: excluded)
        }
        // A party whose own zone restricts that side: every member is restricted. Otherwise,
        // when no member is left at all, no zone needs trying.
        let unrestricted = LabelSatisfiability.satisfiable(matching: required, notMatching: excluded)
        if case .zone(let name) = peer.party, let own = zoneIndex[name], policy.zones[own].access(side) == .restricted {
            return unrestricted
        }
        if !unrestricted { return false }
        // Restricted by one of the zones that restrict that side (in any mode) ... The zone that
        // answered last time for this party and side first: a search asks many questions that
        // differ only in a few excluded zones, and one zone usually answers them all.
        let key = CandidateKey(side: side, party: peer.party)
        if let zone = lastRestricting[key], !peer.excludedZones.contains(zone),
           LabelSatisfiability.satisfiable(matching: required + [selectors[zone]], notMatching: excluded) {
            return true
        }
        for zone in restrictingCandidates(side, party: peer.party) where !peer.excludedZones.contains(zone) && zone != lastRestricting[key] {
            if LabelSatisfiability.satisfiable(matching: required + [selectors[zone]], notMatching: excluded) {
                lastRestricting[key] = zone
                return true
            }
        }
        // ... or unzoned, when unzoned containers' ingress is restricted.
        return side == .ingress && policy.defaults.unzoned == .restricted
            && LabelSatisfiability.satisfiable(matching: required, notMatching: selectors)
    }

    /// The zones that restrict `side` and can hold a member of the party.
    private func restrictingCandidates(_ side: Side, party: Endpoint) -> [Int] {
        let key = CandidateKey(side: side, party: party)
        if let known = candidates[key] { return known }
        let partySelectors = containerSelectors(party)?.selectors ?? []
        let found = policy.zones.indices.filter { index in
            policy.zones[index].access(side) == .restricted
                && LabelSatisfiability.satisfiable(matching: partySelectors + [selectors[index]], notMatching: [])
        }
        candidates[key] = found
        return found
    }

    func outsideSatisfiable(_ peer: PeerConstraint, matching endpoint: Endpoint? = nil) -> Bool {
        guard !peer.excludesEverything, !peer.excludesWorld, peer.restricted == nil else { return false }
        func block(_ endpoint: Endpoint?) -> Int?? {
            switch endpoint {
            case nil, .any?, .world?: return .some(nil)
            case .cidr(let block)?: return .some(blockIndex[block])
            case .zone?, .host?: return nil
            }
        }
        guard let partyBlock = block(peer.party), let wantedBlock = block(endpoint) else { return false }
        // One address: one region class in every block it must be in and no excluded one.
        let pool = partyBlock.map { regionsInBlock[$0] } ?? wantedBlock.map { regionsInBlock[$0] } ?? Array(regions.indices)
        return pool.contains { region in
            regions[region].isDisjoint(with: peer.excludedBlocks)
                && partyBlock.map(regions[region].contains) ?? true && wantedBlock.map(regions[region].contains) ?? true
        }
    }

    func hostSatisfiable(_ peer: PeerConstraint, matching endpoint: Endpoint? = nil) -> Bool {
        guard !peer.excludesEverything, !peer.excludesHost, peer.restricted == nil else { return false }
        let isHost = { (endpoint: Endpoint?) in endpoint == nil || endpoint == .any || endpoint == .host }
        return isHost(peer.party) && isHost(endpoint)
    }

    // MARK: - Naming, for failure messages

    /// A zone that restricts `side` for some peer meeting the constraints (policy order), or
    /// `unzoned` under `defaults.unzoned: restricted`.
    func restrictingZone(_ side: Side, for peer: PeerConstraint) -> String? {
        guard let party = containerSelectors(peer.party) else { return nil }
        let excluded = peer.excludedZones.sorted().map { selectors[$0] }
        // The party's own zone first, so the message names it when it is the restricting one.
        var zones = restrictingCandidates(side, party: peer.party)
        if case .zone(let name) = peer.party, let own = zoneIndex[name], let at = zones.firstIndex(of: own) {
            zones.remove(at: at)
            zones.insert(own, at: 0)
        }
        for zone in zones where !peer.excludedZones.contains(zone) {
            if LabelSatisfiability.satisfiable(matching: party.selectors + [selectors[zone]], notMatching: excluded) {
                return policy.zones[zone].name
            }
        }
        if side == .ingress, policy.defaults.unzoned == .restricted,
           LabelSatisfiability.satisfiable(matching: party.selectors, notMatching: selectors) {
            return "unzoned"
        }
        return nil
    }

    /// nil when every peer of the party is a container restricted on that side by an enforcing
    /// zone; otherwise the zone (or `unzoned`) that lets one be open, and why (empty: the party
    /// holds peers zonegate does not manage).
    func openSide(_ side: Side, of party: Endpoint) -> [(zone: String, text: String)]? {
        let key = CandidateKey(side: side, party: party)
        if let known = openSides[key] { return known }
        let answer = computeOpenSide(side, of: party)
        openSides[key] = answer
        return answer
    }

    private func computeOpenSide(_ side: Side, of party: Endpoint) -> [(zone: String, text: String)]? {
        let peer = PeerConstraint(party: party)
        let restricting = policy.zones.indices.filter {
            policy.zones[$0].access(side) == .restricted && policy.mode(of: policy.zones[$0]) == .enforce
        }
        let restrictingSelectors = restricting.map { selectors[$0] }
        let ownIsRestricting: Bool
        if case .zone(let name) = party, let own = zoneIndex[name] { ownIsRestricting = restricting.contains(own) } else { ownIsRestricting = false }
        // Outside every enforcing restriction first (never, for a zone that restricts that side): when no container of the party is, no zone
        // needs trying one by one.
        if !ownIsRestricting, containerSatisfiable(peer), let own = containerSelectors(party),
           LabelSatisfiability.satisfiable(matching: own.selectors, notMatching: restrictingSelectors) {
            let restrictingSet = Set(restricting)
            // The party's own zone first, so the message names it when it is the open one.
            var open = policy.zones.indices.filter { !restrictingSet.contains($0) }
            if case .zone(let name) = party, let index = zoneIndex[name], let at = open.firstIndex(of: index) {
                open.remove(at: at)
                open.insert(index, at: 0)
            }
            for index in open
            where LabelSatisfiability.satisfiable(matching: own.selectors + [selectors[index]], notMatching: restrictingSelectors) {
                let zone = policy.zones[index]
                return [(zone.name, zone.access(side) == .restricted ? "\(zone.name) is in audit mode, so its \(side) is not enforced"
                                                                     : "\(zone.name) has open \(side)")]
            }
            let unzonedRestricted = side == .ingress && policy.defaults.unzoned == .restricted && policy.defaults.mode == .enforce
            if !unzonedRestricted, LabelSatisfiability.satisfiable(matching: own.selectors, notMatching: selectors) {
                return [("unzoned", "unzoned containers have open \(side)")]
            }
        }
        if outsideSatisfiable(peer) || hostSatisfiable(peer) { return [] }
        return nil
    }

    private struct LabelQuery: Hashable {
        var party: Int?
        var wanted: Int?
        var excluded: Set<Int>
        var restricted: Side?
    }

    private struct Query: Hashable {
        var peer: PeerConstraint
        var endpoint: Endpoint?
    }

    private struct CandidateKey: Hashable {
        var side: Side
        var party: Endpoint
    }
}

/// The peers the prover is still looking among: members of an assertion's endpoint (the party)
/// that match none of the excluded endpoints and, when `restricted` is set, are containers
/// restricted on that side.
struct PeerConstraint: Hashable {
    var party: Endpoint
    var excludedZones: Set<Int> = []
    var excludedBlocks: Set<Int> = []
    var excludesWorld = false
    var excludesHost = false
    /// `any` is excluded: no peer is left.
    var excludesEverything = false
    var restricted: Side? = nil

    init(party: Endpoint, restricted: Side? = nil) {
        self.party = party
        self.restricted = restricted
    }

    /// Whether every one of the endpoints is excluded already (then no peer left matches them).
    func excludesAll(of endpoints: [Endpoint], _ model: ProverModel) -> Bool {
        endpoints.allSatisfy { endpoint in
            switch endpoint {
            case .any: return excludesEverything
            case .world: return excludesWorld
            case .host: return excludesHost
            case .zone(let name): return model.zone(name).map(excludedZones.contains) ?? true
            case .cidr(let block): return model.block(block).map(excludedBlocks.contains) ?? false
            }
        }
    }

    /// The same peers less those matching any of the endpoints.
    func excluding(_ endpoints: [Endpoint], _ model: ProverModel) -> PeerConstraint {
        var result = self
        for endpoint in endpoints {
            switch endpoint {
            case .any: result.excludesEverything = true
            case .world: result.excludesWorld = true
            case .host: result.excludesHost = true
            case .zone(let name): if let index = model.zone(name) { result.excludedZones.insert(index) }
            case .cidr(let block): if let index = model.block(block) { result.excludedBlocks.insert(index) }
            }
        }
        return result
    }
}

/// A set of rule indices as a bitset: "rules both ends can meet" is one AND per word.
struct RuleBits {
    private var words: [UInt64]

    init(count: Int) { words = Array(repeating: 0, count: (count + 63) / 64) }

    mutating func insert(_ index: Int) { words[index / 64] |= 1 << UInt64(index % 64) }

    static func & (a: RuleBits, b: RuleBits) -> RuleBits {
        var result = a
        for index in result.words.indices { result.words[index] &= b.words[index] }
        return result
    }

    static func | (a: RuleBits, b: RuleBits) -> RuleBits {
        var result = a
        for index in result.words.indices { result.words[index] |= b.words[index] }
        return result
    }

    /// Members in ascending order.
    var indices: [Int] {
        var result: [Int] = []
        for (wordIndex, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                result.append(wordIndex * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        return result
    }
}

extension CompiledSelector {
    /// A selector that matches no labels.
    static let never: CompiledSelector = {
        var selector = CompiledSelector(LabelSelector())
        selector.parts = nil
        return selector
    }()
}

extension Zone {
    func access(_ side: Side) -> Access { side == .ingress ? ingress : egress }
}
