import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A marketplace answering from a script: the listing and the outcome lookups.
final class ScriptedMarketplace: MarketplaceClient, @unchecked Sendable {
    let source = "ozon-main"
    let marketplace = Marketplace.ozon
    private let lock = NSLock()
    private var listing: [CancellationRequest] = []
    private var lookupFailure: PollError?
    private var outcome: OutcomeLookup = .resolved(.approved, at: nil)
    private var listings = 0

    func list(_ requests: [CancellationRequest]) { lock.withLock { listing = requests } }
    private var listingFailure: PollError?
    func failListings(_ error: PollError?) { lock.withLock { listingFailure = error } }
    func answerLookups(_ outcome: OutcomeLookup) { lock.withLock { self.outcome = outcome } }
    /// Calls of `fetchPending`, answered or failed.
    var listingCount: Int { lock.withLock { listings } }
    func failLookups(_ error: PollError?) { lock.withLock { lookupFailure = error } }

    /// Every call counts in `listingCount`, answered or failed.
    func fetchPending() async throws(PollError) -> PendingSnapshot {
        let (failure, requests) = lock.withLock {
            listings += 1
            return (listingFailure, listing)
        }
        if let failure { throw failure }
        return PendingSnapshot(requests: requests)
    }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        if let failure = lock.withLock({ lookupFailure }) { throw failure }
        let outcome = lock.withLock { self.outcome }
        return Dictionary(uniqueKeysWithValues: requests.map { ($0.key, outcome) })
    }
}

/// Polling into the ledger: listings, outcome lookups, deadlines, pruning.
@Suite struct PollerTests {
    let clock = ManualClock()

