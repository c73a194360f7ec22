import Glibc

/// A failure talking to nf_tables: a C call that failed, a batch the kernel
/// refused, or a reply that could not be decoded. It records the failing C
/// function, errno and, for a refused batch, the operation the kernel rejected.
public struct NetfilterError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case systemCall
        case kernelRefused
        case malformedReply
        case tooLarge
        case unencodable
        case unexpectedReply
    }

    private let code: Code
    /// The C function that reported the failure.
    public let function: String
    /// errno, or the negated error the kernel put in its ack.
    public let errno: Int32
    /// The transaction operation the kernel refused, rendered as nft syntax.
    public let operation: String?
    /// Index of that operation in the transaction.
    public let operationIndex: Int?
    public let file: String
    public let line: Int

    private init(
        _ code: Code, function: String, errno: Int32, operation: String? = nil, operationIndex: Int? = nil,
        file: String, line: Int
    ) {
        self.code = code
        self.function = function
        self.errno = errno
        self.operation = operation
        self.operationIndex = operationIndex
        self.file = file
        self.line = line
    }

    static func systemCall(_ function: String, errno: Int32, file: String = #fileID, line: Int = #line) -> Self {
        Self(.systemCall, function: function, errno: errno, file: file, line: line)
    }

    static func kernelRefused(
        errno: Int32, operationIndex: Int?, operation: String?, file: String = #fileID, line: Int = #line
    ) -> Self {
        Self(.kernelRefused, function: "nfnetlink batch", errno: errno, operation: operation,
             operationIndex: operationIndex, file: file, line: line)
    }

    static func malformedReply(_ function: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.malformedReply, function: function, errno: EPROTO, file: file, line: line)
    }

    static func tooLarge(_ what: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.tooLarge, function: what, errno: EMSGSIZE, file: file, line: line)
    }

    static func unencodable(_ what: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.unencodable, function: what, errno: EINVAL, file: file, line: line)
    }

    static func unexpectedReply(_ what: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.unexpectedReply, function: what, errno: EPROTO, file: file, line: line)
    }

    /// True when the kernel refused a batch (the whole batch was aborted).
    public var isKernelRefusal: Bool { code == .kernelRefused }

    public var description: String {
        let reason = String(cString: strerror(errno))
        switch code {
        case .systemCall:
            return "\(function) failed: \(reason) (errno \(errno)) at \(file):\(line)"
        case .kernelRefused:
            let which = operation.map { " at operation #\(operationIndex ?? -1) `\($0)`" } ?? ""
            return "nf_tables refused the batch\(which): \(reason) (errno \(errno)); nothing was applied"
        case .malformedReply:
            return "\(function) could not decode the kernel's reply at \(file):\(line)"
        case .tooLarge:
            return "\(function) does not fit in one netlink message"
        case .unencodable:
            return "\(function) cannot be written: zonegate only reads it back"
        case .unexpectedReply:
            return "\(function): the kernel's replies are out of step with the requests sent, so what the batch did is not known at \(file):\(line)"
        }
    }
}

/// The one gate for C calls that can fail: runs `call`, and when `failed` says
/// its result means failure, throws with the function's name and errno.
@discardableResult
func cCall<Result>(
    _ function: String, file: String = #fileID, line: Int = #line,
    failed: (Result) -> Bool, _ call: () -> Result
) throws(NetfilterError) -> Result {
    Glibc.errno = 0
    let result = call()
    if failed(result) {
        throw .systemCall(function, errno: Glibc.errno == 0 ? EINVAL : Glibc.errno, file: file, line: line)
    }
    return result
}

/// `cCall` for the C convention "negative return means failure".
@discardableResult
func cCall<Number: BinaryInteger>(
    _ function: String, file: String = #fileID, line: Int = #line, _ call: () -> Number
) throws(NetfilterError) -> Number {
    try cCall(function, file: file, line: line, failed: { $0 < 0 }, call)
}

/// `cCall` for allocators and lookups that return NULL on failure.
func cCall<Pointer>(
    _ function: String, file: String = #fileID, line: Int = #line, _ call: () -> Pointer?
) throws(NetfilterError) -> Pointer {
    try cCall(function, file: file, line: line, failed: { $0 == nil }, call)!
}
