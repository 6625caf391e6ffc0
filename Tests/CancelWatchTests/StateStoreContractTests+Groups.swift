import Foundation
import Testing

@testable import CancelWatch

/// Groups in the store contract: one transaction makes a group's entry and puts its members
/// under it, a member whose request closed is withdrawn instead, entries already in a group
/// are never grouped again, the group's result is its members', and a restart finds the
/// same group with the same id.
extension StateStoreContractTests {
    /// Requests `g<first>`… saved with `statuses` (pending when not given), and a firing
    /// event about each queued for `hook`; later requests have earlier deadlines.
    static func groupable(
        _ count: Int, first: Int = 0, in store: any StateStore, statuses: [Int: TrackedStatus] = [:], at now: Date = Samples.now
    ) throws -> [AlertEvent] {
        var tracked: [TrackedRequest] = []
        var events: [AlertEvent] = []
        for index in first..<(first + count) {
            var item = Samples.tracked("g\(index)", status: statuses[index] ?? .pending)
            item.request.deadline = Samples.now.addingTimeInterval(TimeInterval(7200 - 60 * index))
            tracked.append(item)
            var event = SinkTestEvents.firing(id: String(format: "%032x", 0x600 + index), order: "order-\(index)")
            event.request = item.request
            event.sinks = ["hook"]
            events.append(event)
        }
        try store.commit(StoreChanges(tracked: tracked, events: events), at: now)
        return events
    }

    @Test(arguments: StoreKind.all)
    func formingAGroupMakesOnePendingEntryHoldingItsMembersByDeadlineAndGroupsThem(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let queuedAt = Samples.now.addingTimeInterval(-30)
            let events = try Self.groupable(3, in: store, at: queuedAt)
            let due = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
            #expect(due.deliveries.map(\.createdAt) == [queuedAt, queuedAt, queuedAt])

            let formed = try store.formGroup(sink: "hook", members: due.deliveries.map(\.event), now: Samples.now)
            let group = try #require(formed.delivery)
            #expect(formed.withdrawn.isEmpty)
            #expect(group.event.id == AlertEvent.group(events, sink: "hook", at: Samples.now).id)
            #expect(group.event.kind == .group && group.event.sinks == ["hook"] && group.event.occurredAt == Samples.now)
            #expect(group.event.members == due.deliveries.reversed().map { var member = $0.event; member.sinks = []; return member })
            #expect(group.event.members.map(\.id) == events.reversed().map(\.id), "earliest deadline first")
            #expect(group.attempts == 0 && group.nextAttemptAt == Samples.now && group.createdAt == Samples.now)

            let after = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
            #expect(after.deliveries == [group])
            #expect(try Self.outbox(store) == ["hook grouped 3", "hook pending 1"])
            #expect(try store.nextDeliveryAttempt(sink: "hook") == Samples.now)
        }
    }

    /// A request answered, closed or forgotten while its event waited leaves the group
    /// (its own resolved event is the ledger's); withdrawn entries are pruned as delivered ones.
    @Test(arguments: StoreKind.all)
    func anEventWhoseRequestIsNoLongerPendingIsWithdrawnInsteadOfGrouped(_ kind: StoreKind) throws {
        try kind.withStore { store in
            var events = try Self.groupable(4, in: store, statuses: [1: .approved, 2: .vanished])
            var forgotten = SinkTestEvents.firing(id: String(format: "%032x", 0x6ff), order: "order-gone")
            forgotten.request?.id = "never-saved"
            forgotten.sinks = ["hook"]
            try store.commit(alerts: [], events: [forgotten], health: nil, at: Samples.now)
            events.append(forgotten)
            let due = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)

            let formed = try store.formGroup(sink: "hook", members: due.deliveries.map(\.event), now: Samples.now)
            #expect(Set(formed.withdrawn) == [events[1].id, events[2].id, forgotten.id])
            #expect(formed.delivery?.event.members.map(\.id) == [events[3].id, events[0].id])
            #expect(try Self.outbox(store) == ["hook grouped 2", "hook pending 1", "hook withdrawn 3"])

            // Nothing left to group: no group's entry.
            let closed = try Self.groupable(1, first: 10, in: store, statuses: [10: .rejected])
            _ = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
            let none = try store.formGroup(sink: "hook", members: closed, now: Samples.now)
            #expect(none.delivery == nil && none.withdrawn == [closed[0].id])

            #expect(try store.pruneOutbox(deliveredBefore: Samples.now.addingTimeInterval(1), deadBefore: .distantPast) == 4)
            #expect(try Self.outbox(store) == ["hook grouped 2", "hook pending 1"])
        }
    }

    @Test(arguments: StoreKind.all)
    func entriesAlreadyInAGroupAreNeverGroupedAgain(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let events = try Self.groupable(3, in: store)
            _ = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
            let first = try store.formGroup(sink: "hook", members: events, now: Samples.now)
            #expect(first.delivery != nil)
            _ = try store.dueDeliveries(sink: "hook", now: Samples.now.addingTimeInterval(1), limit: 10)
            let again = try store.formGroup(sink: "hook", members: events, now: Samples.now.addingTimeInterval(1))
            #expect(again.delivery == nil && again.withdrawn.isEmpty)
            // Nor is the group itself, nor an event of another sink.
            let other = try store.formGroup(sink: "mail", members: events, now: Samples.now.addingTimeInterval(1))
            #expect(other.delivery == nil && other.withdrawn.isEmpty)
            #expect(try Self.outbox(store) == ["hook grouped 3", "hook pending 1"])
        }
    }

    /// Each member is acknowledged once, with its group: delivered or dead as the group is,
    /// at its instant and with its error; a retry leaves them waiting in the group.
    @Test(arguments: StoreKind.all)
    func theGroupsResultIsEveryMembersResult(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            let events = try Self.groupable(4, in: store)
            _ = try store.dueDeliveries(sink: "hook", now: t0, limit: 10)
            let sent = try #require(try store.formGroup(sink: "hook", members: Array(events.prefix(2)), now: t0).delivery)
            let refused = try #require(try store.formGroup(sink: "hook", members: Array(events.suffix(2)), now: t0).delivery)

            try store.recordDelivery(
                DeliveryResult(
                    eventID: sent.event.id, sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(10),
                    error: "HTTP 503", at: t0))
            #expect(try Self.outbox(store) == ["hook grouped 4", "hook pending 2"])
            #expect(try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(10), limit: 10).deliveries.count == 2)
            try store.recordDelivery(DeliveryResult(eventID: sent.event.id, sink: "hook", status: .delivered, attempts: 2, at: t0.addingTimeInterval(10)))
            try store.recordDelivery(
                DeliveryResult(eventID: refused.event.id, sink: "hook", status: .dead, attempts: 1, error: "HTTP 410", at: t0.addingTimeInterval(20)))
            // A second result changes neither the group nor its members.
            try store.recordDelivery(DeliveryResult(eventID: refused.event.id, sink: "hook", status: .delivered, attempts: 2, at: t0.addingTimeInterval(30)))

            #expect(try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(3600), limit: 10).deliveries.isEmpty)
            #expect(try store.nextDeliveryAttempt(sink: "hook") == nil)
            #expect(try Self.outbox(store) == ["hook dead 1", "hook delivered 1", "hook grouped 4"])
            // The dead group is one dead letter, its members in its event.
            let letters = try store.deadLetters(limit: 10)
            #expect(letters.map(\.eventID) == [refused.event.id])
            #expect(letters.first?.error == "HTTP 410" && letters.first?.event?.members.map(\.id) == refused.event.members.map(\.id))
            // Members finished at their group's instant: pruned with it, and not before.
            #expect(try store.pruneOutbox(deliveredBefore: t0.addingTimeInterval(10), deadBefore: t0.addingTimeInterval(20)) == 0)
            #expect(try store.pruneOutbox(deliveredBefore: t0.addingTimeInterval(10.001), deadBefore: t0) == 3)
            #expect(try Self.outbox(store) == ["hook dead 1", "hook grouped 2"])
            #expect(try store.pruneOutbox(deliveredBefore: t0, deadBefore: t0.addingTimeInterval(20.001)) == 3)
            #expect(try Self.outbox(store).isEmpty)
        }
    }

    /// The group's entry is in the store before anything sends it: a restart sends the same
    /// group, with the same id (the same Idempotency-Key), and groups none of it again.
    @Test(arguments: StoreKind.all)
    func aRestartFindsTheSameGroupWithTheSameID(_ kind: StoreKind) throws {
        try kind.withPlace { place in
            let formed: PendingDelivery
            let events: [AlertEvent]
            do {
                let store = try place.open()
                events = try Self.groupable(3, in: store)
                _ = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
                formed = try #require(try store.formGroup(sink: "hook", members: events, now: Samples.now).delivery)
            }
            let reopened = try place.open()
            let due = try reopened.dueDeliveries(sink: "hook", now: Samples.now.addingTimeInterval(5), limit: 10)
            #expect(due.deliveries == [formed])
            #expect(formed.event.id == AlertEvent.group(events.reversed(), sink: "hook", at: Samples.now.addingTimeInterval(99)).id)
            #expect(try reopened.formGroup(sink: "hook", members: events, now: Samples.now.addingTimeInterval(5)).delivery == nil)
        }
    }
}

