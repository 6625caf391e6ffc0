import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// `remaining <= threshold`, the shape most rules have, with an optional quiet window.
struct ThresholdRule: AlertRule {
    var name: String
    var threshold: TimeInterval
    var severity: Severity = .warning
    var notify: [String] = ["memory"]
    var repeatEvery: TimeInterval?
    var notifiesResolution = true
    /// Quiet between these UTC hours.
    var quietHours: (start: Int, end: Int)?

    func matches(_ request: CancellationRequest, now: Date) -> Bool {
        request.remaining(at: now) <= threshold
    }

    func nextChange(for request: CancellationRequest, after now: Date) -> Date? {
        let crossing = request.deadline.addingTimeInterval(-threshold)
        return crossing > now ? crossing : nil
    }

    func message(for request: CancellationRequest, now: Date) -> String {
        "\(request.order) in \(DurationText.format(request.remaining(at: now)))"
    }

    func quietRelease(at now: Date, deadline: Date) -> Date {
        guard let quietHours else { return now }
        let day = floor(now.timeIntervalSince1970 / 86400) * 86400
        let hour = Int((now.timeIntervalSince1970 - day) / 3600)
        guard hour >= quietHours.start && hour < quietHours.end else { return now }
        let end = Date(timeIntervalSince1970: day + Double(quietHours.end) * 3600)
        return deadline < end ? now : end
    }
}

