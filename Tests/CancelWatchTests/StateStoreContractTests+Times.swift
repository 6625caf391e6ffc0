import Foundation
import Testing

@testable import CancelWatch

/// Instants in the store contract: every finite one comes back as the same `Date`; one
/// that is not finite is refused, naming it, and what was stored stays (SQLite would
/// store a NaN bound as a double as NULL, and a NULL next attempt reads back as "due
/// now", again and again).
extension StateStoreContractTests {
    @Test(arguments: StoreKind.all, [Double.nan, .infinity, -.infinity])
    func aNonFiniteNextAttemptIsRefusedAndTheStoredOneKept(_ kind: StoreKind, _ seconds: Double) throws {
        try kind.withStore { store in
            var event = SinkTestEvents.firing()
            event.sinks = ["hook"]
            let now = StoreSamples.now
            try store.commit(alerts: [], events: [event], health: nil, at: now)
            let later = now.addingTimeInterval(60)
            try store.recordDelivery(
                DeliveryResult(eventID: event.id, sink: "hook", status: .retry, attempts: 1, nextAttemptAt: later, error: "503", at: now))
            #expect(throws: StoreError.self) {
                try store.recordDelivery(
                    DeliveryResult(
                        eventID: event.id, sink: "hook", status: .retry, attempts: 2, nextAttemptAt: Date(timeIntervalSince1970: seconds),
                        error: "503", at: now))
            }
            #expect(try store.nextDeliveryAttempt(sink: "hook") == later)
            #expect(try store.dueDeliveries(sink: "hook", now: later, limit: 1).deliveries.map(\.attempts) == [1])
            #expect(throws: StoreError.self) {
                try store.recordDelivery(
                    DeliveryResult(eventID: event.id, sink: "hook", status: .delivered, attempts: 2, at: Date(timeIntervalSince1970: seconds)))
            }
            #expect(try Self.outbox(store) == ["hook pending 1"])
        }
    }

    @Test(arguments: StoreKind.all)
    func aNonFiniteTimeInHealthIsRefusedNamingIt(_ kind: StoreKind) throws {
        try kind.withStore { store throws in
            var health = SourceHealth(source: "s", marketplace: .ozon, consecutiveFailures: 1)
            health.lastPollAt = Date(timeIntervalSince1970: .nan)
            #expect {
                try store.save([], health: health)
            } throws: { error in
                "\(error)".contains("not a finite")
            }
            #expect(try store.loadHealth().isEmpty)
        }
    }

    /// Instants no marketplace should send but one might (a deadline becomes a closed
    /// request's `closedAt` and its timers): each comes back as the same `Date`.
    @Test(arguments: StoreKind.all, [1e300, -1e300, 9.3e18, -9.3e18, 1e12, -1e12, 0, 1_764_000_000.123_456_7, Double.greatestFiniteMagnitude])
    func everyFiniteInstantComesBackExactly(_ kind: StoreKind, _ seconds: Double) throws {
        let instant = Date(timeIntervalSince1970: seconds)
        try kind.withStore { store in
            var tracked = Samples.tracked("extreme", status: .expired)
            tracked.request.deadline = instant
            tracked.request.createdAt = instant
            tracked.firstSeen = instant
            tracked.lastSeen = instant
            tracked.closedAt = instant
            let alert = AlertState(
                request: tracked.key, rule: "r", firings: 1, lastFiredAt: instant, nextRepeatAt: instant, heldUntil: instant)
            let health = SourceHealth(source: "ozon-main", marketplace: .ozon, lastPollAt: instant, lastSuccessAt: instant)
            var event = SinkTestEvents.firing(id: "extreme")
            event.request = tracked.request
            event.occurredAt = instant
            event.sinks = ["hook"]
            try store.commit(StoreChanges(tracked: [tracked], alerts: [alert], events: [event], health: [health]), at: instant)

            #expect(Samples.bytes(of: try store.loadTracked()) == Samples.bytes(of: [tracked]))
            #expect(try store.loadAlerts() == [alert])
            #expect(try store.loadHealth() == [health])
            let due = try store.dueDeliveries(sink: "hook", now: instant, limit: 1).deliveries
            #expect(due.map(\.event) == [event])
            #expect(due.first?.nextAttemptAt == instant)
            #expect(try store.nextDeliveryAttempt(sink: "hook") == instant)

            try store.recordDelivery(
                DeliveryResult(eventID: event.id, sink: "hook", status: .retry, attempts: 1, nextAttemptAt: instant, at: instant))
            #expect(try store.nextDeliveryAttempt(sink: "hook") == instant)
            try store.recordDelivery(
                DeliveryResult(eventID: event.id, sink: "hook", status: .dead, attempts: 2, error: "gone", at: instant))
            #expect(try store.deadLetters(limit: 1).first?.at == instant)
        }
    }
}
