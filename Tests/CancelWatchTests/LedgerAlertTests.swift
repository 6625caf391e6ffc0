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

/// When the ledger's alerts go out: at the instant a rule's condition becomes true, on a
/// repeat's cadence, at the end of a quiet window, once per resolution, across restarts.
@Suite struct LedgerAlertTests {
    // 2025-11-24 16:00:00 UTC
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let path: String
    let store: SQLiteStateStore

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-ledger-\(UUID().uuidString)")
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

    /// A ledger of the source `ozon-main`, with every event it commits collected in order.
    struct Watched {
        let ledger: Ledger
        let clock: ManualClock
        let events = Collected()

        /// A poll listing `requests`, with `outcomes` for those that left the list.
        func poll(_ requests: [CancellationRequest], outcomes: [RequestKey: OutcomeLookup] = [:]) async {
            events.add(await ledger.apply(.listing(requests, outcomes: outcomes, at: clock.now())).events)
        }

        func processDue() async { events.add(await ledger.processDue()) }
        func start() async { events.add(await ledger.start()) }
        var nextWake: Date? { get async { await ledger.nextWake } }
    }

    func ledger(_ rules: [AlertRule], store: StateStore? = nil, vanishConfirmations: Int = 1) throws -> Watched {
        let ledger = try Ledger(
            rules: rules, store: store ?? self.store, clock: clock, logger: Logger(label: "test"),
            vanishConfirmations: vanishConfirmations)
        return Watched(ledger: ledger, clock: clock)
    }

