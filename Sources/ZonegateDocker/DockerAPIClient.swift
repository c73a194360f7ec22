import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization

/// The Docker Engine API over dockerd's unix socket.
///
/// Lifetime: the client owns an `HTTPClient`; call `shutdown()` once done with it (debug builds
/// trap on a client dropped without it), or use `withClient(host:_:)`, which does.
public final class DockerAPIClient: DockerEngine {
    /// Where dockerd listens unless told otherwise.
    public static let defaultHost = "unix:///var/run/docker.sock"
    /// Event `Type`/`Action`/`Actor` and network events need API 1.22; 1.24 (Docker 1.12) is
    /// also the oldest any current Docker CLI speaks.
    public static let minimumAPIVersion = DockerAPIVersion(1, 24)
    /// The newest version asked for. Every field zonegate reads is unchanged up to it (the
    /// version history removes only fields zonegate does not read), and it lies within the range
    /// of Docker 29, whose oldest accepted version is 1.44. Tested against 1.41 (Docker 20.10).
    public static let maximumAPIVersion = DockerAPIVersion(1, 51)

    /// The docker host URL this client talks to, as given.
    public let host: String
    private let socketPath: String
    private let http: HTTPClient
    private let logger: Logger
    /// Found through `/version` on first use; forgotten when Docker becomes unreachable, since
    /// the engine may come back upgraded.
    private let negotiated = Mutex<DockerAPIVersion?>(nil)

    private static let requestTimeout: TimeAmount = .seconds(30)
    private static let maximumBodySize = 64 << 20
    /// Inspections in flight at once during a full listing.
    private static let inspectConcurrency = 8

