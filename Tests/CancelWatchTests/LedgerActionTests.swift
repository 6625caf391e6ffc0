import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// The ledger commits an acting rule's `action` with its firing, logs it in dry-run once,
/// and hands every committed one (never one whose commit failed) to whoever sends answers.
@Suite struct LedgerActionTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))

    final class Handed: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [[AlertEvent]] = []
        var batches: [[AlertEvent]] { lock.withLock { stored } }
        func add(_ events: [AlertEvent]) { lock.withLock { stored.append(events) } }
    }

    func actingRule() throws -> CompiledRule {
        let result = RulesFixture.compile(#"rule "auto" { when remaining <= 1h notify ops act refuse "sold out" }"#)
        return try #require(result.ruleSet?.rules.first)
    }

    func request(_ id: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(600))
    }

    @Test func aDryRunActionIsCommittedWithItsFiringLoggedOnceAndHandedOnOnce() async throws {
        let path = try temporaryStatePath("cw-act")
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in LineCollector(lines) }
        let handed = Handed()
        let rule = try actingRule()
        let ledger = try Ledger(
            rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger,
            actionsCommitted: { handed.add($0) })
        let report = await ledger.apply(.listing([request("a")], at: clock.now()))
        #expect(report.events.map(\.kind) == [.firing, .action])
        let expected = #"dry-run: rule auto would refuse ozon ozon-main order-a (comment "sold out")"#
        #expect(lines.all(atLeast: .notice) == [expected])
        #expect(handed.batches.map { $0.map(\.kind) } == [[.action]])
        #expect(handed.batches.first?.first?.id == report.events.last?.id)

        // Polled again, and after a restart, the request has acted already.
        clock.advance(by: 60)
        await ledger.apply(.listing([request("a")], at: clock.now()))
        let restarted = try Ledger(
            rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger,
            actionsCommitted: { handed.add($0) })
        #expect(await restarted.start().isEmpty)
        await restarted.apply(.listing([request("a")], at: clock.now()))
        #expect(lines.all(atLeast: .notice) == [expected])
        #expect(handed.batches.count == 1)

        let outbox = try SQLiteStateStore(path: path).outboxCounts()
        #expect(outbox == [OutboxCount(sink: "ops", status: "pending", count: 2)], "the action goes to the rule's sinks like its firing")
    }

    @Test func anActionWhoseCommitFailedIsNeitherLoggedNorHandedOnUntilItIsCommitted() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-act")))
        let lines = LogLines()
        let handed = Handed()
        let ledger = try Ledger(
            rules: [try actingRule()], store: store, clock: clock, logger: Logger(label: "test") { _ in LineCollector(lines) },
            actionsCommitted: { handed.add($0) })
        store.refusing = true
        #expect(await ledger.apply(.listing([request("a")], at: clock.now())).events.isEmpty)
        #expect(!lines.all(atLeast: .notice).contains { $0.contains("dry-run") })
        #expect(handed.batches.isEmpty)

        store.refusing = false
        clock.advance(by: 5)
        #expect(await ledger.apply(.listing([request("a")], at: clock.now())).events.map(\.kind) == [.firing, .action])
        #expect(lines.all(atLeast: .notice).filter { $0.contains("dry-run") }.count == 1)
        #expect(handed.batches.map(\.count) == [1])
    }

    @Test func aLiveActionIsHandedOnAndNotLoggedAsDryRun() async throws {
        let lines = LogLines()
        let handed = Handed()
        let ledger = try Ledger(
            rules: [try actingRule()], store: try SQLiteStateStore(path: try temporaryStatePath("cw-act")), clock: clock,
            logger: Logger(label: "test") { _ in LineCollector(lines) }, actionMode: .live, actionsCommitted: { handed.add($0) })
        await ledger.apply(.listing([request("a")], at: clock.now()))
        #expect(handed.batches.first?.first?.message == #"rule auto refuses ozon ozon-main order-a (comment "sold out")"#)
        #expect(!lines.all.contains { $0.contains("dry-run") })
    }
}
