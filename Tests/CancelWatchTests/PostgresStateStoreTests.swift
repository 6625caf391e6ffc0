import CancelWatchTesting
import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// The PostgreSQL state store against a real server (the test process's throwaway cluster):
/// its schema, what it keeps, its outbox, and what it says when the server is not there.
/// Store calls block their thread while the database answers: they run off Swift's pool.
@Suite struct PostgresStateStoreTests {
    static let now = Date(timeIntervalSince1970: 1_764_000_000.123456)
    static let whole: JSONValue = ["flag": true, "note": "позвонить", "items": [["sku": "a", "qty": 2]], "big": 9_007_199_254_740_993]

    static func request(_ id: String, raw: JSONValue = whole) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", reasonID: "5", logistics: "fbs", createdAt: now.addingTimeInterval(-600),
            deadline: now.addingTimeInterval(3600), raw: raw)
    }

    static func event(_ id: String, request: CancellationRequest?, sinks: [String] = ["hook"]) -> AlertEvent {
        AlertEvent(
            id: id, kind: .firing, rule: "final-hour", severity: .critical, source: "ozon-main", marketplace: .ozon, request: request,
            occurredAt: now, message: "ozon \(request?.order ?? "-") auto-approves in 1h", sinks: sinks)
    }

    @Test func aFreshDatabaseIsMigratedToTheCurrentSchemaWhenTheStoreOpens() async throws {
        let location = try await PostgresStores.freshLocation()
        let store = try await PostgresStores.open(location)
        let current = PostgresStateStore.schemaVersion
        #expect(try await PostgresStores.query("SELECT max(version) FROM cancelwatch_schema", at: location) == ["\(current)"])
        let tables = try await PostgresStores.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", at: location)
        #expect(tables == ["alerts", "answers", "cancelwatch_schema", "leases", "outbox", "replicas", "requests", "source_health"])
        #expect(try await offPool { try store.loadTracked().isEmpty && store.outboxCounts().isEmpty })
        // Opening again migrates nothing.
        _ = try await PostgresStores.open(location)
        #expect(try await PostgresStores.query("SELECT count(*) FROM cancelwatch_schema", at: location) == ["\(current)"])
    }

    @Test func storesOpeningTheSameFreshDatabaseAtOnceAllOpenWithOneSchemaVersion() async throws {
        let location = try await PostgresStores.freshLocation()
        // Each opens on a thread of its own, released together.
        let start = DispatchSemaphore(value: 0)
        let opened = (0..<4).map { _ in
            Task { try await offPool { () throws -> PostgresStateStore in
                start.wait()
                return try PostgresStateStore(location: location)
            } }
        }
        for _ in opened { start.signal() }
        for store in opened { _ = try await store.value }
        let current = PostgresStateStore.schemaVersion
        #expect(
            try await PostgresStores.query("SELECT count(*), max(version) FROM cancelwatch_schema", at: location) == ["\(current)|\(current)"])
    }

    @Test func requestsAlertStatesHealthAndEventsCommittedTogetherLoadBackAsTheyWent() async throws {
        let store = try await PostgresStores.fresh()
        // Ids and error texts from outside may hold a NUL, which PostgreSQL's text cannot.
        let tracked = [
            TrackedRequest(request: Self.request("a"), status: .pending, firstSeen: Self.now, lastSeen: Self.now.addingTimeInterval(60)),
            TrackedRequest(
                request: Self.request("b\u{0}c"), status: .approved, firstSeen: Self.now, lastSeen: Self.now,
                closedAt: Self.now.addingTimeInterval(30)),
        ]
        let alerts = [
            AlertState(
                request: tracked[0].key, rule: "final-hour", firings: 2, repeats: 1, active: true, lastFiredAt: Self.now,
                nextRepeatAt: Self.now.addingTimeInterval(900), heldUntil: nil, closed: false),
            AlertState(request: tracked[1].key, rule: "final-hour", firings: 1, closed: true),
        ]
        let health = [
            SourceHealth(
                source: "ozon-main", marketplace: .ozon, lastPollAt: Self.now, lastSuccessAt: Self.now.addingTimeInterval(-60),
                consecutiveFailures: 3, lastError: "HTTP 503\u{0}: Service Unavailable", down: true, downCount: 2),
            SourceHealth(source: "red-shop", marketplace: .xiaohongshu),
        ]
        let events = [Self.event("e\u{0}1", request: tracked[0].request, sinks: ["hook", "mail"]), Self.event("e2", request: nil)]
        try await offPool {
            try store.commit(StoreChanges(tracked: tracked, alerts: alerts, events: events, health: health), at: Self.now)
        }
        let (loadedTracked, loadedAlerts, loadedHealth) = try await offPool {
            (try store.loadTracked(), try store.loadAlerts(), try store.loadHealth())
        }
        #expect(loadedTracked.sorted { $0.key < $1.key } == tracked.sorted { $0.key < $1.key })
        #expect(Set(loadedAlerts) == Set(alerts))
        #expect(loadedHealth == health)
        let (hook, mail) = try await offPool {
            (try store.dueDeliveries(sink: "hook", now: Self.now, limit: 10), try store.dueDeliveries(sink: "mail", now: Self.now, limit: 10))
        }
        #expect(hook.deliveries.map(\.event) == events)
        #expect(mail.deliveries.map(\.event) == [events[0]])
        #expect(hook.deliveries.allSatisfy { $0.attempts == 0 && $0.nextAttemptAt == Self.now })
    }

    @Test func anEventTakingTheSavedRawGetsTheWholeObjectTheDatabaseHasForItsRequest() async throws {
        let store = try await PostgresStores.fresh()
        // Escapes PostgreSQL's jsonb would refuse or rewrite come through as they were.
        let rawText = #"{"package_id":"PKG\u0000A","bad":"\ud800","n":1.50,"z":1,"a":2}"#
        var saved = Self.request("a")
        saved.rawObject = try RawObject(json: Array(rawText.utf8))
        let unknown = {
            var request = Self.request("never-saved")
            request.raw = ["flag": true]
            return request
        }()
        let whole = TrackedRequest(request: saved, status: .pending, firstSeen: Self.now, lastSeen: Self.now)
        try await offPool { try store.commit(StoreChanges(tracked: [whole]), at: Self.now) }
        // Memory keeps a pruned object: the saved one stays, and the event gets it.
        let pruned = whole.pruned(to: RawPaths([["z"]]))
        #expect(!pruned.hasWholeRaw)
        try await offPool {
            try store.commit(
                StoreChanges(
                    tracked: [pruned], events: [Self.event("e-a", request: pruned.request), Self.event("e-never", request: unknown)],
                    eventsTakingSavedRaw: ["e-a", "e-never"]),
                at: Self.now)
        }
        let queued = try await offPool { try store.dueDeliveries(sink: "hook", now: Self.now, limit: 10).deliveries.map(\.event) }
        let expected = try RawObject(json: Array(rawText.utf8))
        #expect(queued.first { $0.id == "e-a" }?.request?.raw == expected.value)
        #expect(queued.first { $0.id == "e-a" }?.request?.order == "order-a")
        #expect(queued.first { $0.id == "e-never" }?.request?.raw == ["flag": true], "no saved object: it keeps what it had")
        #expect(try await offPool { try store.loadTracked().first?.request.raw } == expected.value)
    }

    @Test func theOutboxGoesFromDueThroughRetryDeliveredAndDeadToPruned() async throws {
        let store = try await PostgresStores.fresh()
        let events = (0..<3).map { Self.event("e\($0)", request: Self.request("r\($0)"), sinks: ["hook", "mail"]) }
        try await offPool {
            try store.commit(StoreChanges(events: events), at: Self.now)
            // Queued once per event and sink, whatever happens.
            try store.commit(StoreChanges(events: [events[0]]), at: Self.now.addingTimeInterval(5))
        }
        #expect(try await offPool { try store.outboxCounts() } == [
            OutboxCount(sink: "hook", status: "pending", count: 3), OutboxCount(sink: "mail", status: "pending", count: 3),
        ])
        #expect(try await offPool { try store.dueDeliveries(sink: "hook", now: Self.now, limit: 2).deliveries.count } == 2)
        #expect(try await offPool { try store.dueDeliveries(sink: "hook", now: Self.now.addingTimeInterval(-1), limit: 10) }.deliveries.isEmpty)

        let later = Self.now.addingTimeInterval(120)
        try await offPool {
            try store.recordDelivery(DeliveryResult(eventID: "e0", sink: "hook", status: .delivered, attempts: 1, at: Self.now))
            try store.recordDelivery(
                DeliveryResult(eventID: "e1", sink: "hook", status: .retry, attempts: 1, nextAttemptAt: later, error: "HTTP 503", at: Self.now))
            try store.recordDelivery(
                DeliveryResult(eventID: "e2", sink: "hook", status: .dead, attempts: 2, error: "HTTP 404\u{0}", at: Self.now))
        }
        #expect(try await offPool { try store.dueDeliveries(sink: "hook", now: Self.now, limit: 10) }.deliveries.isEmpty)
        let retried = try await offPool { try store.dueDeliveries(sink: "hook", now: later, limit: 10).deliveries }
        #expect(retried.map(\.event.id) == ["e1"] && retried.first?.attempts == 1)
        #expect(try await offPool { try store.nextDeliveryAttempt(sink: "hook") } == later)
        #expect(try await offPool { try store.nextDeliveryAttempt(sink: "mail") } == Self.now)
        #expect(try await offPool { try store.outboxCounts() } == [
            OutboxCount(sink: "hook", status: "dead", count: 1), OutboxCount(sink: "hook", status: "delivered", count: 1),
            OutboxCount(sink: "hook", status: "pending", count: 1), OutboxCount(sink: "mail", status: "pending", count: 3),
        ])
        let letters = try await offPool { try store.deadLetters(limit: 5) }
        #expect(letters.map(\.eventID) == ["e2"] && letters.first?.error == "HTTP 404\u{0}" && letters.first?.event?.id == "e2")

        // Nothing finished before the cut-offs: nothing pruned; then the delivered one, then the dead one.
        #expect(try await offPool { try store.pruneOutbox(deliveredBefore: Self.now, deadBefore: Self.now) } == 0)
        #expect(try await offPool { try store.pruneOutbox(deliveredBefore: later, deadBefore: Self.now) } == 1)
        #expect(try await offPool { try store.pruneOutbox(deliveredBefore: later, deadBefore: later) } == 1)
        #expect(try await offPool { try store.outboxCounts() } == [
            OutboxCount(sink: "hook", status: "pending", count: 1), OutboxCount(sink: "mail", status: "pending", count: 3),
        ])
    }

    @Test func aTimeThatIsNotANumberIsRefusedAndNothingOfTheCommitIsWritten() async throws {
        let store = try await PostgresStores.fresh()
        let health = SourceHealth(source: "s", marketplace: .ozon, lastPollAt: Date(timeIntervalSince1970: .nan), consecutiveFailures: 1)
        let tracked = TrackedRequest(request: Self.request("a"), status: .pending, firstSeen: Self.now, lastSeen: Self.now)
        let error = try await offPool { () -> StoreError? in
            do {
                try store.commit(StoreChanges(tracked: [tracked], health: [health]), at: Self.now)
                return nil
            } catch let error as StoreError {
                return error
            }
        }
        #expect(error?.message.contains("not a finite number") == true, "\(String(describing: error))")
        #expect(try await offPool { try store.loadTracked().isEmpty && store.loadHealth().isEmpty })
    }

    @Test func aDatabaseWrittenByANewerCancelwatchIsRefused() async throws {
        let location = try await PostgresStores.freshLocation()
        _ = try await PostgresStores.open(location)
        _ = try await PostgresStores.query("INSERT INTO cancelwatch_schema VALUES (99, 0)", at: location)
        await #expect(throws: StoreError.self) { try await PostgresStores.open(location) }
        do {
            _ = try await PostgresStores.open(location)
        } catch let error as StoreError {
            #expect(error.message.contains("written by a newer cancelwatch (schema 99)"), "\(error.message)")
        }
    }

    @Test func aServerThatCannotBeReachedAtStartIsAnErrorNamingTheHostAndNeverThePassword() async throws {
        let (port, hold) = try #require(PostgresStores.refusedPort())
        let password = "hunter2-Pa55word"
        let location = PostgresLocation(
            user: "watcher", password: Secret(password), host: "127.0.0.1", port: port, database: "cw", sslMode: .disable)
        do {
            _ = try await PostgresStores.open(location)
            Issue.record("a store opened with no server")
        } catch let error as StoreError {
            #expect(error.message.contains("cannot connect to 127.0.0.1:\(port)"), "\(error.message)")
            #expect(error.message.contains("postgres://watcher@127.0.0.1:\(port)/cw"), "\(error.message)")
            #expect(!error.message.contains(password) && !error.message.contains("Pa55"), "\(error.message)")
        }
        withExtendedLifetime(hold) {}
    }
}

