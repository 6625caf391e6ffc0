import CancelWatchTesting
import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// Replicas sharing one PostgreSQL outbox: an event committed by two at once is queued
/// once per sink, a due entry is claimed by one replica at a time, a replica that stops
/// leaves its entries to another once its claim runs out (the same event id), a late
/// result does not undo the new claimant's, and delivery queues sharing the outbox
/// deliver each event once. Store calls block their thread: they run off Swift's pool.
@Suite struct OutboxClaimsTests {
    static let t0 = Date(timeIntervalSince1970: 1_764_000_000)
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Two replicas' stores (`replica-a`, `replica-b`) on one fresh database.
    static func replicas() async throws -> (location: PostgresLocation, a: PostgresStateStore, b: PostgresStateStore) {
        let location = try await PostgresStores.freshLocation()
        let (a, b) = try await offPool {
            (
                try PostgresStateStore(location: location, instance: "replica-a"),
                try PostgresStateStore(location: location, instance: "replica-b")
            )
        }
        return (location, a, b)
    }

    static func ids(_ due: DueDeliveries) -> [String] { due.deliveries.map(\.event.id) }

    static func delivered(_ id: String, attempts: Int = 1, at: Date = t0) -> DeliveryResult {
        DeliveryResult(eventID: id, sink: "hook", status: .delivered, attempts: attempts, at: at)
    }

    /// Both commits are open at once: each queues the event, then waits on a source's health
    /// row another connection holds (the second on the first's uncommitted entry).
    @Test func twoReplicasCommittingTheSameEventAtOnceQueueItOncePerSink() async throws {
        let (location, a, b) = try await Self.replicas()
        let health = SourceHealth(source: "ozon-main", marketplace: .ozon)
        try await offPool { try a.save([], health: health) }
        let release = try await PostgresStores.holding(at: location) { (session) throws(StoreError) in
            try session.execute("SELECT 1 FROM source_health FOR UPDATE")
        }

        let event = StateStoreContractTests.events(1, sinks: ["hook", "mail"])[0]
        var polled = health
        polled.lastPollAt = Self.t0
        let changes = StoreChanges(events: [event], health: [polled])
        let commits = [a, b].map { store in Task { try await offPool { try store.commit(changes, at: Self.t0) } } }
        let bothOpen = try await offPool { try PostgresStores.waitForSessionsWaitingOnLocks(2, at: location) }
        release()
        #expect(bothOpen)
        for commit in commits { try await commit.value }
        #expect(try await offPool { try StateStoreContractTests.outbox(a) } == ["hook pending 1", "mail pending 1"])
        #expect(try await offPool { try b.loadHealth() } == [polled])
    }

    /// Round after round both ask at the same moment, each from a thread of its own, and
    /// acknowledge what they got: no entry goes to both, none twice, none is left.
    @Test func twoReplicasAskingAtOnceNeverGetTheSameEntry() async throws {
        let (_, a, b) = try await Self.replicas()
        let count = 240
        let limit = 6
        try await offPool { try a.commit(alerts: [], events: StateStoreContractTests.events(count), health: nil, at: Self.t0) }
        var takenBy: [String: String] = [:]
        for round in 0..<(count / (2 * limit)) {
            let start = DispatchSemaphore(value: 0)
            let asks = [a, b].map { store in
                Task {
                    try await offPool { () throws -> [String] in
                        start.wait()
                        let due = try store.dueDeliveries(sink: "hook", now: Self.t0, limit: limit, claim: 60)
                        for id in Self.ids(due) { try store.recordDelivery(Self.delivered(id)) }
                        return Self.ids(due)
                    }
                }
            }
            start.signal()
            start.signal()
            let got = [try await asks[0].value, try await asks[1].value]
            #expect(got.map(\.count) == [limit, limit], "round \(round)")
            for (replica, ids) in zip(["a", "b"], got) {
                for id in ids {
                    #expect(takenBy[id] == nil, "\(id) went to \(takenBy[id] ?? "") and to \(replica)")
                    takenBy[id] = replica
                }
            }
        }
        #expect(takenBy.count == count)
        #expect(try await offPool { try a.dueDeliveries(sink: "hook", now: .distantFuture, limit: 10, claim: 60).deliveries.isEmpty })
        #expect(try await offPool { try StateStoreContractTests.outbox(b) } == ["hook delivered \(count)"])
    }

