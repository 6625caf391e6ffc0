import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// The running pipeline keeps the status board up to date from its reports, as it keeps
/// `/metrics`: the ledger's pending requests and health after each step, every event, and
/// the store's latest dead letters when their number changes.
@Suite struct StatusBoardTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func request(_ id: String, in seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(seconds))
    }

    @Test func aRunningPipelinePutsItsPendingRequestsEventsAndDeadLettersOnTheBoard() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-status-board"))
        let sink = InMemorySink(name: "memory", clock: clock)
        sink.failNext(10, with: DeliveryError(retryable: false, message: "HTTP 404: no such hook"))
        let metrics = CancelWatchMetrics()
        let service = try WatchService(
            sources: [], rules: [ThresholdRule(name: "within-the-hour", threshold: 3600)], routes: [DeliveryQueue.Route(sink: sink)],
            store: store, clock: clock, logger: quiet, metrics: metrics, deadLetters: { try? store.deadLetters(limit: $0) })
        await service.start()
        let ledger = Task { await service.runLedger() }
        let deliveries = Task { await service.runDeliveries() }
        defer {
            ledger.cancel()
            deliveries.cancel()
        }

        await service.ledger.apply(.listing([request("later", in: 7200), request("soon", in: 600)], source: "ozon", at: clock.now()))
        try await waitFor { metrics.board.pending.total == 2 }
        let pending = metrics.board.pending
        #expect(pending.requests.map(\.request.id) == ["soon", "later"])
        #expect(pending.requests[0].alerts.map(\.rule) == ["within-the-hour"] && pending.requests[1].alerts.isEmpty)
        // The board has heard from the ledger, so it hears of the next poll's firing.
        let next = request("next", in: 300)
        await service.ledger.apply(.listing([request("later", in: 7200), request("soon", in: 600), next], source: "ozon", at: clock.now()))
        try await waitFor { metrics.board.events(since: nil, limit: 10).events.contains { $0.order == next.order } }
        try await waitFor { metrics.board.pending.total == 3 }
        #expect(metrics.board.pending.requests.first?.request.id == "next")

        try await waitFor { !metrics.board.deadLetters.isEmpty }
        let letter = try #require(metrics.board.deadLetters.first)
        #expect(letter.sink == "memory" && letter.error.contains("HTTP 404: no such hook"))
        #expect(["soon", "next"].contains(letter.event?.request?.id ?? ""))
    }

    @Test func requestsWithTheSameDeadlineAreListedByTheirKeyAndAZeroLimitListsNone() {
        // "a" comes first, "d" (the nearest) last: the cut keeps "a" and "b", not the last to come.
        let tracked = ["a", "b", "c", "d"].map { id in
            TrackedRequest(
                request: request(id, in: id == "d" ? 60 : 600), status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
        }
        let storage = LedgerStorage(tracked)
        let (slots, total) = storage.pendingByDeadline(limit: 3)
        #expect(slots.map { storage.key(at: $0).id } == ["d", "a", "b"] && total == 4)
        #expect(storage.pendingByDeadline(limit: 0) == ([], 4))
    }

    @Test func aCursorFromBeforeARestartGetsTheOldestEventsKeptAndSaysSo() {
        // Cursors count from 1 at each start: a client still holding 5000 from the process before
        // would otherwise get nothing until this one had emitted 5000 events.
        let board = StatusBoard()
        board.record(
            (1...3).map { n in
                AlertEvent(
                    id: "e\(n)", kind: .firing, rule: "r", severity: .info, source: "ozon", marketplace: .ozon, request: nil,
                    occurredAt: clock.now(), message: "m", sinks: [])
            })
        let stale = board.events(since: .cursor(5000), limit: 2)
        #expect(stale.reset && stale.events.map(\.cursor) == [1, 2] && stale.more && stale.cursor == 2)
        let next = board.events(since: .cursor(stale.cursor), limit: 2)
        #expect(!next.reset && next.events.map(\.cursor) == [3] && !next.more)
        #expect(!board.events(since: .cursor(3), limit: 2).reset)
        #expect(board.events(since: .cursor(3), limit: 2).events.isEmpty)
    }

    @Test func theBoardKeepsTheLastEventsWithCursorsThatKeepCountingAcrossTheOnesItDrops() {
        let board = StatusBoard()
        let events = (1...250).map { n in
            AlertEvent(
                id: "e\(n)", kind: .firing, rule: "r", severity: .info, source: "ozon", marketplace: .ozon, request: nil,
                occurredAt: clock.now(), message: String(repeating: "x", count: 1000), sinks: [])
        }
        board.record(Array(events[0..<100]))
        board.record(Array(events[100...]))
        let page = board.events(since: nil, limit: 1000)
        let (kept, truncated, cursor) = (page.events, page.truncated, page.cursor)
        #expect(kept.count == StatusBoard.maxEvents && kept.first?.cursor == 51 && kept.last?.cursor == 250 && cursor == 250)
        #expect(!truncated)
        #expect(kept.allSatisfy { $0.message.utf8.count <= RecentEvent.messageLimit })
        #expect(board.events(since: .cursor(10), limit: 1000).truncated)
        #expect(!board.events(since: .cursor(50), limit: 1000).truncated)
    }
}