    func request(_ id: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(3600))
    }

    @Test func aFailedOutcomeLookupStillAppliesTheListingAndResolvesNothing() async throws {
        let (polling, store, market, _) = try await running(pollInterval: 60)
        market.list([request("a"), request("b")])
        _ = await polling.poller.poll(market)

        market.list([request("b"), request("c")])
        market.failLookups(PollError(source: "ozon-main", kind: .server, status: 503, message: "lookup down"))
        let report = await polling.poller.poll(market)
        #expect(report.error?.status == 503)
        #expect(report.changes.contains { if case .new(let t) = $0 { t.request.id == "c" } else { false } }, "the new request is applied")
        #expect(report.health.consecutiveFailures == 1)
        #expect(Set(try store.loadTracked().filter { $0.status == .pending }.map(\.request.id)) == ["a", "b", "c"])

        market.failLookups(nil)
        let next = await polling.poller.poll(market)
        #expect(next.error == nil)
        #expect(try store.loadTracked().first { $0.request.id == "a" }?.status == .approved)
        #expect(next.health.consecutiveFailures == 0)
    }

    /// The seller rejects a minute before the deadline, between two polls an hour apart:
    /// at the deadline the poller asks the marketplace instead of the ledger calling it expired.
    @Test func atADeadlineTheSourceIsPolledAndAnAnswerJustBeforeItIsSeen() async throws {
        let (polling, store, market, reports) = try await running(pollInterval: 3600)
        let a = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "a", order: "order-a", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(600))
        market.list([a])
        let running = await polling.run()
        defer { running.cancel() }
        try await waitFor { reports.count == 1 }

        clock.advance(by: 540)
        market.list([])
        market.answerLookups(.resolved(.rejected, at: clock.now()))
        clock.advance(by: 60)
        try await waitFor { reports.count == 2 }
        #expect(market.listingCount == 2)
        let changes = reports.all[1].changes
        #expect(changes.count == 1)
        #expect(changes.first.map { if case .resolved(_, .rejected) = $0 { true } else { false } } == true)
        #expect(try store.loadTracked().first?.status == .rejected)
    }

    /// When the marketplace cannot be asked at the deadline, the deadline is taken as passed.
    @Test func atADeadlineAFailedPollExpires() async throws {
        let (polling, store, market, reports) = try await running(pollInterval: 3600)
        market.list([request("a")])
        let running = await polling.run()
        defer { running.cancel() }
        try await waitFor { reports.count == 1 }
        market.failListings(PollError(source: "ozon-main", kind: .server, status: 500, message: "down"))
        clock.advance(by: 3600)
        // The poll's interval and the deadline fall together: the poll there expires it.
        try await waitFor { reports.all.dropFirst().contains { !$0.changes.isEmpty } }
        let expiring = try #require(reports.all.dropFirst().first { !$0.changes.isEmpty })
        #expect(expiring.error != nil)
        #expect(expiring.changes.map { if case .expired = $0 { true } else { false } } == [true])
        #expect(try store.loadTracked().first?.status == .expired)
    }

    /// A source backing off after a failure (here a 429 with Retry-After, which the cap makes
    /// 15 minutes) is not called out of turn at a deadline within that wait: the deadline is
    /// taken as passed, as a failed poll would.
    @Test func aDeadlineOfASourceThatIsBackingOffExpiresWithoutCallingIt() async throws {
        let (polling, store, market, reports) = try await running(pollInterval: 60)
        var a = request("a")
        a.deadline = clock.now().addingTimeInterval(600)
        market.list([a])
        let running = await polling.run()
        defer { running.cancel() }
        // The poll loop and the ledger's timers both wait on the clock before it moves.
        try await waitFor { reports.count == 1 && clock.sleeperCount == 2 }
        market.failListings(PollError(source: "ozon-main", kind: .rateLimited, status: 429, message: "slow down", retryAfter: 7200))
        clock.advance(by: 60)
        try await waitFor { reports.count == 2 }
        let calls = market.listingCount
        clock.advance(by: 540)
        try await waitFor { try store.loadTracked().first?.status == .expired }
        // The signal: both loops parked on the clock again (a poll started by the move or
        // the deadline would have run before its loop waits again).
        try await waitFor { clock.sleeperCount == 2 }
        #expect(market.listingCount == calls, "the source was called during its Retry-After")
        #expect(try store.loadTracked().first?.status == .expired)
    }

    /// A request of a source taken out of the config cannot be polled at its deadline.
    @Test func aDeadlineOfASourceNoLongerConfiguredExpiresAtOnce() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-watcher"))
        var gone = request("old-1")
        gone.source = "old-shop"
        try store.save([TrackedRequest(request: gone, status: .pending, firstSeen: clock.now(), lastSeen: clock.now())], health: nil)
        let market = ScriptedMarketplace()
        let polling = try Polling(market: market, pollInterval: 3600, store: store, clock: clock)
        let running = await polling.run()
        defer { running.cancel() }
        try await waitFor { market.listingCount == 1 }
        clock.advance(by: 3600)
        try await waitFor { try store.loadTracked().first { $0.request.id == "old-1" }?.status == .expired }
    }

    /// A week after a request closed, the ledger forgets it with its alert states, and
    /// the outbox drops what was delivered that long ago; what is recent stays.
    @Test func pruningForgetsRequestsClosedAWeekAgoWithTheirAlertsAndOldDeliveries() async throws {
        let (polling, store, market, _) = try await running(pollInterval: 60)
        market.list([request("a"), request("b")])
        _ = await polling.poller.poll(market)
        var event = SinkTestEvents.firing()
        event.sinks = ["hook"]
        let alert = AlertState(request: RequestKey(source: "ozon-main", id: "a"), rule: "r", firings: 1, active: true, lastFiredAt: clock.now())
        try store.commit(alerts: [alert], events: [event], health: nil, at: clock.now())
        try store.recordDelivery(DeliveryResult(eventID: event.id, sink: "hook", status: .delivered, attempts: 1, at: clock.now()))
        market.list([request("b")])
        market.answerLookups(.resolved(.rejected, at: clock.now()))
        _ = await polling.poller.poll(market)
        #expect(try store.loadTracked().first { $0.request.id == "a" }?.status == .rejected)

        clock.advance(by: 6 * 86400)
        #expect(await polling.ledger.prune().isEmpty, "not a week yet")
        clock.advance(by: 86400 + 1)
        #expect(await polling.ledger.prune() == [RequestKey(source: "ozon-main", id: "a")])
        #expect(try store.loadTracked().map(\.request.id) == ["b"])
        #expect(try store.loadAlerts().isEmpty)
        #expect(try store.outboxCounts().isEmpty)
        #expect(await polling.ledger.statusCounts() == [.pending: 1])
    }

    /// When the state file refuses to record an expiry or a pruning, the ledger's memory
    /// stays as the file has it, and the same change is made again once the file takes it.
    @Test func expiringAndPruningThatTheStateFileRefusesAreUndone() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-watcher")))
        let market = ScriptedMarketplace()
        let polling = try Polling(market: market, pollInterval: 60, store: store, clock: clock)
        let ledger = polling.ledger
        market.list([request("a")])
        _ = await polling.poller.poll(market)
        clock.advance(by: 3601)

        store.refusing = true
        #expect(await ledger.expireNow().isEmpty)
        #expect(await ledger.statusCounts() == [.pending: 1])
        store.refusing = false
        #expect(await ledger.expireNow().map(\.tracked.status) == [.expired])
        #expect(try store.inner.loadTracked().map(\.status) == [.expired])

        clock.advance(by: 8 * 86400)
        store.refusing = true
        #expect(await ledger.prune().isEmpty)
        #expect(await ledger.statusCounts() == [.expired: 1])
        store.refusing = false
        #expect(await ledger.prune() == [RequestKey(source: "ozon-main", id: "a")])
        #expect(await ledger.statusCounts().isEmpty)
        #expect(try store.inner.loadTracked().isEmpty)
    }

    /// A request past its deadline that the marketplace still lists (it has not acted yet)
    /// while the store refuses every write: the poll cannot be recorded, the request stays
    /// pending in memory, and the source is asked again after a pause, not at once forever.
    @Test func aDeadlinePollTheStoreCannotRecordIsNotRepeatedWithoutPause() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-refused-deadline")))
        let market = ScriptedMarketplace()
        let polling = try Polling(market: market, pollInterval: 3600, store: store, clock: clock)
        let late = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "a", order: "order-a", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(60))
        market.list([late])
        _ = await polling.poller.poll(market)
        clock.advance(by: 120)
        store.refusing = true
        let running = await polling.run()
        defer { running.cancel() }
        // The poll loop and the ledger's timers both wait on the clock once they have nothing to do.
        try await waitFor(limit: 20) { clock.sleeperCount >= 2 }
        let polls = market.listingCount
        #expect(polls <= 3, "polled \(polls) times without the clock moving")
        clock.advance(by: Ledger.storeRetry)
        try await waitFor { market.listingCount > polls }
    }

    /// A ledger and a poller of one scripted marketplace over a fresh state file, its
    /// reports collected while it runs.
    func running(pollInterval: TimeInterval) async throws -> (Polling, SQLiteStateStore, ScriptedMarketplace, ReportLog) {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-watcher"))
        let market = ScriptedMarketplace()
        let polling = try Polling(market: market, pollInterval: pollInterval, store: store, clock: clock)
        return (polling, store, market, polling.reports)
    }
}

/// A ledger and a poller of one marketplace.
struct Polling {
    let ledger: Ledger
    let poller: Poller
    let reports = ReportLog()

    init(market: MarketplaceClient, pollInterval: TimeInterval, store: StateStore, clock: WatchClock) throws {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let sources = [PolledSource(client: market, pollInterval: pollInterval)]
        ledger = try Ledger(rules: [], store: store, clock: clock, logger: logger, sources: sources)
        poller = Poller(sources: sources, ledger: ledger, clock: clock, logger: logger)
    }

    /// Starts the ledger, then runs its timers and the poll loops until the task is
    /// cancelled, each poll's report collected in `reports`.
    func run() async -> Task<Void, Never> {
        await ledger.start()
        let reports = reports
        return await runLoops(ledger: ledger, poller: poller) { report in
            if case .poll(let poll) = report { reports.add(poll) }
        }
    }
}

final class ReportLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [PollReport] = []
    func add(_ report: PollReport) { lock.withLock { stored.append(report) } }
    var all: [PollReport] { lock.withLock { stored } }
    var count: Int { lock.withLock { stored.count } }
}
