import CancelWatchTesting
import Foundation
import Testing

@testable import CancelWatch

@Suite struct TrackerTests {
    let clock = ManualClock()

    func request(_ id: String, deadlineIn seconds: TimeInterval, source: String = "ozon-main") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: source, id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", deadline: clock.now().addingTimeInterval(seconds))
    }

    func snapshot(_ requests: CancellationRequest...) -> PendingSnapshot { PendingSnapshot(requests: requests) }

    @Test func firstSightingOfAPendingRequestIsNew() {
        var tracker = Tracker()
        let changes = tracker.apply(snapshot: snapshot(request("1", deadlineIn: 3600)), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(changes.count == 1)
        guard case .new(let tracked) = changes.first else { Issue.record("expected new, got \(changes)"); return }
        #expect(tracked.status == .pending)
        #expect(tracked.firstSeen == clock.now())
        #expect(tracker.pending().count == 1)
    }

    @Test func unchangedRequestOnTheNextPollIsNotAChange() {
        var tracker = Tracker()
        _ = tracker.apply(snapshot: snapshot(request("1", deadlineIn: 3600)), outcomes: [:], source: "ozon-main", now: clock.now())
        let deadline = tracker.pending().first!.request.deadline
        clock.advance(by: 60)
        let again = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "1", order: "order-1", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", deadline: deadline)
        let changes = tracker.apply(snapshot: snapshot(again), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(changes.isEmpty)
    }

    @Test func deadlineShiftOfAFewSecondsIsIgnoredButALargeOneIsTaken() {
        var tracker = Tracker()
        var r = request("1", deadlineIn: 3600)
        let original = r.deadline
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        r.deadline = original.addingTimeInterval(4)
        #expect(tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        #expect(tracker.pending().first?.request.deadline == original)
        r.deadline = original.addingTimeInterval(-600)
        let changes = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        guard case .updated(let tracked) = changes.first else { Issue.record("expected updated, got \(changes)"); return }
        #expect(tracked.request.deadline == original.addingTimeInterval(-600))
    }

    @Test func requestsThatLeftTheListAreResolvedByTheirLookedUpOutcome() {
        var tracker = Tracker()
        let a = request("a", deadlineIn: 3600)
        let b = request("b", deadlineIn: 3600)
        let c = request("c", deadlineIn: 3600)
        let d = request("d", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(a, b, c, d), outcomes: [:], source: "ozon-main", now: clock.now())
        clock.advance(by: 60)
        let empty = snapshot()
        let missing = tracker.missing(from: empty, source: "ozon-main")
        #expect(missing.map(\.id) == ["a", "b", "c", "d"])
        let outcomes: [RequestKey: OutcomeLookup] = [
            a.key: .resolved(.approved, at: clock.now()), b.key: .resolved(.rejected, at: clock.now()),
            c.key: .resolved(.vanished, at: nil), d.key: .stillPending(d),
        ]
        let changes = tracker.apply(snapshot: empty, outcomes: outcomes, source: "ozon-main", now: clock.now())
        var resolved: [String: Outcome] = [:]
        for change in changes {
            if case .resolved(let t, let outcome) = change { resolved[t.request.id] = outcome }
        }
        #expect(resolved == ["a": .approved, "b": .rejected, "c": .vanished])
        #expect(tracker.pending().map(\.request.id) == ["d"])
        #expect(tracker.requests[a.key]?.status == .approved)
        #expect(tracker.requests[c.key]?.status == .vanished)
    }

    @Test func pendingRequestPastItsDeadlineExpiresOnce() {
        var tracker = Tracker()
        let r = request("1", deadlineIn: 120)
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        clock.advance(by: 119)
        #expect(tracker.expire(now: clock.now()).isEmpty)
        clock.advance(by: 1)
        let changes = tracker.expire(now: clock.now())
        guard case .expired(let tracked) = changes.first, changes.count == 1 else {
            Issue.record("expected one expired, got \(changes)")
            return
        }
        #expect(tracked.closedAt == r.deadline)
        #expect(tracker.expire(now: clock.now()).isEmpty)
        // Still listed by a lagging marketplace: no new change, and it stays expired.
        clock.advance(by: 30)
        #expect(tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        #expect(tracker.requests[r.key]?.status == .expired)
    }

    @Test func requestResolvedAfterItsDeadlineCountsAsExpiredNotResolved() {
        var tracker = Tracker()
        let r = request("1", deadlineIn: 60)
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        clock.advance(by: 300)
        let changes = tracker.apply(
            snapshot: snapshot(), outcomes: [r.key: .resolved(.approved, at: r.deadline)], source: "ozon-main", now: clock.now())
        #expect(changes.count == 1)
        guard case .expired = changes.first else { Issue.record("expected expired, got \(changes)"); return }
    }

    @Test func aPollOfOneSourceNeverTouchesAnother() {
        var tracker = Tracker()
        let mine = request("1", deadlineIn: 3600, source: "ozon-main")
        let other = request("1", deadlineIn: 3600, source: "ozon-second")
        _ = tracker.apply(snapshot: snapshot(mine), outcomes: [:], source: "ozon-main", now: clock.now())
        _ = tracker.apply(snapshot: snapshot(other), outcomes: [:], source: "ozon-second", now: clock.now())
        #expect(tracker.missing(from: snapshot(), source: "ozon-main").map(\.key) == [mine.key])
        #expect(tracker.pending().count == 2)
    }

    @Test func closedRequestsArePrunedAfterRetention() {
        var tracker = Tracker()
        let r = request("1", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        _ = tracker.apply(snapshot: snapshot(), outcomes: [r.key: .resolved(.rejected, at: clock.now())], source: "ozon-main", now: clock.now())
        #expect(tracker.prune(closedBefore: clock.now().addingTimeInterval(-1)).isEmpty)
        #expect(tracker.prune(closedBefore: clock.now().addingTimeInterval(1)) == [r.key])
        #expect(tracker.requests.isEmpty)
    }
}
