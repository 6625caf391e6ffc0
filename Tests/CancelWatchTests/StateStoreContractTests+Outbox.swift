import Foundation
import Testing

@testable import CancelWatch

/// The outbox in the store contract: an event is queued once per sink, due entries come
/// oldest first, every attempt's result is kept, finished entries are pruned by age, and
/// an event about a request can take the whole raw object the store has for it.
extension StateStoreContractTests {
    /// Events `e0`… for `sinks`.
    static func events(_ count: Int, sinks: [String] = ["hook"]) -> [AlertEvent] {
        (0..<count).map { i in
            var event = SinkTestEvents.firing(id: "e\(i)", order: "order-\(i)")
            event.sinks = sinks
            return event
        }
    }

    /// The outbox's counts, one "sink status count" each, in their order.
    static func outbox(_ store: any StateStore) throws -> [String] {
        try store.outboxCounts().map { "\($0.sink) \($0.status) \($0.count)" }
    }

    @Test(arguments: StoreKind.all)
    func deadLettersComeNewestFirstUpToTheLimitWithTheirEvents(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let at = SinkTestEvents.occurredAt
            let events = Self.events(7, sinks: ["hook", "mail"])
            try store.commit(alerts: [], events: events, health: nil, at: at)
            // All given up at the same instant (a tie: the later entry first), one delivered, one waiting.
            for event in events.prefix(6) {
                try store.recordDelivery(
                    DeliveryResult(eventID: event.id, sink: "hook", status: .dead, attempts: 2, error: "HTTP 404", at: at))
            }
            try store.recordDelivery(DeliveryResult(eventID: "e6", sink: "hook", status: .delivered, attempts: 1, at: at))
            try store.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "mail", status: .dead, attempts: 1, error: "550", at: at.addingTimeInterval(1)))
            let letters = try store.deadLetters(limit: 5)
            #expect(letters.map { "\($0.sink)/\($0.eventID)" } == ["mail/e0", "hook/e5", "hook/e4", "hook/e3", "hook/e2"])
            #expect(letters[1].attempts == 2 && letters[1].error == "HTTP 404" && letters[1].at == at)
            #expect(letters[1].event?.request?.order == "order-5" && letters[1].event?.rule == "final-hour")
            #expect(letters[1].event == events[5])
            let counts = try store.outboxCounts()
            #expect(counts.contains(OutboxCount(sink: "hook", status: "dead", count: 6)))
            #expect(counts.contains(OutboxCount(sink: "mail", status: "pending", count: 6)))
        }
    }

    @Test(arguments: StoreKind.all)
    func pruningForgetsAlertStatesOfForgottenRequestsAndOldDeliveriesButKeepsRecentOnes(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let now = Date(timeIntervalSince1970: 1_764_000_000)
            var events: [AlertEvent] = []
            for index in 0..<4 {
                var event = SinkTestEvents.firing(id: String(format: "%032x", index + 1))
                event.sinks = ["hook"]
                events.append(event)
            }
            let alert = AlertState(request: RequestKey(source: "ozon-main", id: "1"), rule: "r", firings: 1, active: true, lastFiredAt: now)
            try store.commit(alerts: [alert], events: events, health: nil, at: now)
            let old = now.addingTimeInterval(-8 * 86400)
            let older = now.addingTimeInterval(-31 * 86400)
            try store.recordDelivery(DeliveryResult(eventID: events[0].id, sink: "hook", status: .delivered, attempts: 1, at: old))
            try store.recordDelivery(DeliveryResult(eventID: events[1].id, sink: "hook", status: .delivered, attempts: 1, at: now))
            try store.recordDelivery(DeliveryResult(eventID: events[2].id, sink: "hook", status: .dead, attempts: 3, error: "410", at: old))
            try store.recordDelivery(
                DeliveryResult(eventID: events[3].id, sink: "hook", status: .dead, attempts: 3, error: "410", at: older))

            let removed = try store.pruneOutbox(
                deliveredBefore: now.addingTimeInterval(-7 * 86400), deadBefore: now.addingTimeInterval(-30 * 86400))
            #expect(removed == 2)
            #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["dead/1", "delivered/1"])

            #expect(try store.loadAlerts().count == 1)
            try store.delete([RequestKey(source: "ozon-main", id: "1")])
            #expect(try store.loadAlerts().isEmpty)
        }
    }

    /// The cut is strict, a pending entry stays however old, and a pruned event committed
    /// again is queued again (the store keeps no other trace of it).
    @Test(arguments: StoreKind.all)
    func pruningKeepsEntriesFinishedAtTheCutAndEveryPendingOne(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let cut = Samples.now
            let events = Self.events(5)
            try store.commit(alerts: [], events: events, health: nil, at: cut.addingTimeInterval(-365 * 86400))
            try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "hook", status: .delivered, attempts: 1, at: cut))
            try store.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .delivered, attempts: 1, at: cut.addingTimeInterval(-0.5)))
            try store.recordDelivery(DeliveryResult(eventID: "e2", sink: "hook", status: .dead, attempts: 1, error: "x", at: cut))
            try store.recordDelivery(
                DeliveryResult(eventID: "e3", sink: "hook", status: .dead, attempts: 1, error: "x", at: cut.addingTimeInterval(-0.5)))
            try store.recordDelivery(
                DeliveryResult(
                    eventID: "e4", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: cut, error: "503", at: cut.addingTimeInterval(-86400)))

            #expect(try store.pruneOutbox(deliveredBefore: cut, deadBefore: cut) == 2)
            #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["dead/1", "delivered/1", "pending/1"])
            #expect(try store.deadLetters(limit: 10).map(\.eventID) == ["e2"])
            #expect(try store.dueDeliveries(sink: "hook", now: cut, limit: 10).deliveries.map(\.event.id) == ["e4"])
            #expect(try store.pruneOutbox(deliveredBefore: cut, deadBefore: cut) == 0)
            // Delivered ones go by their own cut, dead ones by theirs.
            #expect(try store.pruneOutbox(deliveredBefore: cut.addingTimeInterval(1), deadBefore: cut) == 1)
            #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["dead/1", "pending/1"])

            try store.commit(alerts: [], events: [events[1]], health: nil, at: cut)
            #expect(try store.dueDeliveries(sink: "hook", now: cut, limit: 10).deliveries.map(\.event.id).sorted() == ["e1", "e4"])
        }
    }

    /// The same event id for the same sink is queued once, whatever commits it again: a
    /// delivered entry is not sent again, a waiting one keeps its first form.
    @Test(arguments: StoreKind.all)
    func anEventIsQueuedOncePerSinkWhateverCommitsItAgain(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let at = SinkTestEvents.occurredAt
            var event = SinkTestEvents.firing(id: "once")
            event.sinks = ["hook", "mail"]
            try store.commit(alerts: [], events: [event, event], health: nil, at: at)
            #expect(try Self.outbox(store) == ["hook pending 1", "mail pending 1"])
            try store.recordDelivery(DeliveryResult(eventID: "once", sink: "hook", status: .delivered, attempts: 1, at: at))
            try store.recordDelivery(
                DeliveryResult(
                    eventID: "once", sink: "mail", status: .retry, attempts: 1, nextAttemptAt: at.addingTimeInterval(30), error: "451", at: at))

            var again = event
            again.message = "decided again"
            again.sinks = ["hook", "mail", "chat"]
            try store.commit(alerts: [], events: [again], health: nil, at: at.addingTimeInterval(60))
            #expect(try Self.outbox(store) == ["chat pending 1", "hook delivered 1", "mail pending 1"])
            #expect(try store.dueDeliveries(sink: "hook", now: .distantFuture, limit: 10).deliveries.isEmpty)
            let mail = try #require(try store.dueDeliveries(sink: "mail", now: .distantFuture, limit: 10).deliveries.first)
            #expect(mail.event == event && mail.attempts == 1 && mail.nextAttemptAt == at.addingTimeInterval(30))
            #expect(try store.dueDeliveries(sink: "chat", now: .distantFuture, limit: 10).deliveries.map(\.event.message) == ["decided again"])
        }
    }

    /// Each sink's entry carries the whole event, its sinks listed as the event had them.
    @Test(arguments: StoreKind.all)
    func anEventReadsBackWithEveryMemberFromEachOfItsSinksEntries(_ kind: StoreKind) throws {
        try kind.withStore { store in
            var event = AlertEventFormTests.event()
            event.request?.reasonID = "r-7"
            event.outcome = .rejected
            event.kind = .resolved
            let health = SinkTestEvents.sourceDown()
            try store.commit(alerts: [], events: [event, health], health: nil, at: event.occurredAt)
            for sink in event.sinks {
                let due = try store.dueDeliveries(sink: sink, now: event.occurredAt, limit: 10)
                #expect(due.unreadable.isEmpty)
                #expect(due.deliveries.map(\.event) == [event], "\(sink)")
                #expect(due.deliveries.first?.event.sinks == ["hook", "mail"])
                #expect(due.deliveries.first?.event.request?.raw == event.request?.raw)
                #expect(due.deliveries.map(\.sink) == [sink] && due.deliveries.map(\.attempts) == [0])
                #expect(due.deliveries.first?.nextAttemptAt == event.occurredAt)
            }
            #expect(try store.dueDeliveries(sink: "test", now: event.occurredAt, limit: 10).deliveries.map(\.event) == [health])
        }
    }

    /// Every attempt, the first and any after a restart, is made from the stored entry:
    /// the body is the same.
    @Test(arguments: StoreKind.all)
    func anOutboxEntryReadsBackAsTheSameEventAndTheSameBodyAfterARestart(_ kind: StoreKind) throws {
        try kind.withPlace { place in
            let event = AlertEventFormTests.event()
            let at = event.occurredAt
            let firstBody: String
            do {
                let store = try place.open()
                try store.commit(alerts: [], events: [event], health: nil, at: at)
                let due = try store.dueDeliveries(sink: "hook", now: at, limit: 10).deliveries
                #expect(due.map(\.event) == [event])
                firstBody = try #require(due.first).event.webhookBody.serialized()
            }
            #expect(firstBody == event.webhookBody.serialized())
            let reopened = try place.open()
            let due = try reopened.dueDeliveries(sink: "mail", now: at, limit: 10).deliveries
            #expect(due.map(\.event) == [event])
            #expect(due.first?.event.webhookBody.serialized() == firstBody)
            #expect(due.first?.event.occurredAt.timeIntervalSince1970 == event.occurredAt.timeIntervalSince1970)
        }
    }

    /// Due: pending, for this sink, its next attempt at or before `now`; oldest next attempt
    /// first, then the entry queued first; at most `limit`.
    @Test(arguments: StoreKind.all)
    func dueDeliveriesComeOldestFirstUpToTheLimitForTheirSinkOnly(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            let events = Self.events(6)
            // e0 queued at t0, e1 at t0+1, … e5 at t0+5.
            for (i, event) in events.enumerated() {
                try store.commit(alerts: [], events: [event], health: nil, at: t0.addingTimeInterval(Double(i)))
            }
            var other = SinkTestEvents.firing(id: "for-mail")
            other.sinks = ["mail"]
            try store.commit(alerts: [], events: [other], health: nil, at: t0)
            // e0 waits until t0+3.5 (after e3), e2 until t0+4 (as e4, queued after it), e1 is delivered, e5 dead.
            try store.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(3.5), at: t0))
            try store.recordDelivery(
                DeliveryResult(eventID: "e2", sink: "hook", status: .retry, attempts: 2, nextAttemptAt: t0.addingTimeInterval(4), at: t0))
            try store.recordDelivery(DeliveryResult(eventID: "e1", sink: "hook", status: .delivered, attempts: 1, at: t0))
            try store.recordDelivery(DeliveryResult(eventID: "e5", sink: "hook", status: .dead, attempts: 1, error: "x", at: t0))

            func due(at seconds: Double, limit: Int = 10) throws -> [String] {
                try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(seconds), limit: limit).deliveries.map(\.event.id)
            }
            #expect(try due(at: -1).isEmpty)
            #expect(try due(at: 2.9).isEmpty)
            #expect(try due(at: 3) == ["e3"], "due at its instant")
            #expect(try due(at: 3.5) == ["e3", "e0"])
            #expect(try due(at: 4) == ["e3", "e0", "e2", "e4"])
            #expect(try due(at: 100) == ["e3", "e0", "e2", "e4"])
            #expect(try due(at: 100, limit: 2) == ["e3", "e0"])
            #expect(try due(at: 100, limit: 1) == ["e3"])
            let entries = try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(100), limit: 10).deliveries
            #expect(entries.map(\.attempts) == [0, 1, 2, 0])
            #expect(entries.map(\.nextAttemptAt) == [3, 3.5, 4, 4].map { t0.addingTimeInterval($0) })
            #expect(entries.allSatisfy { $0.sink == "hook" })
            #expect(try store.dueDeliveries(sink: "mail", now: t0, limit: 10).deliveries.map(\.event.id) == ["for-mail"])
            #expect(try store.dueDeliveries(sink: "nobody", now: t0.addingTimeInterval(100), limit: 10).deliveries.isEmpty)
        }
    }

    @Test(arguments: StoreKind.all)
    func theNextDeliveryAttemptIsTheEarliestAmongTheSinksPendingEntries(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            #expect(try store.nextDeliveryAttempt(sink: "hook") == nil)
            let events = Self.events(3)
            try store.commit(alerts: [], events: events, health: nil, at: t0)
            var other = SinkTestEvents.firing(id: "for-mail")
            other.sinks = ["mail"]
            try store.commit(alerts: [], events: [other], health: nil, at: t0.addingTimeInterval(-50))
            #expect(try store.nextDeliveryAttempt(sink: "hook") == t0)
            try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "hook", status: .delivered, attempts: 1, at: t0))
            try store.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(20), at: t0))
            try store.recordDelivery(
                DeliveryResult(eventID: "e2", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(10), at: t0))
            #expect(try store.nextDeliveryAttempt(sink: "hook") == t0.addingTimeInterval(10))
            try store.recordDelivery(DeliveryResult(eventID: "e2", sink: "hook", status: .dead, attempts: 2, error: "x", at: t0))
            #expect(try store.nextDeliveryAttempt(sink: "hook") == t0.addingTimeInterval(20))
            #expect(try store.nextDeliveryAttempt(sink: "mail") == t0.addingTimeInterval(-50))
            try store.recordDelivery(DeliveryResult(eventID: "e1", sink: "hook", status: .delivered, attempts: 2, at: t0))
            #expect(try store.nextDeliveryAttempt(sink: "hook") == nil)
        }
    }

    /// A retry keeps the entry waiting with its attempts (without a next attempt, at the one
    /// it had); delivered and dead finish it, a dead letter keeping its error.
    @Test(arguments: StoreKind.all)
    func anAttemptsResultIsKeptAsRecorded(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let t0 = Samples.now
            let events = Self.events(2)
            try store.commit(alerts: [], events: events, health: nil, at: t0)
            try store.recordDelivery(
                DeliveryResult(
                    eventID: "e0", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: t0.addingTimeInterval(30), error: "503", at: t0))
            try store.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "hook", status: .retry, attempts: 2, error: "503", at: t0.addingTimeInterval(30)))
            let waiting = try store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(30), limit: 10).deliveries
            #expect(waiting.map(\.event.id) == ["e1", "e0"])
            #expect(waiting.last?.attempts == 2 && waiting.last?.nextAttemptAt == t0.addingTimeInterval(30))

            try store.recordDelivery(
                DeliveryResult(eventID: "e0", sink: "hook", status: .dead, attempts: 3, error: "HTTP 410: gone", at: t0.addingTimeInterval(40)))
            try store.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .delivered, attempts: 1, at: t0.addingTimeInterval(41)))
            #expect(try store.dueDeliveries(sink: "hook", now: .distantFuture, limit: 10).deliveries.isEmpty)
            let letter = try #require(try store.deadLetters(limit: 10).first)
            #expect(letter.eventID == "e0" && letter.sink == "hook" && letter.attempts == 3)
            #expect(letter.error == "HTTP 410: gone" && letter.at == t0.addingTimeInterval(40) && letter.event == events[0])
            #expect(try store.deadLetters(limit: 10).count == 1)
            #expect(try Self.outbox(store) == ["hook dead 1", "hook delivered 1"])
        }
    }

    /// A result for an entry the outbox does not have (pruned meanwhile) changes nothing.
    @Test(arguments: StoreKind.all)
    func aResultForAnEntryTheOutboxDoesNotHaveChangesNothing(_ kind: StoreKind) throws {
        try kind.withStore { store in
            try store.commit(alerts: [], events: Self.events(1), health: nil, at: Samples.now)
            let before = try StoreSnapshot(store, sinks: ["hook", "mail"])
            try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "mail", status: .delivered, attempts: 1, at: Samples.now))
            try store.recordDelivery(
                DeliveryResult(eventID: "unknown", sink: "hook", status: .dead, attempts: 1, error: "x", at: Samples.now))
            #expect(try StoreSnapshot(store, sinks: ["hook", "mail"]) == before)
            #expect(try store.deadLetters(limit: 10).isEmpty)
        }
    }

    @Test(arguments: StoreKind.all)
    func anEventAboutARequestTakesTheWholeObjectTheStoreHasForIt(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let whole: JSONValue = ["flag": true, "note": "позвонить", "items": [["sku": "a", "qty": 2]]]
            let now = Samples.now
            func request(_ id: String) -> CancellationRequest {
                CancellationRequest(
                    marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
                    deadline: now.addingTimeInterval(600), raw: whole)
            }
            func firing(_ request: CancellationRequest) -> AlertEvent {
                AlertEvent(
                    id: "e-\(request.id)", kind: .firing, rule: "r", severity: .warning, source: request.source,
                    marketplace: request.marketplace, request: request, occurredAt: now, message: "m", sinks: ["memory"])
            }
            let a = request("a")
            var pruned = a
            pruned.raw = ["flag": true]
            var unknown = request("never-saved")
            unknown.raw = ["flag": true]
            try store.commit(
                StoreChanges(
                    tracked: [TrackedRequest(request: a, status: .pending, firstSeen: now, lastSeen: now)],
                    events: [firing(pruned), firing(unknown)], eventsTakingSavedRaw: ["e-a", "e-never-saved"]),
                at: now)
            let queued = try store.dueDeliveries(sink: "memory", now: now, limit: 10).deliveries.map(\.event)
            #expect(queued.first { $0.id == "e-a" }?.request?.raw == whole)
            #expect(queued.first { $0.id == "e-a" }?.request?.order == "order-a")
            #expect(queued.first { $0.id == "e-never-saved" }?.request?.raw == ["flag": true], "no saved object: it keeps what it had")
        }
    }

    /// The object comes from an earlier commit as well; only the events named take it,
    /// each of their sinks' entries, and nothing else of the event changes.
    @Test(arguments: StoreKind.all)
    func onlyTheEventsNamedTakeTheSavedObjectAndOnlyItsRawObject(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let saved = Samples.tracked("a")
            try store.save([saved], health: nil)
            let paths = RawPaths([["nested", "flag"]])
            var memory = saved.pruned(to: paths)
            memory.status = .rejected
            memory.request.state = .rejected
            memory.closedAt = Samples.now.addingTimeInterval(60)
            func event(_ id: String, kind: AlertEvent.Kind, request: CancellationRequest?) -> AlertEvent {
                AlertEvent(
                    id: id, kind: kind, rule: request == nil ? "" : "r", severity: .warning, source: "ozon-main", marketplace: .ozon,
                    request: request, outcome: kind == .resolved ? .rejected : nil, occurredAt: Samples.now.addingTimeInterval(60),
                    message: "m", sinks: ["hook", "mail"])
            }
            let named = event("named", kind: .resolved, request: memory.request)
            let unnamed = event("unnamed", kind: .resolved, request: memory.request)
            let sourceEvent = event("source", kind: .sourceDown, request: nil)
            try store.commit(
                StoreChanges(tracked: [memory], events: [named, unnamed, sourceEvent], eventsTakingSavedRaw: ["named", "source"]),
                at: Samples.now.addingTimeInterval(60))

            var expected = named
            expected.request?.rawObject = saved.request.rawObject
            for sink in ["hook", "mail"] {
                let queued = try store.dueDeliveries(sink: sink, now: .distantFuture, limit: 10).deliveries.map(\.event)
                let took = try #require(queued.first { $0.id == "named" })
                #expect(took == expected, "\(sink)")
                #expect(took.request?.state == .rejected && took.request?.raw == saved.request.raw)
                #expect(queued.first { $0.id == "unnamed" } == unnamed)
                #expect(queued.first { $0.id == "source" } == sourceEvent)
            }
            #expect(try store.loadTracked().first?.request.rawObject.jsonBytes == saved.request.rawObject.jsonBytes)
        }
    }
}
