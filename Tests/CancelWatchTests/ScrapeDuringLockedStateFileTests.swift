import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A scrape of `/metrics` never touches the state file (SQLite may wait there for seconds
/// on the HTTP server's thread): the delivery queue hands metrics the outbox counts.
@Suite struct ScrapeDuringLockedStateFileTests {
    @Test func metricsRenderWithTheOutboxCountsWhileAnotherConnectionHoldsTheStateFile() async throws {
        let path = try temporaryStatePath("cw-scrape-locked")
        let store = ScrapeWatchingStore(try SQLiteStateStore(path: path))
        let clock = ManualClock()
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // An event for a sink no route serves: it stays pending.
        let event = AlertEvent(
            id: "e1", kind: .firing, rule: "r", severity: .warning, source: "ozon", marketplace: .ozon, request: nil,
            occurredAt: clock.now(), message: "m", sinks: ["gone"])
        try store.commit(alerts: [], events: [event], health: nil, at: clock.now())
        let metrics = CancelWatchMetrics()
        let service = try WatchService(
            sources: [], rules: [], routes: [], store: store, clock: clock, logger: quiet, metrics: metrics)
        await service.start()
        let running = Task { await service.delivery.run() }
        defer { running.cancel() }
        let pending = #"cancelwatch_outbox_pending{sink="gone"} 1"#
        try await waitFor { metrics.render(now: clock.now()).contains(pending) }

        // Another connection holds the write lock while a scrape is rendered on a thread of its own.
        let holder = try SQLiteDatabase(path: path)
        try holder.execute("BEGIN IMMEDIATE")
        let rendered = await withCheckedContinuation { continuation in
            Thread {
                store.scraping(on: pthread_self())
                continuation.resume(returning: metrics.render(now: clock.now()))
            }.start()
        }
        try holder.execute("ROLLBACK")
        #expect(rendered.contains(pending), "\(rendered)")
        #expect(store.callsFromScrapes == 0, "the scrape asked the state file")
    }
}

/// A state store that counts the calls made from a scrape's thread.
final class ScrapeWatchingStore: StateStore, @unchecked Sendable {
    let store: SQLiteStateStore
    private let lock = NSLock()
    private var scrapeThread: pthread_t?
    private var fromScrapes = 0
    var callsFromScrapes: Int { lock.withLock { fromScrapes } }

    init(_ store: SQLiteStateStore) { self.store = store }

    /// Calls from `thread` count as a scrape's.
    func scraping(on thread: pthread_t) { lock.withLock { scrapeThread = thread } }

    private func enter() {
        lock.withLock {
            if let scrapeThread, pthread_equal(scrapeThread, pthread_self()) != 0 { fromScrapes += 1 }
        }
    }

    func loadTracked() throws(StoreError) -> [TrackedRequest] { try store.loadTracked() }
    func save(_ tracked: [TrackedRequest], health: SourceHealth?) throws(StoreError) { try store.save(tracked, health: health) }
    func delete(_ keys: [RequestKey]) throws(StoreError) { try store.delete(keys) }
    func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int {
        try store.pruneOutbox(deliveredBefore: deliveredBefore, deadBefore: deadBefore)
    }
    func loadHealth() throws(StoreError) -> [SourceHealth] { try store.loadHealth() }
    func loadAlerts() throws(StoreError) -> [AlertState] { try store.loadAlerts() }
    func commit(alerts: [AlertState], events: [AlertEvent], health: SourceHealth?, at now: Date) throws(StoreError) {
        try store.commit(alerts: alerts, events: events, health: health, at: now)
    }
    func dueDeliveries(sink: String, now: Date, limit: Int) throws(StoreError) -> DueDeliveries {
        try store.dueDeliveries(sink: sink, now: now, limit: limit)
    }
    func nextDeliveryAttempt(sink: String) throws(StoreError) -> Date? { try store.nextDeliveryAttempt(sink: sink) }
    func recordDelivery(_ result: DeliveryResult) throws(StoreError) { try store.recordDelivery(result) }
    func outboxCounts() throws(StoreError) -> [OutboxCount] {
        enter()
        return try store.outboxCounts()
    }
}
