import CancelWatch
import Foundation
import Testing

/// The `generic` webhook body, and what `stdout` prints with `format: json`, is a contract
/// with receivers: its members, their order (keys sorted; the whole texts below pin it),
/// types, nulls and date form are those cancelwatch has always sent.
@Suite struct WebhookBodyContractTests {
    static let bodyMembers = [
        "actor", "deadline", "event", "id", "marketplace", "message", "occurred_at", "outcome", "remaining_seconds", "request", "rule",
        "severity", "source", "version",
    ]
    static let requestMembers = ["created_at", "id", "initiator", "order", "raw", "raw_state", "reason", "state"]

    /// `SinkTestEvents.firing()` as receivers get it.
    static let firingBody = #"""
        {"actor":null,"deadline":"2026-11-23T20:06:00Z","event":"firing","id":"3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7","marketplace":"ozon",\#
        "message":"ozon 0123-0001-1 auto-approves in 1h 05m","occurred_at":"2026-11-23T19:01:00Z","outcome":null,\#
        "remaining_seconds":3900,"request":{"created_at":"2026-11-23T17:01:00Z","id":"91001","initiator":"CLIENT",\#
        "order":"0123-0001-1","raw":{"cancellation_id":91001,"state":{"state":"ON_APPROVAL"}},"raw_state":"ON_APPROVAL",\#
        "reason":"Передумал покупать","state":"pending"},"rule":"final-hour","severity":"critical","source":"ozon-main",\#
        "version":"1"}
        """#

    /// `SinkTestEvents.sourceDown()` as receivers get it.
    static let sourceDownBody = #"""
        {"actor":null,"deadline":null,"event":"source_down","id":"aa00","marketplace":"xiaohongshu","message":"5 polls failed",\#
        "occurred_at":"2026-11-23T19:01:00Z","outcome":null,"remaining_seconds":null,"request":null,"rule":null,\#
        "severity":"critical","source":"red-shop","version":"1"}
        """#

    /// Member names, sorted as the body writes them, at the top level and in `request`.
    static func members(of text: String) throws -> (body: [String], request: [String]?) {
        let json = try JSONParser.parse(text)
        return (try #require(json.objectValue).keys.sorted(), json["request"]?.objectValue?.keys.sorted())
    }

    @Test func anAlertsBodyHasExactlyTheContractsMembersInTheirOrderAtTheTopAndInItsRequest() throws {
        let text = SinkTestEvents.firing().webhookBody.serialized()
        let members = try Self.members(of: text)
        #expect(members.body == Self.bodyMembers)
        #expect(members.request == Self.requestMembers)
        #expect(text == Self.firingBody)
    }

    @Test func aSourceEventsBodyHasTheSameMembersWithNullsWhereThereIsNoRequest() throws {
        let text = SinkTestEvents.sourceDown().webhookBody.serialized()
        let members = try Self.members(of: text)
        #expect(members.body == Self.bodyMembers)
        #expect(members.request == nil)
        #expect(text == Self.sourceDownBody)
    }

    @Test func aRequestWithoutACreationTimeHasANullCreatedAt() throws {
        var event = SinkTestEvents.firing()
        event.request?.createdAt = nil
        let body = event.webhookBody
        #expect(try Self.members(of: body.serialized()).request == Self.requestMembers)
        #expect(body["request"]?["created_at"] == .null)
    }

    @Test func theWebhookSinkSendsTheContractsBody() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text(status: 204, "") })
        let sink = WebhookSink(
            name: "hook", config: WebhookSinkConfig(url: .url(receiver.baseURL + "/hook")), transport: CurlHTTPTransport(threads: 1),
            clock: ManualClock(SinkTestEvents.occurredAt))
        try await sink.deliver(SinkTestEvents.firing())
        try await sink.deliver(SinkTestEvents.sourceDown())
        #expect(receiver.requests.map(\.bodyText) == [Self.firingBody, Self.sourceDownBody])
    }

    @Test func stdoutJSONPrintsTheContractsBody() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", format: .json, output: captured.output)
        try await sink.deliver(SinkTestEvents.firing())
        try await sink.deliver(SinkTestEvents.sourceDown())
        #expect(captured.writes == [Self.firingBody + "\n", Self.sourceDownBody + "\n"])
    }
}
