import ZonegatePolicy

/// Decides whether some set of Docker labels matches every selector of one list and none of
/// another: the question "can a container be in zones A and B but not C?" asked over every
/// possible container, not just the ones running now.
///
/// Requirements on different keys are independent, so each key only needs the values the
/// selectors mention, plus "absent" and "some other value"; a search over those choices, pruned as
/// soon as a selector is decided, is exact.
public enum LabelSatisfiability {
    public static func satisfiable(matching required: [LabelSelector], notMatching excluded: [LabelSelector]) -> Bool {
        if excluded.contains(where: \.isEmpty) { return false }
        let mustMatch = required.map(\.requirements)
        let mustNotMatch = excluded.map(\.requirements)
        let keys = Array(Set((mustMatch + mustNotMatch).joined().map(\.key))).sorted()
        let choices: [[String?]] = keys.map { key in
            let mentioned = Set((mustMatch + mustNotMatch).joined().filter { $0.key == key }.flatMap(\.values))
            var fresh = "\u{1}other"
            while mentioned.contains(fresh) { fresh += "'" }
            return [nil] + mentioned.sorted() + [fresh]
        }
        var assignment: [String: String?] = [:]

        func consistent() -> Bool {
            for requirements in mustMatch {
                for requirement in requirements {
                    if let value = assignment[requirement.key], !requirement.matches(value) { return false }
                }
            }
            for requirements in mustNotMatch {
                // An excluded selector fails the search once all its keys are set and all hold.
                let decided = requirements.allSatisfy { assignment[$0.key] != nil }
                if decided && requirements.allSatisfy({ $0.matches(assignment[$0.key]!) }) { return false }
            }
            return true
        }

        func search(_ depth: Int) -> Bool {
            if depth == keys.count { return true }
            for choice in choices[depth] {
                assignment[keys[depth]] = .some(choice)
                if consistent() && search(depth + 1) { return true }
            }
            assignment[keys[depth]] = nil
            return false
        }
        return consistent() && search(0)
    }
}
