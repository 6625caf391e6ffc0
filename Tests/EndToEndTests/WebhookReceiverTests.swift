import Foundation
import Testing

@testable import CancelWatch

/// The test receiver takes events on its own path only: a watcher of an earlier test still
/// posting to the port it knew must not put its events among this test's.
@Suite struct WebhookReceiverTests {
    @Test func aPostToTheReceiversPortOutsideItsPathIsRefusedAndNotRecorded() async throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let transport = CurlHTTPTransport(threads: 1)
        let event = Data(#"{"id":"stray","event":"source_down","source":"ozon"}"#.utf8)
        let stray = try await transport.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(receiver.port)/hook", body: event))
        #expect(stray.status == 421)
        #expect(receiver.allReceipts.isEmpty)
        let own = try await transport.send(HTTPRequest(method: "POST", url: receiver.url, body: event))
        #expect(own.status == 200)
        #expect(receiver.acknowledged == ["stray"])
    }
}
