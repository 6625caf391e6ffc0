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
        let running = Task { await service.runDeliveries() }
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
final class ScrapeWatchingStore: ObservedStore, @unchecked Sendable {
    private let lock = NSLock()
    private var scrapeThread: pthread_t?
    private var fromScrapes = 0
    var callsFromScrapes: Int { lock.withLock { fromScrapes } }

    /// Calls from `thread` count as a scrape's.
    func scraping(on thread: pthread_t) { lock.withLock { scrapeThread = thread } }

    override func willCall(_ name: String) throws(StoreError) {
        lock.withLock {
            if let scrapeThread, pthread_equal(scrapeThread, pthread_self()) != 0 { fromScrapes += 1 }
        }
    }
}
