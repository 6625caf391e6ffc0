import CancelWatch
import CancelWatchTesting
import Foundation
import Testing

/// `batch: true` on a generic webhook: a group is one POST of `{"version": "1", "events": [...]}`,
/// each member as its own POST would have carried it, keyed and signed as one event.
@Suite struct BatchWebhookTests {
    let clock = ManualClock(SinkTestEvents.occurredAt.addingTimeInterval(2))

    func members() -> [AlertEvent] {
        [("aa", "0123-0001-1", 3900.0), ("bb", "0123-0001-2", 600.0)].map { id, order, remaining in
            var event = SinkTestEvents.firing(id: String(repeating: id, count: 16), severity: .warning, order: order)
            event.request?.id = order
            event.request?.deadline = SinkTestEvents.occurredAt.addingTimeInterval(remaining)
            return event
        }
    }

    @Test func aGroupPostsEachMembersBodyInOneBatchKeyedAndSignedByTheGroup() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text(status: 204, "") })
        let sink = WebhookSink(
            name: "hook",
            config: WebhookSinkConfig(url: .url(receiver.baseURL + "/batch"), secret: Secret("whsec_5f1e2d3c"), group: GroupPolicy()),
            transport: CurlHTTPTransport(threads: 1), clock: clock)
        let events = members()
        let group = AlertEvent.group(events, sink: "hook", at: clock.now())
        try await sink.deliver(group)

        let posts = receiver.requests.filter { $0.path == "/batch" }
        let post = try #require(posts.first)
        #expect(posts.count == 1)
        #expect(post.header("Idempotency-Key") == group.id)
        let expected = #"{"events":["# + events[1].webhookBody.serialized() + "," + events[0].webhookBody.serialized() + #"],"version":"1"}"#
        #expect(post.bodyText == expected)
        let body = try JSONParser.parse(post.body)
        #expect(body["version"]?.stringValue == "1")
        #expect(body["events"]?.arrayValue?.map { $0["request"]?["order"]?.stringValue } == ["0123-0001-2", "0123-0001-1"])
        #expect(body["events"]?.arrayValue?.first?["event"]?.stringValue == "firing")

        let signature = try #require(post.header(WebhookSink.signatureHeader))
        let t = try #require(signature.split(separator: ",").first?.dropFirst(2))
        #expect(signature.hasSuffix("v1=" + (try IndependentHMAC.sha256Hex(key: "whsec_5f1e2d3c", message: "\(t)." + post.bodyText))))

        // Any other event posts as it always did.
        try await sink.deliver(events[0])
        #expect(receiver.requests.filter { $0.path == "/batch" }.last?.bodyText == events[0].webhookBody.serialized())
    }
}
