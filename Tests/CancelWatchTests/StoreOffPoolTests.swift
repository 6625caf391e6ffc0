import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// SQLite's busy waits (up to 5 s while another connection writes) and fsyncs run on
/// threads of their own: with more callers stuck in the store than the cooperative pool
/// has threads, a task on the pool still runs, and the lock holder lets go only then.
@Suite struct StoreOffPoolTests {
    /// A store that says when a call has come in, before handing it on.
    final class Entrances: ObservedStore, @unchecked Sendable {
        private let condition = NSCondition()
        private var entered = 0

        /// False if that many never came (a guard against hanging, not a timing check).
        func waitUntil(entered count: Int) -> Bool {
            let limit = Date().addingTimeInterval(120)
            condition.lock()
            defer { condition.unlock() }
            while entered < count { if !condition.wait(until: limit) { return false } }
            return true
        }

        override func willCall(_ name: String) throws(StoreError) {
            guard name == "commit" else { return }
            condition.lock()
            entered += 1
            condition.broadcast()
            condition.unlock()
        }
    }

    @Test func ledgersWaitingOnALockedStateFileLeaveTheCooperativePoolFree() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-offpool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("state.sqlite").path
        let store = Entrances(try SQLiteStateStore(path: path))
        let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // More ledgers writing at once than the cooperative pool has threads.
        let pool = ProcessInfo.processInfo.activeProcessorCount
        let writers = pool + 1
        let ledgers = try (0..<writers).map { _ in
            try Ledger(rules: [ThresholdRule(name: "final-hour", threshold: 3600)], store: store, clock: clock, logger: quiet)
        }

        // Another connection holds the write lock: every commit busy-waits for it.
        let holder = try SQLiteDatabase(path: path)
        try holder.execute("BEGIN IMMEDIATE")
        let commits = applyOneListingEach(ledgers, clock: clock)
        // Once as many commits as the pool has threads wait on the lock, a task on the pool
        // must run before the holder commits: on the pool, the waits would hold every
        // thread until SQLite gave up (SQLITE_BUSY after 5 s) and those alerts were not saved.
        let (entered, poolRan) = try await offPool {
            let entered = store.waitUntil(entered: pool)
            let ran = DispatchSemaphore(value: 0)
            Task.detached { ran.signal() }
            let poolRan = ran.wait(timeout: .now() + 120) == .success
            try holder.execute("COMMIT")
            return (entered, poolRan)
        }
        #expect(entered && poolRan)
        for commit in commits { await commit.value }
        // A loaded machine may hold the lock past SQLite's 5 s busy wait for the first comer
        // even off the pool (the pool's freedom is what `poolRan` checks): the next listing,
        // with no lock held, saves what was refused, and nothing twice.
        for commit in applyOneListingEach(ledgers, clock: clock) { await commit.value }
        #expect(try store.outboxCounts() == [OutboxCount(sink: "memory", status: "pending", count: writers)])
    }

    /// Each engine actor owns a thread: a service let go (the old one after a reload) frees
    /// its actors, and so their threads, instead of keeping them in a cycle of hooks.
    @Test func aServiceLetGoFreesItsActorsAndTheirThreads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-offpool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try SQLiteStateStore(path: directory.appendingPathComponent("state.sqlite").path)
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        weak var ledger: Ledger?
        weak var delivery: DeliveryQueue?
        do {
            let service = try WatchService(
                sources: [], rules: [ThresholdRule(name: "r", threshold: 60)], routes: [], store: store,
                clock: ManualClock(Date(timeIntervalSince1970: 1_764_000_000)), logger: quiet)
            await service.start()
            _ = await service.once()
            ledger = service.ledger
            delivery = service.delivery
        }
        #expect(ledger == nil && delivery == nil)
    }
}
