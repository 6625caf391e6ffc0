import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A poll's request changes, their alert states, the source's health and the events with
/// their outbox rows are one transaction (what a store does with one:
/// `StateStoreContractTests`).
@Suite struct LedgerTransactionTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let whole: JSONValue = ["flag": true, "note": "позвонить", "items": [["sku": "a", "qty": 2]]]

    func request(_ id: String, deadlineIn seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(seconds), raw: whole)
    }

    @Test func aPollTheStateFileRefusesWritesNothingAndTheNextPollWritesItAll() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-one")))
        let ledger = try Ledger(rules: [ThresholdRule(name: "final-hour", threshold: 3600)], store: store, clock: clock, logger: quiet)
        let a = request("a", deadlineIn: 600)

        store.refusing = true
        let refused = await ledger.apply(.listing([a], at: clock.now()))
        #expect(refused.changes.isEmpty && refused.events.isEmpty)
        #expect(await ledger.statusCounts().isEmpty, "memory stays as the state file has it")
        #expect(try store.inner.loadTracked().isEmpty)
        #expect(try store.inner.loadAlerts().isEmpty)
        #expect(try store.inner.loadHealth().isEmpty)
        #expect(try store.inner.outboxCounts().isEmpty)

        store.refusing = false
        clock.advance(by: 60)
        let written = await ledger.apply(.listing([a], at: clock.now()))
        #expect(written.events.map(\.kind) == [.firing])
        #expect(try store.inner.loadTracked().map(\.request.id) == ["a"])
        #expect(try store.inner.loadAlerts().map(\.firings) == [1])
        #expect(try store.inner.loadHealth().first?.lastSuccessAt == clock.now())
        #expect(try store.inner.outboxCounts() == [OutboxCount(sink: "memory", status: "pending", count: 1)])
    }

    /// An expiry the state file refuses is tried again a few seconds later, not at once
    /// again and again (its deadline stays in the past until it is written).
    @Test func anExpiryTheStateFileRefusesIsTriedAgainShortlyNotAtOnce() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-one")))
        let ledger = try Ledger(rules: [ThresholdRule(name: "final-hour", threshold: 3600)], store: store, clock: clock, logger: quiet)
        let a = request("a", deadlineIn: 600)
        await ledger.apply(.listing([a], at: clock.now()))
        clock.advance(to: a.deadline)

        store.refusing = true
        #expect(await ledger.processDue().isEmpty)
        let retry = try #require(await ledger.nextWake)
        #expect(retry > clock.now(), "not the deadline that passed")
        #expect(await ledger.statusCounts() == [.pending: 1])

        store.refusing = false
        clock.advance(to: retry)
        #expect(await ledger.processDue().map(\.kind) == [.expired])
        #expect(try store.inner.loadTracked().map(\.status) == [.expired])
        #expect(await ledger.nextWake == nil)
    }
}
