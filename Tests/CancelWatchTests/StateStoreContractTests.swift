import Foundation
import Testing

@testable import CancelWatch

/// What every kind of state store must do (`StoreKind.all`), through the `StateStore`
/// protocol: here requests, alert states, sources' health and the commit as one
/// transaction; the outbox, bytes and instants in the `StateStoreContractTests+` files.
/// What only the SQLite file does (its mode, lock, schema 1) has suites of its own.
@Suite struct StateStoreContractTests {
    typealias Samples = StoreSamples

    @Test(arguments: StoreKind.all)
    func aCommittedRequestComesBackWithEveryFieldAndItsRawObjectByteForByte(_ kind: StoreKind) throws {
        try kind.withStore { store in
            var red = Samples.tracked("P1@1763999900", source: "red-shop", marketplace: .xiaohongshu, status: .expired)
            red.request.createdAt = nil
            red.closedAt = red.request.deadline
            let requests =
                [red, try Samples.fromPage(id: 7)]
                + TrackedStatus.allCases.map { Samples.tracked("s-\($0.rawValue)", status: $0) }
            try store.save(requests, health: nil)
            let loaded = try store.loadTracked()
            #expect(Samples.bytes(of: loaded) == Samples.bytes(of: requests))
            #expect(Set(loaded) == Set(requests))
        }
    }

    @Test(arguments: StoreKind.all)
    func aRequestCommittedAgainTakesItsNewFieldsAndKeepsWhenItWasFirstSeen(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let first = Samples.tracked("1", status: .approved)
            try store.save([first], health: nil)
            var second = Samples.tracked("1", raw: #"{"changed":[1,2]}"#)
            second.request.order = "9999-0001-1"
            second.request.reasonMessage = ""
            second.request.deadline = first.request.deadline.addingTimeInterval(0.5)
            second.firstSeen = first.firstSeen.addingTimeInterval(600)
            second.lastSeen = first.lastSeen.addingTimeInterval(600)
            second.closedAt = nil
            try store.save([second], health: nil)
            var expected = second
            expected.firstSeen = first.firstSeen
            #expect(Samples.bytes(of: try store.loadTracked()) == Samples.bytes(of: [expected]))
        }
    }

    /// Memory keeps what rules read of a raw object; saving that never replaces the whole
    /// object the store has.
    @Test(arguments: StoreKind.all)
    func aPrunedRawObjectLeavesTheSavedOneAsItIsAndANewRequestIsSavedWithWhatItHas(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let whole = Samples.tracked("a")
            try store.save([whole], health: nil)
            let paths = RawPaths([["nested", "flag"]])
            var pruned = whole.pruned(to: paths)
            pruned.status = .approved
            pruned.closedAt = Samples.now.addingTimeInterval(120)
            let never = Samples.tracked("never-saved").pruned(to: paths)
            #expect(!pruned.hasWholeRaw && pruned.request.raw == ["nested": ["flag": true]])
            try store.save([pruned, never], health: nil)

            let loaded = try store.loadTracked().sorted { $0.key < $1.key }
            #expect(loaded.map(\.key) == [whole.key, never.key])
            var expected = pruned
            expected.request.rawObject = whole.request.rawObject
            expected.rawKept = .everything
            #expect(Samples.bytes(of: loaded[0]) == Samples.bytes(of: expected), "the other fields are the new ones")
            #expect(loaded[1].request.raw == ["nested": ["flag": true]])

            // A whole object (the marketplace changed it) replaces the saved one.
            let changed = Samples.tracked("a", raw: #"{"flag":false}"#)
            try store.save([changed], health: nil)
            #expect(try store.loadTracked().first { $0.key == whole.key }?.request.rawObject.jsonBytes == Array(#"{"flag":false}"#.utf8))
        }
    }

