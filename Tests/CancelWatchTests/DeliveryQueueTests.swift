import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A sink that fails retryably for the events it is told to, and acknowledges the rest.
final class SelectiveSink: AlertSink, @unchecked Sendable {
    let name = "memory"
    private let lock = NSLock()
    private var poisoned: Set<String>
    private var stored: [String] = []

    init(failing: Set<String>) { poisoned = failing }

    var delivered: [String] { lock.withLock { stored } }
    func heal() { lock.withLock { poisoned.removeAll() } }

    func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        let fails = lock.withLock {
            if poisoned.contains(event.id) { return true }
            stored.append(event.id)
            return false
        }
        if fails { throw DeliveryError(retryable: true, message: "HTTP 500 for this one") }
    }
}

/// The delivery queue's own behaviour on a manual clock: a failing sink waits as a
/// whole, one bad event does not hold the others back, unreadable entries become dead
/// letters instead of stopping the sink.
@Suite struct DeliveryQueueTests {
    let clock = ManualClock(SinkTestEvents.occurredAt)
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func events(_ count: Int) -> [AlertEvent] {
        (0..<count).map { index in
            var event = SinkTestEvents.firing(id: String(format: "%032x", index + 1), order: "0123-0001-\(index + 1)")
            event.sinks = ["memory"]
            return event
        }
    }

    func store(with events: [AlertEvent]) throws -> SQLiteStateStore {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-queue"))
        try store.commit(alerts: [], events: events, health: nil, at: clock.now())
        return store
    }

