import CancelWatch
import Foundation
import HTTPServing
import TestServers
import Testing

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

/// The server's HTTP/1.1 behaviour as handlers and clients see it (its limits are in
/// HTTPServerLimitsTests).
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
        // A kept-alive connection waits for the next request as long as the head deadline
        // (10 s by default): longer here than any pause of a loaded full run between requests.
        let server = try HTTPServer(options: HTTPServer.Options(requestHeadTimeout: 600), handler: echoHandler)
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
        #expect(version.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 4"))
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == 200)
    }

    @Test func servesConcurrentRequestsOnSeparateThreads() async throws {
        // Each handler waits until all six are inside at once: only a server that runs
        // them side by side can answer (a serial one would time out the first wait).
        let gate = NSCondition()
        nonisolated(unsafe) var inside = 0
        nonisolated(unsafe) var most = 0
        // Only this test's requests count: another test's probe of a port it just closed
        // can land here when the kernel hands that port out again.
        let token = UUID().uuidString
        let server = try HTTPServer { request in
            guard request.queryValue("run") == token else { return .text(status: 404, "not this test") }
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
                    try await parallel.send(HTTPRequest(method: "GET", url: server.baseURL + "/slow?run=\(token)", timeout: 30)).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 6))
        #expect(gate.withLock { most } == 6, "six requests were in their handlers at the same time")
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
        #expect(server.openConnections == 0)
        // Nothing of this server listens any more: a connection is refused, or (the kernel handed
        // the port to another test's server meanwhile, seen once in CI) is not one of this server's.
        if let probe = try? RawHTTPClient(port: server.port) {
            // No request: another test's server must not count one it did not get.
            _ = probe.read(timeout: 1)
            #expect(server.openConnections == 0, "the listener still accepted a connection after shutdown")
        }
        server.shutdown()  // twice is fine
    }
}
