import Foundation
import Testing

@testable import CancelWatch

@Suite struct LedgerStorageTests {
    let clock = ManualClock()

    func request(_ id: String, deadlineIn seconds: TimeInterval, source: String = "ozon-main") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: source, id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", deadline: clock.now().addingTimeInterval(seconds))
    }

    func snapshot(_ requests: CancellationRequest...) -> PendingSnapshot { PendingSnapshot(requests: requests) }

    @Test func firstSightingOfAPendingRequestIsNew() {
        var tracker = LedgerStorage()
        let changes = tracker.apply(snapshot: snapshot(request("1", deadlineIn: 3600)), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(changes.count == 1)
        guard case .new(let tracked) = changes.first else { Issue.record("expected new, got \(changes)"); return }
        #expect(tracked.status == .pending)
        #expect(tracked.firstSeen == clock.now())
        #expect(tracker.pending().count == 1)
    }

    /// A change names the request in the listing instead of holding a copy: it reads as the
    /// request listed (with the deadline kept), and applying leaves the listing as it was.
    @Test func changesReadAsTheListedRequestsAndTheListingIsLeftAsItWas() {
        var tracker = LedgerStorage(keepingRaw: .none)
        var first = request("1", deadlineIn: 3600)
        first.raw = ["note": "whole"]
        let other = request("2", deadlineIn: 3600, source: "ozon-other")
        let passed = request("3", deadlineIn: -10)
        let listing = [first, other, passed]
        let copy = listing.map { $0 }
        let changes = tracker.apply(snapshot: PendingSnapshot(requests: listing), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(listing == copy)
        #expect(changes.map(\.tracked.request.id) == ["1", "3", "3"], "the other source's request is not this poll's")
        guard case .new(let new) = changes[0], case .expired(let expired) = changes[2] else {
            Issue.record("expected new, new, expired: \(Array(changes))")
            return
        }
        #expect(new.request == first && new.hasWholeRaw && new.status == .pending && new.lastSeen == clock.now())
        #expect(expired.status == .expired && expired.closedAt == passed.deadline)

        clock.advance(by: 60)
        var later = first
        later.deadline = first.deadline.addingTimeInterval(5)
        later.reason = "Другая причина"
        let refined = tracker.apply(snapshot: snapshot(later), outcomes: [:], source: "ozon-main", now: clock.now())
        guard case .updated(let updated) = refined.first, refined.count == 1 else {
            Issue.record("expected one update: \(Array(refined))")
            return
        }
        #expect(updated.request.deadline == first.deadline, "a deadline moved by less than the tolerance is kept")
        #expect(updated.request.reason == "Другая причина" && updated.firstSeen == new.firstSeen && updated.lastSeen == clock.now())
        #expect(refined == RequestChanges([.updated(updated)]))
    }

    @Test func idsEqualAsTextButNotAsBytesAreTwoRequests() {
        // "café" composed and with a combining accent: Swift's `==` calls them equal; a
        // marketplace sent two different ids.
        var tracker = LedgerStorage()
        let composed = request("caf\u{E9}", deadlineIn: 3600)
        let combining = request("cafe\u{301}", deadlineIn: 7200)
        let first = tracker.apply(snapshot: snapshot(composed, combining), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(first.count == 2 && tracker.requests.count == 2)
        #expect(tracker.requests[composed.key]?.request.deadline == composed.deadline)
        // Listed again alone, the composed one is not missing and the other one is.
        let missing = tracker.missing(from: snapshot(composed), source: "ozon-main")
        #expect(missing.map { Array($0.id.utf8) } == [Array(combining.id.utf8)])
        // And as keys (the outcomes, the scheduler's and the watcher's dictionaries).
        #expect(composed.key != combining.key && Set([composed.key, combining.key]).count == 2)
        #expect(composed.key == request("caf\u{E9}", deadlineIn: 1).key)
    }

    @Test func keysAreOrderedByTheirBytesExactlyWhenTheyDiffer() {
        let composed = RequestKey(source: "s", id: "caf\u{E9}")
        let combining = RequestKey(source: "s", id: "cafe\u{301}")
        // Exactly one of <, ==, > for any two keys; by bytes ("e" 0x65 before "é" 0xC3 0xA9).
        #expect(combining < composed && !(composed < combining) && composed != combining)
        #expect(RequestKey(source: "a", id: "z") < RequestKey(source: "b", id: "a"))
        #expect(!(composed < composed))
        #expect([composed, combining].sorted() == [combining, composed].sorted())
    }

    @Test func unchangedRequestOnTheNextPollIsNotAChange() {
        var tracker = LedgerStorage()
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
        var tracker = LedgerStorage()
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
        var tracker = LedgerStorage()
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
        #expect(again.count == 1)
        #expect(again.first.map { if case .resolved(let t, .vanished) = $0 { t.request.id == "c" } else { false } } == true)
        #expect(tracker.pending().map(\.request.id) == ["d"])
        #expect(tracker.requests[a.key]?.status == .approved)
        #expect(tracker.requests[c.key]?.status == .vanished)
    }

    @Test func pendingRequestPastItsDeadlineExpiresOnce() {
        var tracker = LedgerStorage()
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
        var tracker = LedgerStorage()
        let r = request("1", deadlineIn: 60)
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        clock.advance(by: 300)
        let changes = tracker.apply(
            snapshot: snapshot(), outcomes: [r.key: .resolved(.approved, at: r.deadline)], source: "ozon-main", now: clock.now())
        #expect(changes.count == 1)
        guard case .expired = changes.first else { Issue.record("expected expired, got \(changes)"); return }
    }

    @Test func aPollOfOneSourceNeverTouchesAnother() {
        var tracker = LedgerStorage()
        let mine = request("1", deadlineIn: 3600, source: "ozon-main")
        let other = request("1", deadlineIn: 3600, source: "ozon-second")
        _ = tracker.apply(snapshot: snapshot(mine), outcomes: [:], source: "ozon-main", now: clock.now())
        _ = tracker.apply(snapshot: snapshot(other), outcomes: [:], source: "ozon-second", now: clock.now())
        #expect(tracker.missing(from: snapshot(), source: "ozon-main").map(\.key) == [mine.key])
        #expect(tracker.pending().count == 2)
    }

    @Test func closedRequestsArePrunedAfterRetention() {
        var tracker = LedgerStorage()
        let r = request("1", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        _ = tracker.apply(snapshot: snapshot(), outcomes: [r.key: .resolved(.rejected, at: clock.now())], source: "ozon-main", now: clock.now())
        #expect(tracker.prune(closedBefore: clock.now().addingTimeInterval(-1)).isEmpty)
        #expect(tracker.prune(closedBefore: clock.now().addingTimeInterval(1)) == [r.key])
        #expect(tracker.requests.isEmpty)
    }

    @Test func aRequestMissingOnceThenListedAgainIsNotVanished() {
        var tracker = LedgerStorage()
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

    @Test func undecodableItemsAreNotMissingAndAnIncompleteListingVanishesNothing() {
        var tracker = LedgerStorage()
        let a = request("a", deadlineIn: 3600)
        let b = request("b", deadlineIn: 3600)
        _ = tracker.apply(snapshot: snapshot(a, b), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(tracker.missing(from: PendingSnapshot(requests: [a], skippedIDs: ["b"]), source: "ozon-main").isEmpty)
        // An incomplete listing: both are looked up (approvals and rejections count) but a
        // "vanished" answer does not, since the unreadable item may be either of them.
        let incomplete = PendingSnapshot(requests: [], complete: false)
        #expect(tracker.missing(from: incomplete, source: "ozon-main").map(\.id) == ["a", "b"])
        for _ in 0..<3 {
            let changes = tracker.apply(
                snapshot: incomplete, outcomes: [a.key: .resolved(.vanished, at: nil), b.key: .resolved(.vanished, at: nil)],
                source: "ozon-main", now: clock.now())
            #expect(changes.isEmpty)
        }
        let rejected = tracker.apply(
            snapshot: incomplete, outcomes: [a.key: .resolved(.rejected, at: clock.now())], source: "ozon-main", now: clock.now())
        #expect(rejected.count == 1)
        #expect(tracker.requests[a.key]?.status == .rejected)
        #expect(tracker.requests[b.key]?.status == .pending)
        #expect(tracker.missing(from: PendingSnapshot(requests: [a]), source: "ozon-main").map(\.id) == ["b"])
    }

    @Test func anExpiredRequestListedWithALaterDeadlineIsPendingAgain() {
        var tracker = LedgerStorage()
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
        var tracker = LedgerStorage()
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
        var tracker = LedgerStorage()
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
    /// the plain request table after every step of a long random history; and the table
    /// itself (slots, free list, open-addressing index, string and raw pools) agrees with
    /// a plain dictionary kept alongside: removals (pruning, rolled-back news) free slots
    /// that later requests reuse.
    @Test func theIndexesAgreeWithTheTableThroughARandomHistory() {
        var tracker = LedgerStorage(keepingRaw: RawPaths([["tag"]]))
        var random = SystemRandomNumberGenerator()
        let sources = ["s1", "s2", "s3"]
        let reasons = ["Покупатель передумал", "不想要了", "", "Wrong size"]
        var model: [RequestKey: CancellationRequest] = [:]
        for step in 0..<600 {
            let source = sources[Int.random(in: 0..<3, using: &random)]
            let listed = (0..<Int.random(in: 0..<6, using: &random)).map { _ in
                var r = request(
                    "r\(Int.random(in: 0..<15, using: &random))", deadlineIn: Double(Int.random(in: -60...3600, using: &random)),
                    source: source)
                r.reason = reasons[Int.random(in: 0..<reasons.count, using: &random)]
                r.raw = ["tag": .integer(Int64.random(in: 0..<3, using: &random)), "other": .integer(Int64.random(in: 0..<3, using: &random))]
                return r
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
            let before = tracker.requests.values
            let changes = tracker.apply(snapshot: snap, outcomes: outcomes, source: source, now: clock.now())
            if rollback {
                tracker.rollbackChanges()
                #expect(Set(tracker.requests.values) == Set(before))
            } else {
                for change in changes {
                    if case .new(let t) = change { model[t.key] = t.request }
                    if case .updated(let t) = change { model[t.key] = t.request }
                }
            }
            for change in changes {
                switch change {
                case .new(let t), .updated(let t):
                    // A request just listed comes with its whole raw object.
                    #expect(t.hasWholeRaw && t.request.raw["other"] != nil)
                default:
                    #expect(t(change).rawKept == tracker.rawPaths)
                }
            }
            clock.advance(by: Double(Int.random(in: 0...120, using: &random)))
            if step % 5 == 0 { _ = tracker.expire(now: clock.now()) }
            if step % 40 == 39 {
                for key in tracker.prune(closedBefore: clock.now().addingTimeInterval(-300)) { model[key] = nil }
            }

            let all = tracker.requests.values
            #expect(tracker.requests.count == all.count && Set(all.map(\.key)).count == all.count)
            #expect(Set(tracker.requests.keys) == Set(all.map(\.key)))
            for item in all {
                #expect(tracker.requests[item.key] == item)
                // In memory: the fields as listed, the raw object pruned to what rules read.
                if let listed = model[item.key] {
                    var expected = listed
                    expected.raw = ["tag": listed.raw["tag"]!]
                    var actual = item.request
                    actual.state = listed.state
                    actual.deadline = listed.deadline
                    #expect(actual == expected)
                }
            }
            for name in sources {
                #expect(tracker.pendingCount(source: name) == all.filter { $0.status == .pending && $0.request.source == name }.count)
                #expect(Set(tracker.pending(source: name).map(\.key)) == Set(all.filter { $0.status == .pending && $0.request.source == name }.map(\.key)))
            }
            for status in [TrackedStatus.pending, .approved, .rejected, .vanished, .expired] {
                #expect(tracker.statusCounts[status, default: 0] == all.filter { $0.status == status }.count)
            }
            #expect(tracker.nearestDeadline() == all.filter { $0.status == .pending }.map(\.request.deadline).min())
            if step % 50 == 0 {
                // What a restart would build from the state file agrees too.
                var copy = LedgerStorage(all, keepingRaw: tracker.rawPaths)
                #expect(Set(copy.requests.values) == Set(all))
                #expect(copy.nearestDeadline() == all.filter { $0.status == .pending }.map(\.request.deadline).min())
            }
        }
        func t(_ change: RequestChange) -> TrackedRequest { change.tracked }
    }

    /// The packed table alone, against a dictionary: many keys, removals shifting the
    /// index back (wrapping around its end), slots reused, pools counting references.
    @Test func theRequestTableAgreesWithADictionary() {
        var table = RequestTable<Int>(rawPaths: RawPaths([["k"]]))
        var model: [RequestKey: (CancellationRequest, Int)] = [:]
        var random = SystemRandomNumberGenerator()
        let reasons = ["a", "b", "Покупатель передумал", "c"]
        for step in 0..<20_000 {
            let key = RequestKey(source: "s\(Int.random(in: 0..<4, using: &random))", id: "\(Int.random(in: 0..<1500, using: &random))")
            if Int.random(in: 0..<3, using: &random) == 0 {
                if let slot = table.slot(of: key) { table.remove(slot) }
                model[key] = nil
            } else {
                var r = request(key.id, deadlineIn: Double(step), source: key.source)
                r.reason = reasons[Int.random(in: 0..<reasons.count, using: &random)]
                r.createdAt = step % 2 == 0 ? nil : clock.now()
                r.raw = ["k": .integer(Int64(step % 5)), "x": .integer(Int64(step))]
                table.set(r, rawKept: .everything, extra: step)
                r.raw = ["k": .integer(Int64(step % 5))]
                model[key] = (r, step)
            }
            if step % 1000 == 999 {
                #expect(table.count == model.count)
                #expect(Set(table.slots.map(table.key(at:))) == Set(model.keys))
                for (key, (request, extra)) in model {
                    guard let slot = table.slot(of: key) else {
                        Issue.record("\(key) is not found")
                        continue
                    }
                    #expect(table.request(at: slot) == request)
                    #expect(table[extra: slot] == extra)
                }
            }
        }
    }

    /// A pooled string that goes (its last request removed) frees its id for a later new
    /// value; the same string coming back later is not taken for what then holds the id
    /// (without the recent slots cleared, `next` takes the freed id and `gone` reads back as it).
    @Test func aStringGoneFromThePoolIsNotMistakenForTheOneThatTookItsID() {
        for (gone, next) in [
            (String(repeating: "Покупатель передумал ", count: 3), String(repeating: "Долгая доставка ", count: 3)),
            ("short", "other"),
        ] {
            var table = RequestTable<Int>(rawPaths: .none)
            var first = request("1", deadlineIn: 60)
            first.reason = gone
            let slot = table.set(first, rawKept: .everything, extra: 1)
            table.remove(slot)
            var second = request("2", deadlineIn: 60)
            second.reason = next
            let secondSlot = table.set(second, rawKept: .everything, extra: 2)
            // The very same string as the first request's, again.
            var third = request("3", deadlineIn: 60)
            third.reason = gone
            let thirdSlot = table.set(third, rawKept: .everything, extra: 3)
            #expect(table.request(at: secondSlot).reason == next)
            #expect(table.request(at: thirdSlot).reason == gone)
        }
    }

    /// Only what rules read of the raw object stays in memory; a change anywhere in the
    /// object is still a change, and the change carries the whole object.
    @Test func theRawObjectIsKeptPrunedAndStillWatchedWhole() {
        var tracker = LedgerStorage(keepingRaw: RawPaths([["is_express"]]))
        var r = request("1", deadlineIn: 3600)
        r.raw = ["is_express": true, "comment": "первый", "items": [["sku": "a"]]]
        let first = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(first.first?.tracked.request.raw == r.raw)
        #expect(first.first?.tracked.hasWholeRaw == true)
        #expect(tracker.requests[r.key]?.request.raw == ["is_express": true])
        #expect(tracker.requests[r.key]?.rawKept == RawPaths([["is_express"]]))
        clock.advance(by: 60)
        #expect(tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        r.raw = ["is_express": true, "comment": "второй", "items": [["sku": "a"]]]
        let changed = tracker.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(changed.count == 1)
        #expect(changed.first?.tracked.request.raw == r.raw)
        // After a restart (the state file's objects pruned as they are read), the same
        // listing is no change.
        let saved = tracker.requests.values
        var restarted = LedgerStorage(saved, keepingRaw: tracker.rawPaths)
        clock.advance(by: 60)
        #expect(restarted.apply(snapshot: snapshot(r), outcomes: [:], source: "ozon-main", now: clock.now()).isEmpty)
        // A resolution carries the pruned object (the state file keeps the whole one).
        let resolved = restarted.apply(
            snapshot: snapshot(), outcomes: [r.key: .resolved(.approved, at: clock.now())], source: "ozon-main", now: clock.now())
        #expect(resolved.first?.tracked.request.raw == ["is_express": true])
        #expect(resolved.first?.tracked.hasWholeRaw == false)
    }

    /// A million requests share their repeated strings: the ones in memory are the same
    /// bytes the marketplace sent (not a canonically equivalent spelling).
    @Test func sharedStringsKeepTheirExactBytes() {
        var tracker = LedgerStorage()
        var a = request("a", deadlineIn: 3600)
        a.reason = "Cafe\u{301}"
        var b = request("b", deadlineIn: 3600)
        b.reason = "Caf\u{E9}"
        _ = tracker.apply(snapshot: snapshot(a, b), outcomes: [:], source: "ozon-main", now: clock.now())
        #expect(Array(tracker.requests[a.key]!.request.reason.utf8) == Array(a.reason.utf8))
        #expect(Array(tracker.requests[b.key]!.request.reason.utf8) == Array(b.reason.utf8))
    }

    /// What a replica does when it takes a source over or lets it go: that source's requests
    /// (and their timers) are replaced, its neighbours' are left, names alike or not.
    @Test func replacingSourcesForgetsTheirRequestsAndTimersAndLeavesTheOthers() {
        var storage = LedgerStorage()
        for source in ["shop", "shop-2", "shop\u{0}"] {
            _ = storage.apply(
                snapshot: PendingSnapshot(requests: [request("1", deadlineIn: 3600, source: source), request("2", deadlineIn: 7200, source: source)]),
                outcomes: [:], source: source, now: clock.now())
        }
        for slot in storage.slots { storage.schedule(slot, at: clock.now().addingTimeInterval(60)) }
        let fresh = TrackedRequest(
            request: request("9", deadlineIn: 600, source: "shop"), status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
        storage.replace(sources: ["shop", "shop-3"], with: [fresh, TrackedRequest(
            request: request("8", deadlineIn: 600, source: "elsewhere"), status: .pending, firstSeen: clock.now(), lastSeen: clock.now())])

        #expect(storage.pending(source: "shop").map(\.key.id) == ["9"])
        #expect(storage.pendingCount(source: "shop-2") == 2)
        #expect(storage.pendingCount(source: "shop\u{0}") == 2)
        #expect(storage.requests[RequestKey(source: "elsewhere", id: "8")] == nil)
        #expect(storage.nearestDeadline(source: "shop") == fresh.request.deadline)
        #expect(storage.slots(of: ["shop"]).count == 1)
        #expect(storage.slots(of: ["shop-2", "shop\u{0}"]).count == 4)
        // The new request has no timer; the four left keep theirs.
        var due = 0
        while storage.popDue(now: clock.now().addingTimeInterval(120)) != nil { due += 1 }
        #expect(due == 4)

        storage.replace(sources: ["shop-2", "shop\u{0}", "shop"], with: [])
        #expect(storage.requests.isEmpty)
        #expect(storage.pendingCount() == 0)
    }
}