    /// Runs a queue for `sink` (retrying after 1 s, at most 60 s), its attempts logged.
    func run(_ sink: AlertSink, store: SQLiteStateStore) async -> (DeliveryQueue, Task<Void, Never>, AttemptLog) {
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: RetryPolicy(initialDelay: 1, maxDelay: 60))], store: store, clock: clock,
            logger: quiet)
        let log = AttemptLog()
        return (queue, await log.run(queue), log)
    }

    /// Waits until `condition` holds and the queue has stopped: it waits on the clock (or
    /// has nothing left to send), and `log` has heard of every attempt the state file holds.
    /// Until the clock moves or the queue is woken, no other attempt can follow.
    func settle(_ log: AttemptLog, _ store: SQLiteStateStore, until condition: () -> Bool) async throws {
        try await waitFor {
            guard condition() else { return false }
            let idle = try clock.sleeperCount == 1 || store.outboxCounts().allSatisfy { $0.status != "pending" }
            return try idle && log.heardEveryAttempt(in: store)
        }
    }

    /// Moves the clock once the queue waits on it. A move made while the loop is still
    /// choosing its wait is taken as its "now", and the wait's floor puts its deadline
    /// past the moved clock, which no test moves again (a loaded run saw 4 of 5 delivered).
    func advanceWhenWaiting(by seconds: TimeInterval) async throws {
        let limit = Date().addingTimeInterval(60)
        while clock.sleeperCount == 0 && Date() < limit { try await Task.sleep(for: .milliseconds(5)) }
        #expect(clock.sleeperCount == 1, "the queue never waited on the clock")
        clock.advance(by: seconds)
    }

    @Test func aFailingSinkWaitsAsAWholeForItsRetryAfterInsteadOfTryingEveryEvent() async throws {
        let queued = events(5)
        let store = try store(with: queued)
        let sink = InMemorySink(clock: clock)
        sink.failNext(3, with: DeliveryError(retryable: true, message: "HTTP 429", retryAfter: 10))
        let (_, running, log) = await run(sink, store: store)
        defer { running.cancel() }

        // Two different events failing in a row: the sink is failing; it waits as a whole.
        try await settle(log, store) { log.results.count >= 2 }
        #expect(log.results.count == 2, "tries while the sink asked to wait: \(log.results.map(\.status))")
        #expect(sink.events.isEmpty)
        try await advanceWhenWaiting(by: 10)
        try await settle(log, store) { log.results.count >= 3 }
        // The third failure pauses it again (still failing in a row); then all go through.
        #expect(log.results.count == 3)
        #expect(sink.events.isEmpty)
        try await advanceWhenWaiting(by: 10)
        try await settle(log, store) { sink.events.count == 5 }
        #expect(Set(sink.events.map(\.id)) == Set(queued.map(\.id)))
        #expect(log.results.count == 8)
        #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["delivered/5"])
    }

    @Test func oneEventTheReceiverKeepsRefusingDoesNotHoldTheOthersBack() async throws {
        let queued = events(4)
        let store = try store(with: queued)
        let sink = SelectiveSink(failing: [queued[0].id])
        let (queue, running, log) = await run(sink, store: store)
        defer { running.cancel() }

        // The refused event waits on its own backoff; the others go at once, without
        // the clock moving.
        try await settle(log, store) { sink.delivered.count == 3 }
        #expect(log.results.first?.status == .retry)
        #expect(sink.delivered == queued.dropFirst().map(\.id))
        // A new event while the refused one is backing off goes at once too.
        let late = events(5)[4]
        try store.commit(alerts: [], events: [late], health: nil, at: clock.now())
        queue.wake()
        try await settle(log, store) { sink.delivered.count == 4 }
        #expect(sink.delivered.last == late.id)
        sink.heal()
        try await advanceWhenWaiting(by: 60)
        try await settle(log, store) { sink.delivered.count == 5 }
        #expect(sink.delivered.last == queued[0].id)
        #expect(sink.delivered.count == 5)
    }

    /// One event that keeps failing, try after try, never pauses the sink: each new event
    /// goes out at once while it backs off.
    @Test func anEventFailingAgainAndAgainNeverHoldsUpNewOnes() async throws {
        let poisoned = events(1)
        let store = try store(with: poisoned)
        let sink = SelectiveSink(failing: [poisoned[0].id])
        let (queue, running, log) = await run(sink, store: store)
        defer { running.cancel() }
        let later = events(4).dropFirst()
        for (index, event) in later.enumerated() {
            try await advanceWhenWaiting(by: 120)  // past the poisoned event's next backoff
            try await settle(log, store) { log.results.filter { $0.eventID == poisoned[0].id }.count >= index + 1 }
            try store.commit(alerts: [], events: [event], health: nil, at: clock.now())
            queue.wake()
            try await settle(log, store) { sink.delivered.count == index + 1 }
            #expect(sink.delivered.last == event.id, "a new event waited behind the failing one")
        }
        #expect(log.results.filter { $0.eventID == poisoned[0].id }.count >= 3)
    }

    /// "Retry-After: 0" on every answer: the event still waits the first delay between
    /// tries (on this manual clock, no second try until it moves).
    @Test func aRetryAfterOfZeroDoesNotMakeALoopWithoutPause() async throws {
        let queued = events(1)
        let store = try store(with: queued)
        let sink = InMemorySink(clock: clock)
        sink.failNext(100, with: DeliveryError(retryable: true, message: "HTTP 429", retryAfter: 0))
        let (_, running, log) = await run(sink, store: store)
        defer { running.cancel() }
        try await settle(log, store) { log.results.count >= 1 }
        #expect(log.results.count == 1, "\(log.results.count) tries without the clock moving")
        try await advanceWhenWaiting(by: 1)
        try await settle(log, store) { log.results.count >= 2 }
        #expect(log.results.count == 2)
        // The same floor for marketplace calls (one policy type), and the cap above.
        #expect(RetryPolicy(initialDelay: 0.5, maxDelay: 30).delay(afterAttempt: 3, retryAfter: 0) == 0.5)
        #expect(RetryPolicy(initialDelay: 0.5, maxDelay: 30).delay(afterAttempt: 1, retryAfter: 3600) == 30)
    }

    @Test func anUnreadableOutboxEntryBecomesADeadLetterAndTheRestAreDelivered() async throws {
        let queued = events(3)
        let store = try store(with: queued)
        try store.database.query("UPDATE outbox SET event = '{not json' WHERE event_id = ?", [.text(queued[1].id)])
        let due = try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10)
        #expect(due.deliveries.map(\.event.id) == [queued[0].id, queued[2].id])
        #expect(due.unreadable.count == 1)
        #expect(due.unreadable.first?.contains(queued[1].id) == true)
        #expect(due.unreadable.first?.contains(store.path) == true)

        let sink = InMemorySink(clock: clock)
        let queue = DeliveryQueue(routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock, logger: quiet)
        await queue.deliverDueOnce()
        #expect(sink.events.map(\.id) == [queued[0].id, queued[2].id])
        #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["dead/1", "delivered/2"])
    }

    /// How long the queue claims an outbox entry (replicas) follows from the sink's
    /// `timeout:`, bounded as the config bounds it.
    @Test func aRoutesTimeoutIsItsSinksTimeoutBoundedAndThirtySecondsWithoutOne() {
        let factory = SinkFactory(transport: CurlHTTPTransport(threads: 1), smtp: CurlSMTPTransport())
        let webhook = SinkConfig(name: "hook", kind: .webhook(WebhookSinkConfig(url: .url("https://example.com/h"), timeout: 7)))
        let mail = EmailSinkConfig(url: URL(string: "smtp://mail.example.com")!, from: "a@example.com", to: ["b@example.com"], timeout: 45)
        let email = SinkConfig(name: "mail", kind: .email(mail))
        let stdout = SinkConfig(name: "console", kind: .stdout(StdoutSinkConfig()))
        #expect(factory.makeRoutes([webhook, email, stdout]).map(\.timeout) == [7, 45, 30])
        let sink = InMemorySink()
        #expect([-1, 10_000, .infinity, .nan].map { DeliveryQueue.Route(sink: sink, timeout: $0).timeout } == [0, 600, 30, 30])
        #expect(DeliveryQueue.Route(sink: sink, timeout: 10).attemptBound == 10 + DeliveryQueue.claimMargin)
    }

    @Test func anOutboxThatCannotBeReadIsLoggedOnceAsAnErrorWhileTheSinkTriesAgainAndAgain() async throws {
        let queued = events(1)
        let store = RefusingStore(try self.store(with: queued), refusing: nil, message: "state database: connection refused (test)")
        store.refusing = true
        let lines = LogLines()
        let sink = InMemorySink(clock: clock)
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock,
            logger: Logger(label: "test", factory: { _ in LineCollector(lines) }))
        for _ in 0..<4 { await queue.deliverDueOnce() }
        #expect(lines.all.filter { $0.hasPrefix("cannot read the outbox") }.count == 4)
        #expect(lines.all(atLeast: .error) == ["cannot read the outbox: state database: connection refused (test)"])
        store.refusing = false
        await queue.deliverDueOnce()
        #expect(sink.events.map(\.id) == queued.map(\.id))
        #expect(lines.all(atLeast: .notice).last == "the outbox can be read and written again")
    }

    @Test func anAcknowledgementTheStoreCouldNotRecordIsRecordedLaterAndNotSentAgain() async throws {
        let queued = events(1)
        let store = RefusingStore(try self.store(with: queued), refusing: ["recordDelivery"], message: "state database: connection refused (test)")
        store.refusing = true
        let sink = InMemorySink(clock: clock)
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: RetryPolicy(initialDelay: 1, maxDelay: 60))], store: store, clock: clock,
            logger: quiet)
        let running = await AttemptLog().run(queue)
        defer { running.cancel() }

        // Delivered while the database is away: the answer cannot be recorded.
        try await waitFor { sink.events.count == 1 && clock.sleeperCount == 1 }
        store.refusing = false
        try await advanceWhenWaiting(by: 10)
        try await waitFor { try store.inner.outboxCounts().map { "\($0.status)/\($0.count)" } == ["delivered/1"] }
        #expect(sink.events.map(\.id) == queued.map(\.id))
    }
}
