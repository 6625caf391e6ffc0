import Foundation
import Logging
import Testing

@testable import CancelWatch

/// The raw object of a tracked request lives whole in the state file and pruned in
/// memory; what leaves cancelwatch (webhook bodies, the state file) has it whole.
@Suite struct RawObjectTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    let whole: JSONValue = [
        "flag": true, "note": "позвонить", "cancellation_reason": ["id": 501, "name": "Покупатель передумал"],
        "items": [["sku": "a", "qty": 2]], "comment": "a long text nobody's rule reads",
    ]

    func request(_ id: String, deadlineIn seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", deadline: clock.now().addingTimeInterval(seconds), raw: whole)
    }

    func rules(_ text: String) throws -> [CompiledRule] {
        let result = RulesFixture.compile(text, sinks: ["memory"])
        return try #require(result.ruleSet).rules
    }

    /// A request read from a page keeps its text as a stretch of the page's bytes; once the
    /// poll is over, nothing kept (a ledger's storage, even keeping whole objects, the
    /// ledger, the events it made) holds the page.
    @Test func nothingKeptAfterAPollHoldsThePageItWasReadFrom() async throws {
        let rules = try rules(
            """
            rule "r" {
              when remaining <= 1h
              notify memory
              message "{{order}}"
            }
            """)
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-page"))
        let ledger = try Ledger(rules: rules, store: store, clock: clock, logger: logger)
        var storage = LedgerStorage(keepingRaw: .everything)
        var events: [AlertEvent] = []
        weak var page: AnswerBytes?
        do {
            let body = Data(
                (#"{"result": [{"cancellation_id": 1, "posting_number": "1-1-1", "auto_approve_date": "2025-11-24T16:30:00Z", "#
                    + #""note": "x"}, {"cancellation_id": 2, "posting_number": "2-2-2", "auto_approve_date": "2025-11-26T16:00:00Z"}], "#
                    + #""last_id": 2}"#).utf8)
            let requests = try OzonWire.decodePage(body).items.map { item throws(PollErrorReason) in
                try OzonWire.request(from: item, source: "ozon-main")
            }
            guard case .slice(let answer, _, _) = requests[0].rawObject.storage else {
                Issue.record("a page's item keeps its text as a stretch of the page")
                return
            }
            page = answer
            _ = storage.apply(snapshot: PendingSnapshot(requests: requests), outcomes: [:], source: "ozon-main", now: clock.now())
            events = await ledger.apply(.listing(requests, at: clock.now())).events
        }
        #expect(storage.requests.count == 2)
        #expect(await ledger.statusCounts() == [.pending: 2])
        #expect(events.map(\.kind) == [.firing])
        #expect(events.first?.request?.rawObject.value(atPath: ["note"]) == "x")
        #expect(page == nil, "the page is gone with the poll")
    }

    /// A ledger polling `market` with `rules`, over `store`.
    func polling(_ market: ScriptedMarketplace, rules: [AlertRule] = [], store: StateStore) throws -> (Ledger, Poller) {
        let sources = [PolledSource(client: market, pollInterval: 60)]
        let ledger = try Ledger(rules: rules, store: store, clock: clock, logger: logger, sources: sources)
        return (ledger, Poller(sources: sources, ledger: ledger, clock: clock, logger: logger))
    }

    @Test func theStateFileKeepsTheWholeObjectThroughEveryChangeAndARestartPrunesIt() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw"))
        let market = ScriptedMarketplace()
        let rules = try rules(
            """
            rule "r" {
              when remaining <= 1m and raw.flag
              notify memory
              message "{{order}}"
            }
            """)
        let paths = rules.rawPaths
        #expect(paths == RawPaths([["flag"]]))
        let (ledger, poller) = try polling(market, rules: rules, store: store)
        let a = request("a", deadlineIn: 3600)
        market.list([a])
        let first = await poller.poll(market)
        #expect(first.changes.first?.tracked.request.raw == whole, "the change carries the object as listed")
        #expect(await ledger.tracked.first?.request.raw == ["flag": true], "memory keeps what rules read")
        #expect(try store.loadTracked().first?.request.raw == whole)

        clock.advance(by: 60)
        market.list([])
        market.answerLookups(.resolved(.approved, at: clock.now()))
        let resolved = await poller.poll(market)
        #expect(resolved.changes.first?.tracked.status == .approved)
        #expect(resolved.changes.first?.tracked.request.raw == ["flag": true])
        let saved = try #require(try store.loadTracked().first)
        #expect(saved.status == .approved)
        #expect(saved.request.raw == whole, "a pruned object never replaces the whole one in the state file")

        let (restarted, _) = try polling(market, rules: rules, store: store)
        let reloaded = try #require(await restarted.tracked.first)
        #expect(reloaded.request.raw == ["flag": true])
        #expect(reloaded.rawKept == paths)
        #expect(try store.loadTracked().first?.request.raw == whole)
        #expect(try store.loadTracked(keepingRaw: .none).first?.request.raw == .object([:]))
    }

    /// An unchanged listing after a restart is no change: the fingerprint of the whole
    /// object is taken from the state file as it is read.
    @Test func anUnchangedListingAfterARestartIsNoChange() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw"))
        let market = ScriptedMarketplace()
        let (_, poller) = try polling(market, store: store)
        var a = request("a", deadlineIn: 3600)
        a.raw = ["n": .number(2.0), "x": .number(0.5), "s": "é"]
        market.list([a])
        _ = await poller.poll(market)
        let (_, restarted) = try polling(market, store: store)
        clock.advance(by: 60)
        #expect(await restarted.poll(market).changes.isEmpty)
        a.raw = ["n": .number(2.0), "x": .number(0.75), "s": "é"]
        market.list([a])
        clock.advance(by: 60)
        #expect(await restarted.poll(market).changes.count == 1)
    }

    /// Events the ledger decides from memory (a timer, a resolution) leave with the whole
    /// object, which the state file gives their outbox entries in the same transaction;
    /// rules see what they read of it.
    @Test func eventsCarryTheWholeObjectFromTheStateFile() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw"))
        let rules = try rules(
            """
            rule "r" {
              when remaining <= 1h and raw.flag
              notify memory
              message "{{order}}: {{raw.note}}"
            }
            """)
        let market = ScriptedMarketplace()
        let (ledger, poller) = try polling(market, rules: rules, store: store)
        #expect(await ledger.start().isEmpty)

        let a = request("a", deadlineIn: 2 * 3600)
        market.list([a])
        #expect(await poller.poll(market).events.isEmpty)
        let crossing = a.deadline.addingTimeInterval(-3600)
        #expect(await ledger.nextWake == crossing)
        clock.advance(to: crossing)
        let fired = await ledger.processDue()
        #expect(fired.map(\.kind) == [.firing])
        #expect(fired.first?.message == "order-a: позвонить")
        let firing = try #require(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.first?.event)
        #expect(firing.kind == .firing)
        #expect(firing.request?.raw == whole)
        #expect(firing.webhookBody["request"]?["raw"] == whole)

        // After a restart, from the state file.
        let (restarted, restartedPoller) = try polling(market, rules: rules, store: store)
        #expect(await restarted.start().isEmpty, "already fired")

        clock.advance(by: 60)
        market.list([])
        market.answerLookups(.resolved(.rejected, at: clock.now()))
        let resolution = try #require(await restartedPoller.poll(market).events.last)
        #expect(resolution.kind == .resolved)
        #expect(resolution.outcome == .rejected)
        #expect(resolution.request?.state == .rejected)
        let queued = try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.map(\.event)
        let resolved = try #require(queued.first { $0.kind == .resolved })
        #expect(resolved.request?.raw == whole)
        #expect(resolved.request?.state == .rejected)
    }

    /// A request that is pending again after a restart picks up its alert states as the
    /// state file kept them: it fires again as a new occurrence.
    @Test func aReopenedRequestFiresAgainAsANewOccurrenceAfterARestart() async throws {
        let path = try temporaryStatePath("cw-raw")
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let a = request("a", deadlineIn: 1800)
        var events: [AlertEvent] = []
        do {
            let ledger = try Ledger(
                rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger, vanishConfirmations: 1)
            events += await ledger.apply(.listing([a], at: clock.now())).events
            events += await ledger.apply(.listing([], outcomes: [a.key: .resolved(.vanished, at: nil)], at: clock.now())).events
        }
        let ledger = try Ledger(rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger)
        events += await ledger.start()
        events += await ledger.apply(.listing([a], at: clock.now())).events
        #expect(events.map { "\($0.kind.rawValue)" } == ["firing", "resolved", "firing"])
        #expect(Set(events.map(\.id)).count == 3)
        #expect(await ledger.statusCounts() == [.pending: 1])
    }
}
