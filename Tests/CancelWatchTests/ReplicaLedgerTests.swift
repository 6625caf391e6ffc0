import CancelWatchTesting
import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// A marketplace whose listing is always empty (the tests hand polls to the ledger themselves).
struct QuietMarketplace: MarketplaceClient {
    var source = "ozon-main"
    var marketplace = Marketplace.ozon
    func fetchPending() async throws(PollError) -> PendingSnapshot { PendingSnapshot(requests: []) }
    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] { [:] }
}

/// The ledger where replicas share the store: it knows only the sources it holds, reads a
/// source again when it takes it over, fires what fell due once, writes nothing for a
/// source it lost, and does not take a store outage for a silent source.
@Suite(.serialized) struct ReplicaLedgerTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func request(_ id: String, deadlineIn seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(seconds))
    }

    func ledger(_ store: StateStore, rules: [AlertRule]) throws -> Ledger {
        try Ledger(
            rules: rules, store: store, clock: clock, logger: quiet,
            sources: [PolledSource(client: QuietMarketplace(), pollInterval: 60)], leased: true)
    }

    /// The outbox rows for `sink`, as (event id, kind), read from the database.
    func outbox(_ sink: String, at location: PostgresLocation) async throws -> [String] {
        try await PostgresStores.query(
            "SELECT convert_from(event_id, 'UTF8') FROM outbox WHERE sink = convert_to('\(sink)', 'UTF8') ORDER BY 1",
            at: location)
    }

    @Test func aSourceTakenOverFiresWhatFellDueOnceAndItsFormerHolderWritesNothingMoreForIt() async throws {
        let location = try await PostgresStores.freshLocation()
        let first = try await offPool { try PostgresStateStore(location: location, instance: "replica-a") }
        let second = try await offPool { try PostgresStateStore(location: location, instance: "replica-b") }
        let rule = ThresholdRule(name: "final-hour", threshold: 3600)

        let a = try ledger(first, rules: [rule])
        let roundA = try await offPool { try first.balanceLeases(sources: ["ozon-main"], ttl: 60) }
        let leaseA = try #require(roundA.held.first)
        #expect(await a.adopt([leaseA.claim(ttl: 60)]) == ["ozon-main"])
        let pending = request("1", deadlineIn: 3 * 3600)
        #expect(await a.apply(.listing([pending], at: clock.now())).events.isEmpty)

        // The threshold passes while replica A is gone: its lease lapses and B takes it.
        clock.advance(to: pending.deadline.addingTimeInterval(-1800))
        _ = try await PostgresStores.query(
            "UPDATE leases SET expires_at = 0; UPDATE replicas SET seen_at = 0 WHERE instance = 'replica-a'", at: location)
        let roundB = try await offPool { try second.balanceLeases(sources: ["ozon-main"], ttl: 60) }
        #expect(roundB.taken == ["ozon-main"])
        let b = try ledger(second, rules: [rule])
        #expect(await b.adopt([try #require(roundB.held.first).claim(ttl: 60)]) == ["ozon-main"])
        #expect(await b.tracked.map(\.key) == [pending.key])
        let fired = try await outbox("memory", at: location)
        #expect(fired.count == 1)

        // A wakes up late and decides the same firing: nothing is written, and it lets the source go.
        #expect(await a.processDue().isEmpty)
        #expect(await a.tracked.isEmpty)
        #expect(try await outbox("memory", at: location) == fired)
        #expect(await a.apply(.listing([pending], at: clock.now())).events.isEmpty)
        #expect(await a.tracked.isEmpty)

        // B goes on as the holder: nothing fires twice.
        #expect(await b.processDue().isEmpty)
        #expect(await b.apply(.listing([pending], at: clock.now())).events.isEmpty)
        #expect(try await outbox("memory", at: location) == fired)
    }

    @Test func aSourceLetGoIsForgottenAndNothingIsDecidedForIt() async throws {
        let location = try await PostgresStores.freshLocation()
        let store = try await offPool { try PostgresStateStore(location: location, instance: "replica-a") }
        let ledger = try ledger(store, rules: [ThresholdRule(name: "final-hour", threshold: 3600)])
        let round = try await offPool { try store.balanceLeases(sources: ["ozon-main"], ttl: 60) }
        #expect(await ledger.adopt([try #require(round.held.first).claim(ttl: 60)]) == ["ozon-main"])
        let pending = request("1", deadlineIn: 3 * 3600)
        await ledger.apply(.listing([pending], at: clock.now()))
        #expect(await ledger.nextWake != nil)

        await ledger.release(["ozon-main"])
        #expect(await ledger.tracked.isEmpty)
        #expect(await ledger.nextWake == nil)
        clock.advance(to: pending.deadline.addingTimeInterval(60))
        #expect(await ledger.processDue().isEmpty)
        #expect(try await outbox("memory", at: location).isEmpty)
    }

    /// The ledger's stage starts asking the sources polled from the start (none, where they
    /// are leased) after the poller may already have taken some over: those stay asked, and
    /// a deadline of theirs is the poller's to settle, never expired without asking.
    @Test func aSourceTakenOverStaysAskedWhateverTheLedgerStageAsksLater() async throws {
        let location = try await PostgresStores.freshLocation()
        let store = try await offPool { try PostgresStateStore(location: location, instance: "replica-a") }
        let ledger = try ledger(store, rules: [])
        let round = try await offPool { try store.balanceLeases(sources: ["ozon-main"], ttl: 60) }
        #expect(await ledger.adopt([try #require(round.held.first).claim(ttl: 60)]) == ["ozon-main"])
        await ledger.apply(.listing([request("1", deadlineIn: 60)], at: clock.now()))
        await ledger.ask([])
        clock.advance(by: 120)
        #expect(await ledger.processDue().isEmpty)
        #expect(await ledger.statusCounts() == [.pending: 1])
    }

    /// One source whose stored state does not read does not keep the others from being taken over.
    @Test func aSourceWhoseStateDoesNotReadIsLeftOutAndTheOthersAreTakenOver() async throws {
        let location = try await PostgresStores.freshLocation()
        let store = try await offPool { try PostgresStateStore(location: location, instance: "replica-a") }
        let names = ["a-unreadable", "b-fine"]
        let rows = names.map { name in
            TrackedRequest(
                request: CancellationRequest(
                    marketplace: .ozon, source: name, id: "1", order: "order-1", state: .pending, rawState: "ON_APPROVAL",
                    deadline: clock.now().addingTimeInterval(3600)),
                status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
        }
        try await offPool { try store.commit(StoreChanges(tracked: rows), at: clock.now()) }
        _ = try await PostgresStores.query(
            "UPDATE requests SET status = 'from-a-newer-version' WHERE source = convert_to('a-unreadable', 'UTF8')", at: location)
        let ledger = try Ledger(
            rules: [], store: store, clock: clock, logger: quiet,
            sources: names.map { PolledSource(client: QuietMarketplace(source: $0), pollInterval: 60) }, leased: true)
        let round = try await offPool { try store.balanceLeases(sources: names, ttl: 60) }
        #expect(await ledger.adopt(round.held.map { $0.claim(ttl: 60) }) == ["b-fine"])
        #expect(await ledger.tracked.map(\.key.source) == ["b-fine"])
    }

    @Test func aStoreThatCannotRecordPollsDoesNotMakeTheirSourceSilent() async throws {
        let store = RefusingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-outage")))
        let ledger = try Ledger(
            rules: [], store: store, clock: clock, logger: quiet,
            sources: [PolledSource(client: QuietMarketplace(), pollInterval: 60)],
            health: HealthConfig(notify: ["ops"], silentAfter: 600))
        let running = Task { await ledger.run() }
        defer { running.cancel() }
        try await waitFor { clock.sleeperCount >= 1 }
        await ledger.apply(.listing([], at: clock.now()))

        // The database goes away for 15 minutes; the marketplace answers every minute.
        store.refusing = true
        for _ in 0..<15 {
            clock.advance(by: 60)
            await ledger.apply(.listing([], at: clock.now()))
        }
        store.refusing = false
        clock.advance(by: 10)
        await ledger.processDue()

        #expect(try store.inner.loadHealth().allSatisfy { !$0.down })
        #expect(try store.inner.outboxCounts().filter { $0.sink == "ops" }.isEmpty)
        #expect(await ledger.sourceHealth().allSatisfy { !$0.down })
    }
}