    /// Loading for a ledger prunes each object as it is read, with the whole object's
    /// change fingerprint: a restart does not take every request for changed.
    @Test(arguments: StoreKind.all)
    func loadingKeepingRawPathsPrunesEveryObjectAndKeepsTheWholeOnesFingerprint(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let page = try Samples.fromPage(id: 7)
            let red = Samples.tracked("P2", source: "red-shop", marketplace: .xiaohongshu, raw: #"{"flag":true,"max_audit_time":3600}"#)
            let requests = [Samples.tracked("a"), Samples.tracked("lacks-the-path", raw: #"{"other":1}"#), page, red]
            try store.save(requests, health: nil)

            for paths in [RawPaths([["nested", "flag"], ["extra", "n"]]), .none, .everything] {
                let loaded = try store.loadTracked(keepingRaw: paths).sorted { $0.key < $1.key }
                let expected = requests.map { $0.pruned(to: paths) }.sorted { $0.key < $1.key }
                #expect(Samples.bytes(of: loaded) == Samples.bytes(of: expected), "\(paths)")
                #expect(loaded.map(\.rawKept) == expected.map(\.rawKept), "\(paths)")
                #expect(loaded.map(\.rawFingerprint) == expected.map(\.rawFingerprint), "\(paths)")
            }
            let none = try store.loadTracked(keepingRaw: .none)
            #expect(none.allSatisfy { $0.request.raw == .object([:]) && $0.rawKept == RawPaths.none })
            // The fingerprint the listing took from the page's bytes, and the volatile member left out.
            let pruned = try store.loadTracked(keepingRaw: .none)
            #expect(pruned.first { $0.key == page.key }?.rawFingerprint == page.request.rawObject.changeFingerprint)
            #expect(page.request.rawObject.changeFingerprint != nil)
            var counted = red.request
            counted.rawObject = try RawObject(json: Array(#"{"flag":true,"max_audit_time":1200}"#.utf8))
            #expect(pruned.first { $0.key == red.key }?.rawFingerprint == LedgerStorage.rawFingerprint(counted))
        }
    }

    /// A page item's raw object is a stretch of the page: the store keeps those bytes as
    /// sent (spacing, escapes, number spelling).
    @Test(arguments: StoreKind.all)
    func aPageItemsRawObjectIsStoredAsTheBytesTheMarketplaceSent(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let request = try Samples.fromPage(id: 7)
            #expect(request.request.rawObject.isSharedText)
            try store.save([request], health: nil)
            let reloaded = try #require(try store.loadTracked().first?.request.rawObject)
            #expect(reloaded.description == Samples.pageItem(id: 7))
            #expect(reloaded.fingerprint(ignoring: []) == request.request.rawObject.changeFingerprint)
        }
    }

    @Test(arguments: StoreKind.all)
    func alertStatesComeBackAsCommittedAndACommitAgainReplacesEveryField(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let key = RequestKey(source: "ozon-main", id: "1")
            let full = AlertState(
                request: key, rule: "final-hour", firings: 3, repeats: 2, active: true, lastFiredAt: Samples.now,
                nextRepeatAt: Samples.now.addingTimeInterval(600.5), heldUntil: Samples.now.addingTimeInterval(30.25), closed: false)
            let other = AlertState(request: key, rule: "другое правило", firings: 1, closed: true)
            let unsaved = AlertState(request: RequestKey(source: "red-shop", id: "never-saved"), rule: "final-hour", firings: 1)
            try store.commit(alerts: [full, other, unsaved], events: [], health: nil, at: Samples.now)
            #expect(Set(try store.loadAlerts()) == [full, other, unsaved])

            let cleared = AlertState(request: key, rule: "final-hour", firings: 4, repeats: 0, active: false, closed: true)
            try store.commit(alerts: [cleared], events: [], health: nil, at: Samples.now)
            #expect(Set(try store.loadAlerts()) == [cleared, other, unsaved])
        }
    }

    @Test(arguments: StoreKind.all)
    func healthComesBackAsCommittedAndACommitAgainReplacesIt(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let red = SourceHealth(
                source: "red-shop", marketplace: .xiaohongshu, lastPollAt: Samples.now, lastSuccessAt: Samples.now.addingTimeInterval(-60.5),
                consecutiveFailures: 5, lastError: "HTTP 503: сервис недоступен", down: true, downCount: 2)
            let ozon = SourceHealth(source: "ozon-main", marketplace: .ozon)
            try store.save([], health: red)
            try store.save([], health: ozon)
            #expect(Set(try store.loadHealth()) == [red, ozon])

            let up = SourceHealth(source: "red-shop", marketplace: .xiaohongshu, lastPollAt: Samples.now.addingTimeInterval(60), downCount: 3)
            try store.commit(StoreChanges(health: [up]), at: Samples.now)
            #expect(Set(try store.loadHealth()) == [up, ozon])
        }
    }

    @Test(arguments: StoreKind.all)
    func aRequestCommittedAgainUpdatesInPlaceAndDeleteForgetsIt(_ kind: StoreKind) throws {
        try kind.withStore { store in
            try store.save([Samples.tracked("1")], health: nil)
            try store.save([Samples.tracked("1", status: .rejected)], health: nil)
            #expect(try store.loadTracked().map(\.status) == [.rejected])
            try store.delete([RequestKey(source: "ozon-main", id: "1")])
            #expect(try store.loadTracked().isEmpty)
        }
    }

    /// Deleting a request forgets its alert states and nothing else: its queued events
    /// are still delivered, a source's health stays.
    @Test(arguments: StoreKind.all)
    func deletingRequestsForgetsThemAndTheirAlertStatesOnly(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let a = Samples.tracked("a")
            let b = Samples.tracked("b")
            let health = SourceHealth(source: "ozon-main", marketplace: .ozon, lastPollAt: Samples.now)
            try store.save([a, b], health: health)
            let alerts = [
                AlertState(request: a.key, rule: "r1", firings: 1), AlertState(request: a.key, rule: "r2", firings: 1),
                AlertState(request: b.key, rule: "r1", firings: 1),
            ]
            var event = SinkTestEvents.firing(id: "about-a")
            event.request = a.request
            event.sinks = ["hook"]
            try store.commit(alerts: alerts, events: [event], health: nil, at: Samples.now)

            try store.delete([a.key, RequestKey(source: "ozon-main", id: "never-saved")])
            #expect(try store.loadTracked().map(\.key) == [b.key])
            #expect(try store.loadAlerts() == [alerts[2]])
            #expect(try store.loadHealth() == [health])
            #expect(try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 10).deliveries.map(\.event) == [event])
            try store.delete([])
            #expect(try store.loadTracked().map(\.key) == [b.key])
        }
    }

