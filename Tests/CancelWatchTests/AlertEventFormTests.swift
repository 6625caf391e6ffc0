import Foundation
import Testing

@testable import CancelWatch

/// One Codable form of an event: the webhook body (whole-second RFC 3339 dates) and the
/// outbox row (dates to the microsecond) are the same members.
@Suite struct AlertEventFormTests {
    /// Sub-second instants, a non-BMP reason, a lone surrogate's scalar, a NUL and a raw
    /// object with an integer past a double's precision.
    static func event() -> AlertEvent {
        let occurred = Date(timeIntervalSince1970: 1_795_460_460.734_512)
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: "red-shop", id: "P1@1763999900", order: "P1", state: .pending, rawState: "unaudited",
            initiator: "", reason: "不想要了 😀 \u{F0000}", reasonID: "", logistics: "red_box",
            createdAt: occurred.addingTimeInterval(-100.000_001), deadline: occurred.addingTimeInterval(3899.5),
            rawObject: try! RawObject(json: Array(#"{"package_id":"P1\u0000","big":9007199254740993,"x":"\ud800"}"#.utf8)))
        return AlertEvent(
            id: "e1", kind: .firing, rule: "final-hour", severity: .critical, source: "red-shop", marketplace: .xiaohongshu,
            request: request, occurredAt: occurred, message: "P1 \u{0} 1h 04m", sinks: ["hook", "mail"])
    }

    @Test func theWebhookBodyHasEveryMemberOfItsContractWithWholeSecondDates() throws {
        let body = Self.event().webhookBody
        #expect(
            Set(body.objectValue?.keys.map { $0 } ?? []) == [
                "version", "id", "event", "rule", "severity", "source", "marketplace", "outcome", "occurred_at", "message", "request",
                "deadline", "remaining_seconds", "actor",
            ])
        #expect(body["version"] == "1" && body["event"] == "firing" && body["outcome"] == .null)
        #expect(body["occurred_at"] == "2026-11-23T19:01:00Z")
        #expect(body["deadline"] == "2026-11-23T20:06:00Z")
        #expect(body["remaining_seconds"] == .integer(3899))
        #expect(body["request"]?["created_at"] == "2026-11-23T18:59:20Z")
        #expect(body["request"]?["raw_state"] == "unaudited" && body["request"]?["reason"] == "不想要了 😀 \u{F0000}")
        #expect(body["request"]?["raw"]?["big"] == .integer(9_007_199_254_740_993))

        let health = SinkTestEvents.sourceDown().webhookBody
        for member in ["rule", "outcome", "request", "deadline", "remaining_seconds"] { #expect(health[member] == .null, "\(member)") }
    }

    @Test func theOutboxKeepsTheWebhookMembersWithDatesToTheMicrosecond() throws {
        let text = try Self.event().outboxText()
        #expect(text.contains(#""raw":{"package_id":"P1\u0000","big":9007199254740993,"x":"\ud800"}"#), "the raw object's own bytes")
        let stored = try JSONParser.parse(text)
        let body = Self.event().webhookBody
        #expect(Set(stored.objectValue?.keys.map { $0 } ?? []) == Set(body.objectValue?.keys.map { $0 } ?? []))
        #expect(stored["occurred_at"]?.lenientDouble == 1_795_460_460.734_512)
        #expect(stored["remaining_seconds"] == body["remaining_seconds"] && stored["message"] == body["message"])
    }

    @Test func theOutboxKeepsTheRequestMembersTheBodyLeavesOutAndReadsBackTheSameEvent() throws {
        var event = Self.event()
        event.request?.reasonID = "r-7"
        let stored = try JSONParser.parse(try event.outboxText())
        #expect(stored["request"]?["marketplace"] == "xiaohongshu" && stored["request"]?["source"] == "red-shop")
        #expect(stored["request"]?["reason_id"] == "r-7" && stored["request"]?["logistics"] == "red_box")
        #expect(stored["request"]?["deadline"]?.lenientDouble == event.request?.deadline.timeIntervalSince1970)
        #expect(try AlertEvent(outboxText: try event.outboxText(), sinks: AlertEvent.outboxSinks(event.sinks)) == event)
    }

    /// Nested containers close where they end: the text reads back as the value encoded.
    @Test func nestedValuesAreWrittenWhole() throws {
        let nested: [String: [JSONValue]] = ["a": [1, "x", nil, ["k": [true]], []], "b": [], "c": [[1.5, -2]]]
        let encoder = JSONValueEncoder(form: .stateFile)
        #expect(try encoder.encode(nested) == ["a": [1, "x", nil, ["k": [true]], []], "b": [], "c": [[1.5, -2]]])
    }
}