/// A PostgreSQL store blocks the thread that calls it, never Swift's pool: the engine's
/// actors call it from threads of their own, and a connection lost is made again.
@Suite struct PostgresStoreThreadsTests {
    static let now = Date(timeIntervalSince1970: 1_764_000_000)

    @Test func ledgersWaitingOnALockedTableLeaveTheCooperativePoolFree() async throws {
        let location = try await PostgresStores.freshLocation()
        let clock = ManualClock(Self.now)
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // More ledgers writing at once than the cooperative pool has threads, each with a
        // connection of its own (as replicas have).
        let pool = ProcessInfo.processInfo.activeProcessorCount
        let writers = pool + 1
        let ledgers = try await offPool {
            try (0..<writers).map { _ in
                // The commits wait on the lock as long as the test holds it (a replica's would
                // give up after 5 s).
                try Ledger(
                    rules: [ThresholdRule(name: "final-hour", threshold: 3600)],
                    store: PostgresStateStore(
                        location: location, instance: PostgresStateStore.newInstance(), readOnly: false,
                        process: PostgresStateStore.thisProcess, logger: quiet, serverLimits: false),
                    clock: clock, logger: quiet)
            }
        }

        // Another connection holds the requests table: every commit waits for it.
        let release = try await PostgresStores.holding(at: location) { (session) throws(StoreError) in
            try session.execute("LOCK TABLE requests IN EXCLUSIVE MODE")
        }
        let commits = applyOneListingEach(ledgers, clock: clock)
        // Once as many commits as the pool has threads wait on the lock (the server says so),
        // a task on the pool must still run before the holder lets go.
        let (waiting, poolRan) = try await offPool {
            let waiting = try PostgresStores.waitForSessionsWaitingOnLocks(pool, at: location)
            let ran = DispatchSemaphore(value: 0)
            Task.detached { ran.signal() }
            let poolRan = ran.wait(timeout: .now() + 120) == .success
            release()
            return (waiting, poolRan)
        }
        #expect(waiting && poolRan)
        for commit in commits { await commit.value }
        let store = try await PostgresStores.open(location)
        #expect(try await offPool { try store.outboxCounts() } == [OutboxCount(sink: "memory", status: "pending", count: writers)])
    }