    /// The store is what survives a restart: a store opened again on the same place has
    /// every part of what the last one committed.
    @Test(arguments: StoreKind.all)
    func whatACommitWroteIsThereWhenTheStoreIsOpenedAgain(_ kind: StoreKind) throws {
        try kind.withPlace { place in
            let health = SourceHealth(
                source: "ozon-main", marketplace: .ozon, lastPollAt: Date(timeIntervalSince1970: 1_764_000_100),
                lastSuccessAt: Date(timeIntervalSince1970: 1_764_000_100), consecutiveFailures: 0)
            let requests = [Samples.tracked("1"), Samples.tracked("2", status: .approved)]
            let alert = AlertState(request: requests[0].key, rule: "r", firings: 1, active: true, lastFiredAt: Samples.now)
            var event = SinkTestEvents.firing()
            event.sinks = ["hook", "mail"]
            let before: StoreSnapshot
            do {
                let store = try place.open()
                try store.commit(
                    StoreChanges(tracked: requests, alerts: [alert], events: [event], health: [health]), at: SinkTestEvents.occurredAt)
                try store.recordDelivery(DeliveryResult(eventID: event.id, sink: "hook", status: .delivered, attempts: 1, at: Samples.now))
                before = try StoreSnapshot(store, sinks: event.sinks)
            }
            let reopened = try place.open()
            #expect(try StoreSnapshot(reopened, sinks: event.sinks) == before)
            #expect(Samples.bytes(of: try reopened.loadTracked()) == Samples.bytes(of: requests))
            #expect(try reopened.loadHealth() == [health])
            #expect(try reopened.loadAlerts() == [alert])
            #expect(try reopened.dueDeliveries(sink: "mail", now: SinkTestEvents.occurredAt, limit: 10).deliveries.map(\.event) == [event])
            #expect(try reopened.dueDeliveries(sink: "hook", now: SinkTestEvents.occurredAt, limit: 10).deliveries.isEmpty)
        }
    }

