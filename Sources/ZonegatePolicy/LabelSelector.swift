/// A Kubernetes LabelSelector: every `matchLabels` pair and every expression must hold.
public struct LabelSelector: Hashable, Sendable {
    /// One `matchExpressions` entry.
    public struct Requirement: Hashable, Sendable {
        /// The four Kubernetes selector operators.
        public enum Operator: String, Hashable, Sendable, CaseIterable {
            case `in` = "In", notIn = "NotIn", exists = "Exists", doesNotExist = "DoesNotExist"
        }

        public var key: String
        public var op: Operator
        public var values: [String] { didSet { valueSet = Self.lookup(values) } }
        /// `values` as a set once long enough for hashing to beat a scan: matching a 5,000-value
        /// list against every container of an inventory would otherwise be quadratic.
        private var valueSet: Set<String>?

        public init(key: String, op: Operator, values: [String] = []) {
            self.key = key
            self.op = op
            self.values = values
            valueSet = Self.lookup(values)
        }

        private static func lookup(_ values: [String]) -> Set<String>? { values.count > 16 ? Set(values) : nil }

        private func listed(_ value: String) -> Bool { valueSet?.contains(value) ?? values.contains(value) }

        /// Whether a label value (nil: the key is absent) satisfies this requirement.
        /// As in Kubernetes, `NotIn` matches a container that lacks the key.
        public func matches(_ value: String?) -> Bool {
            switch op {
            case .in: return value.map(listed) ?? false
            case .notIn: return value.map { !listed($0) } ?? true
            case .exists: return value != nil
            case .doesNotExist: return value == nil
            }
        }
    }

    public var matchLabels: [String: String]
    public var matchExpressions: [Requirement]

    public init(matchLabels: [String: String] = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// The selector of a zone that names none: containers labelled `zonegate.zone=<name>`.
    public static func zoneLabel(_ zone: String) -> LabelSelector {
        LabelSelector(matchLabels: [zoneLabelKey: zone])
    }

    public static let zoneLabelKey = "zonegate.zone"

    /// All requirements, `matchLabels` included as `In` with one value, in a stable order.
    public var requirements: [Requirement] {
        matchLabels.sorted { $0.key < $1.key }.map { Requirement(key: $0.key, op: .in, values: [$0.value]) }
            + matchExpressions
    }

    public var isEmpty: Bool { matchLabels.isEmpty && matchExpressions.isEmpty }

    public func matches(_ labels: [String: String]) -> Bool {
        matchLabels.allSatisfy { labels[$0.key] == $0.value }
            && matchExpressions.allSatisfy { $0.matches(labels[$0.key]) }
    }
}

/// What a selector may name: Docker's label keys and values, not Kubernetes' stricter syntax.
/// Docker accepts any string as a label value (Compose writes paths, comma-separated lists and
/// `db:service_started:false`) and any key; selectors must see every label, so a key only has
/// to be non-empty, without control characters, and both are bounded by `PolicyLimits`.
public enum LabelSyntax {
    /// nil when valid, otherwise what is expected.
    public static func problem(withKey key: String) -> String? {
        if key.isEmpty { return "a label key must not be empty" }
        if key.utf8.count > PolicyLimits.labelKeyBytes {
            return "label key \(DisplayText.quoted(key)) is longer than \(PolicyLimits.labelKeyBytes) bytes"
        }
        if key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "label key \(DisplayText.quoted(key)) must not contain control characters"
        }
        return nil
    }

    /// nil when valid, otherwise what is expected. Any string is a Docker label value.
    public static func problem(withValue value: String) -> String? {
        if value.utf8.count > PolicyLimits.labelValueBytes {
            return "label value \(DisplayText.quoted(value)) is longer than \(PolicyLimits.labelValueBytes) bytes"
        }
        return nil
    }
}