extension StateStoreContractTests {
    /// What a grouped sink sleeps until while its events wait: the next attempt after now,
    /// which the due entries (its held events) do not set.
    @Test(arguments: StoreKind.all)
    func theNextAttemptAfterAnInstantLeavesOutEntriesAlreadyDue(_ kind: StoreKind) throws {
        try kind.withStore { store in
            _ = try Self.groupable(2, in: store)
            let due = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10).deliveries
            #expect(try store.nextDeliveryAttempt(sink: "hook", after: Samples.now) == nil)
            let retryAt = Samples.now.addingTimeInterval(5)
            try store.recordDelivery(
                DeliveryResult(eventID: due[0].event.id, sink: "hook", status: .retry, attempts: 1, nextAttemptAt: retryAt, at: Samples.now))
            #expect(try store.nextDeliveryAttempt(sink: "hook", after: Samples.now) == retryAt)
            #expect(try store.nextDeliveryAttempt(sink: "hook") == Samples.now, "the held one is due now")
        }
    }
}

extension StateStoreContractTests {
    /// A group's entry that can no longer be read is a dead letter, and its members with it:
    /// nothing else would ever finish them.
    @Test func anUnreadableGroupEntryTakesItsMembersWithItAsDeadLetters() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-group-unreadable"))
        _ = try StateStoreContractTests.groupable(3, in: store)
        let due = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
        let group = try #require(try store.formGroup(sink: "hook", members: due.deliveries.map(\.event), now: Samples.now).delivery)
        try store.database.query("UPDATE outbox SET event = '{not json' WHERE event_id = ?", [.text(group.event.id)])
        let again = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10)
        #expect(again.deliveries.isEmpty)
        #expect(again.unreadable.count == 1)
        var statuses: [String] = []
        try store.database.query("SELECT status FROM outbox ORDER BY event_id") { statuses.append($0.string(0)) }
        #expect(statuses == ["dead", "dead", "dead", "dead"])
    }
}
