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
        // Vanished needs a second listing without it (pages can shift under a cursor once).
        #expect(resolved == ["a": .approved, "b": .rejected])
        #expect(tracker.pending().map(\.request.id).sorted() == ["c", "d"])
        clock.advance(by: 60)
        #expect(tracker.missing(from: empty, source: "ozon-main").map(\.id) == ["c", "d"])
        let again = tracker.apply(
            snapshot: empty, outcomes: [c.key: .resolved(.vanished, at: nil), d.key: .stillPending(d)], source: "ozon-main",
            now: clock.now())
        #expect(again.map { "\($0)" }.count == 1)
        #expect(again.first.map { if case .resolved(let t, .vanished) = $0 { t.request.id == "c" } else { false } } == true)
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

    @Test func aRequestMissingOnceThenListedAgainIsNotVanished() {
        var tracker = Tracker()
        let a = request("a", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(a), outcomes: [:], source: "ozon-main", now: clock.now())
        for _ in 0..<3 {
            clock.advance(by: 60)
            #expect(tracker.apply(snapshot: snapshot(), outcomes: [a.key: .resolved(.vanished, at: nil)], source: "ozon-main", now: clock.now()).isEmpty)
            clock.advance(by: 60)
            #expect(tracker.apply(snapshot: snapshot(a), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        }
        #expect(tracker.requests[a.key]?.status == .pending)
    }

    @Test func undecodableItemsAreNotMissingAndAnIncompleteListingMissesNothing() {
        var tracker = Tracker()
        let a = request("a", deadlineIn: 3600)
        let b = request("b", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(a, b), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(tracker.missing(from: PendingSnapshot(requests: [a], skippedIDs: ["b"]), source: "ozon-main").isEmpty)
        #expect(tracker.missing(from: PendingSnapshot(requests: [], complete: false), source: "ozon-main").isEmpty)
        #expect(tracker.missing(from: PendingSnapshot(requests: [a]), source: "ozon-main").map(\.id) == ["b"])
    }

    @Test func anExpiredRequestListedWithALaterDeadlineIsPendingAgain() {
        var tracker = Tracker()
        let a = request("a", deadlineIn: 60)
        _ = tracker.apply(snapshot: snapshot(a), outcomes: [:], source: "ozon-main", now: clock.now())
        clock.advance(by: 61)
        #expect(tracker.expire(now: clock.now()).count == 1)
        // Still listed with the old deadline: the marketplace is catching up; nothing changes.
        #expect(tracker.apply(snapshot: snapshot(a), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        let extended = request("a", deadlineIn: 86400)
        let changes = tracker.apply(snapshot: snapshot(extended), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(changes.count == 1)
        #expect(changes.first?.tracked.status == .pending)
        #expect(changes.first?.tracked.request.deadline == extended.deadline)
        #expect(tracker.pendingCount(source: "ozon-main") == 1)
        #expect(tracker.nearestDeadline() == extended.deadline)
    }

    @Test func xiaohongshusCountdownAloneIsNotAChange() {
        var tracker = Tracker()
        let deadline = clock.now().addingTimeInterval(7200)
        func red(_ left: Int64, reason: String = "不想要了") -> CancellationRequest {
            var request = self.request("p1", deadlineIn: deadline.timeIntervalSince(clock.now()), source: "red")
            request.marketplace = .xiaohongshu
            request.reason = reason
            request.raw = ["package_id": "p1", "max_audit_time": .integer(left), "reason": .string(reason)]
            return request
        }
        _ = tracker.apply(snapshot: snapshot(red(7_200_000)), outcomes: [:], source: "red", now: clock.now())
        clock.advance(by: 60)
        #expect(tracker.apply(snapshot: snapshot(red(7_140_000)), outcomes: [:], source: "red", now: clock.now()).isEmpty)
        let changed = tracker.apply(snapshot: snapshot(red(7_080_000, reason: "拍错了")), outcomes: [:], source: "red", now: clock.now())
        #expect(changed.count == 1)
    }

    @Test func aRolledBackPollIsFoundAgainByTheNext() {
        var tracker = Tracker()
        let a = request("a", deadlineIn: 3600)
        let b = request("b", deadlineIn: 30)
        _ = tracker.apply(snapshot: snapshot(a), outcomes: [:], source: "ozon-main", now: clock.now())
        tracker.beginChanges()
        let first = tracker.apply(
            snapshot: snapshot(b), outcomes: [a.key: .resolved(.approved, at: clock.now())], source: "ozon-main", now: clock.now())
        tracker.rollbackChanges()
        #expect(tracker.pending().map(\.request.id) == ["a"])
        #expect(tracker.statusCounts[.approved, default: 0] == 0)
        let second = tracker.apply(
            snapshot: snapshot(b), outcomes: [a.key: .resolved(.approved, at: clock.now())], source: "ozon-main", now: clock.now())
        #expect(second == first)
        clock.advance(by: 31)
        #expect(tracker.expire(now: clock.now()).map(\.tracked.request.id) == ["b"])
    }

    /// The indexes (pending by source, counts by state, the deadline heap) agree with
    /// the plain request table after every step of a long random history.
    @Test func theIndexesAgreeWithTheTableThroughARandomHistory() {
        var tracker = Tracker()
        var random = SystemRandomNumberGenerator()
        let sources = ["s1", "s2", "s3"]
        for step in 0..<400 {
            let source = sources[Int.random(in: 0..<3, using: &random)]
            let listed = (0..<Int.random(in: 0..<6, using: &random)).map { _ in
                request("r\(Int.random(in: 0..<15, using: &random))", deadlineIn: Double(Int.random(in: -60...3600, using: &random)), source: source)
            }
            let unique = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }).values
            let snap = PendingSnapshot(requests: Array(unique))
            var outcomes: [RequestKey: OutcomeLookup] = [:]
            for gone in tracker.missing(from: snap, source: source) {
                let choices: [OutcomeLookup] = [.resolved(.approved, at: clock.now()), .resolved(.rejected, at: nil), .resolved(.vanished, at: nil), .stillPending(gone)]
                outcomes[gone.key] = choices[Int.random(in: 0..<4, using: &random)]
            }
            let rollback = step % 7 == 0
            if rollback { tracker.beginChanges() }
            _ = tracker.apply(snapshot: snap, outcomes: outcomes, source: source, now: clock.now())
            if rollback { tracker.rollbackChanges() }
            clock.advance(by: Double(Int.random(in: 0...120, using: &random)))
            if step % 5 == 0 { _ = tracker.expire(now: clock.now()) }

            let all = Array(tracker.requests.values)
            for name in sources {
                #expect(tracker.pendingCount(source: name) == all.filter { $0.status == .pending && $0.request.source == name }.count)
                #expect(Set(tracker.pending(source: name).map(\.key)) == Set(all.filter { $0.status == .pending && $0.request.source == name }.map(\.key)))
            }
            for status in [TrackedStatus.pending, .approved, .rejected, .vanished, .expired] {
                #expect(tracker.statusCounts[status, default: 0] == all.filter { $0.status == status }.count)
            }
            #expect(tracker.nearestDeadline() == all.filter { $0.status == .pending }.map(\.request.deadline).min())
        }
    }
}
