import CancelWatchTesting
import Foundation
import HTTPServing
import Logging
import Testing

@testable import CancelWatch

/// A grouped sink on a manual clock: firing and repeat events wait for their group until
/// the oldest has waited `wait` (the queue sleeps until then, not in a loop), critical ones
/// go at once unless held, past `max` the earliest deadlines go first, and a group is
/// retried as one delivery, with one Idempotency-Key, its members acknowledged once.
@Suite struct GroupedDeliveryTests {
    let clock = ManualClock(SinkTestEvents.occurredAt)
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A state file counting its `dueDeliveries` calls (one per pass of a sink's loop).
    final class PassCountingStore: ObservedStore, @unchecked Sendable {
        private let lock = NSLock()
        private var passes = 0
        var passCount: Int { lock.withLock { passes } }
        override func willCall(_ name: String) throws(StoreError) {
            if name == "dueDeliveries" { lock.withLock { passes += 1 } }
        }
    }

    /// Pending requests `o<first>`…, each with a firing event for `memory` (of `severity`, or
    /// critical where `critical` says), deadlines `minutes[i]` minutes away, queued now.
    func queue(
        _ minutes: [Int], first: Int = 0, critical: Set<Int> = [], sink: String = "memory", into store: any StateStore
    ) throws -> [AlertEvent] {
        var tracked: [TrackedRequest] = []
        var events: [AlertEvent] = []
        for (offset, minute) in minutes.enumerated() {
            let index = first + offset
            var request = SinkTestEvents.request(order: "order-\(index)")
            request.id = "o\(index)"
            request.deadline = clock.now().addingTimeInterval(TimeInterval(60 * minute))
            tracked.append(TrackedRequest(request: request, status: .pending, firstSeen: clock.now(), lastSeen: clock.now()))
            var event = SinkTestEvents.firing(
                id: String(format: "%032x", 0x900 + index), severity: critical.contains(index) ? .critical : .warning,
                order: request.order)
            event.request = request
            event.sinks = [sink]
            events.append(event)
        }
        try store.commit(StoreChanges(tracked: tracked, events: events), at: clock.now())
        return events
    }

    func newStore() throws -> PassCountingStore {
        PassCountingStore(try SQLiteStateStore(path: try temporaryStatePath("cw-group")))
    }

    func run(_ sink: AlertSink, group: GroupPolicy, store: PassCountingStore) async -> (DeliveryQueue, Task<Void, Never>, AttemptLog) {
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: RetryPolicy(initialDelay: 1, maxDelay: 60), group: group)], store: store,
            clock: clock, logger: quiet)
        let log = AttemptLog()
        return (queue, await log.run(queue), log)
    }

    /// Waits until `condition` holds and the queue has stopped (it sleeps on the clock, or
    /// has nothing left to send) with every attempt heard.
    func settle(_ log: AttemptLog, _ store: PassCountingStore, until condition: () -> Bool = { true }) async throws {
        try await waitFor {
            guard condition() else { return false }
            let idle = try clock.sleeperCount == 1 || store.inner.outboxCounts().allSatisfy { $0.status != "pending" }
            return try idle && log.heardEveryAttempt(in: store.inner)
        }
    }

    func counts(_ store: PassCountingStore) throws -> [String] {
        try store.outboxCounts().map { "\($0.status)/\($0.count)" }
    }

    /// Orders of each group's members, as `sink` got them.
    func groups(_ sink: InMemorySink) -> [[String]] {
        sink.events.map { $0.members.compactMap(\.request?.order) }
    }

    /// A route's policy is bounded as the config bounds it, whoever made it.
    @Test func aRoutesGroupPolicyIsBoundedAsTheConfigBoundsIt() {
        let sink = InMemorySink()
        let policies = [
            GroupPolicy(wait: 0, max: 0), GroupPolicy(wait: .infinity, max: 10_000), GroupPolicy(wait: .nan, max: -5, critical: .hold),
        ]
        #expect(policies.map { DeliveryQueue.Route(sink: sink, group: $0).group } == [
            GroupPolicy(wait: 1, max: 1), GroupPolicy(wait: 3600, max: 500), GroupPolicy(wait: 30, max: 1, critical: .hold),
        ])
        #expect(DeliveryQueue.Route(sink: sink).group == nil)
    }

    @Test func firingEventsWaitUntilTheOldestHasWaitedAndThenGoAsOneGroupByDeadline() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        let t0 = clock.now()
        _ = try queue([50, 20], into: store)
        let (queue, running, log) = await run(sink, group: GroupPolicy(wait: 30, max: 50), store: store)
        defer { running.cancel() }

        // Asleep until the oldest has waited 30 s: not on a short timer, not in a loop.
        try await settle(log, store)
        #expect(clock.sleeperDeadlines == [t0.addingTimeInterval(30)])
        #expect(sink.events.isEmpty)
        // One more within the wait joins the group; the wait still ends 30 s after the first.
        clock.advance(by: 10)
        let passes = store.passCount
        _ = try self.queue([5], first: 2, into: store)
        queue.wake()
        try await settle(log, store) { store.passCount > passes }
        #expect(clock.sleeperDeadlines == [t0.addingTimeInterval(30)])
        #expect(sink.events.isEmpty)

        clock.advance(by: 20)
        try await settle(log, store) { sink.events.count == 1 }
        #expect(groups(sink) == [["order-2", "order-1", "order-0"]])
        #expect(sink.events[0].kind == .group && sink.events[0].severity == .warning)
        #expect(try counts(store) == ["delivered/1", "grouped/3"])
        #expect(log.results.map(\.status) == [.delivered])
    }

    @Test func aCriticalEventGoesAtOnceOnItsOwn() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        let events = try queue([50, 20, 40], critical: [1], into: store)
        let (_, running, log) = await run(sink, group: GroupPolicy(wait: 30, max: 50), store: store)
        defer { running.cancel() }
        try await settle(log, store) { sink.events.count == 1 }
        #expect(sink.events.map(\.id) == [events[1].id])
        #expect(sink.events[0].kind == .firing)
        #expect(clock.sleeperDeadlines == [clock.now().addingTimeInterval(30)], "the others wait for their group")
    }

    /// A critical event whose first try failed is tried again after its backoff (1 s here),
    /// not when the held ones' group forms an hour later.
    @Test func aFailedCriticalEventIsRetriedOnItsBackoffWhileOthersWaitForTheirGroup() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        sink.failNext(1)
        let t0 = clock.now()
        let events = try queue([50, 20, 40], critical: [1], into: store)
        let (_, running, log) = await run(sink, group: GroupPolicy(wait: 3600, max: 50), store: store)
        defer { running.cancel() }
        try await settle(log, store) { log.results.count == 1 }
        #expect(log.results.first?.status == .retry)
        let retryAt = try #require(log.results.first?.nextAttemptAt)
        #expect(retryAt < t0.addingTimeInterval(60))
        // The state file keeps instants to the microsecond.
        #expect(clock.sleeperDeadlines.map { abs($0.timeIntervalSince(retryAt)) < 0.001 } == [true], "asleep until the retry, not until the group forms")
        clock.advance(to: retryAt.addingTimeInterval(0.01))
        try await settle(log, store) { sink.events.count == 1 }
        #expect(sink.events.map(\.id) == [events[1].id])
        #expect(clock.sleeperDeadlines == [t0.addingTimeInterval(3600)], "then until the group forms")
    }

    @Test func aSinkThatHoldsCriticalEventsGroupsThemWithTheOthers() async throws {
        let holding = try newStore()
        let held = InMemorySink(clock: clock)
        _ = try queue([50, 20, 40], critical: [1], into: holding)
        let (_, again, heldLog) = await run(held, group: GroupPolicy(wait: 30, max: 50, critical: .hold), store: holding)
        defer { again.cancel() }
        try await settle(heldLog, holding)
        #expect(held.events.isEmpty)
        clock.advance(by: 30)
        try await settle(heldLog, holding) { held.events.count == 1 }
        #expect(groups(held) == [["order-1", "order-2", "order-0"]])
        #expect(held.events[0].severity == .critical)
    }

    /// `max` due at once is a group's worth: it goes without waiting; the earliest deadlines
    /// go first, and what is left waits for its own `wait`.
    @Test func pastMaxTheEarliestDeadlinesGoFirstAndTheRestInTheNextMessages() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        let t0 = clock.now()
        _ = try queue([50, 10, 40, 20, 30], into: store)
        let (_, running, log) = await run(sink, group: GroupPolicy(wait: 30, max: 2), store: store)
        defer { running.cancel() }

        try await settle(log, store) { sink.events.count == 2 }
        #expect(groups(sink) == [["order-1", "order-3"], ["order-4", "order-2"]])
        #expect(clock.sleeperDeadlines == [t0.addingTimeInterval(30)])
        clock.advance(by: 30)
        try await settle(log, store) { sink.events.count == 3 }
        #expect(groups(sink) == [["order-1", "order-3"], ["order-4", "order-2"], ["order-0"]])
        #expect(try counts(store) == ["delivered/3", "grouped/5"])
    }

    /// A flood (300 at once, the most urgent queued last) is grouped by deadline as a whole:
    /// the first message holds the 50 earliest deadlines, each request is in one message.
    @Test func aFloodIsGroupedByDeadlineAsAWholeEachRequestInOneMessage() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        _ = try queue(Array((1...300).reversed()), into: store)
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, group: GroupPolicy(wait: 30, max: 50))], store: store, clock: clock, logger: quiet)
        await queue.deliverDueOnce()
        #expect(groups(sink).map(\.count) == [50, 50, 50, 50, 50, 50])
        #expect(Array(groups(sink).joined()) == (0..<300).reversed().map { "order-\($0)" })
    }

    /// `once` sends what is due now, and nothing else would send a waiting group: it groups
    /// at once. A request no longer pending leaves the group; other events go as they are.
    @Test func onceGroupsWhatIsDueAtOnceLeavingOutRequestsNoLongerPending() async throws {
        let store = try newStore()
        let sink = InMemorySink(clock: clock)
        let events = try queue([50, 20, 40], into: store)
        var approved = try #require(events[2].request)
        approved.state = .approved
        try store.commit(
            StoreChanges(tracked: [TrackedRequest(request: approved, status: .approved, firstSeen: clock.now(), lastSeen: clock.now())]),
            at: clock.now())
        var resolved = SinkTestEvents.firing(id: String(format: "%032x", 0x9ff), kind: .resolved)
        resolved.request = approved
        resolved.sinks = ["memory"]
        try store.commit(alerts: [], events: [resolved], health: nil, at: clock.now())

        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, group: GroupPolicy(wait: 3600, max: 50))], store: store, clock: clock, logger: quiet)
        await queue.deliverDueOnce()
        #expect(sink.events.map(\.kind) == [.resolved, .group])
        #expect(groups(sink).last == ["order-1", "order-0"])
        #expect(try counts(store) == ["delivered/2", "grouped/2", "withdrawn/1"])
    }

    /// Against a real receiver: the group fails twice, then is taken. Every try carries the
    /// same key and body, and each member is acknowledged once, with the group.
    @Test func aGroupThatFailsTwiceThenSucceedsIsAcknowledgedOnceWithTheSameKeyEachTime() async throws {
        let receiver = try ScriptedServer(
            [{ _ in .text(status: 503, "busy") }, { _ in .text(status: 500, "oops") }], fallback: { _ in .text(status: 204, "") })
        let webhook = WebhookSink(
            name: "memory", config: WebhookSinkConfig(url: .url(receiver.baseURL + "/batch"), group: GroupPolicy()),
            transport: CurlHTTPTransport(threads: 1), clock: clock)
        let store = try newStore()
        let events = try queue([50, 20, 40], into: store)
        let (_, running, log) = await run(webhook, group: GroupPolicy(wait: 30, max: 50), store: store)
        defer { running.cancel() }

        try await settle(log, store)
        clock.advance(by: 30)
        try await settle(log, store) { log.results.count == 1 }
        clock.advance(by: 60)
        try await settle(log, store) { log.results.count == 2 }
        clock.advance(by: 60)
        try await settle(log, store) { log.results.count == 3 }
        #expect(log.results.map(\.status) == [.retry, .retry, .delivered])

        let group = AlertEvent.group(events, sink: "memory", at: clock.now())
        #expect(Set(log.results.map(\.eventID)) == [group.id])
        let posts = receiver.requests.filter { $0.path == "/batch" }
        #expect(posts.count == 3)
        #expect(posts.map { $0.header("Idempotency-Key") } == [group.id, group.id, group.id])
        #expect(Set(posts.map(\.bodyText)).count == 1)
        let body = try JSONParser.parse(try #require(posts.first).body)
        #expect(body["events"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [events[1].id, events[2].id, events[0].id])
        var statuses: [String] = []
        try store.inner.database.query("SELECT event_id, status FROM outbox ORDER BY event_id") { statuses.append("\($0.string(0)) \($0.string(1))") }
        #expect(statuses == ([group.id] + events.map(\.id)).sorted().map { "\($0) delivered" })
        #expect(try counts(store) == ["delivered/1", "grouped/3"])
    }
}
