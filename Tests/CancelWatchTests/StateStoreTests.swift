import Foundation
import Testing

@testable import CancelWatch

@Suite struct StateStoreTests {
    func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-store-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("state.sqlite").path
    }

    func sample(_ id: String, status: TrackedStatus = .pending) -> TrackedRequest {
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        let raw: JSONValue = ["cancellation_id": 42, "cancellation_reason": ["id": 5, "name": "Покупатель передумал"], "extra": nil]
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "1234-0001-1", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", reasonID: "5", logistics: "non_integrated",
            createdAt: now.addingTimeInterval(-600), deadline: now.addingTimeInterval(7200), raw: raw)
        return TrackedRequest(request: request, status: status, firstSeen: now, lastSeen: now.addingTimeInterval(60))
    }

    @Test func deadLettersComeNewestFirstUpToTheLimitWithTheirEvents() throws {
        let store = try SQLiteStateStore(path: temporaryPath())
        let at = SinkTestEvents.occurredAt
        let events = (0..<7).map { i in
            var event = SinkTestEvents.firing(id: "e\(i)", order: "order-\(i)")
            event.sinks = ["hook", "mail"]
            return event
        }
        try store.commit(alerts: [], events: events, health: nil, at: at)
        // All given up at the same instant (a tie: the later entry first), one delivered, one waiting.
        for event in events.prefix(6) {
            try store.recordDelivery(DeliveryResult(eventID: event.id, sink: "hook", status: .dead, attempts: 2, error: "HTTP 404", at: at))
        }
        try store.recordDelivery(DeliveryResult(eventID: "e6", sink: "hook", status: .delivered, attempts: 1, at: at))
        try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "mail", status: .dead, attempts: 1, error: "550", at: at.addingTimeInterval(1)))
        let letters = try store.deadLetters(limit: 5)
        #expect(letters.map { "\($0.sink)/\($0.eventID)" } == ["mail/e0", "hook/e5", "hook/e4", "hook/e3", "hook/e2"])
        #expect(letters[1].attempts == 2 && letters[1].error == "HTTP 404" && letters[1].at == at)
        #expect(letters[1].event?.request?.order == "order-5" && letters[1].event?.rule == "final-hour")
        let counts = try store.outboxCounts()
        #expect(counts.contains(OutboxCount(sink: "hook", status: "dead", count: 6)))
        #expect(counts.contains(OutboxCount(sink: "mail", status: "pending", count: 6)))
    }

    @Test func stateFileIsCreatedWithModeSixHundred() throws {
        let path = temporaryPath()
        _ = try SQLiteStateStore(path: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func trackedRequestsSurviveReopening() throws {
        let path = temporaryPath()
        let health = SourceHealth(source: "ozon-main", marketplace: .ozon, lastPollAt: Date(timeIntervalSince1970: 1_764_000_100),
            lastSuccessAt: Date(timeIntervalSince1970: 1_764_000_100), consecutiveFailures: 0)
        do {
            let store = try SQLiteStateStore(path: path)
            try store.save([sample("1"), sample("2", status: .approved)], health: health)
        }
        let reopened = try SQLiteStateStore(path: path)
        let loaded = try reopened.loadTracked().sorted { $0.request.id < $1.request.id }
        #expect(loaded == [sample("1"), sample("2", status: .approved)])
        #expect(try reopened.loadHealth() == [health])
        let readOnly = try SQLiteStateStore(path: path, readOnly: true)
        #expect(try readOnly.loadTracked().count == 2)
    }

    @Test func saveUpdatesInPlaceAndDeleteForgets() throws {
        let store = try SQLiteStateStore(path: temporaryPath())
        try store.save([sample("1")], health: nil)
        try store.save([sample("1", status: .rejected)], health: nil)
        #expect(try store.loadTracked().map(\.status) == [.rejected])
        try store.delete([RequestKey(source: "ozon-main", id: "1")])
        #expect(try store.loadTracked().isEmpty)
    }

    @Test func pruningForgetsAlertStatesOfForgottenRequestsAndOldDeliveriesButKeepsRecentOnes() throws {
        let store = try SQLiteStateStore(path: temporaryPath())
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        var events: [AlertEvent] = []
        for index in 0..<4 {
            var event = SinkTestEvents.firing(id: String(format: "%032x", index + 1))
            event.sinks = ["hook"]
            events.append(event)
        }
        let alert = AlertState(request: RequestKey(source: "ozon-main", id: "1"), rule: "r", firings: 1, active: true, lastFiredAt: now)
        try store.commit(alerts: [alert], events: events, health: nil, at: now)
        let old = now.addingTimeInterval(-8 * 86400)
        let older = now.addingTimeInterval(-31 * 86400)
        try store.recordDelivery(DeliveryResult(eventID: events[0].id, sink: "hook", status: .delivered, attempts: 1, at: old))
        try store.recordDelivery(DeliveryResult(eventID: events[1].id, sink: "hook", status: .delivered, attempts: 1, at: now))
        try store.recordDelivery(DeliveryResult(eventID: events[2].id, sink: "hook", status: .dead, attempts: 3, error: "410", at: old))
        try store.recordDelivery(DeliveryResult(eventID: events[3].id, sink: "hook", status: .dead, attempts: 3, error: "410", at: older))

        let removed = try store.pruneOutbox(deliveredBefore: now.addingTimeInterval(-7 * 86400), deadBefore: now.addingTimeInterval(-30 * 86400))
        #expect(removed == 2)
        #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["dead/1", "delivered/1"])

        #expect(try store.loadAlerts().count == 1)
        try store.delete([RequestKey(source: "ozon-main", id: "1")])
        #expect(try store.loadAlerts().isEmpty)
    }

    @Test func aFileThatIsNotAStateFileIsReportedAndLeftUntouched() throws {
        let path = temporaryPath()
        let garbage = Data(repeating: 0x41, count: 4096)
        try garbage.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try SQLiteStateStore(path: path)
        } throws: { error in
            "\(error)".contains("not a cancelwatch state file or is corrupt") && "\(error)".contains(path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test func statusOnAMissingStateFileSaysWhatToRun() {
        #expect {
            _ = try SQLiteStateStore(path: temporaryPath(), readOnly: true)
        } throws: { error in
            "\(error)".contains("cancelwatch once")
        }
    }
}
