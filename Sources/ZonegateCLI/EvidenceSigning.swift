import ArgumentParser
import Crypto
import Foundation

/// Ed25519 signatures of a report's SHA256SUMS (`evidence.sig`: the 64-byte signature in base64,
/// one line). Keys are the PEM files OpenSSL writes:
///   openssl genpkey -algorithm ed25519 -out zonegate-evidence.key      # PKCS#8 "PRIVATE KEY"
///   openssl pkey -in zonegate-evidence.key -pubout -out zonegate-evidence.pub   # SPKI "PUBLIC KEY"
/// An Ed25519 PKCS#8 key is a fixed 16-byte DER header and the 32-byte seed; a public key a
/// fixed 12-byte header and the 32-byte key, so no ASN.1 parser is needed (RFC 8410).
public enum EvidenceSigning {
    struct KeyError: Error, CustomStringConvertible {
        var description: String
    }

    static let privateHeader: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let publicHeader: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    public static func privateKey(pem: String) throws -> Curve25519.Signing.PrivateKey {
        let der = try decodePEM(pem, label: "PRIVATE KEY")
        guard der.count == privateHeader.count + 32, Array(der.prefix(privateHeader.count)) == privateHeader else {
            throw KeyError(description: "not an Ed25519 private key in PKCS#8 (make one with `openssl genpkey -algorithm ed25519`)")
        }
        return try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
    }

    public static func publicKey(pem: String) throws -> Curve25519.Signing.PublicKey {
        let der = try decodePEM(pem, label: "PUBLIC KEY")
        guard der.count == publicHeader.count + 32, Array(der.prefix(publicHeader.count)) == publicHeader else {
            throw KeyError(description: "not an Ed25519 public key (make one with `openssl pkey -in KEY -pubout`)")
        }
        return try Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
    }

    static func privateKey(file: String) throws -> Curve25519.Signing.PrivateKey { try privateKey(pem: try read(file)) }
    static func publicKey(file: String) throws -> Curve25519.Signing.PublicKey { try publicKey(pem: try read(file)) }

    public static func sign(_ data: Data, with key: Curve25519.Signing.PrivateKey) throws -> String {
        try key.signature(for: data).base64EncodedString()
    }

    public static func verify(_ signature: String, of data: Data, with key: Curve25519.Signing.PublicKey) -> Bool {
        guard let bytes = Data(base64Encoded: signature.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return key.isValidSignature(bytes, for: data)
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), data.count < 64 * 1024 else {
            throw KeyError(description: "cannot read the key file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func decodePEM(_ text: String, label: String) throws -> [UInt8] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex) else {
            throw KeyError(description: "no \(begin) block")
        }
        let body = text[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { throw KeyError(description: "the PEM block is not base64") }
        return Array(data)
    }
}

extension Zonegate {
    /// `zonegate verify-report DIR [--public-key FILE]`: a report handed over is what verify wrote.
    struct VerifyReport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-report",
            abstract: "Check a verify report: every file against SHA256SUMS and, with --public-key, the Ed25519 signature.")

        @OptionGroup var options: PolicyOptions

        @Argument(help: ArgumentHelp("The report directory (verify --report DIR).", valueName: "DIR"))
        var directory: String

        @Option(name: .long, help: ArgumentHelp("The Ed25519 public key (SPKI PEM, `openssl pkey -in KEY -pubout`).", valueName: "FILE"))
        var publicKey: String?

        func run() throws {
            let key = try publicKey.map { path in
                do { return try EvidenceSigning.publicKey(file: path) } catch { throw CommandFailure.usage("--public-key \(path): \(error)") }
            }
            let result = ReportCheck.check(directory: directory, publicKey: key)
            if let environment = result.environment { throw CommandFailure.environment(environment) }
            for line in result.lines { print(Escape.line(line)) }
            if !result.ok { throw CommandFailure.invalid("the report in \(directory) does not verify") }
        }
    }
}

/// What verify-report found.
struct ReportCheck {
    var ok = true
    var lines: [String] = []
    var environment: String?

    static func check(directory: String, publicKey: Curve25519.Signing.PublicKey?) -> ReportCheck {
        var result = ReportCheck()
        func file(_ name: String) -> Data? {
            FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(name))
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            result.environment = "\(directory) is not a directory"
            return result
        }
        guard let sums = file("SHA256SUMS") else {
            result.ok = false
            result.lines.append("SHA256SUMS: missing")
            return result
        }
        var listed: Set<String> = []
        for line in String(decoding: sums, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[1].hasPrefix(" ") || parts[1].hasPrefix("*") else {
                result.ok = false
                result.lines.append("SHA256SUMS: malformed line \(String(line))")
                continue
            }
            let name = String(parts[1].dropFirst())
            listed.insert(name)
            guard !name.contains("/"), let data = file(name) else {
                result.ok = false
                result.lines.append("\(name): missing")
                continue
            }
            let ok = EvidenceReport.hex(SHA256.hash(data: data)) == parts[0].lowercased()
            result.ok = result.ok && ok
            result.lines.append("\(name): \(ok ? "OK" : "FAILED (changed since the report was written)")")
        }
        for required in ["evidence.json", "evidence.md"] where !listed.contains(required) {
            result.ok = false
            result.lines.append("\(required): not listed in SHA256SUMS")
        }
        let signature = file("evidence.sig")
        switch (publicKey, signature) {
        case (let key?, let signature?):
            let valid = EvidenceSigning.verify(String(decoding: signature, as: UTF8.self), of: sums, with: key)
            result.ok = result.ok && valid
            result.lines.append("evidence.sig: \(valid ? "valid Ed25519 signature of SHA256SUMS" : "FAILED (not a signature of SHA256SUMS by this key)")")
        case (_?, nil):
            result.ok = false
            result.lines.append("evidence.sig: missing (a public key was given)")
        case (nil, _?):
            result.lines.append("evidence.sig: present, not checked (give --public-key)")
        case (nil, nil):
            result.lines.append("evidence.sig: none (the report is not signed)")
        }
        return result
    }
}