@Suite struct AlertSchedulerTests {
    // 2025-11-24 16:00:00 UTC
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let path: String
    let store: SQLiteStateStore

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-sched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("state.sqlite").path
        store = try SQLiteStateStore(path: path)
    }

    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [AlertEvent] = []
        var events: [AlertEvent] { lock.withLock { stored } }
        func add(_ events: [AlertEvent]) { lock.withLock { stored += events } }
        var kinds: [String] { events.map { "\($0.kind.rawValue)/\($0.rule)" } }
    }

    func scheduler(_ rules: [AlertRule], store: StateStore? = nil) async -> (AlertScheduler, Collected) {
        let scheduler = AlertScheduler(
            rules: rules, store: store ?? self.store, clock: clock, logger: Logger(label: "test"), delivery: nil)
        let collected = Collected()
        await scheduler.onEvents { collected.add($0) }
        return (scheduler, collected)
    }

    func tracked(_ id: String, deadlineIn seconds: TimeInterval, status: TrackedStatus = .pending) -> TrackedRequest {
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(seconds))
        return TrackedRequest(request: request, status: status, firstSeen: clock.now(), lastSeen: clock.now())
    }

    @Test func thresholdCrossingFiresAtTheInstantNotOnAPoll() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "final-hour", threshold: 3600)])
        let request = tracked("1", deadlineIn: 3 * 3600)
        await scheduler.handle([.new(request)])
        #expect(events.events.isEmpty)
        let crossing = request.request.deadline.addingTimeInterval(-3600)
        #expect(await scheduler.nextWake == crossing)
        clock.advance(to: crossing.addingTimeInterval(-0.001))
        await scheduler.processDue()
        #expect(events.events.isEmpty)
        clock.advance(to: crossing)
        await scheduler.processDue()
        #expect(events.kinds == ["firing/final-hour"])
        #expect(events.events.first?.occurredAt == crossing)
        #expect(events.events.first?.remainingSeconds == 3600)
    }

    @Test func aRequestFirstSeenWithItsConditionTrueFiresOnceNow() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "final-hour", threshold: 3600)])
        await scheduler.handle([.new(tracked("1", deadlineIn: 600))])
        #expect(events.kinds == ["firing/final-hour"])
        await scheduler.handle([.updated(tracked("1", deadlineIn: 600))])
        clock.advance(by: 60)
        await scheduler.processDue()
        #expect(events.kinds == ["firing/final-hour"])
    }

    @Test func repeatsOnItsCadenceWhilePending() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "r", threshold: 3600, repeatEvery: 900)])
        await scheduler.handle([.new(tracked("1", deadlineIn: 3000))])
        for _ in 0..<3 {
            let next = await scheduler.nextWake!
            #expect(next == clock.now().addingTimeInterval(900))
            clock.advance(to: next)
            await scheduler.processDue()
        }
        #expect(events.kinds == ["firing/r", "repeat/r", "repeat/r", "repeat/r"])
        #expect(Set(events.events.map(\.id)).count == 4)
    }

    @Test func resolvedGoesOutOnceAndOnlyForRulesThatFired() async {
        let (scheduler, events) = await scheduler([
            ThresholdRule(name: "fired", threshold: 3600), ThresholdRule(name: "not-yet", threshold: 60),
        ])
        var request = tracked("1", deadlineIn: 1800)
        await scheduler.handle([.new(request)])
        request.status = .rejected
        await scheduler.handle([.resolved(request, .rejected)])
        await scheduler.handle([.resolved(request, .rejected)])
        #expect(events.kinds == ["firing/fired", "resolved/fired"])
        #expect(events.events.last?.outcome == .rejected)
        #expect(await scheduler.nextWake == nil)
    }

    @Test func aRequestThatReopensFiresAgainWithNewIDsAndClosingAgainUnfiredSendsNothing() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "final-hour", threshold: 3600)])
        var request = tracked("1", deadlineIn: 1800)
        await scheduler.handle([.new(request)])
        request.status = .vanished
        await scheduler.handle([.resolved(request, .vanished)])
        #expect(events.kinds == ["firing/final-hour", "resolved/final-hour"])
        // Listed again, still inside the hour: it fires again, as a new occurrence.
        request.status = .pending
        await scheduler.handle([.updated(request)])
        #expect(events.kinds == ["firing/final-hour", "resolved/final-hour", "firing/final-hour"])
        request.status = .rejected
        await scheduler.handle([.resolved(request, .rejected)])
        #expect(events.kinds.suffix(1) == ["resolved/final-hour"])
        #expect(Set(events.events.map(\.id)).count == 4, "every event has an id of its own")
        // Reopened with the deadline moved out of the rule's reach: nothing fires, and
        // closing it again sends no second resolution for the same firing.
        var later = tracked("1", deadlineIn: 5 * 3600)
        await scheduler.handle([.updated(later)])
        later.status = .approved
        await scheduler.handle([.resolved(later, .approved)])
        #expect(events.events.count == 4)
    }

    /// The state file refuses writes for a while: the event that fell due is kept, not
    /// lost, and written (then delivered) when a commit works again.
    @Test func anEventTheStateFileCouldNotTakeIsKeptAndWrittenLater() async throws {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "final-hour", threshold: 3600)])
        try store.database.execute("PRAGMA query_only=1")
        await scheduler.handle([.new(tracked("1", deadlineIn: 600))])
        #expect(events.events.isEmpty, "nothing is announced before it is in the outbox")
        let running = Task { await scheduler.run() }
        defer { running.cancel() }
        try await Task.sleep(for: .milliseconds(100))
        try store.database.execute("PRAGMA query_only=0")
        clock.advance(by: AlertScheduler.unsavedRetry)
        _ = await eventually(limit: 10) { !events.events.isEmpty }
        #expect(events.kinds == ["firing/final-hour"])
        #expect(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.count == 1)
    }

    @Test func resolveOffSendsNoResolution() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "quiet-end", threshold: 3600, notifiesResolution: false)])
        let request = tracked("1", deadlineIn: 1800)
        await scheduler.handle([.new(request)])
        await scheduler.handle([.resolved(request, .approved)])
        #expect(events.kinds == ["firing/quiet-end"])
    }

    @Test func expiredFiresAtTheDeadlineThroughTheExpireHook() async throws {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "r", threshold: 3600)])
        let watcher = try Watcher(sources: [], store: store, clock: clock, logger: Logger(label: "test"))
        var tracker = Tracker()
        let request = tracked("1", deadlineIn: 1200)
        _ = tracker.apply(snapshot: PendingSnapshot(requests: [request.request]), outcomes: [:], source: "ozon-main", now: clock.now())
        try store.save(Array(tracker.requests.values), health: nil)
        let reloaded = try Watcher(sources: [], store: store, clock: clock, logger: Logger(label: "test"))
        _ = watcher
        await scheduler.setExpireHook { await reloaded.expireDue() }
        await scheduler.start(tracked: await reloaded.tracked)
        #expect(await scheduler.nextWake == request.request.deadline)
        clock.advance(to: request.request.deadline)
        await scheduler.processDue()
        #expect(events.kinds == ["firing/r", "expired/r"])
        #expect(events.events.last?.occurredAt == request.request.deadline)
    }

    @Test func quietWindowHoldsAFiringUntilItEnds() async {
        // Now is 16:00 UTC; quiet 15:00-18:00; deadline after the window ends.
        let (scheduler, events) = await scheduler([ThresholdRule(name: "q", threshold: 6 * 3600, quietHours: (15, 18))])
        await scheduler.handle([.new(tracked("1", deadlineIn: 5 * 3600))])
        #expect(events.events.isEmpty)
        let end = Date(timeIntervalSince1970: 1_764_007_200)  // 18:00
        #expect(await scheduler.nextWake == end)
        clock.advance(to: end)
        await scheduler.processDue()
        #expect(events.kinds == ["firing/q"])
        #expect(events.events.first?.occurredAt == end)
    }

    @Test func quietWindowFiresNowWhenTheDeadlineFallsInsideIt() async {
        let (scheduler, events) = await scheduler([ThresholdRule(name: "q", threshold: 6 * 3600, quietHours: (15, 18))])
        await scheduler.handle([.new(tracked("1", deadlineIn: 3600))])
        #expect(events.kinds == ["firing/q"])
        #expect(events.events.first?.occurredAt == clock.now())
    }

    @Test func afterARestartMissedRepeatsCollapseIntoOne() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600, repeatEvery: 600)
        let request = tracked("1", deadlineIn: 3000)
        do {
            let (scheduler, events) = await scheduler([rule])
            await scheduler.start(tracked: [request])
            #expect(events.kinds == ["firing/r"])
        }
        // Down for 25 minutes: two repeats and a half fell due.
        clock.advance(by: 1500)
        let reopened = try SQLiteStateStore(path: path)
        let (scheduler, events) = await scheduler([rule], store: reopened)
        await scheduler.start(tracked: [request])
        #expect(events.kinds == ["repeat/r"])
        #expect(await scheduler.nextWake == clock.now().addingTimeInterval(600))
    }

    @Test func aRestartDoesNotFireAgainWhatAlreadyFired() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let request = tracked("1", deadlineIn: 3000)
        let first = await scheduler([rule])
        await first.0.start(tracked: [request])
        #expect(first.1.kinds == ["firing/r"])
        let (scheduler, events) = await scheduler([rule], store: try SQLiteStateStore(path: path))
        await scheduler.start(tracked: [request])
        #expect(events.events.isEmpty)
    }

    @Test func aRequestThatClosedWhileDownGetsItsResolutionAtStart() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        var request = tracked("1", deadlineIn: 3000)
        let first = await scheduler([rule])
        await first.0.start(tracked: [request])
        request.status = .approved
        let (scheduler, events) = await scheduler([rule], store: try SQLiteStateStore(path: path))
        await scheduler.start(tracked: [request])
        #expect(events.kinds == ["resolved/r"])
        #expect(events.events.first?.outcome == .approved)
    }

    @Test func eventIDsAreStableAcrossRestarts() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let request = tracked("1", deadlineIn: 3000)
        let first = await scheduler([rule])
        await first.0.start(tracked: [request])
        let id = try #require(first.1.events.first?.id)
        #expect(id == AlertEvent.makeID(source: "ozon-main", request: "1", rule: "r", kind: .firing, occurrence: 1))
        #expect(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.map(\.event.id) == [id])
    }
}
