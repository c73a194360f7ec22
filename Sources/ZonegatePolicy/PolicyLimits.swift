/// Every size limit on what zonegate reads, in one place: the parser, the policy directory
/// reader, the inventory decoder, docs/limits.md and the tests all use these numbers.
///
/// Each is chosen an order of magnitude or more above a large real policy (200 zones, 2,000
/// rules, a selector of 5,000 values) and low enough that `check` on a policy at every limit at
/// once stays within seconds and a few hundred MB. Beyond a limit the input is rejected with an
/// error at the place that crossed it: never a crash, a hang or an allocation failure.
public enum PolicyLimits {
    // MARK: Policy files

    /// Bytes in one policy file (4 MiB: a 2,000-rule policy is about 300 KiB).
    public static let fileBytes = 4 << 20
    /// Bytes in all policy files together (16 MiB).
    public static let totalBytes = 16 << 20
    /// `*.yaml` and `*.yml` files in the policy directory.
    public static let files = 1_024
    /// Collections inside collections in a YAML file (the top-level mapping counts as 1). A policy
    /// needs at most 7 (`rules` > rule > `from` > `{cidr: ..., except: [...]}` > except list); past
    /// a few thousand the YAML library's recursion would overflow the stack.
    public static let nestingDepth = 64
    /// YAML nodes (scalars, lists, mappings) in one file, an alias counting as every node it
    /// repeats: what defeats "billion laughs" (nested aliases that expand exponentially).
    public static let nodesPerFile = 1_000_000
    /// Anchors (`&name`) and aliases (`*name`) in one file, each.
    public static let anchorsPerFile = 10_000
    public static let aliasesPerFile = 10_000

    /// Zones, rules and assertions, across all files.
    public static let zones = 1_000
    public static let rules = 10_000
    public static let assertions = 1_000

    /// Entries of one list: endpoints in `from` or `to`, ports, CIDR exceptions, networks.
    public static let listItems = 1_024
    /// Endpoints of all rules and assertions together (what the compiler and the prover multiply).
    public static let endpoints = 100_000
    /// Label values of all selectors together.
    public static let labelValues = 100_000
    /// `matchLabels` pairs plus `matchExpressions` entries of one selector.
    public static let selectorRequirements = 256
    /// Label values of one selector, all its requirements together.
    public static let selectorValues = 10_000

    /// Name lengths, in characters (policy.md): zone names 1 to 31, rule and assertion names 1 to 128.
    public static let zoneNameCharacters = 31
    public static let ruleNameCharacters = 128
    /// A label key and a label value in a selector, in UTF-8 bytes.
    public static let labelKeyBytes = 1_024
    public static let labelValueBytes = 4_096
    /// `owner`, `ticket`, `justification`, `description` and Docker network names, in UTF-8 bytes.
    public static let freeTextBytes = 4_096

    /// Errors reported for one policy; past it, one last error says that more were left out.
    public static let diagnostics = 1_000

    // MARK: Inventory files (`--inventory`)

    /// Limits of an inventory file: `zonegate inventory` of a host with 10,000 containers, each
    /// with Compose's dozen labels, is about 20 MiB.
    public enum Inventory {
        public static let fileBytes = 64 << 20
        /// Arrays and objects inside each other (an inventory needs 5).
        public static let nestingDepth = 64
        public static let containers = 10_000
        public static let labelsPerContainer = 1_024
        /// Docker label keys and values are free text; these bound them (UTF-8 bytes).
        public static let labelKeyBytes = 1_024
        public static let labelValueBytes = 65_536
        public static let addressesPerContainer = 256
        public static let attachmentsPerContainer = 256
        /// Every port of every protocol (3 x 65,535) and ICMP: a container exposing a whole range
        /// is still valid.
        public static let portsPerContainer = 196_606
        public static let bridges = 4_096
        public static let unenforced = 10_000
        /// Any other string (names, ids, bridge and port names), in UTF-8 bytes.
        public static let stringBytes = 4_096
    }
}
