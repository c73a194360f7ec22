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
        public var values: [String]

        public init(key: String, op: Operator, values: [String] = []) {
            self.key = key
            self.op = op
            self.values = values
        }

        /// Whether a label value (nil: the key is absent) satisfies this requirement.
        /// As in Kubernetes, `NotIn` matches a container that lacks the key.
        public func matches(_ value: String?) -> Bool {
            switch op {
            case .in: return value.map(values.contains) ?? false
            case .notIn: return value.map { !values.contains($0) } ?? true
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

/// Kubernetes' syntax rules for label keys and values.
public enum LabelSyntax {
    /// nil when valid, otherwise what is expected.
    public static func problem(withKey key: String) -> String? {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts.last!)
        if parts.count == 2 {
            let prefix = String(parts[0])
            if prefix.isEmpty || prefix.count > 253 || !isDNSSubdomain(prefix) {
                return "label key prefix '\(prefix)' must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
            }
        }
        if name.isEmpty || name.count > 63 || !isQualifiedName(name) {
            return "label key '\(key)' must be [prefix/]name, the name 1 to 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        }
        return nil
    }

    /// nil when valid, otherwise what is expected.
    public static func problem(withValue value: String) -> String? {
        if value.isEmpty { return nil }
        if value.count > 63 || !isQualifiedName(value) {
            return "label value '\(value)' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        }
        return nil
    }

    private static func isQualifiedName(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        func alnum(_ s: Unicode.Scalar) -> Bool { s.isASCII && (("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)) }
        guard let first = scalars.first, let last = scalars.last, alnum(first), alnum(last) else { return false }
        return scalars.allSatisfy { alnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    private static func isDNSSubdomain(_ text: String) -> Bool {
        text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let scalars = Array(label.unicodeScalars)
            func ok(_ s: Unicode.Scalar) -> Bool { s.isASCII && (("a"..."z").contains(s) || ("0"..."9").contains(s)) }
            guard let first = scalars.first, let last = scalars.last, ok(first), ok(last), scalars.count <= 63 else { return false }
            return scalars.allSatisfy { ok($0) || $0 == "-" }
        }
    }
}