    /// Which part of a commit carries the time that cannot be written.
    enum FailingPart: String, CaseIterable, Sendable { case request, alert, event, health }

    /// One step of the engine is one transaction: a commit that fails in any of its parts
    /// writes none of them, and the store takes the next commit as if it had not happened.
    @Test(arguments: StoreKind.all, FailingPart.allCases)
    func aCommitThatFailsInAnyPartWritesNothing(_ kind: StoreKind, _ part: FailingPart) throws {
        try kind.withStore { store in
            let a = Samples.tracked("a")
            var queued = SinkTestEvents.firing(id: "queued-before")
            queued.sinks = ["hook"]
            try store.commit(
                StoreChanges(
                    tracked: [a], alerts: [AlertState(request: a.key, rule: "r", firings: 1)], events: [queued],
                    health: [SourceHealth(source: "ozon-main", marketplace: .ozon, lastPollAt: Samples.now)]),
                at: Samples.now)
            let before = try StoreSnapshot(store, sinks: ["hook", "mail"])

            let nan = Date(timeIntervalSince1970: .nan)
            var approved = a.pruned(to: .none)
            approved.status = .approved
            approved.closedAt = Samples.now.addingTimeInterval(60)
            var b = Samples.tracked("b")
            if part == .request { b.request.deadline = nan }
            var alert = AlertState(request: a.key, rule: "r", firings: 2, active: true, lastFiredAt: Samples.now.addingTimeInterval(60))
            if part == .alert { alert.heldUntil = nan }
            var event = SinkTestEvents.firing(id: "new-one")
            event.request = b.request
            event.sinks = ["hook", "mail"]
            if part == .event { event.occurredAt = nan }
            var health = SourceHealth(
                source: "ozon-main", marketplace: .ozon, lastPollAt: Samples.now.addingTimeInterval(60), consecutiveFailures: 0)
            if part == .health { health.lastSuccessAt = nan }
            var changes = StoreChanges(
                tracked: [approved, b], alerts: [alert, AlertState(request: b.key, rule: "r", firings: 1)], events: [queued, event],
                eventsTakingSavedRaw: [event.id], health: [health])

            #expect {
                try store.commit(changes, at: Samples.now.addingTimeInterval(60))
            } throws: { error in
                "\(error)".contains("not a finite")
            }
            #expect(try StoreSnapshot(store, sinks: ["hook", "mail"]) == before)

            b.request.deadline = Samples.now.addingTimeInterval(3600)
            alert.heldUntil = nil
            event.occurredAt = Samples.now
            event.request = b.request
            health.lastSuccessAt = nil
            changes = StoreChanges(
                tracked: [approved, b], alerts: [alert], events: [event], eventsTakingSavedRaw: [event.id], health: [health])
            try store.commit(changes, at: Samples.now.addingTimeInterval(60))
            #expect(try store.loadTracked().map(\.status).sorted { $0.rawValue < $1.rawValue } == [.approved, .pending])
            #expect(try store.loadAlerts() == [alert])
            #expect(try store.loadHealth() == [health])
            #expect(try Self.outbox(store) == ["hook pending 2", "mail pending 1"])
        }
    }
}

/// What a store holds, read through the protocol: two are equal when the store holds the
/// same (requests by their bytes).
struct StoreSnapshot: Equatable {
    var tracked: [StoreSamples.RequestBytes]
    var alerts: Set<AlertState>
    var health: Set<SourceHealth>
    var counts: [OutboxCount]
    var due: [String: [PendingDelivery]]
    var next: [String: Date?]

    init(_ store: any StateStore, sinks: [String]) throws {
        tracked = StoreSamples.bytes(of: try store.loadTracked())
        alerts = Set(try store.loadAlerts())
        health = Set(try store.loadHealth())
        counts = try store.outboxCounts()
        due = [:]
        next = [:]
        for sink in sinks {
            due[sink] = try store.dueDeliveries(sink: sink, now: .distantFuture, limit: 1000).deliveries
            next[sink] = try store.nextDeliveryAttempt(sink: sink)
        }
    }
}

