import CancelWatchTesting
import Foundation
import Logging
import Testing
import TestServers

@testable import CancelWatch

/// The ledger commits an acting rule's `action` with its firing: in dry-run it goes to the
/// rule's sinks only and is logged once, after its commit (never one whose commit failed);
/// when live it also goes to the rule-action sink, through the outbox.
@Suite struct LedgerActionTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))

    func actingRule() throws -> CompiledRule {
        let result = RulesFixture.compile(#"rule "auto" { when remaining <= 1h notify ops act refuse "sold out" }"#)
        return try #require(result.ruleSet?.rules.first)
    }

    func request(_ id: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(600))
    }

    /// A ledger over the state file at `path` (or `store`), opened off the cooperative pool.
    func openLedger(
        _ rules: [AlertRule], path: String? = nil, store: StateStore? = nil, logger: Logger, actionMode: ActionMode = .dryRun
    ) async throws -> Ledger {
        let clock = clock
        return try await offPool {
            try Ledger(
                rules: rules, store: try store ?? SQLiteStateStore(path: path ?? ""), clock: clock, logger: logger,
                actionMode: actionMode)
        }
    }

    func dryRunLines(_ lines: LogLines) -> [String] { lines.all(atLeast: .notice).filter { $0.hasPrefix("dry-run:") } }

    @Test func aDryRunActionIsCommittedWithItsFiringToTheRulesSinksAndLoggedOnce() async throws {
        let path = try temporaryStatePath("cw-act")
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in LineCollector(lines) }
        let rule = try actingRule()
        let ledger = try await openLedger([rule], path: path, logger: logger)
        let report = await ledger.apply(.listing([request("a")], at: clock.now()))
        #expect(report.events.map(\.kind) == [.firing, .action])
        #expect(report.events.last?.sinks == ["ops"])
        let expected = #"dry-run: rule auto would refuse ozon ozon-main order-a (comment "sold out")"#
        #expect(lines.all(atLeast: .notice) == [expected])

        // Polled again, and after a restart, the request has acted already.
        clock.advance(by: 60)
        await ledger.apply(.listing([request("a")], at: clock.now()))
        let restarted = try await openLedger([rule], path: path, logger: logger)
        #expect(await restarted.start().isEmpty)
        await restarted.apply(.listing([request("a")], at: clock.now()))
        #expect(lines.all(atLeast: .notice) == [expected])

        let outbox = try await offPool { try SQLiteStateStore(path: path).outboxCounts() }
        #expect(outbox == [OutboxCount(sink: "ops", status: "pending", count: 2)], "the firing and its action, nothing for answering")
    }

    @Test func anActionWhoseCommitFailedIsNotLoggedUntilItIsCommitted() async throws {
        let path = try temporaryStatePath("cw-act")
        let store = try await offPool { RefusingStore(try SQLiteStateStore(path: path)) }
        let lines = LogLines()
        let ledger = try await openLedger([try actingRule()], store: store, logger: Logger(label: "test") { _ in LineCollector(lines) })
        store.refusing = true
        #expect(await ledger.apply(.listing([request("a")], at: clock.now())).events.isEmpty)
        #expect(dryRunLines(lines).isEmpty)

        store.refusing = false
        clock.advance(by: 5)
        #expect(await ledger.apply(.listing([request("a")], at: clock.now())).events.map(\.kind) == [.firing, .action])
        #expect(dryRunLines(lines).count == 1)
    }

    @Test func aLiveActionAlsoGoesToTheRuleActionSinkAndIsNotLoggedAsDryRun() async throws {
        let path = try temporaryStatePath("cw-act")
        let lines = LogLines()
        let ledger = try await openLedger(
            [try actingRule()], path: path, logger: Logger(label: "test") { _ in LineCollector(lines) }, actionMode: .live)
        let report = await ledger.apply(.listing([request("a")], at: clock.now()))
        let action = try #require(report.events.last)
        #expect(action.message == #"rule auto refuses ozon ozon-main order-a (comment "sold out")"#)
        #expect(action.sinks == ["ops", RuleActionSink.sinkName])
        #expect(report.events.first?.sinks == ["ops"], "the firing is an alert only")
        #expect(dryRunLines(lines).isEmpty)
        let outbox = try await offPool { try SQLiteStateStore(path: path).outboxCounts() }.sorted { $0.sink < $1.sink }
        #expect(
            outbox == [
                OutboxCount(sink: RuleActionSink.sinkName, status: "pending", count: 1), OutboxCount(sink: "ops", status: "pending", count: 2),
            ])
    }
}
