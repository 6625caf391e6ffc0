import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An HTTP/1.1 server on Hummingbird's HTTP/1 channel and SwiftNIO, for the marketplace
/// simulator, `/metrics` and test receivers, with limits that a client cannot talk around.
///
/// Each request's handler runs on a thread of its own (never an event loop, never Swift's
/// cooperative pool), so a handler may block or sleep. It is called once per complete
/// request and returns the whole response.
///
/// - Keep-alive and pipelining; bodies framed by `Content-Length` or chunked.
/// - Limits (``Options``): the time and bytes a request head may take (408, 431), the body
///   (413, answered from the head alone, nothing buffered), connections served at once (more
///   wait in the listen backlog), silence while a body arrives.
/// - Malformed requests get 400 and the connection is closed; no input crashes it.
///
/// ```swift
/// let server = try HTTPServer { request in .text("hello \(request.path)") }
/// print(server.baseURL)   // http://127.0.0.1:54321
/// server.shutdown()
/// ```
public final class HTTPServer: Sendable {
    /// Limits and timeouts.
    public struct Options: Sendable {
        /// The most bytes a request head may take, blank lines before it included (else 431).
        public var maxHeaderBytes: Int
        /// The largest request body accepted (else 413, sent as soon as the head says so).
        public var maxBodyBytes: Int
        /// Connections served at once; more wait in the listen backlog until one closes.
        public var maxConnections: Int
        /// How long a request head may take to arrive in full, counted from the connection's
        /// start or the previous response (else 408, or a silent close when nothing came).
        /// This is also how long a kept-alive connection may wait for its next request.
        public var requestHeadTimeout: TimeInterval
        /// The longest silence while a request's body arrives (else the connection is closed).
        public var idleTimeout: TimeInterval
        /// How long a request's whole body may take to arrive after its head (else 408): a
        /// body dripped a byte at a time is never silent for `idleTimeout`.
        public var requestBodyTimeout: TimeInterval

        public init(
            maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 16 * 1024 * 1024, maxConnections: Int = 64,
            requestHeadTimeout: TimeInterval = 10, idleTimeout: TimeInterval = 30, requestBodyTimeout: TimeInterval = 300
        ) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxConnections = maxConnections
            self.requestHeadTimeout = requestHeadTimeout
            self.idleTimeout = idleTimeout
            self.requestBodyTimeout = requestBodyTimeout
        }
    }

    /// Why the server could not start.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The host the server listens on.
    public let host: String
    /// The port the server listens on (the ephemeral one chosen when 0 was asked for).
    public let port: Int
    private let core: ServerCore

    /// `http://host:port` (`http://[v6]:port`), without a trailing slash.
    public var baseURL: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }

    /// Starts listening on `host:port` (port 0: an ephemeral port) and serving with `handler`.
    /// `host` is an IPv4 or IPv6 address.
    public init(
        host: String = "127.0.0.1", port: Int = 0, options: Options = Options(),
        handler: @escaping @Sendable (ServerRequest) -> ServerResponse
    ) throws {
        guard (0...65535).contains(port) else { throw StartError(message: "invalid port \(port)") }
        let core = ServerCore(options: options, handler: handler)
        let maxConnections = max(1, options.maxConnections)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // One accept per read, so the connection cap below is exact.
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AvailableConnectionsChannelHandler(maxConnections: maxConnections))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in core.setUp(channel) }
        let listener: any Channel
        do {
            listener = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            throw StartError(message: "cannot listen on \(host.contains(":") ? "[\(host)]" : host):\(port): \(error)")
        }
        self.host = host
        self.port = listener.localAddress?.port ?? port
        self.core = core
        core.started(listener)
    }

    deinit {
        core.shutdown()
    }

    /// Stops accepting and closes every connection; responses being prepared are abandoned.
    /// Safe to call more than once, and from a handler.
    public func shutdown() {
        core.shutdown()
    }

    /// Stops listening and closes every connection, waiting for them without blocking a thread.
    public func close() async {
        await core.shutdown()
    }

    /// Connections open right now.
    public var openConnections: Int { core.openConnectionCount }
}

