import CancelWatch
import Foundation
import Testing

@testable import CancelWatch

/// A time that is not a number never reaches the state file: SQLite stores a NaN bound as
/// a double as NULL, and a NULL next attempt reads back as "due now", again and again.
@Suite struct NonFiniteTimeStoreTests {
    static let now = Date(timeIntervalSince1970: 1_764_000_000)

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func aNonFiniteNextAttemptIsRefusedAndTheStoredOneKept(_ seconds: Double) throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-nonfinite"))
        var event = SinkTestEvents.firing()
        event.sinks = ["hook"]
        try store.commit(alerts: [], events: [event], health: nil, at: Self.now)
        let later = Self.now.addingTimeInterval(60)
        try store.recordDelivery(
            DeliveryResult(eventID: event.id, sink: "hook", status: .retry, attempts: 1, nextAttemptAt: later, error: "503", at: Self.now))
        #expect(throws: StoreError.self) {
            try store.recordDelivery(
                DeliveryResult(
                    eventID: event.id, sink: "hook", status: .retry, attempts: 2, nextAttemptAt: Date(timeIntervalSince1970: seconds),
                    error: "503", at: Self.now))
        }
        #expect(try store.nextDeliveryAttempt(sink: "hook") == later)
    }

    @Test func aNonFiniteTimeInHealthIsRefusedNamingIt() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-nonfinite"))
        var health = SourceHealth(source: "s", marketplace: .ozon, consecutiveFailures: 1)
        health.lastPollAt = Date(timeIntervalSince1970: .nan)
        do {
            try store.save([], health: health)
            Issue.record("a NaN poll time was stored")
        } catch {
            #expect(error.message.contains("not a finite"), "\(error.message)")
        }
    }
}
