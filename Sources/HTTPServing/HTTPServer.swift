import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// A small HTTP/1.1 server on POSIX sockets, for the marketplace simulator,
/// `/metrics` and test receivers.
///
/// Every connection is served by its own dedicated thread (never Swift's
/// cooperative pool), so a handler may block or sleep. The handler is called
/// once per complete request and returns the whole response.
///
/// - Keep-alive (HTTP/1.1 default, `Connection: keep-alive` for 1.0) and pipelining.
/// - Bodies framed by `Content-Length` or `Transfer-Encoding: chunked`;
///   `Expect: 100-continue` is answered.
/// - Limits: header block (431), body (413), number of connections (503),
///   read timeouts (408, or a silent close between requests).
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
        /// The most bytes a request line plus headers may take (else 431).
        public var maxHeaderBytes: Int
        /// The largest request body accepted (else 413).
        public var maxBodyBytes: Int
        /// Connections served at once; more are answered 503 and closed.
        public var maxConnections: Int
        /// The longest silence while a request is arriving (else 408 and close).
        public var readTimeout: TimeInterval
        /// The longest a kept-alive connection may wait for its next request.
        public var idleTimeout: TimeInterval
        /// The longest a write may block on a client that does not read.
        public var writeTimeout: TimeInterval

        public init(
            maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 16 * 1024 * 1024, maxConnections: Int = 64,
            readTimeout: TimeInterval = 10, idleTimeout: TimeInterval = 30, writeTimeout: TimeInterval = 30
        ) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxConnections = maxConnections
            self.readTimeout = readTimeout
            self.idleTimeout = idleTimeout
            self.writeTimeout = writeTimeout
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

    /// `http://host:port`, without a trailing slash.
    public var baseURL: String { "http://\(host):\(port)" }

    /// Starts listening on `host:port` (port 0: an ephemeral port) and serving with `handler`.
    /// `host` must be an IPv4 address.
    public init(
        host: String = "127.0.0.1", port: Int = 0, options: Options = Options(),
        handler: @escaping @Sendable (ServerRequest) -> ServerResponse
    ) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        guard port >= 0, port <= 65535 else { throw StartError(message: "invalid port \(port)") }
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw StartError(message: "invalid IPv4 address '\(host)'")
        }
        let fd = socket(AF_INET, socketStreamType, 0)
        guard fd >= 0 else { throw StartError(message: "socket() failed: \(String(cString: strerror(errno)))") }
        SocketIO.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            SocketIO.closeSocket(fd)
            throw StartError(message: "cannot listen on \(host):\(port): \(reason)")
        }
        guard listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            SocketIO.closeSocket(fd)
            throw StartError(message: "listen() failed: \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.host = host
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            SocketIO.closeSocket(fd)
            throw StartError(message: "pipe() failed")
        }
        core = ServerCore(listener: fd, wakeRead: pipeEnds[0], wakeWrite: pipeEnds[1], options: options, handler: handler)
        core.start()
    }

    deinit {
        core.shutdown()
    }

    /// Stops accepting, closes every connection and waits for their threads to end.
    /// Responses being delayed are abandoned. Safe to call more than once. Called from a
    /// handler, it returns at once and the server finishes stopping on another thread.
    public func shutdown() {
        core.shutdown()
    }

    /// Connections open right now.
    public var openConnections: Int { core.openConnectionCount }
}

/// The listener, the connections and their threads. Threads hold this, not the
/// `HTTPServer`, so that dropping the server shuts it down.
final class ServerCore: @unchecked Sendable {
    private let condition = NSCondition()
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    let options: HTTPServer.Options
    let handler: @Sendable (ServerRequest) -> ServerResponse

    // Guarded by `condition`.
    private var stopping = false
    private var finished = false
    private var acceptRunning = false
    private var connections: [UInt64: Int32] = [:]
    private var runningConnectionThreads = 0
    private var nextConnectionID: UInt64 = 0

    private let threadKey = "HTTPServing.ServerCore.\(UUID().uuidString)"

    init(
        listener: Int32, wakeRead: Int32, wakeWrite: Int32, options: HTTPServer.Options,
        handler: @escaping @Sendable (ServerRequest) -> ServerResponse
    ) {
        self.listener = listener
        self.wakeRead = wakeRead
        self.wakeWrite = wakeWrite
        self.options = options
        self.handler = handler
    }

    var openConnectionCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return connections.count
    }

    var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    func start() {
        condition.lock()
        acceptRunning = true
        condition.unlock()
        let thread = Thread { [self] in
            Thread.current.threadDictionary[threadKey] = true
            acceptLoop()
            condition.lock()
            acceptRunning = false
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "http-accept"
        thread.stackSize = 256 * 1024
        thread.start()
    }

    func shutdown() {
        let onServerThread = Thread.current.threadDictionary[threadKey] != nil
        condition.lock()
        if !stopping {
            stopping = true
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
            for fd in connections.values { SocketIO.shutdownSocket(fd) }
            condition.broadcast()
        }
        if onServerThread {
            // A handler asked to stop: its own thread cannot be waited for here, so
            // another thread waits for every connection to end and closes the sockets.
            condition.unlock()
            let closer = Thread { [self] in shutdown() }
            closer.name = "http-shutdown"
            closer.start()
            return
        }
        while acceptRunning || runningConnectionThreads > 0 { condition.wait() }
        let closeNow = !finished
        finished = true
        condition.unlock()
        if closeNow {
            SocketIO.closeSocket(listener)
            SocketIO.closeSocket(wakeRead)
            SocketIO.closeSocket(wakeWrite)
        }
    }

    /// Waits `seconds` or until shutdown; returns false when the server is stopping.
    func pause(_ seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while !stopping && Date() < deadline {
            _ = condition.wait(until: deadline)
        }
        return !stopping
    }

    private func acceptLoop() {
        var pollers = [
            pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            pollers[0].revents = 0
            pollers[1].revents = 0
            let ready = poll(&pollers, 2, 1000)
            if isStopping { return }
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if ready == 0 || pollers[0].revents == 0 { continue }
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            if fd < 0 {
                if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                continue
            }
            SocketIO.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            SocketIO.setSendTimeout(fd, seconds: options.writeTimeout)
            let remote = SocketIO.describe(address)

            condition.lock()
            if stopping {
                condition.unlock()
                SocketIO.closeSocket(fd)
                return
            }
            if connections.count >= options.maxConnections {
                condition.unlock()
                let busy = ServerResponse.text(status: 503, "too many connections\n", headers: ["Retry-After": "1"])
                _ = ConnectionHandler.write(busy, to: fd, closing: true, headOnly: false)
                SocketIO.closeSocket(fd)
                continue
            }
            nextConnectionID += 1
            let id = nextConnectionID
            connections[id] = fd
            runningConnectionThreads += 1
            condition.unlock()

            let thread = Thread { [self] in
                Thread.current.threadDictionary[threadKey] = true
                var connection = ConnectionHandler(fd: fd, remoteAddress: remote, core: self)
                connection.serve()
                condition.lock()
                connections[id] = nil
                SocketIO.closeSocket(fd)
                runningConnectionThreads -= 1
                condition.broadcast()
                condition.unlock()
            }
            thread.name = "http-conn-\(id)"
            thread.stackSize = 512 * 1024
            thread.start()
        }
    }
}