/// The listener, the open connections and the tasks serving them.
final class ServerCore: Sendable {
    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: (channel: any Channel, task: Task<Void, Never>?)] = [:]
        var stopping = false
    }

    let options: HTTPServer.Options
    let handler: @Sendable (ServerRequest) -> ServerResponse
    private let state = NIOLockedValueBox(State())
    private let logger = Logger(label: "HTTPServing", factory: { _ in SwiftLogNoOpLogHandler() })

    init(options: HTTPServer.Options, handler: @escaping @Sendable (ServerRequest) -> ServerResponse) {
        self.options = options
        self.handler = handler
    }

    var openConnectionCount: Int { state.withLockedValue { $0.connections.count } }

    func started(_ listener: any Channel) {
        let stopping = state.withLockedValue { state in
            state.listener = listener
            return state.stopping
        }
        if stopping { listener.close(promise: nil) }
    }

    /// The pipeline of one accepted connection: the head guard on the bytes, then
    /// Hummingbird's HTTP/1 channel, served by a task of its own.
    func setUp(_ channel: any Channel) -> EventLoopFuture<Void> {
        let options = self.options
        let http = HTTP1Channel(
            responder: { [self] request, writer, channel in
                try await respond(to: request, writer: writer, channel: channel)
            },
            configuration: HTTP1Channel.Configuration(
                idleTimeout: .milliseconds(Int64(Self.clamp(options.idleTimeout) * 1000)),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: max(1024, options.maxHeaderBytes), maxHeaderListSize: max(1024, options.maxHeaderBytes),
                    maxHeaderFieldCount: 256)))
        let id = ObjectIdentifier(channel)
        let admitted = state.withLockedValue { state -> Bool in
            guard !state.stopping else { return false }
            state.connections[id] = (channel, nil)
            return true
        }
        guard admitted else { return channel.close() }
        // Counted out when the connection goes inactive, which comes before the connection
        // cap lets the next one in (that waits for the close future).
        let ended: @Sendable () -> Void = { [self] in
            _ = state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
        channel.closeFuture.whenComplete { _ in ended() }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(
                    maxHeadBytes: max(1024, options.maxHeaderBytes),
                    headTimeout: .milliseconds(Int64(Self.clamp(options.requestHeadTimeout) * 1000)),
                    bodyTimeout: .milliseconds(Int64(Self.clamp(options.requestBodyTimeout) * 1000)), onInactive: ended))
        }.flatMap {
            http.setup(channel: channel, logger: self.logger)
        }.map { [self] value in
            // On the connection's event loop, not Swift's cooperative pool: callers may block
            // pool threads waiting for an answer (a test, a synchronous client) and still get it.
            let task = Task(executorPreference: EventLoopTaskExecutor(channel.eventLoop)) {
                await http.handle(value: value, logger: self.logger)
            }
            let keep = state.withLockedValue { state -> Bool in
                guard state.connections[id] != nil else { return false }
                state.connections[id]?.task = task
                return true
            }
            if !keep { task.cancel() }
        }
    }

    /// Seconds between 1 ms and a day.
    static func clamp(_ seconds: TimeInterval) -> TimeInterval {
        seconds.isFinite ? min(max(seconds, 0.001), 86_400) : 86_400
    }

    func shutdown() {
        let closing = close()
        guard let first = closing.first else { return }
        // Waits for the sockets to be closed (so the port can be bound again at once), never
        // on an event loop: the closing happens there.
        if !first.eventLoop.inEventLoop, MultiThreadedEventLoopGroup.currentEventLoop == nil {
            try? EventLoopFuture.andAllComplete(closing, on: first.eventLoop).wait()
        }
    }

    /// ``shutdown()`` for async callers: waits for the sockets to close without blocking a thread.
    func shutdown() async {
        let closing = close()
        guard let first = closing.first else { return }
        try? await EventLoopFuture.andAllComplete(closing, on: first.eventLoop).get()
    }

    /// Stops listening and closes every connection; the futures of their closing.
    private func close() -> [EventLoopFuture<Void>] {
        let (listener, connections) = state.withLockedValue { state in
            state.stopping = true
            defer {
                state.listener = nil
                state.connections = [:]
            }
            return (state.listener, Array(state.connections.values))
        }
        for connection in connections { connection.task?.cancel() }
        var closing: [EventLoopFuture<Void>] = connections.map { $0.channel.close() }
        if let listener { closing.append(listener.close()) }
        return closing
    }

    // MARK: Answering

    private func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel) async throws {
        channel.triggerUserOutboundEvent(ConnectionGuard.Event.requestStarted, promise: nil)
        let limit = max(0, options.maxBodyBytes)
        if let declared = request.headers[.contentLength], let length = Int(declared), length > limit {
            channel.triggerUserOutboundEvent(ConnectionGuard.Event.refuse(status: 413, reason: "request body too large"), promise: nil)
            return
        }
        var body = Data()
        for try await chunk in request.body {
            guard body.count + chunk.readableBytes <= limit else {
                channel.triggerUserOutboundEvent(ConnectionGuard.Event.refuse(status: 413, reason: "request body too large"), promise: nil)
                return
            }
            body.append(contentsOf: chunk.readableBytesView)
        }
        channel.triggerUserOutboundEvent(ConnectionGuard.Event.bodyReceived, promise: nil)
        var fields = HTTPHeaderFields()
        if let authority = request.head.authority { fields.add("Host", authority) }
        for field in request.headers { fields.add(field.name.rawName, field.value) }
        let serverRequest = ServerRequest(
            method: request.method.rawValue, target: request.head.path ?? "/", headers: fields, body: body,
            remoteAddress: channel.remoteAddress.map(Self.describe) ?? "unknown")

        let response = try await answerOnOwnThread(serverRequest)
        if response.delay > 0 { try await Task.sleep(for: .milliseconds(Int64(Self.clamp(response.delay) * 1000))) }

        var head = HTTPResponse(status: .init(code: min(max(response.status, 100), 999)))
        for field in response.headers {
            guard let name = HTTPField.Name(field.name), name != .contentLength, name != .transferEncoding else { continue }
            head.headerFields.append(HTTPField(name: name, value: field.value))
        }
        let hasBody = !(100..<200).contains(response.status) && response.status != 204 && response.status != 304
        if hasBody { head.headerFields[.contentLength] = String(response.body.count) }
        let closing =
            response.headers["Connection"]?.lowercased() == "close" || request.headers[.connection]?.lowercased() == "close"
        if closing { head.headerFields[.connection] = "close" }
        let bodyBytes = request.method == .head || !hasBody ? Data() : response.body
        switch response.fault {
        case .dropConnection:
            try? await channel.close().get()
            return
        case .truncateBody(let bytes):
            var bodyWriter = try await writer.writeHead(head)
            try await bodyWriter.write(ByteBuffer(bytes: bodyBytes.prefix(bytes)))
            channel.triggerUserOutboundEvent(ConnectionGuard.Event.closeWhenWritten, promise: nil)
            return
        case nil:
            try await writer.write(response: head, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bodyBytes)))
        }
        if closing {
            channel.triggerUserOutboundEvent(ConnectionGuard.Event.closeWhenWritten, promise: nil)
        } else {
            channel.triggerUserOutboundEvent(ConnectionGuard.Event.responseSent, promise: nil)
        }
    }

    /// Runs the handler on a new thread; the wait ends early (and the answer is dropped)
    /// when the connection's task is cancelled.
    private func answerOnOwnThread(_ request: ServerRequest) async throws -> ServerResponse {
        let handler = self.handler
        let once = OnceContinuation<ServerResponse>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                once.set(continuation)
                let thread = Thread { once.resume(with: .success(handler(request))) }
                thread.name = "http-handler"
                thread.stackSize = 512 * 1024
                thread.start()
            }
        } onCancel: {
            once.resume(with: .failure(CancellationError()))
        }
    }

    static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "unknown"
        let port = address.port ?? 0
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// A continuation resumed at most once, whichever of the handler and a cancellation comes first.
final class OnceContinuation<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var early: Result<Value, any Error>?
        var done = false
    }

    private let state = NIOLockedValueBox(State())

    func set(_ continuation: CheckedContinuation<Value, any Error>) {
        let early = state.withLockedValue { state -> Result<Value, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<Value, any Error>) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<Value, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            guard let continuation = state.continuation else {
                state.early = result
                return nil
            }
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}

/// Runs a task's jobs on a SwiftNIO event loop. Jobs there only parse, copy and await: the
/// handler itself runs on a thread of its own.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
