@testable import CancelWatch
import Foundation
import Testing

/// How a group of events and a digest read: one line per request sorted by deadline, a first
/// line with the count and the earliest deadline, and an id that only the members decide.
struct RequestListTests {
    static func event(_ n: Int, deadlineIn minutes: Double, source: String = "ozon-main", severity: Severity = .warning) -> AlertEvent {
        var request = SinkTestEvents.request(reason: "reason \(n)", order: "order-\(n)")
        request.id = "\(n)"
        request.source = source
        request.deadline = SinkTestEvents.occurredAt.addingTimeInterval(minutes * 60)
        return AlertEvent(
            id: AlertEvent.makeID(source: source, request: "\(n)", rule: "r", kind: .firing, occurrence: 1), kind: .firing, rule: "r",
            severity: severity, source: source, marketplace: .ozon, request: request, occurredAt: SinkTestEvents.occurredAt,
            message: "m", sinks: ["tg"])
    }

    @Test func aGroupListsItsRequestsByDeadlineUnderACountAndTheEarliestDeadline() {
        let group = AlertEvent.group(
            [Self.event(1, deadlineIn: 180), Self.event(2, deadlineIn: 65, severity: .critical), Self.event(3, deadlineIn: 600)],
            sink: "tg", at: SinkTestEvents.occurredAt)
        #expect(group.kind == .group)
        #expect(group.severity == .critical)
        #expect(group.sinks == ["tg"])
        #expect(
            RequestList.text(of: group) == """
                3 cancellation requests, earliest deadline in 1h 05m
                order-2 · ozon-main · 1h 05m left · reason 2
                order-1 · ozon-main · 3h 00m left · reason 1
                order-3 · ozon-main · 10h 00m left · reason 3
                """)
        #expect(ChatWebhookFormat.text(for: group).hasPrefix("[CRITICAL] 3 cancellation requests"))
    }

    @Test func aRequestSeveralRulesFiredOnIsListedOnceAndAMixedGroupNamesNoSource() {
        var other = Self.event(1, deadlineIn: 180)
        other.id = "other-rule"
        other.rule = "second"
        let group = AlertEvent.group(
            [Self.event(1, deadlineIn: 180), other, Self.event(2, deadlineIn: 60, source: "red-shop")], sink: "console",
            at: SinkTestEvents.occurredAt)
        #expect(group.members.count == 3)
        #expect(group.listedRequests.map(\.id) == ["2", "1"])
        #expect(RequestList.headline(of: group) == "2 cancellation requests, earliest deadline in 1h 00m")
        #expect(group.source == "")
        let line = StdoutSink(name: "console", format: .text).line(for: group)
        #expect(line.split(separator: "\n")[0].hasSuffix(" WARNING group: 2 cancellation requests, earliest deadline in 1h 00m"), "\(line)")
    }

    @Test func aGroupsIdIsTheSameWhateverOrderOrInstantItIsFormedIn() {
        let events = (1...5).map { Self.event($0, deadlineIn: Double($0 * 10)) }
        let first = AlertEvent.group(events, sink: "tg", at: SinkTestEvents.occurredAt)
        let again = AlertEvent.group(events.reversed(), sink: "tg", at: SinkTestEvents.occurredAt.addingTimeInterval(3600))
        let fewer = AlertEvent.group(Array(events.dropLast()), sink: "tg", at: SinkTestEvents.occurredAt)
        #expect(first.id == again.id)
        #expect(first.id != fewer.id)
        #expect(first.members.map(\.id) == again.members.map(\.id))
    }

    @Test func aGroupAndADigestKeepTheirListsThroughTheirStoredForm() throws {
        let group = AlertEvent.group((1...3).map { Self.event($0, deadlineIn: Double(100 - $0)) }, sink: "tg", at: SinkTestEvents.occurredAt)
        let decoded = try AlertEvent(outboxText: group.outboxText(), sinks: nil)
        #expect(decoded.members.map(\.id) == group.members.map(\.id))
        #expect(decoded.members.map { $0.request?.order } == ["order-3", "order-2", "order-1"])
        #expect(group.webhookBody["requests"] == nil)

        let requests = RequestList.sorted([Self.event(1, deadlineIn: 90).request!, Self.event(2, deadlineIn: 30, source: "red-shop").request!])
        let digest = AlertEvent(
            id: "d1", kind: .digest, rule: "morning", severity: .info, source: "", marketplace: .ozon, request: nil,
            occurredAt: SinkTestEvents.occurredAt, message: "", sinks: ["tg"], listed: requests)
        #expect(RequestList.headline(of: digest) == "digest morning: 2 requests (ozon-main 1, red-shop 1), earliest deadline in 30m 00s")
        let back = try AlertEvent(outboxText: digest.outboxText(), sinks: nil)
        #expect(back.listed.map(\.id) == ["2", "1"])
        #expect(back.listed.map(\.source) == ["red-shop", "ozon-main"])
        // A receiver of the webhook body learns each listed request's source and deadline.
        let body = digest.webhookBody["requests"]?.arrayValue ?? []
        #expect(body.map { $0["source"]?.stringValue } == ["red-shop", "ozon-main"])
        #expect(body.map { $0["remaining_seconds"]?.lenientInt64 } == [1800, 5400])
        #expect(body.first?["request"]?["order"]?.stringValue == "order-2")
        #expect(digest.webhookBody["events"] == nil)
        #expect(SinkTestEvents.firing().webhookBody["events"] == nil)
    }

    @Test func stdoutNamesADigestOnce() {
        let digest = AlertEvent(
            id: "d3", kind: .digest, rule: "soon", severity: .info, source: "", marketplace: .ozon, request: nil,
            occurredAt: SinkTestEvents.occurredAt, message: "", sinks: ["console"], listed: [Self.event(1, deadlineIn: 30).request!])
        let line = StdoutSink(name: "console", format: .text).line(for: digest)
        #expect(line.split(separator: "\n")[0].hasSuffix(" INFO digest soon: 1 request (ozon-main 1), earliest deadline in 30m 00s"), "\(line)")
    }

    @Test func aDigestWithNothingToListSaysSo() {
        let digest = AlertEvent(
            id: "d2", kind: .digest, rule: "evening", severity: .info, source: "", marketplace: .ozon, request: nil,
            occurredAt: SinkTestEvents.occurredAt, message: "", sinks: ["tg"])
        #expect(RequestList.text(of: digest) == "digest evening: no requests match")
    }

    @Test func aListLineStaysOnOneLineWhateverTheReasonHolds() {
        var request = Self.event(1, deadlineIn: -5).request!
        request.order = "A\nB"
        #expect(!RequestList.line(for: request, at: SinkTestEvents.occurredAt).contains("\n"))
        #expect(RequestList.line(for: request, at: SinkTestEvents.occurredAt).contains("overdue 5m 00s"))
    }
}

