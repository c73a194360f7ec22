/// Where a ruleset lives: the kernel (`NetlinkDataplane` in ZonegateNetfilter) or
/// memory (`FakeDataplane` in ZonegateTesting). It is declared here, in the pure
/// module, so that code and tests depending on it need not link libnftnl.
public protocol Dataplane: Sendable {
    /// Applies every operation or none.
    func apply(_ transaction: Transaction) throws
    /// The table `name` of `family`, with chains, rules, sets and elements; nil if absent.
    func read(family: Family, name: String) throws -> Table?
    /// Every table named `name`, in any family.
    func readAll(name: String) throws -> Ruleset
}
