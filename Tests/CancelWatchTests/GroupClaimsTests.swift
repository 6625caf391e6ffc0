import CancelWatchTesting
import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// Groups between replicas sharing one PostgreSQL outbox: only the replica holding the
/// entries groups them, the group's entry is that replica's as its members were, and a
/// replica taking it over once the claim ran out sends the same group (the same id).
@Suite struct GroupClaimsTests {
    @Test func onlyTheReplicaHoldingTheEntriesGroupsThemAndAnotherTakesOverTheSameGroup() async throws {
        let (_, a, b) = try await OutboxClaimsTests.replicas()
        let t0 = StoreSamples.now
        let events = try await offPool { try StateStoreContractTests.groupable(3, in: a) }
        let claimed = try await offPool { try a.dueDeliveries(sink: "hook", now: t0, limit: 10, claim: 60) }
        #expect(claimed.deliveries.count == 3)

        let byB = try await offPool { try b.formGroup(sink: "hook", members: events, now: t0) }
        #expect(byB.delivery == nil && byB.withdrawn.isEmpty, "b holds none of them")
        let group = try #require(try await offPool { try a.formGroup(sink: "hook", members: events, now: t0) }.delivery)
        #expect(try await offPool { try b.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(1), limit: 10) }.deliveries.isEmpty)
        #expect(try await offPool { try b.nextDeliveryAttempt(sink: "hook") } == t0.addingTimeInterval(60), "a's claim, as its members'")

        // a stops; once its claim runs out, b sends the same group and its result is the members'.
        let takenOver = try await offPool { try b.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(60), limit: 10) }
        #expect(takenOver.deliveries == [group])
        try await offPool {
            try b.recordDelivery(
                DeliveryResult(eventID: group.event.id, sink: "hook", status: .delivered, attempts: 1, at: t0.addingTimeInterval(61)))
            // a's late result lands nowhere.
            try a.recordDelivery(
                DeliveryResult(eventID: group.event.id, sink: "hook", status: .dead, attempts: 1, error: "late", at: t0.addingTimeInterval(62)))
        }
        #expect(try await offPool { try StateStoreContractTests.outbox(a) } == ["hook delivered 1", "hook grouped 3"])
        #expect(try await offPool { try a.deadLetters(limit: 10) }.isEmpty)
        #expect(try await offPool { try a.pruneOutbox(deliveredBefore: t0.addingTimeInterval(61.5), deadBefore: t0) } == 4)
    }

    /// The delivery queue over the shared database (the samples are critical: held too): the
    /// group goes once, and its members with it.
    @Test func aQueueOverTheDatabaseSendsTheGroupOnceAndAcknowledgesItsMembers() async throws {
        let (_, a, _) = try await OutboxClaimsTests.replicas()
        let events = try await offPool { try StateStoreContractTests.groupable(3, in: a) }
        let sink = InMemorySink(name: "hook", clock: ManualClock(StoreSamples.now))
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, group: GroupPolicy(critical: .hold))], store: a, clock: ManualClock(StoreSamples.now),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        await queue.deliverDueOnce()
        await queue.deliverDueOnce()
        #expect(sink.events.map(\.kind) == [.group])
        #expect(sink.events.first?.members.map(\.id) == events.reversed().map(\.id))
        #expect(try await offPool { try StateStoreContractTests.outbox(a) } == ["hook delivered 1", "hook grouped 3"])
    }
}
