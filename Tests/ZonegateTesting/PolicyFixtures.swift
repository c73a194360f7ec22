import ZonegatePolicy

/// A policy from the YAML text of one file, as the tests write policies (`p.yaml`, unless a
/// test checks the file name in positions or digests).
public func parsePolicy(_ yaml: String, file: String = "p.yaml") throws -> Policy {
    try PolicyParser.parse([PolicyFile(name: file, text: yaml)])
}