/// Requests and events for the store contract.
enum StoreSamples {
    static let now = Date(timeIntervalSince1970: 1_764_000_000.25)

    /// A raw object as a marketplace may send it: its own member order and spacing, a
    /// number as spelled, an integer past a double's precision, a NUL and a lone surrogate
    /// as escapes, non-ASCII escaped and plain. These bytes come back as they are.
    static let rawText =
        #"{"z": 1, "cancellation_id":42,"price":"1.50","amount":1.50,"big":9007199254740993,"package_id":"PKG\u0000A","#
        + #""bad":"\ud800","note":"\u043f 😀 Покупатель передумал","#
        + #""nested":{"a":[1,{"b":null},[]],"flag":true},"e":-1.5e-7}"#

    /// A request with every field set (`createdAt`, `closedAt` unless pending, `reasonMessage`).
    static func tracked(
        _ id: String, source: String = "ozon-main", marketplace: Marketplace = .ozon, status: TrackedStatus = .pending,
        raw: String = rawText
    ) -> TrackedRequest {
        let request = CancellationRequest(
            marketplace: marketplace, source: source, id: id, order: "1234-0001-1 \u{0}é", state: status == .rejected ? .rejected : .pending,
            rawState: "ON_APPROVAL", initiator: "CLIENT", reason: "Покупатель передумал 😀 \u{F0000}", reasonID: "5",
            logistics: "non_integrated", reasonMessage: "не нужен\r\n\"больше\"", createdAt: now.addingTimeInterval(-600.5),
            deadline: now.addingTimeInterval(7200.123_456), rawObject: try! RawObject(json: Array(raw.utf8)))
        return TrackedRequest(
            request: request, status: status, firstSeen: now, lastSeen: now.addingTimeInterval(60.75),
            closedAt: status.isOpen ? nil : now.addingTimeInterval(90.5))
    }

    /// An Ozon list item's text, spaced and escaped as an answer may have it.
    static func pageItem(id: Int) -> String {
        #"{"cancellation_id": \#(id), "posting_number": "1-2-\#(id)", "auto_approve_date": "2026-11-27T10:00:00Z", "#
            + #""extra": {"note": "\u043f\u0440\u0438\u0432\u0435\u0442", "n": 1.50}}"#
    }

    /// A request as the Ozon client reads it from a list page: its raw object a stretch of the page.
    static func fromPage(id: Int) throws -> TrackedRequest {
        let page = Data((#"{"result": [ "# + pageItem(id: id) + #" ], "last_id": \#(id)}"#).utf8)
        let item = try #require(try OzonWire.decodePage(page).items.first)
        let request = try OzonWire.request(from: item, source: "ozon")
        return TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now)
    }

    /// A request as the store must give it back: every field by its bytes (Swift's `==`
    /// takes canonically equivalent strings as equal), every instant exactly.
    struct RequestBytes: Equatable, CustomStringConvertible {
        var fields: [UInt8]
        var raw: [UInt8]
        var status: TrackedStatus
        var firstSeen: Date
        var lastSeen: Date
        var closedAt: Date?
        var rawKept: RawPaths

        var description: String {
            let text = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self) }
            return "\(text(fields)) raw \(text(raw)) \(status) \(firstSeen) \(lastSeen) \(String(describing: closedAt))"
        }
    }

    static func bytes(of tracked: TrackedRequest) -> RequestBytes {
        RequestBytes(
            fields: Array(((try? tracked.request.storedFields()) ?? "unencodable").utf8), raw: tracked.request.rawObject.jsonBytes,
            status: tracked.status, firstSeen: tracked.firstSeen, lastSeen: tracked.lastSeen, closedAt: tracked.closedAt,
            rawKept: tracked.rawKept)
    }

    /// In key order (by bytes).
    static func bytes(of tracked: [TrackedRequest]) -> [RequestBytes] {
        tracked.sorted { $0.key < $1.key }.map(bytes(of:))
    }
}
