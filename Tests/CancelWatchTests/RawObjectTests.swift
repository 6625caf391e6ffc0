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
    /// poll is over, nothing kept (the tracker, even keeping whole objects, the scheduler,
    /// the events it made) holds the page.
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
        let scheduler = AlertScheduler(rules: rules, store: store, clock: clock, logger: logger, delivery: nil)
        let events = EventLog()
        await scheduler.onEvents { events.add($0) }
        await scheduler.start(tracked: [])
        var tracker = Tracker(keepingRaw: .everything)
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
            let changes = tracker.apply(
                snapshot: PendingSnapshot(requests: requests), outcomes: [:], source: "ozon-main", now: clock.now())
            try store.save(changes.map(\.tracked), health: nil)
            await scheduler.handle(changes)
        }
        #expect(tracker.requests.count == 2)
        #expect(events.all.map(\.kind) == [.firing])
        #expect(events.all.first?.request?.rawObject.value(atPath: ["note"]) == "x")
        #expect(page == nil, "the page is gone with the poll")
    }

    @Test func theStateFileKeepsTheWholeObjectThroughEveryChangeAndARestartPrunesIt() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw"))
        let market = ScriptedMarketplace()
        let paths = RawPaths([["flag"]])
        let watcher = try Watcher(
            sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger, keepingRaw: paths)
        let a = request("a", deadlineIn: 3600)
        market.list([a])
        let first = await watcher.poll(market)
        #expect(first.changes.first?.tracked.request.raw == whole, "the change carries the object as listed")
        #expect(await watcher.tracked.first?.request.raw == ["flag": true], "memory keeps what rules read")
        #expect(try store.loadTracked().first?.request.raw == whole)

        clock.advance(by: 60)
        market.list([])
        market.answerLookups(.resolved(.approved, at: clock.now()))
        let resolved = await watcher.poll(market)
        #expect(resolved.changes.first?.tracked.status == .approved)
        #expect(resolved.changes.first?.tracked.request.raw == ["flag": true])
        let saved = try #require(try store.loadTracked().first)
        #expect(saved.status == .approved)
        #expect(saved.request.raw == whole, "a pruned object never replaces the whole one in the state file")

        let restarted = try Watcher(
            sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger, keepingRaw: paths)
        let reloaded = try #require(await restarted.tracked.first)
        #expect(reloaded.request.raw == ["flag": true])
        #expect(reloaded.rawKept == paths)
        #expect(try store.loadRaw(of: [a.key]) == [a.key: whole])
        #expect(try store.loadTracked(keepingRaw: .none).first?.request.raw == .object([:]))
    }

    /// An unchanged listing after a restart is no change: the fingerprint of the whole
    /// object is taken from the state file as it is read.
    @Test func anUnchangedListingAfterARestartIsNoChange() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw"))
        let market = ScriptedMarketplace()
        let watcher = try Watcher(sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger)
        var a = request("a", deadlineIn: 3600)
        a.raw = ["n": .number(2.0), "x": .number(0.5), "s": "é"]
        market.list([a])
        _ = await watcher.poll(market)
        let restarted = try Watcher(sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger)
        clock.advance(by: 60)
        #expect(await restarted.poll(market).changes.isEmpty)
        a.raw = ["n": .number(2.0), "x": .number(0.75), "s": "é"]
        market.list([a])
        clock.advance(by: 60)
        #expect(await restarted.poll(market).changes.count == 1)
    }

    /// Events the scheduler builds from memory (a timer, a resolution) read the whole
    /// object from the state file; rules see what they read of it.
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
        let watcher = try Watcher(
            sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger,
            keepingRaw: rules.rawPaths)
        let scheduler = AlertScheduler(rules: rules, store: store, clock: clock, logger: logger, delivery: nil)
        let events = EventLog()
        await scheduler.onEvents { events.add($0) }
        await watcher.onPoll { report in await scheduler.handle(report.changes) }
        await scheduler.start(tracked: await watcher.tracked)

        let a = request("a", deadlineIn: 2 * 3600)
        market.list([a])
        _ = await watcher.poll(market)
        #expect(events.all.isEmpty)
        let crossing = a.deadline.addingTimeInterval(-3600)
        #expect(await scheduler.nextWake == crossing)
        clock.advance(to: crossing)
        await scheduler.processDue()
        let firing = try #require(events.all.first)
        #expect(firing.kind == .firing)
        #expect(firing.message == "order-a: позвонить")
        #expect(firing.request?.raw == whole)
        #expect(firing.webhookBody["request"]?["raw"] == whole)

        // After a restart, from the state file.
        let restartedWatcher = try Watcher(
            sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock, logger: logger,
            keepingRaw: rules.rawPaths)
        let restarted = AlertScheduler(rules: rules, store: store, clock: clock, logger: logger, delivery: nil)
        await restarted.onEvents { events.add($0) }
        await restartedWatcher.onPoll { report in await restarted.handle(report.changes) }
        await restarted.start(tracked: await restartedWatcher.tracked)
        #expect(events.all.count == 1, "already fired")

        clock.advance(by: 60)
        market.list([])
        market.answerLookups(.resolved(.rejected, at: clock.now()))
        _ = await restartedWatcher.poll(market)
        let resolution = try #require(events.all.last)
        #expect(resolution.kind == .resolved)
        #expect(resolution.outcome == .rejected)
        #expect(resolution.request?.raw == whole)
        #expect(resolution.request?.state == .rejected)
    }

    /// A request that is pending again picks up its alert states from the state file
    /// (memory keeps only those of open requests).
    @Test func aReopenedRequestFiresAgainAsANewOccurrenceAfterARestart() async throws {
        let path = try temporaryStatePath("cw-raw")
        let rule = ThresholdRule(name: "r", threshold: 3600)
        var tracked = TrackedRequest(
            request: request("a", deadlineIn: 1800), status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
        let events = EventLog()
        do {
            let scheduler = AlertScheduler(rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger, delivery: nil)
            await scheduler.onEvents { events.add($0) }
            await scheduler.handle([.new(tracked)])
            tracked.status = .vanished
            await scheduler.handle([.resolved(tracked, .vanished)])
        }
        let scheduler = AlertScheduler(rules: [rule], store: try SQLiteStateStore(path: path), clock: clock, logger: logger, delivery: nil)
        await scheduler.onEvents { events.add($0) }
        await scheduler.start(tracked: [tracked])
        tracked.status = .pending
        await scheduler.handle([.updated(tracked)])
        #expect(events.all.map { "\($0.kind.rawValue)" } == ["firing", "resolved", "firing"])
        #expect(Set(events.all.map(\.id)).count == 3)
        #expect(await scheduler.openCount == 1)
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [AlertEvent] = []
    func add(_ events: [AlertEvent]) { lock.withLock { stored += events } }
    var all: [AlertEvent] { lock.withLock { stored } }
}