extension RequestListTests {
    @Test func stdoutShowsAGroupsFirstTenRequestsAndHowManyMoreAndJSONTheWholeList() throws {
        let group = AlertEvent.group((1...13).map { Self.event($0, deadlineIn: Double(60 + $0)) }, sink: "console", at: SinkTestEvents.occurredAt)
        let text = StdoutSink(name: "console", format: .text, timeZone: TimeZone(identifier: "UTC")!).line(for: group)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 12)
        #expect(lines[0].hasSuffix("WARNING group ozon-main: 13 cancellation requests, earliest deadline in 1h 01m"))
        #expect(lines[1] == "  order-1 · ozon-main · 1h 01m left · reason 1")
        #expect(lines[11] == "  … and 3 more")
        let json = StdoutSink(name: "console", format: .json, timeZone: TimeZone(identifier: "UTC")!).line(for: group)
        #expect(!json.contains("\n"))
        #expect(try JSONParser.parse(Data(json.utf8))["events"]?.arrayValue?.count == 13)
    }
}

extension RequestListTests {
    @Test func aDigestOfMoreThanFiveHundredListsFiveHundredAndSaysHowManyMore() {
        let digest = AlertEvent(
            id: "d4", kind: .digest, rule: "all", severity: .info, source: "", marketplace: .ozon, request: nil,
            occurredAt: SinkTestEvents.occurredAt, message: "", sinks: ["tg"],
            listed: (1...502).map { Self.event($0, deadlineIn: Double(60 + $0)).request! })
        let lines = RequestList.text(of: digest).split(separator: "\n")
        #expect(lines.count == 502)
        #expect(lines[0].hasPrefix("digest all: 502 requests"))
        #expect(lines[501] == "… and 2 more (cancelwatch status lists every one)")
    }
}
