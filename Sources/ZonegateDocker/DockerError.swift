/// Why talking to Docker failed, with a message a user can act on (`description`).
public struct DockerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure: callers retry `unreachable` and `streamEnded`, and report the rest.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case unsupportedHost, unreachable, unsupportedAPIVersion, requestFailed, malformedResponse, streamEnded
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The docker host URL is not one zonegate can use.
        public static let unsupportedHost = Code(.unsupportedHost)
        /// No connection to Docker (no socket, refused, no permission, dropped).
        public static let unreachable = Code(.unreachable)
        /// The engine's API is older than zonegate needs, or newer than it accepts.
        public static let unsupportedAPIVersion = Code(.unsupportedAPIVersion)
        /// Docker answered with an HTTP error.
        public static let requestFailed = Code(.requestFailed)
        /// Docker's answer is not what the Engine API documents.
        public static let malformedResponse = Code(.malformedResponse)
        /// The event stream ended or broke; resynchronise and subscribe again.
        public static let streamEnded = Code(.streamEnded)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