    /// A replica that stops (killed, cut off) mid-delivery never records a result: the
    /// other gets the entry once the claim runs out, as it was (same id, same attempts),
    /// and waits for that moment rather than asking again and again before it.
    @Test func anEntryWhoseClaimRunsOutIsClaimedByTheOtherReplicaWithTheSameEventID() async throws {
        let (_, a, b) = try await Self.replicas()
        let events = StateStoreContractTests.events(2)
        try await offPool {
            try a.commit(alerts: [], events: events, health: nil, at: Self.t0)
            try a.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: Self.t0, error: "503", at: Self.t0))
        }
        let held = try await offPool { try a.dueDeliveries(sink: "hook", now: Self.t0, limit: 10, claim: 60) }
        #expect(Self.ids(held) == ["e0", "e1"] && held.claimedUntil == Self.t0.addingTimeInterval(60))

        let end = Self.t0.addingTimeInterval(60)
        let justBefore = end.addingTimeInterval(-0.001)
        #expect(try await offPool { try b.dueDeliveries(sink: "hook", now: justBefore, limit: 10, claim: 60) }.deliveries.isEmpty)
        #expect(try await offPool { try b.nextDeliveryAttempt(sink: "hook") } == end)
        #expect(try await offPool { try a.nextDeliveryAttempt(sink: "hook") } == Self.t0)

        let taken = try await offPool { try b.dueDeliveries(sink: "hook", now: end, limit: 10, claim: 60) }
        #expect(taken.deliveries.map(\.event) == events)
        #expect(taken.deliveries.map(\.attempts) == [0, 1])
        #expect(taken.claimedUntil == end.addingTimeInterval(60))
        // Now the first waits for the second's claim.
        #expect(try await offPool { try a.dueDeliveries(sink: "hook", now: end, limit: 10, claim: 60) }.deliveries.isEmpty)
        #expect(try await offPool { try a.nextDeliveryAttempt(sink: "hook") } == end.addingTimeInterval(60))
    }

    /// The first replica's claim ran out and the second took its entries over: what the
    /// first records afterwards, before or after the second's result, changes nothing.
    @Test func aLateResultOfAReplicaWhoseClaimWasTakenOverDoesNotUndoTheNewClaimants() async throws {
        let (_, a, b) = try await Self.replicas()
        try await offPool { try a.commit(alerts: [], events: StateStoreContractTests.events(3), health: nil, at: Self.t0) }
        let end = Self.t0.addingTimeInterval(60)
        let (first, second) = try await offPool {
            (
                try a.dueDeliveries(sink: "hook", now: Self.t0, limit: 10, claim: 60),
                try b.dueDeliveries(sink: "hook", now: end, limit: 10, claim: 60)
            )
        }
        #expect(Self.ids(first) == ["e0", "e1", "e2"] && Self.ids(second) == ["e0", "e1", "e2"])

        let retryAt = end.addingTimeInterval(30)
        try await offPool {
            // Before the new claimant's result: the entry stays as the new claimant has it.
            try a.recordDelivery(Self.delivered("e0", at: end))
            try a.recordDelivery(DeliveryResult(eventID: "e2", sink: "hook", status: .dead, attempts: 1, error: "HTTP 404", at: end))
            // The new claimant's results count.
            try b.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: retryAt, error: "503", at: end))
            try b.recordDelivery(Self.delivered("e1", at: end))
            // After it: nothing changes either.
            try a.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: end, error: "timeout", at: end))
            try a.recordDelivery(DeliveryResult(eventID: "e0", sink: "hook", status: .dead, attempts: 1, error: "HTTP 404", at: end))
        }
        #expect(try await offPool { try StateStoreContractTests.outbox(a) } == ["hook delivered 1", "hook pending 2"])
        #expect(try await offPool { try a.deadLetters(limit: 10) }.isEmpty)
        // e2 is still the second's; e0 waits for its retry, which either replica may take.
        #expect(try await offPool { try a.dueDeliveries(sink: "hook", now: end, limit: 10, claim: 60) }.deliveries.isEmpty)
        let retried = try await offPool { try a.dueDeliveries(sink: "hook", now: retryAt, limit: 10, claim: 60) }
        #expect(Self.ids(retried) == ["e0"] && retried.deliveries.first?.attempts == 1)
        let later = try await offPool { try a.dueDeliveries(sink: "hook", now: end.addingTimeInterval(120), limit: 10, claim: 60) }
        #expect(Self.ids(later) == ["e2", "e0"])
        #expect(!Self.ids(later).contains("e1"), "an acknowledged entry is never handed out again")
    }

    /// Two delivery queues on one outbox, each pass at the same time: every event reaches
    /// the receiver once, half of them through each replica.
    @Test func twoDeliveryQueuesSharingTheOutboxDeliverEveryEventOnce() async throws {
        let (_, a, b) = try await Self.replicas()
        let clock = ManualClock(Self.t0)
        let events = StateStoreContractTests.events(200, sinks: ["memory"])
        try await offPool { try a.commit(alerts: [], events: events, health: nil, at: Self.t0) }
        let receiver = InMemorySink(clock: clock)
        let queues = [a, b].map { store in
            DeliveryQueue(routes: [DeliveryQueue.Route(sink: receiver)], store: store, clock: clock, logger: quiet)
        }
        async let first = queues[0].deliverDueOnce()
        async let second = queues[1].deliverDueOnce()
        let reports = await [first, second]
        let attempts = reports.map { $0.filter { if case .attempt = $0 { true } else { false } }.count }
        #expect(attempts == [100, 100])
        #expect(receiver.events.map(\.id).sorted() == events.map(\.id).sorted())
        #expect(await queues[1].deliverDueOnce().count == 1, "nothing left but the counts")
        #expect(try await offPool { try StateStoreContractTests.outbox(b) } == ["memory delivered 200"])
    }

    /// An attempt starts only while it can end within its claim: slow attempts end a pass
    /// early, and the next pass claims the rest afresh.
    @Test func aQueueStartsAnAttemptOnlyWhileItsClaimCanCoverIt() async throws {
        let (_, a, _) = try await Self.replicas()
        let clock = ManualClock(Self.t0)
        let events = StateStoreContractTests.events(5, sinks: ["memory"])
        try await offPool { try a.commit(alerts: [], events: events, health: nil, at: Self.t0) }
        // Each attempt takes the sink's whole time limit (10 s): a claim is 2 × (10 + 15) s,
        // and an attempt needs 25 s of it left, so three start (at 0, 10 and 20 s).
        let receiver = SlowSink(clock: clock, takes: 10)
        let queue = DeliveryQueue(routes: [DeliveryQueue.Route(sink: receiver, timeout: 10)], store: a, clock: clock, logger: quiet)
        #expect(await queue.deliverDueOnce().count == 3 + 1)
        #expect(receiver.delivered == ["e0", "e1", "e2"])
        #expect(await queue.deliverDueOnce().count == 2 + 1)
        #expect(receiver.delivered == ["e0", "e1", "e2", "e3", "e4"])
    }
}

/// A sink whose every attempt takes `takes` seconds of a manual clock.
final class SlowSink: AlertSink, @unchecked Sendable {
    let name = "memory"
    private let clock: ManualClock
    private let takes: TimeInterval
    private let lock = NSLock()
    private var stored: [String] = []

    init(clock: ManualClock, takes: TimeInterval) {
        self.clock = clock
        self.takes = takes
    }

    var delivered: [String] { lock.withLock { stored } }

    func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        clock.advance(by: takes)
        lock.withLock { stored.append(event.id) }
    }
}
