import Foundation
import Testing

@testable import CancelWatch

/// Claims in the store contract, as one replica sees them: a store asking again gets the
/// entries it was given again, and an acknowledged entry is never handed out again nor
/// changed by a second result. Two replicas sharing one database: `OutboxClaimsTests`.
extension StateStoreContractTests {
    @Test(arguments: StoreKind.all)
    func aStoreAskingAgainGetsTheDueEntriesItWasGivenAgain(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            try store.commit(alerts: [], events: Self.events(3), health: nil, at: t0)
            let first = try store.dueDeliveries(sink: "hook", now: t0, limit: 2, claim: 60)
            #expect(first.deliveries.map(\.event.id) == ["e0", "e1"])
            // Where the store claims, the claim is the one asked for.
            #expect(first.claimedUntil == nil || first.claimedUntil == t0.addingTimeInterval(60))
            let again = try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(1), limit: 10, claim: 60)
            #expect(again.deliveries.map(\.event.id) == ["e0", "e1", "e2"])
            #expect(again.deliveries.map(\.attempts) == [0, 0, 0])
            #expect(try store.nextDeliveryAttempt(sink: "hook") == t0)
        }
    }

    /// Delivered and dead entries are finished: no later time, ended claim or commit of
    /// the same event hands them out again, and a second result for them changes nothing.
    @Test(arguments: StoreKind.all)
    func anAcknowledgedEntryIsNeverHandedOutAgainNorChangedByALaterResult(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            let events = Self.events(3)
            try store.commit(alerts: [], events: events, health: nil, at: t0)
            #expect(try store.dueDeliveries(sink: "hook", now: t0, limit: 10, claim: 60).deliveries.count == 3)
            try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "hook", status: .delivered, attempts: 1, at: t0))
            try store.recordDelivery(DeliveryResult(eventID: "e1", sink: "hook", status: .dead, attempts: 1, error: "HTTP 410", at: t0))
            try store.recordDelivery(
                DeliveryResult(eventID: "e2", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(30), at: t0))

            try store.commit(alerts: [], events: events, health: nil, at: t0.addingTimeInterval(5))
            try store.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "hook", status: .retry, attempts: 2, nextAttemptAt: t0, error: "late", at: t0))
            try store.recordDelivery(DeliveryResult(eventID: "e1", sink: "hook", status: .delivered, attempts: 2, at: t0))
            for seconds in [0.0, 29.9, 30, 60, 3600] {
                let due = try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(seconds), limit: 10, claim: 60)
                #expect(due.deliveries.map(\.event.id) == (seconds < 30 ? [] : ["e2"]), "at +\(seconds) s")
            }
            #expect(try Self.outbox(store) == ["hook dead 1", "hook delivered 1", "hook pending 1"])
            let letter = try #require(try store.deadLetters(limit: 10).first)
            #expect(letter.eventID == "e1" && letter.attempts == 1 && letter.error == "HTTP 410")
        }
    }
}
