import Foundation
import HTTPServing
import Testing

@testable import CancelWatch

/// `CurlHTTPTransport` against loopback servers: what libcurl does on its own (retries on a
/// reused connection, error texts) must work with the way the transport hands it data.
@Suite struct CurlTransportTests {
    /// One thread: one curl handle, so the second request reuses the first one's connection.
    let transport = CurlHTTPTransport(threads: 1)

    @Test func aPostIsSentWholeAgainWhenItsReusedConnectionDiesBeforeAnswering() async throws {
        // The first answer keeps the connection open; the second request on it is read whole and
        // the connection closed without a word, as a server that timed out the idle connection
        // would. libcurl then retries on a fresh connection, which needs the body from the start.
        // The connection is kept until the second request whatever the load: a kept-alive
        // connection waits for its next request only as long as the head deadline (10 s by
        // default), and a loaded full run took longer; curl then opened a fresh connection,
        // and a drop there is not retried (curl 52).
        let server = try ScriptedServer(
            [{ _ in .text("warm") }, { _ in .dropConnection }], fallback: { request in .text("got:" + request.bodyText) },
            options: HTTPServer.Options(requestHeadTimeout: 600))
        let first = try await transport.send(
            HTTPRequest(method: "POST", url: server.baseURL + "/list", body: Data("{}".utf8), timeout: 5))
        #expect(first.status == 200)
        let body = Data(#"{"filters":{"state":"ON_APPROVAL"},"limit":500,"last_id":0}"#.utf8)
        let response = try await transport.send(
            HTTPRequest(method: "POST", url: server.baseURL + "/list", body: body, timeout: 5))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "got:" + String(decoding: body, as: UTF8.self))
        let seen = server.requests
        #expect(seen.count == 3)
        #expect(seen.dropFirst().allSatisfy { $0.body == body })
        #expect(seen[1].remoteAddress == seen[0].remoteAddress, "the second try reused the first connection")
        #expect(seen[2].remoteAddress != seen[1].remoteAddress, "the retry came on a fresh connection")
    }

    @Test func aRequestThatSendsOnceIsNotSentAgainWhenItsConnectionDiesBeforeAnswering() async throws {
        // As above, but the request asks to be sent once: it goes on a fresh connection, and a
        // drop there ends the transfer, saying it may have been sent.
        let server = try ScriptedServer(
            [{ _ in .text("warm") }, { _ in .dropConnection }], fallback: { _ in .text("sent twice") },
            options: HTTPServer.Options(requestHeadTimeout: 600))
        _ = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/list", body: Data("{}".utf8), timeout: 5))
        let error = await #expect(throws: TransportError.self) {
            _ = try await transport.send(
                HTTPRequest(method: "POST", url: server.baseURL + "/approve", body: Data("{}".utf8), timeout: 5, sendsOnce: true))
        }
        #expect(error?.mayHaveBeenSent == true)
        let seen = server.requests
        #expect(seen.count == 2)
        #expect(seen[1].remoteAddress != seen[0].remoteAddress, "it went on a connection of its own")
    }

    @Test func aStrangerOnTheScriptedServersPortTakesNoScriptedAnswer() async throws {
        // A client of an earlier test still sending to a port the kernel has since handed to this
        // server must not take this test's script (it once took a `dropConnection`).
        let server = try ScriptedServer([{ _ in .dropConnection }], fallback: { _ in .text("fallback") })
        let port = try #require(URL(string: server.baseURL)?.port)
        let stranger = try await transport.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/approve", body: Data("{}".utf8)))
        #expect(stranger.status == ScriptedServer.strangerStatus)
        #expect(server.requests.isEmpty)
        let error = await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/approve", body: Data("{}".utf8), sendsOnce: true))
        }
        #expect(error?.mayHaveBeenSent == true)
        #expect(server.requests.map(\.target) == ["/approve"])
    }

    @Test func aConnectionRefusedSaysTheRequestWasNotSent() async throws {
        let (port, hold) = try #require(PostgresStores.refusedPort())
        defer { withExtendedLifetime(hold) {} }
        let error = await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/", body: Data("x".utf8), timeout: 5))
        }
        #expect(error?.kind == .connection)
        #expect(error?.mayHaveBeenSent == false)
        let unresolvable = await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "GET", url: "http://no-such-host.invalid/", timeout: 5))
        }
        #expect(unresolvable?.mayHaveBeenSent == false, "\(String(describing: unresolvable))")
    }

    @Test func aPutBodyIsSentWithItsMethod() async throws {
        let server = try ScriptedServer(fallback: { request in .text("\(request.method):\(request.bodyText)") })
        let response = try await transport.send(
            HTTPRequest(method: "PUT", url: server.baseURL + "/audit", body: Data(#"{"package_id":"P1"}"#.utf8)))
        #expect(String(decoding: response.body, as: UTF8.self) == #"PUT:{"package_id":"P1"}"#)
        let empty = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/empty", body: Data()))
        #expect(String(decoding: empty.body, as: UTF8.self) == "POST:")
    }

    @Test func aFailedTransferCarriesCurlsOwnDetailAndTheHandleWorksAfterwards() async throws {
        // A port that was just open and is now closed: the connection is refused.
        let closed = try HTTPServer { _ in .text("never") }
        let url = closed.baseURL + "/"
        closed.shutdown()
        let error = await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "POST", url: url, body: Data("x".utf8), timeout: 5))
        }
        #expect(error?.kind == .connection)
        // The error buffer's text names the address; curl's generic text for the code would not.
        #expect(error?.message.contains("127.0.0.1") == true, "\(String(describing: error))")
        let server = try ScriptedServer(fallback: { _ in .text("fine") })
        for _ in 0..<3 {
            let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
            #expect(String(decoding: response.body, as: UTF8.self) == "fine")
        }
    }
    @Test func anAnswerLongerThanTheLimitFailsOrIsCutAndTheHandleWorksAfterwards() async throws {
        let long = String(repeating: "x", count: 200_000)
        let server = try ScriptedServer(fallback: { request in .text(request.path == "/long" ? long : "short") })
        let error = await #expect(throws: TransportError.self) {
            _ = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/long", maxResponseBytes: 100_000))
        }
        #expect(error?.message == "the answer was longer than 100000 bytes; stopped reading it")
        // Cut on request: the status, and the body's start (curl hands over at most 16 KiB at a time).
        let cut = try await transport.send(
            HTTPRequest(method: "GET", url: server.baseURL + "/long", maxResponseBytes: 100_000, cutsLongAnswer: true))
        #expect(cut.status == 200 && cut.bodyTruncated)
        #expect(cut.body.count > 100_000 - 16_384 && cut.body.count <= 100_000 && cut.body.allSatisfy { $0 == UInt8(ascii: "x") })
        // Up to the limit, taken whole; the same handle then serves the next request.
        let exact = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/long", maxResponseBytes: 200_000))
        #expect(exact.body.count == 200_000 && !exact.bodyTruncated)
        let next = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(String(decoding: next.body, as: UTF8.self) == "short" && !next.bodyTruncated)
    }
}