    /// Accepts `unix:///path/to/docker.sock`. zonegate programs the kernel of the host Docker
    /// runs on, so it reads Docker over the local socket only: `tcp://`, `ssh://` and the like are
    /// refused.
    public init(host: String = DockerAPIClient.defaultHost, logger: Logger = Logger(label: "zonegate.docker")) throws {
        self.host = host
        self.socketPath = try Self.socketPath(of: host)
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        // Fail a request as soon as the socket refuses, instead of retrying until its deadline:
        // the event stream has none, and callers retry with their own backoff.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        configuration.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// A client for the duration of `body`, shut down after it.
    public static func withClient<Result>(host: String = DockerAPIClient.defaultHost,
                                          logger: Logger = Logger(label: "zonegate.docker"),
                                          _ body: (DockerAPIClient) async throws -> Result) async throws -> Result {
        let client = try DockerAPIClient(host: host, logger: logger)
        let result: Result
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    /// Closes the connections; running event streams end with an error.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// The socket path of a `unix://` docker host URL.
    public static func socketPath(of host: String) throws -> String {
        guard let separator = host.range(of: "://") else {
            throw DockerError(.unsupportedHost, "'\(host)' is not a docker host URL; expected unix:///path/to/docker.sock")
        }
        let scheme = host[..<separator.lowerBound].lowercased()
        let path = String(host[separator.upperBound...])
        guard scheme == "unix" else {
            throw DockerError(.unsupportedHost,
                "docker host '\(host)': zonegate talks to Docker only over its unix socket (such as \(defaultHost)), " +
                "since it must run on the Docker host itself to enforce there; \(scheme):// is not supported")
        }
        guard path.hasPrefix("/") else {
            throw DockerError(.unsupportedHost, "docker host '\(host)': the socket path must be absolute, as in \(defaultHost)")
        }
        return path
    }

    // MARK: DockerEngine

    public func runningContainers() async throws -> [DockerContainer] {
        let ids = try DockerJSON.containerIDs(fromList: try await get("/containers/json"))
        return try await withThrowingTaskGroup(of: DockerContainer?.self) { group in
            var pending = ids.makeIterator()
            for _ in 0..<Self.inspectConcurrency {
                guard let id = pending.next() else { break }
                group.addTask { try await self.inspectContainer(id: id) }
            }
            var containers: [DockerContainer] = []
            while let inspected = try await group.nextResult().map({ try self.skippingMalformed($0) }) {
                // A container that stopped or vanished since the listing is not running.
                if let inspected, inspected.running { containers.append(inspected) }
                if let id = pending.next() { group.addTask { try await self.inspectContainer(id: id) } }
            }
            return containers.sorted { $0.name < $1.name }
        }
    }

    /// One container's answer that cannot be read is left out of a listing (with an error in the
    /// log) rather than failing it: each of its addresses on a managed bridge is then held by no
    /// container, so sends and receives nothing (fail closed), and the other containers are still
    /// enforced. A transport failure still fails the listing.
    private func skippingMalformed(_ result: Result<DockerContainer?, Error>) throws -> DockerContainer? {
        switch result {
        case .success(let container): return container
        case .failure(let error as DockerError) where error.code == .malformedResponse:
            logger.error("a container's inspect answer cannot be read; it is left out (its addresses send and receive nothing)",
                         metadata: ["error": "\(error)"])
            return nil
        case .failure(let error): throw error
        }
    }

    public func inspectContainer(id: String) async throws -> DockerContainer? {
        let path = "/containers/\(Self.pathComponent(id))/json"
        let response = try await send(try await versionPrefix() + path)
        if response.status == 404 { return nil }
        return try DockerJSON.container(fromInspect: try Self.checked(response, path: path))
    }

    public func networks() async throws -> [DockerNetwork] {
        try DockerJSON.networks(fromList: try await get("/networks"))
    }

    /// Subscribes from the moment of the call (`since`), so that an event racing the
    /// subscription is replayed, not lost: a listing made after this call misses nothing.
    /// dockerd sends the response head only with the first event, so the stream has no deadline:
    /// it ends by throwing when the connection breaks, and quietly when its consumer is cancelled.
    public func events() async throws -> AsyncThrowingStream<DockerEvent, Error> {
        let prefix = try await versionPrefix()
        let now = Date().timeIntervalSince1970
        let since = String(format: "%.9f", now)
        let filters = Self.queryValue(#"{"type":["container","network"]}"#)
        let request = try makeRequest(prefix + "/events?since=\(since)&filters=\(filters)")
        let (stream, continuation) = AsyncThrowingStream<DockerEvent, Error>.makeStream()
        let task = Task { [http, host] in
            do {
                let response = try await http.execute(request, deadline: .distantFuture, logger: logger)
                guard response.status.code == 200 else {
                    let body = try await response.body.collect(upTo: Self.maximumBodySize)
                    throw Self.httpError(response.status.code, body: Data(buffer: body), path: "/events")
                }
                var splitter = JSONLineSplitter()
                for try await chunk in response.body {
                    for line in try splitter.push(chunk.readableBytesView) {
                        if let event = try DockerJSON.event(fromLine: line) { continuation.yield(event) }
                    }
                }
                throw DockerError(.streamEnded, "Docker at \(host) closed the event stream")
            } catch {
                if Task.isCancelled {
                    continuation.finish()
                } else {
                    continuation.finish(throwing: self.described(error, streaming: true))
                }
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    // MARK: Version negotiation

    /// Asks the engine its version and settles which API version to speak (see `negotiate`).
    public func version() async throws -> DockerServerVersion {
        try await negotiateVersion().server
    }

    /// The server's version and the API version chosen. Returned rather than read back from
    /// `negotiated`, which a concurrent failed request may have cleared meanwhile.
    private func negotiateVersion() async throws -> (server: DockerServerVersion, chosen: DockerAPIVersion) {
        // `/version` is the one path without a version prefix: it says which prefix to use.
        let server = try DockerJSON.version(from: try Self.checked(try await send("/version"), path: "/version"))
        let chosen = try Self.negotiate(server)
        negotiated.withLock { $0 = chosen }
        return (server, chosen)
    }

    /// The version the Docker CLI would pick: the engine's own, capped at the newest this client
    /// knows; refused when older than it needs, or older than the engine still accepts.
    public static func negotiate(_ server: DockerServerVersion) throws -> DockerAPIVersion {
        let chosen = min(server.apiVersion, maximumAPIVersion)
        guard chosen >= minimumAPIVersion else {
            throw DockerError(.unsupportedAPIVersion,
                "Docker \(server.engine) speaks Engine API \(server.apiVersion); zonegate needs \(minimumAPIVersion) or newer (Docker 1.12 or later): upgrade Docker")
        }
        if let oldest = server.minimumAPIVersion, chosen < oldest {
            throw DockerError(.unsupportedAPIVersion,
                "Docker \(server.engine) accepts Engine API \(oldest) and newer; zonegate speaks at most \(maximumAPIVersion): upgrade zonegate")
        }
        return chosen
    }

    private func versionPrefix() async throws -> String {
        if let known = negotiated.withLock({ $0 }) { return "/v\(known)" }
        return "/v\(try await negotiateVersion().chosen)"
    }

    // MARK: HTTP

    private func get(_ path: String) async throws -> Data {
        try Self.checked(try await send(try await versionPrefix() + path), path: path)
    }

    /// One request with a deadline, and its whole body.
    private func send(_ path: String) async throws -> (status: UInt, body: Data) {
        do {
            let response = try await http.execute(try makeRequest(path), deadline: .now() + Self.requestTimeout, logger: logger)
            return (response.status.code, Data(buffer: try await response.body.collect(upTo: Self.maximumBodySize)))
        } catch is NIOTooManyBytesError {
            // Docker is there; its answer is what is wrong (a container with 64 MiB of labels).
            throw DockerError(.malformedResponse, "Docker's answer to GET \(path) is larger than \(Self.maximumBodySize >> 20) MiB")
        } catch {
            throw described(error, streaming: false)
        }
    }

    private static func checked(_ response: (status: UInt, body: Data), path: String) throws -> Data {
        guard response.status == 200 else { throw httpError(response.status, body: response.body, path: path) }
        return response.body
    }

    private func makeRequest(_ pathAndQuery: String) throws -> HTTPClientRequest {
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: pathAndQuery) else {
            throw DockerError(.unsupportedHost, "docker host '\(host)': no request URL can be made for the socket path \(socketPath)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        // dockerd answers 400 to a request without Host, and async-http-client sets none for a socket.
        request.headers.add(name: "Host", value: "docker")
        request.headers.add(name: "Accept", value: "application/json")
        return request
    }

    private static func httpError(_ status: UInt, body: Data, path: String) -> DockerError {
        let message = DockerJSON.errorMessage(from: body)
        return DockerError(.requestFailed, "Docker answered HTTP \(status) to GET \(path)" + (message.isEmpty ? "" : ": \(message)"))
    }

    /// Turns transport errors into a `DockerError` saying what to check; lets cancellation and
    /// errors already described through.
    private func described(_ error: Error, streaming: Bool) -> Error {
        if error is DockerError || error is CancellationError { return error }
        negotiated.withLock { $0 = nil }
        let reason: String
        if let io = error as? IOError {
            reason = Self.explain(errno: io.errnoCode)
        } else if let client = error as? HTTPClientError {
            if client == .cancelled && Task.isCancelled { return CancellationError() }
            reason = Self.explain(client)
        } else {
            reason = "\(error)"
        }
        if streaming {
            return DockerError(.streamEnded, "the event stream from Docker at \(host) broke (did dockerd stop?): \(reason)")
        }
        return DockerError(.unreachable, "cannot reach Docker at \(host): \(reason)")
    }

    private static func explain(errno code: Int32) -> String {
        let text = String(cString: strerror(code)).lowercased()
        switch code {
        case ENOENT, ECONNREFUSED: return "\(text) (is dockerd running?)"
        case EACCES, EPERM: return "\(text) (zonegate needs root, or membership of the socket's group)"
        default: return text
        }
    }

    private static func explain(_ error: HTTPClientError) -> String {
        switch error {
        case .remoteConnectionClosed: "dockerd closed the connection"
        case .connectTimeout: "no connection within 5 seconds"
        case .deadlineExceeded: "no answer within \(requestTimeout.nanoseconds / 1_000_000_000) seconds"
        default: "\(error)"
        }
    }

    private static func pathComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? text
    }

    private static func queryValue(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}