    @Test func aConnectionTheServerDropsIsMadeAgainOnTheNextCall() async throws {
        let location = try await PostgresStores.freshLocation()
        let store = try await PostgresStores.open(location)
        let request = PostgresStateStoreTests.request("a")
        try await offPool {
            try store.save([TrackedRequest(request: request, status: .pending, firstSeen: Self.now, lastSeen: Self.now)], health: nil)
        }
        let dropped = try await PostgresStores.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            at: location)
        #expect(dropped == ["t"])
        // The call that finds the connection gone may fail; the one after it connects again.
        _ = try? await offPool { try store.loadTracked() }
        #expect(try await offPool { try store.loadTracked() }.map(\.request.id) == ["a"])
    }

    @Test func aServerThatStopsAnsweringFailsTheCallAfterTheDeadlineAndTheNextCallConnectsAgain() async throws {
        let location = try await PostgresStores.freshLocation()
        _ = try await PostgresStores.open(location)
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = try await offPool { try StateDatabaseConnection(location: location, logger: quiet, answerDeadline: 1) }
        let backend = try #require(
            try await PostgresStores.query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", at: location
            ).first.flatMap { Int32($0) })
        // The server process serving the connection stops, as a host cut off by the network does.
        #expect(kill(backend, SIGSTOP) == 0)
        defer { kill(backend, SIGCONT) }
        let failure = try await offPool { () -> String? in
            do {
                try connection.withSession { (session) throws(StoreError) in try session.execute("SELECT 1") }
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(failure?.hasSuffix(": no answer within 1s") == true, "\(failure ?? "answered")")
        let answered = try await offPool {
            try connection.withSession { (session) throws(StoreError) in try session.query("SELECT 1").rows.count }
        }
        #expect(answered == 1)
    }

    @Test func whileTheDatabaseRefusesConnectionsCallsFailAtOnceAndAConnectIsTriedAgainAfterThePause() async throws {
        let location = try await PostgresStores.freshLocation()
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // One pausing longer than the test lasts (no timing to race), one pausing briefly.
        let (long, brief) = try await offPool {
            (
                try StateDatabaseConnection(location: location, logger: quiet, reconnectPause: 3600),
                try StateDatabaseConnection(location: location, logger: quiet, reconnectPause: 0.2)
            )
        }
        @Sendable func select(_ connection: StateDatabaseConnection) async throws -> String? {
            try await offPool { () -> String? in
                do {
                    try connection.withSession { (session) throws(StoreError) in try session.execute("SELECT 1") }
                } catch {
                    return "\(error)"
                }
                return nil
            }
        }
        _ = try await offPool {
            try PostgresCluster.shared().query(
                """
                ALTER DATABASE \(location.database) ALLOW_CONNECTIONS false;
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(location.database)'
                """, database: "postgres")
        }
        // The call that finds its connection gone fails (the server's word may come a little
        // later); a call after that tries to connect and is refused.
        var refused: String?
        for connection in [long, brief] {
            try await waitFor {
                refused = try await select(connection)
                return refused?.contains("cannot connect to") == true
            }
        }
        #expect(refused?.hasSuffix("is not currently accepting connections (SQLSTATE 55000)") == true, "\(refused ?? "")")
        let attempts = long.connections
        // Within the pause: the same error at once, and no connect, even once the database is back.
        for _ in 0..<3 { #expect(try await select(long) == refused) }
        _ = try await offPool {
            try PostgresCluster.shared().query("ALTER DATABASE \(location.database) ALLOW_CONNECTIONS true", database: "postgres")
        }
        for _ in 0..<3 { #expect(try await select(long) == refused) }
        #expect(long.connections == attempts)
        // After the pause: connected again.
        try await waitFor { try await select(brief) == nil }
    }
}
