import Foundation
import HTTPServing
import TestServers
import Testing

/// The HTTP server's limits against clients that try to hold or flood it: a head dripped
/// a byte at a time, line feeds instead of a head, bodies nobody may send, more connections
/// than it serves, a body that stops half-way.
@Suite struct HTTPServerLimitsTests {
    @Test func aHeadStillArrivingAtTheDeadlineIsAnswered408AndClosedWhileItDrips() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(requestHeadTimeout: 1), handler: echoHandler)
        defer { server.shutdown() }
        // One byte every 200 ms: each is progress, none finishes the head.
        let (answer, closed) = try await Self.drip(to: server.port, after: "GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(80))")
        #expect(closed)
    }

    /// Sends `start`, then a byte every 200 ms until the server answers (at most 30 s); the
    /// answer's head and whether the server then closed the connection.
    static func drip(to port: Int, after start: String) async throws -> (String, Bool) {
        try await offPool { () -> (String, Bool) in
            let client = try RawHTTPClient(port: port)
            client.send(start)
            var answer = ""
            let limit = Date().addingTimeInterval(30)
            while Date() < limit {
                answer += client.read(until: "\r\n\r\n", timeout: 0.2)
                if answer.contains("\r\n\r\n") || !client.send("a") { break }
            }
            return (answer, client.isClosedByPeer(timeout: 10))
        }
    }

    @Test func aBodyStillArrivingAtItsDeadlineIsAnswered408AndClosedWhileItDrips() async throws {
        // Each byte comes well within the idle timeout: only a deadline for the whole body ends it.
        let server = try HTTPServer(options: HTTPServer.Options(idleTimeout: 30, requestBodyTimeout: 1), handler: echoHandler)
        defer { server.shutdown() }
        let (answer, closed) = try await Self.drip(to: server.port, after: "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(80))")
        #expect(closed)
    }

    @Test func aBodyThatArrivesInTimeIsAnsweredAndTheHandlerMayTakeLongerThanTheBodyDeadline() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(requestBodyTimeout: 1)) { request in
            .text("got \(request.body.count)").delayed(by: 1.5)
        }
        defer { server.shutdown() }
        let port = server.port
        let answer = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            return client.read(until: "got 3", timeout: 30)
        }
        #expect(answer.hasPrefix("HTTP/1.1 200") && answer.contains("got 3"), "\(answer.prefix(200))")
    }

    @Test func aConnectionThatSendsNothingIsClosedAtTheHeadDeadline() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(requestHeadTimeout: 1), handler: echoHandler)
        defer { server.shutdown() }
        let port = server.port
        let closed = try await offPool { try RawHTTPClient(port: port).isClosedByPeer(timeout: 30) }
        #expect(closed)
    }

    @Test func aKeptAliveConnectionGetsANewHeadDeadlineAfterEachResponse() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(requestHeadTimeout: 1), handler: echoHandler)
        defer { server.shutdown() }
        let port = server.port
        let (first, second, closed) = try await offPool { () -> (String, String, Bool) in
            let client = try RawHTTPClient(port: port)
            client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = client.read(until: "body=0")
            client.send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            let second = client.read(until: "body=0")
            return (first, second, client.isClosedByPeer(timeout: 30))
        }
        #expect(first.contains("path=/one") && second.contains("path=/two"))
        #expect(closed, "the idle kept-alive connection is closed at the next head's deadline")
    }

    @Test func eightyKilobytesOfLineFeedsAreAnswered431AtTheHeadLimit() async throws {
        let server = try HTTPServer(handler: echoHandler)
        defer { server.shutdown() }
        let port = server.port
        let answer = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            client.send([UInt8](repeating: 0x0A, count: 80 * 1024))
            return client.read(until: "\r\n\r\n", timeout: 30)
        }
        #expect(answer.hasPrefix("HTTP/1.1 431"), "\(answer.prefix(80))")
        let response = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            client.send("\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            return client.read(until: "body=0")
        }
        #expect(response.contains("path=/after"), "blank lines before a request are still allowed")
    }

    @Test func aBodyOverTheLimitIsRefused413FromItsHeadWithoutTheHandler() async throws {
        let calls = SharedNumber()
        let server = try HTTPServer(options: HTTPServer.Options(maxBodyBytes: 1000)) { request in
            calls.add()
            return echoHandler(request)
        }
        defer { server.shutdown() }
        let port = server.port
        let total = 16 << 20
        let (declared, sent) = try await offPool {
            try RawHTTPClient(port: port).sendHead(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n", thenBody: total)
        }
        #expect(declared.hasPrefix("HTTP/1.1 413"), "\(declared.prefix(80))")
        #expect(sent < total, "the answer came before the body was sent")
        let chunked = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            let chunk = String(repeating: "y", count: 600)
            client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n")
            return client.read(until: "\r\n\r\n")
        }
        #expect(chunked.hasPrefix("HTTP/1.1 413"), "\(chunked.prefix(80))")
        #expect(calls.value == 0)
        let fits = try await offPool { () -> String in
            let client = try RawHTTPClient(port: port)
            client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "z", count: 1000))
            return client.read(until: "body=1000")
        }
        #expect(fits.contains("body=1000"))
    }

    @Test func connectionsBeyondTheCapWaitUntilOneCloses() async throws {
        let box = ServerBox()
        let seen = SharedNumber()
        let server = try HTTPServer(options: HTTPServer.Options(maxConnections: 2)) { request in
            if request.path == "/third" { seen.set(box.server?.openConnections ?? -1) }
            return echoHandler(request)
        }
        box.server = server
        defer {
            box.server = nil
            server.shutdown()
        }
        let port = server.port
        let third = try await offPool { () -> String in
            let first = try RawHTTPClient(port: port)
            let second = try RawHTTPClient(port: port)
            for client in [first, second] {
                client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = client.read(until: "body=0")
            }
            let third = try RawHTTPClient(port: port)
            third.send("GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
            shutdown(first.fd, Int32(SHUT_RDWR))
            return third.read(until: "body=0", timeout: 30)
        }
        #expect(third.contains("path=/third"))
        #expect((1...2).contains(seen.value), "\(seen.value) connections open while the third was served")
    }

    @Test func aBodyThatStopsHalfWayIsClosedAfterTheIdleTimeout() async throws {
        let server = try HTTPServer(options: HTTPServer.Options(idleTimeout: 1), handler: echoHandler)
        defer { server.shutdown() }
        let port = server.port
        let closed = try await offPool { () -> Bool in
            let client = try RawHTTPClient(port: port)
            client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            return client.isClosedByPeer(timeout: 30)
        }
        #expect(closed)
    }
}

/// A number shared with handlers.
final class SharedNumber: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int { lock.withLock { stored } }
    func add() { lock.withLock { stored += 1 } }
    func set(_ value: Int) { lock.withLock { stored = value } }
}
