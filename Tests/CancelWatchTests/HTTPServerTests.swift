import CancelWatch
import Foundation
import HTTPServing
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A raw TCP client for what libcurl would never send.
final class RawHTTPClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until `until` appears in what was read, the peer closes, or `timeout` passes.
    func read(until marker: String? = nil, timeout: TimeInterval = 2) -> String {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Whether the server closed the connection (a read returns end of file) within `timeout`.
    func isClosedByPeer(timeout: TimeInterval = 2) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }
}

/// Lets a handler reach its own server.
final class ServerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: HTTPServer?
    var server: HTTPServer? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// Echoes what it received, as JSON-ish text lines.
@Sendable func echoHandler(_ request: ServerRequest) -> ServerResponse {
    var lines = [
        "method=\(request.method)", "path=\(request.path)", "target=\(request.target)", "remote=\(request.remoteAddress)",
        "body=\(request.body.count)",
    ]
    for item in request.query { lines.append("query:\(item.name)=\(item.value)") }
    if let value = request.header("x-test") { lines.append("x-test=\(value)") }
    return .text(lines.joined(separator: "\n"))
}

@Suite struct HTTPServerTests {
    let transport = CurlHTTPTransport(threads: 1)

    @Test func servesARequestFromLibcurlWithDecodedQueryAndCaseInsensitiveHeaders() async throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        #expect(server.baseURL == "http://127.0.0.1:\(server.port)")
        let response = try await transport.send(
            HTTPRequest(method: "GET", url: server.baseURL + "/a/b?x=1%202&name=%E7%94%A8+x&flag", headers: [HTTPHeader("X-Test", "yes")]))
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/plain; charset=utf-8")
        #expect(text.contains("method=GET"))
        #expect(text.contains("path=/a/b"))
        #expect(text.contains("query:x=1 2"))
        #expect(text.contains("query:name=用 x"))
        #expect(text.contains("query:flag="))
        #expect(text.contains("x-test=yes"))
        #expect(text.contains("remote=127.0.0.1:"))
    }

    @Test func receivesAWholeContentLengthBody() async throws {
        let server = try HTTPServer { request in .text("\(request.body.count):\(request.body.last ?? 0)") }
        defer { server.shutdown() }
        let body = Data((0..<300_000).map { UInt8($0 % 251) })
        let response = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/upload", body: body))
        #expect(String(decoding: response.body, as: UTF8.self) == "300000:\(body.last!)")
    }

    @Test func keepsTheConnectionAliveBetweenRequests() async throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        var remotes: Set<String> = []
        for _ in 0..<3 {
            let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
            let text = String(decoding: response.body, as: UTF8.self)
            remotes.insert(text.split(separator: "\n").first { $0.hasPrefix("remote=") }.map(String.init) ?? "")
            #expect(response.header("Connection") == nil)
        }
        #expect(remotes.count == 1, "three requests over one connection")
    }

    @Test func answersPipelinedRequestsInOrderAndHonoursConnectionClose() throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let client = try RawHTTPClient(port: server.port)
        client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let text = client.read(timeout: 2)
        let one = try #require(text.range(of: "path=/one"))
        let two = try #require(text.range(of: "path=/two"))
        #expect(one.lowerBound < two.lowerBound)
        #expect(text.contains("Connection: close"))
        #expect(client.isClosedByPeer())
    }

    @Test func answersExpect100ContinueBeforeReadingTheBody() throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let client = try RawHTTPClient(port: server.port)
        client.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = client.read(until: "\r\n\r\n", timeout: 2)
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
        client.send("hello")
        let final = client.read(until: "body=5", timeout: 2)
        #expect(final.contains("HTTP/1.1 200 OK"))
        #expect(final.contains("body=5"))
    }

    @Test func readsAChunkedBody() throws {
        let server = try HTTPServer { request in .text(request.bodyText) }
        defer { server.shutdown() }
        let client = try RawHTTPClient(port: server.port)
        client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        let text = client.read(until: "hello world", timeout: 2)
        #expect(text.hasSuffix("\r\n\r\nhello world"))
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET nothing HTTP/1.1\r\n\r\n",
    ])
    func refusesMalformedRequestsWith400AndKeepsServing(raw: String) async throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let client = try RawHTTPClient(port: server.port)
        client.send(raw)
        let text = client.read(until: "\r\n\r\n", timeout: 2)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request"), "\(raw.debugDescription) got \(text.prefix(40))")
        #expect(client.isClosedByPeer())
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/after"))
        #expect(response.status == 200)
    }

    @Test func survivesBinaryGarbageAndAnUnsupportedVersion() async throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let garbage = try RawHTTPClient(port: server.port)
        var random = SystemRandomNumberGenerator()
        garbage.send((0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) } + [13, 10, 13, 10])
        #expect(garbage.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        let version = try RawHTTPClient(port: server.port)
        version.send("GET / HTTP/2.0\r\n\r\n")
        #expect(version.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 505"))
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == 200)
    }

    @Test func refusesAnOversizedHeaderBlockWith431() throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let client = try RawHTTPClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 70 * 1024) + "\r\n\r\n")
        #expect(client.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 431 Request Header Fields Too Large"))
    }

    @Test func refusesAnOversizedBodyWith413() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(maxBodyBytes: 1000), handler: echoHandler)
        defer { server.shutdown() }
        let response = try await transport.send(
            HTTPRequest(method: "POST", url: server.baseURL + "/", body: Data(count: 5000)))
        #expect(response.status == 413)
        let small = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/", body: Data(count: 1000)))
        #expect(small.status == 200)
    }

    @Test func answers408WhenAClientStallsMidRequest() throws {
        let server = try HTTPServer(options: HTTPServer.Options(readTimeout: 0.2, idleTimeout: 0.3), handler: echoHandler)
        defer { server.shutdown() }
        let stalled = try RawHTTPClient(port: server.port)
        stalled.send("GET / HTTP/1.1\r\nHost: x\r\n")
        #expect(stalled.read(until: "\r\n\r\n", timeout: 2).hasPrefix("HTTP/1.1 408"))
        #expect(stalled.isClosedByPeer())
        let idle = try RawHTTPClient(port: server.port)
        #expect(idle.isClosedByPeer(timeout: 2), "an idle connection is closed after idleTimeout")
    }

    @Test func servesConcurrentRequestsOnSeparateThreads() async throws {
        // Each handler waits until all six are inside at once: only a server that runs
        // them side by side can answer (a serial one would time out the first wait).
        let gate = NSCondition()
        nonisolated(unsafe) var inside = 0
        nonisolated(unsafe) var most = 0
        let server = try HTTPServer { _ in
            gate.lock()
            inside += 1
            most = max(most, inside)
            gate.broadcast()
            let deadline = Date().addingTimeInterval(20)
            while inside < 6 && gate.wait(until: deadline) {}
            gate.unlock()
            return .text("done")
        }
        defer { server.shutdown() }
        let parallel = CurlHTTPTransport(threads: 6)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await parallel.send(HTTPRequest(method: "GET", url: server.baseURL + "/slow", timeout: 30)).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 6))
        #expect(gate.withLock { most } == 6, "six requests were in their handlers at the same time")
    }

    @Test func answers503BeyondTheConnectionLimit() throws {
        let server = try HTTPServer(options: HTTPServer.Options(maxConnections: 1), handler: echoHandler)
        defer { server.shutdown() }
        let first = try RawHTTPClient(port: server.port)
        first.send("GET / HTTP/1.1\r\n\r\n")
        #expect(first.read(until: "body=0").contains("200 OK"))
        let second = try RawHTTPClient(port: server.port)
        #expect(second.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 503"))
    }

    @Test func delaysAResponseWhenTheHandlerAsks() async throws {
        let server = try HTTPServer { _ in ServerResponse.text("late").delayed(by: 0.25) }
        defer { server.shutdown() }
        let started = Date()
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == 200)
        #expect(Date().timeIntervalSince(started) >= 0.25)
    }

    @Test func dropsOrTruncatesAResponseWhenTheHandlerAsks() async throws {
        let server = try HTTPServer { request in
            request.path == "/drop" ? .dropConnection : ServerResponse.text(String(repeating: "x", count: 1000)).truncated(afterBytes: 10)
        }
        defer { server.shutdown() }
        await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/drop", timeout: 5))
        }
        await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/truncate", timeout: 5))
        }
        let client = try RawHTTPClient(port: server.port)
        client.send("GET /truncate HTTP/1.1\r\n\r\n")
        let text = client.read(timeout: 2)
        #expect(text.contains("Content-Length: 1000"))
        #expect(text.hasSuffix("\r\n\r\nxxxxxxxxxx"))
    }

    @Test func keepsAnHTTP10ConnectionAliveOnlyWhenAsked() throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let asked = try RawHTTPClient(port: server.port)
        asked.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(asked.read(until: "body=0").contains("Connection: keep-alive"))
        asked.send("GET /b HTTP/1.0\r\n\r\n")
        let second = asked.read(timeout: 2)
        #expect(second.contains("path=/b"))
        #expect(second.contains("Connection: close"))
        #expect(asked.isClosedByPeer())
    }

    @Test func aHandlerCanShutTheServerDown() throws {
        let box = ServerBox()
        let server = try HTTPServer { request in
            if request.path == "/stop" { box.server?.shutdown() }
            return .text("bye")
        }
        box.server = server
        let client = try RawHTTPClient(port: server.port)
        client.send("GET /stop HTTP/1.1\r\n\r\n")
        _ = client.read(timeout: 1)
        let deadline = Date().addingTimeInterval(2)
        var refused = false
        while Date() < deadline && !refused {
            refused = (try? RawHTTPClient(port: server.port)) == nil
            if !refused { Thread.sleep(forTimeInterval: 0.02) }
        }
        #expect(refused)
        box.server = nil
    }

    @Test func shutdownClosesTheListenerAndOpenConnectionsPromptly() throws {
        let server = try HTTPServer { _ in ServerResponse.text("never").delayed(by: 30) }
        let idle = try RawHTTPClient(port: server.port)
        let waiting = try RawHTTPClient(port: server.port)
        waiting.send("GET / HTTP/1.1\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        // At least these two: another test probing a port it just closed can land on this
        // server when the kernel hands the same ephemeral port out again (seen once in CI).
        #expect(server.openConnections >= 2)
        let started = Date()
        server.shutdown()
        #expect(Date().timeIntervalSince(started) < 15, "shutdown did not wait out the 30 s delay")
        #expect(idle.isClosedByPeer(timeout: 1))
        #expect(waiting.isClosedByPeer(timeout: 1))
        #expect(throws: (any Error).self) { _ = try RawHTTPClient(port: server.port) }
        server.shutdown()  // twice is fine
    }
}