    func request(_ id: String, deadlineIn seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(seconds))
    }

    func resolved(_ request: CancellationRequest, _ outcome: Outcome) -> [RequestKey: OutcomeLookup] {
        [request.key: .resolved(outcome, at: outcome == .vanished ? nil : clock.now())]
    }

    @Test func thresholdCrossingFiresAtTheInstantNotOnAPoll() async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        let request = request("1", deadlineIn: 3 * 3600)
        await watched.poll([request])
        #expect(watched.events.events.isEmpty)
        let crossing = request.deadline.addingTimeInterval(-3600)
        #expect(await watched.nextWake == crossing)
        clock.advance(to: crossing.addingTimeInterval(-0.001))
        await watched.processDue()
        #expect(watched.events.events.isEmpty)
        clock.advance(to: crossing)
        await watched.processDue()
        #expect(watched.events.kinds == ["firing/final-hour"])
        #expect(watched.events.events.first?.occurredAt == crossing)
        #expect(watched.events.events.first?.remainingSeconds == 3600)
    }

    @Test func aRequestFirstSeenWithItsConditionTrueFiresOnceNow() async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        await watched.poll([request("1", deadlineIn: 600)])
        #expect(watched.events.kinds == ["firing/final-hour"])
        await watched.poll([request("1", deadlineIn: 600)])
        clock.advance(by: 60)
        await watched.processDue()
        #expect(watched.events.kinds == ["firing/final-hour"])
    }

    @Test func repeatsOnItsCadenceWhilePending() async throws {
        let watched = try ledger([ThresholdRule(name: "r", threshold: 3600, repeatEvery: 900)])
        await watched.poll([request("1", deadlineIn: 3000)])
        for _ in 0..<3 {
            let next = try #require(await watched.nextWake)
            #expect(next == clock.now().addingTimeInterval(900))
            clock.advance(to: next)
            await watched.processDue()
        }
        #expect(watched.events.kinds == ["firing/r", "repeat/r", "repeat/r", "repeat/r"])
        #expect(Set(watched.events.events.map(\.id)).count == 4)
    }

    @Test func resolvedGoesOutOnceAndOnlyForRulesThatFired() async throws {
        let watched = try ledger([ThresholdRule(name: "fired", threshold: 3600), ThresholdRule(name: "not-yet", threshold: 60)])
        let request = request("1", deadlineIn: 1800)
        await watched.poll([request])
        await watched.poll([], outcomes: resolved(request, .rejected))
        await watched.poll([], outcomes: resolved(request, .rejected))
        #expect(watched.events.kinds == ["firing/fired", "resolved/fired"])
        #expect(watched.events.events.last?.outcome == .rejected)
        #expect(await watched.nextWake == nil)
    }

    @Test func aRequestThatReopensFiresAgainWithNewIDsAndClosingAgainUnfiredSendsNothing() async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        let request = request("1", deadlineIn: 1800)
        await watched.poll([request])
        await watched.poll([], outcomes: resolved(request, .vanished))
        #expect(watched.events.kinds == ["firing/final-hour", "resolved/final-hour"])
        // Listed again, still inside the hour: it fires again, as a new occurrence.
        await watched.poll([request])
        #expect(watched.events.kinds == ["firing/final-hour", "resolved/final-hour", "firing/final-hour"])
        await watched.poll([], outcomes: resolved(request, .rejected))
        #expect(watched.events.kinds.suffix(1) == ["resolved/final-hour"])
        #expect(Set(watched.events.events.map(\.id)).count == 4, "every event has an id of its own")
        // Reopened with the deadline moved out of the rule's reach: nothing fires, and
        // closing it again sends no second resolution for the same firing.
        let later = self.request("1", deadlineIn: 5 * 3600)
        await watched.poll([later])
        await watched.poll([], outcomes: resolved(later, .approved))
        #expect(watched.events.events.count == 4)
    }

    /// The state file refuses a poll's writes: nothing is announced or queued, memory stays
    /// as the file has it, and the next poll decides the same event again.
    @Test func anEventOfAPollTheStateFileRefusedComesWithTheNextPoll() async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        try store.database.execute("PRAGMA query_only=1")
        await watched.poll([request("1", deadlineIn: 600)])
        #expect(watched.events.events.isEmpty, "nothing is announced before it is in the outbox")
        #expect(await watched.ledger.statusCounts().isEmpty)
        try store.database.execute("PRAGMA query_only=0")
        clock.advance(by: 60)
        await watched.poll([request("1", deadlineIn: 540)])
        #expect(watched.events.kinds == ["firing/final-hour"])
        #expect(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.count == 1)
    }

    /// The state file refuses a timer's writes: the event is not lost; the request is
    /// decided again shortly, and the event goes out once the file takes it.
    @Test func anEventOfATimerTheStateFileRefusedIsDecidedAgainShortly() async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        let request = request("1", deadlineIn: 2 * 3600)
        await watched.poll([request])
        let crossing = request.deadline.addingTimeInterval(-3600)
        clock.advance(to: crossing)
        try store.database.execute("PRAGMA query_only=1")
        await watched.processDue()
        #expect(watched.events.events.isEmpty)
        let retry = try #require(await watched.nextWake)
        #expect(retry > crossing)
        try store.database.execute("PRAGMA query_only=0")
        clock.advance(to: retry)
        await watched.processDue()
        #expect(watched.events.kinds == ["firing/final-hour"])
        #expect(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.count == 1)
    }

    @Test func resolveOffSendsNoResolution() async throws {
        let watched = try ledger([ThresholdRule(name: "quiet-end", threshold: 3600, notifiesResolution: false)])
        let request = request("1", deadlineIn: 1800)
        await watched.poll([request])
        await watched.poll([], outcomes: resolved(request, .approved))
        #expect(watched.events.kinds == ["firing/quiet-end"])
    }

    /// With no poller asking the source, a deadline expires the request at its instant.
    @Test func expiredFiresAtTheDeadlineWhenNoPollerAsksTheSource() async throws {
        let watched = try ledger([ThresholdRule(name: "r", threshold: 3600)])
        let request = request("1", deadlineIn: 1200)
        await watched.poll([request])
        #expect(await watched.nextWake == request.deadline)
        clock.advance(to: request.deadline)
        await watched.processDue()
        #expect(watched.events.kinds == ["firing/r", "expired/r"])
        #expect(watched.events.events.last?.occurredAt == request.deadline)
        #expect(try store.loadTracked().first?.status == .expired)
    }

    @Test func quietWindowHoldsAFiringUntilItEnds() async throws {
        // Now is 16:00 UTC; quiet 15:00-18:00; deadline after the window ends.
        let watched = try ledger([ThresholdRule(name: "q", threshold: 6 * 3600, quietHours: (15, 18))])
        await watched.poll([request("1", deadlineIn: 5 * 3600)])
        #expect(watched.events.events.isEmpty)
        let end = Date(timeIntervalSince1970: 1_764_007_200)  // 18:00
        #expect(await watched.nextWake == end)
        clock.advance(to: end)
        await watched.processDue()
        #expect(watched.events.kinds == ["firing/q"])
        #expect(watched.events.events.first?.occurredAt == end)
    }

    @Test func quietWindowFiresNowWhenTheDeadlineFallsInsideIt() async throws {
        let watched = try ledger([ThresholdRule(name: "q", threshold: 6 * 3600, quietHours: (15, 18))])
        await watched.poll([request("1", deadlineIn: 3600)])
        #expect(watched.events.kinds == ["firing/q"])
        #expect(watched.events.events.first?.occurredAt == clock.now())
    }

    @Test func afterARestartMissedRepeatsCollapseIntoOne() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600, repeatEvery: 600)
        do {
            let watched = try ledger([rule])
            await watched.poll([request("1", deadlineIn: 3000)])
            #expect(watched.events.kinds == ["firing/r"])
        }
        // Down for 25 minutes: two repeats and a half fell due.
        clock.advance(by: 1500)
        let watched = try ledger([rule], store: try SQLiteStateStore(path: path))
        await watched.start()
        #expect(watched.events.kinds == ["repeat/r"])
        #expect(await watched.nextWake == clock.now().addingTimeInterval(600))
    }

    @Test func aRestartDoesNotFireAgainWhatAlreadyFired() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let first = try ledger([rule])
        await first.poll([request("1", deadlineIn: 3000)])
        #expect(first.events.kinds == ["firing/r"])
        let watched = try ledger([rule], store: try SQLiteStateStore(path: path))
        await watched.start()
        #expect(watched.events.events.isEmpty)
    }

    /// A state file whose request closed without its alerts (as one written in two steps
    /// could be): the resolution goes out at start.
    @Test func aRequestThatClosedWhileDownGetsItsResolutionAtStart() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let request = request("1", deadlineIn: 3000)
        let first = try ledger([rule])
        await first.poll([request])
        try store.save(
            [TrackedRequest(request: request, status: .approved, firstSeen: clock.now(), lastSeen: clock.now(), closedAt: clock.now())],
            health: nil)
        let watched = try ledger([rule], store: try SQLiteStateStore(path: path))
        await watched.start()
        #expect(watched.events.kinds == ["resolved/r"])
        #expect(watched.events.events.first?.outcome == .approved)
    }

    @Test func eventIDsAreStableAcrossRestarts() async throws {
        let rule = ThresholdRule(name: "r", threshold: 3600)
        let first = try ledger([rule])
        await first.poll([request("1", deadlineIn: 3000)])
        let id = try #require(first.events.events.first?.id)
        #expect(id == AlertEvent.makeID(source: "ozon-main", request: "1", rule: "r", kind: .firing, occurrence: 1))
        #expect(try store.dueDeliveries(sink: "memory", now: clock.now(), limit: 10).deliveries.map(\.event.id) == [id])
    }
}
