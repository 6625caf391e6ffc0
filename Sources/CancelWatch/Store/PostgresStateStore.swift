import Foundation
import Logging
import PostgresNIO

/// The state in a PostgreSQL database (`state: postgres://…`), which several replicas can
/// share: the tables and meaning of ``SQLiteStateStore``. Keys and error texts are kept as
/// their UTF-8 bytes (`bytea`): they may hold a NUL, which PostgreSQL's text cannot, and they
/// compare and sort byte for byte, as in the state file. Times are seconds since 1970 as
/// doubles, as in the state file.
///
/// Every call blocks its thread until the database answers (``StateDatabaseConnection``).
public final class PostgresStateStore: StateStore {
    /// The schema versions, in order: version N is `migrations[N - 1]`, one statement each.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE requests (
                source bytea NOT NULL,
                id bytea NOT NULL,
                fields text NOT NULL,
                raw text NOT NULL,
                status text NOT NULL,
                first_seen double precision NOT NULL,
                last_seen double precision NOT NULL,
                closed_at double precision,
                PRIMARY KEY (source, id)
            )
            """,
            """
            CREATE TABLE source_health (
                source bytea PRIMARY KEY,
                marketplace text NOT NULL,
                last_poll_at double precision,
                last_success_at double precision,
                consecutive_failures bigint NOT NULL,
                last_error bytea,
                down boolean NOT NULL,
                down_count bigint NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE alerts (
                source bytea NOT NULL,
                request_id bytea NOT NULL,
                rule bytea NOT NULL,
                firings bigint NOT NULL,
                repeats bigint NOT NULL,
                active boolean NOT NULL,
                last_fired_at double precision,
                next_repeat_at double precision,
                held_until double precision,
                closed boolean NOT NULL,
                PRIMARY KEY (source, request_id, rule)
            )
            """,
            """
            CREATE TABLE outbox (
                event_id bytea NOT NULL,
                sink bytea NOT NULL,
                event text NOT NULL,
                status text NOT NULL,
                attempts bigint NOT NULL,
                next_attempt_at double precision NOT NULL,
                created_at double precision NOT NULL,
                finished_at double precision,
                last_error bytea,
                sinks text,
                queued bigint GENERATED ALWAYS AS IDENTITY,
                PRIMARY KEY (event_id, sink)
            )
            """,
            "CREATE INDEX outbox_due ON outbox (sink, status, next_attempt_at)",
        ],
        // Outbox entries claimed by one replica at a time (`dueDeliveries`).
        [
            "ALTER TABLE outbox ADD COLUMN claimed_by bytea, ADD COLUMN claimed_until double precision",
        ],
        // Which replica polls which source (PostgresStateStore+Leases.swift); times by the
        // database's clock.
        [
            "CREATE TABLE replicas (instance text PRIMARY KEY, seen_at double precision NOT NULL)",
            """
            CREATE TABLE leases (
                source bytea PRIMARY KEY,
                holder text NOT NULL,
                expires_at double precision NOT NULL,
                token bigint NOT NULL
            )
            """,
            "CREATE SEQUENCE lease_tokens",
        ],
        // Which process runs each replica: a second one under a live replica's instance id
        // is refused (PostgresStateStore+Leases.swift).
        [
            "ALTER TABLE replicas ADD COLUMN process text NOT NULL DEFAULT ''",
        ],
        // The answer journal (PostgresStateStore+Answers.swift).
        [
            """
            CREATE TABLE answers (
                source bytea NOT NULL,
                request_id bytea NOT NULL,
                order_id bytea NOT NULL,
                decision text NOT NULL,
                comment bytea NOT NULL,
                actor bytea NOT NULL,
                actor_kind text NOT NULL,
                state text NOT NULL,
                started_at double precision NOT NULL,
                finished_at double precision,
                message bytea NOT NULL,
                PRIMARY KEY (source, request_id)
            )
            """,
            "CREATE INDEX answers_by_actor ON answers (actor_kind, started_at)",
        ],
        // Grouped deliveries: a member's entry names its group's (`formGroup`).
        [
            "ALTER TABLE outbox ADD COLUMN group_id bytea",
            "CREATE INDEX outbox_groups ON outbox (group_id, sink) WHERE group_id IS NOT NULL",
        ],
    ]
    static var schemaVersion: Int { migrations.count }
    /// The advisory lock every replica takes while it migrates ("cwschema").
    static let migrationLock: Int64 = 0x6377_7363_6865_6D61

    public let location: PostgresLocation
    /// The replica this store speaks for: outbox entries it takes are claimed in this name.
    public let instance: String
    /// The process it runs in (``thisProcess``): two processes never act as one replica.
    let process: String
    /// Whom its outbox claims name: the replica in this process (two processes under one
    /// instance id never take each other's claims for their own).
    var claimant: ByteBuffer { bytes("\(instance)/\(process)") }
    let database: StateDatabaseConnection

    /// This process, as the `replicas` table records it: the pid and a random part.
    public static let thisProcess = "\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"

    /// Connects to the database and brings its schema up to date (in one transaction, under
    /// an advisory lock, so replicas starting together migrate once). Throws naming the
    /// server when it cannot be reached, and a database written by a newer cancelwatch.
    /// Two stores open at once must not share an `instance` (the default is new each time).
    /// A reader (`readOnly`, as `status` is) changes nothing: it needs the schema there, up to date.
    public convenience init(
        location: PostgresLocation, instance: String = PostgresStateStore.newInstance(), readOnly: Bool = false,
        process: String = PostgresStateStore.thisProcess,
        logger: Logger = Logger(label: "cancelwatch.state", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(StoreError) {
        try self.init(location: location, instance: instance, readOnly: readOnly, process: process, logger: logger, serverLimits: true)
    }

    /// `serverLimits`: see ``StateDatabaseConnection/init(location:logger:answerDeadline:reconnectPause:serverLimits:)``
    /// (off only where a test holds a lock on purpose for longer than a replica would wait).
    init(
        location: PostgresLocation, instance: String, readOnly: Bool, process: String, logger: Logger, serverLimits: Bool
    ) throws(StoreError) {
        self.location = location
        self.instance = instance
        self.process = process
        database = try StateDatabaseConnection(location: location, logger: logger, serverLimits: serverLimits)
        if readOnly {
            try checkVersion()
        } else {
            try migrate()
        }
    }

    private func checkVersion() throws(StoreError) {
        try database.withSession { (session) throws(StoreError) in
            guard try session.tableExists("cancelwatch_schema") else {
                throw StoreError("state database \(location) holds no cancelwatch state yet: run `cancelwatch once` or `cancelwatch run` first")
            }
            var version = 0
            for row in try session.query("SELECT COALESCE(MAX(version), 0) FROM cancelwatch_schema").rows {
                version = Int(try session.decode(row, as: Int64.self))
            }
            if version > Self.schemaVersion { throw newer(version) }
            if version < Self.schemaVersion {
                throw StoreError(
                    "state database \(location) is at schema \(version): `cancelwatch run` or `cancelwatch once` of this version brings it up to date")
            }
        }
    }

    private func newer(_ version: Int) -> StoreError {
        StoreError("state database \(location) was written by a newer cancelwatch (schema \(version)); upgrade cancelwatch")
    }

    /// A name no other store has: the host, the process and a random part, as ``InstanceID`` makes them.
    public static func newInstance() -> String {
        InstanceID.generated(host: ProcessInfo.processInfo.hostName, pid: getpid()).value
    }

    private func migrate() throws(StoreError) {
        try database.transaction { (session) throws(StoreError) in
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.migrationLock))")
            try session.execute(
                "CREATE TABLE IF NOT EXISTS cancelwatch_schema (version bigint PRIMARY KEY, applied_at double precision NOT NULL)")
            var current = 0
            for row in try session.query("SELECT COALESCE(MAX(version), 0) FROM cancelwatch_schema").rows {
                current = Int(try session.decode(row, as: Int64.self))
            }
            if current > Self.schemaVersion { throw newer(current) }
            for version in (current + 1)..<(Self.schemaVersion + 1) {
                for statement in Self.migrations[version - 1] { try session.execute(PostgresQuery(unsafeSQL: statement)) }
                try session.execute(
                    "INSERT INTO cancelwatch_schema (version, applied_at) VALUES (\(Int64(version)), \(Date().timeIntervalSince1970))")
            }
        }
    }

    // MARK: Requests

    public func loadTracked() throws(StoreError) -> [TrackedRequest] {
        try loadTracked(keeping: .everything)
    }

    public func loadTracked(keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] {
        try loadTracked(keeping: paths)
    }

    public func loadTracked(source: String, keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] {
        try loadTracked(keeping: paths, source: source)
    }

    /// Only `source`'s, when given.
    private func loadTracked(keeping paths: RawPaths, source only: String? = nil) throws(StoreError) -> [TrackedRequest] {
        let query: PostgresQuery =
            if let only {
                "SELECT source, id, fields, raw, status, first_seen, last_seen, closed_at FROM requests WHERE source = \(bytes(only))"
            } else {
                "SELECT source, id, fields, raw, status, first_seen, last_seen, closed_at FROM requests"
            }
        return try database.withSession { (session) throws(StoreError) in
            var result: [TrackedRequest] = []
            let rows = try session.query(query).rows
            for row in rows {
                let (sourceBytes, idBytes, fields, raw, statusText, firstSeen, lastSeen, closedAt) = try session.decode(
                    row, as: (ByteBuffer, ByteBuffer, String, String, String, Double, Double, Double?).self)
                let source = String(buffer: sourceBytes)
                let id = String(buffer: idBytes)
                let request: CancellationRequest
                do throws(StoreError) {
                    request = try CancellationRequest(
                        storedFields: fields, raw: (try? RawObject(json: Array(raw.utf8))) ?? RawObject(.object([:])))
                } catch {
                    throw StoreError("state database \(location): request \(source)/\(id) does not read: \(error.description)")
                }
                guard let status = TrackedStatus(rawValue: statusText), sameBytes(request.source, source), sameBytes(request.id, id)
                else {
                    throw StoreError("state database \(location): request \(source)/\(id) has values this cancelwatch does not know")
                }
                result.append(
                    TrackedRequest(
                        request: request, status: status, firstSeen: Date(timeIntervalSince1970: firstSeen),
                        lastSeen: Date(timeIntervalSince1970: lastSeen), closedAt: closedAt.map(Date.init(timeIntervalSince1970:))
                    ).pruned(to: paths))
            }
            return result
        }
    }

    public func commit(_ changes: StoreChanges, at now: Date) throws(StoreError) {
        try database.transaction { (session) throws(StoreError) in
            try renew(changes.leases, in: session)
            for item in changes.tracked { try save(item, in: session) }
            for alert in changes.alerts { try save(alert, in: session) }
            for event in changes.events {
                try queue(event, takingSavedRaw: changes.eventsTakingSavedRaw.contains(event.id), at: now, in: session)
            }
            for health in changes.health { try save(health, in: session) }
        }
    }

    private func save(_ item: TrackedRequest, in session: StateDatabaseSession) throws(StoreError) {
        let r = item.request
        let fields = try r.storedFields()
        let raw = String(decoding: r.rawObject.jsonBytes, as: UTF8.self)
        let firstSeen = try seconds(item.firstSeen)
        let lastSeen = try seconds(item.lastSeen)
        let closedAt = try seconds(item.closedAt)
        // A pruned raw object leaves the whole one already saved as it is.
        let keepSavedRaw = !item.hasWholeRaw
        try session.execute(
            """
            INSERT INTO requests (source, id, fields, raw, status, first_seen, last_seen, closed_at)
            VALUES (\(bytes(r.source)), \(bytes(r.id)), \(fields), \(raw), \(item.status.rawValue), \(firstSeen), \(lastSeen),
                \(closedAt))
            ON CONFLICT (source, id) DO UPDATE SET
                fields = EXCLUDED.fields, status = EXCLUDED.status,
                last_seen = EXCLUDED.last_seen, closed_at = EXCLUDED.closed_at,
                raw = CASE WHEN \(keepSavedRaw) THEN requests.raw ELSE EXCLUDED.raw END
            """)
    }

    private func save(_ alert: AlertState, in session: StateDatabaseSession) throws(StoreError) {
        let lastFiredAt = try seconds(alert.lastFiredAt)
        let nextRepeatAt = try seconds(alert.nextRepeatAt)
        let heldUntil = try seconds(alert.heldUntil)
        try session.execute(
            """
            INSERT INTO alerts (source, request_id, rule, firings, repeats, active, last_fired_at, next_repeat_at, held_until, closed)
            VALUES (\(bytes(alert.request.source)), \(bytes(alert.request.id)), \(bytes(alert.rule)), \(Int64(alert.firings)),
                \(Int64(alert.repeats)), \(alert.active), \(lastFiredAt), \(nextRepeatAt), \(heldUntil), \(alert.closed))
            ON CONFLICT (source, request_id, rule) DO UPDATE SET
                firings = EXCLUDED.firings, repeats = EXCLUDED.repeats, active = EXCLUDED.active,
                last_fired_at = EXCLUDED.last_fired_at, next_repeat_at = EXCLUDED.next_repeat_at,
                held_until = EXCLUDED.held_until, closed = EXCLUDED.closed
            """)
    }

    private func save(_ health: SourceHealth, in session: StateDatabaseSession) throws(StoreError) {
        let lastPollAt = try seconds(health.lastPollAt)
        let lastSuccessAt = try seconds(health.lastSuccessAt)
        try session.execute(
            """
            INSERT INTO source_health (source, marketplace, last_poll_at, last_success_at, consecutive_failures, last_error, down,
                down_count)
            VALUES (\(bytes(health.source)), \(health.marketplace.rawValue), \(lastPollAt), \(lastSuccessAt),
                \(Int64(health.consecutiveFailures)), \(health.lastError.map(bytes)), \(health.down),
                \(Int64(health.downCount)))
            ON CONFLICT (source) DO UPDATE SET
                marketplace = EXCLUDED.marketplace, last_poll_at = EXCLUDED.last_poll_at,
                last_success_at = EXCLUDED.last_success_at, consecutive_failures = EXCLUDED.consecutive_failures,
                last_error = EXCLUDED.last_error, down = EXCLUDED.down, down_count = EXCLUDED.down_count
            """)
    }

    /// Queues `event` once per sink (the same event id for the same sink is queued once,
    /// whatever happens). An event taking the saved raw object gets it in SQL: its text is
    /// written with a marker where the request's raw object goes, and the marker replaced by
    /// the row's `raw` (or, with no row, by what the event holds): the object is copied as
    /// its text, never read into memory.
    private func queue(_ event: AlertEvent, takingSavedRaw: Bool, at now: Date, in session: StateDatabaseSession)
        throws(StoreError)
    {
        let sinks = AlertEvent.outboxSinks(event.sinks)
        let queuedAt = try seconds(now)
        var text = try event.outboxText()
        var marker = ""
        var savedRawKey: RequestKey?
        var ownRaw = ""
        if takingSavedRaw, let request = event.request {
            let name = "cw-saved-raw-\(UUID().uuidString)"
            var marked = event
            marked.request?.rawObject = RawObject(.string(name))
            let markedText = try marked.outboxText()
            marker = "\"\(name)\""
            if markedText.components(separatedBy: marker).count == 2 {
                text = markedText
                savedRawKey = RequestKey(source: request.source, id: request.id)
                ownRaw = String(decoding: request.rawObject.jsonBytes, as: UTF8.self)
            }
        }
        for sink in event.sinks {
            if let key = savedRawKey {
                try session.execute(
                    """
                    INSERT INTO outbox (event_id, sink, event, sinks, status, attempts, next_attempt_at, created_at)
                    VALUES (\(bytes(event.id)), \(bytes(sink)),
                        replace(\(text), \(marker), COALESCE(
                            (SELECT raw FROM requests WHERE source = \(bytes(key.source)) AND id = \(bytes(key.id))), \(ownRaw))),
                        \(sinks), 'pending', 0, \(queuedAt), \(queuedAt))
                    ON CONFLICT (event_id, sink) DO NOTHING
                    """)
            } else {
                try session.execute(
                    """
                    INSERT INTO outbox (event_id, sink, event, sinks, status, attempts, next_attempt_at, created_at)
                    VALUES (\(bytes(event.id)), \(bytes(sink)), \(text), \(sinks), 'pending', 0, \(queuedAt), \(queuedAt))
                    ON CONFLICT (event_id, sink) DO NOTHING
                    """)
            }
        }
    }

    public func delete(_ keys: [RequestKey]) throws(StoreError) {
        try database.transaction { (session) throws(StoreError) in
            for key in keys {
                let source = bytes(key.source)
                let id = bytes(key.id)
                try session.execute("DELETE FROM requests WHERE source = \(source) AND id = \(id)")
                try session.execute("DELETE FROM alerts WHERE source = \(source) AND request_id = \(id)")
            }
        }
    }

    public func loadHealth() throws(StoreError) -> [SourceHealth] {
        try database.withSession { (session) throws(StoreError) in
            let rows = try session.query(
                """
                SELECT source, marketplace, last_poll_at, last_success_at, consecutive_failures, last_error, down, down_count
                FROM source_health ORDER BY source
                """
            ).rows
            var result: [SourceHealth] = []
            for row in rows {
                let (source, marketplace, lastPollAt, lastSuccessAt, failures, lastError, down, downCount) = try session.decode(
                    row, as: (ByteBuffer, String, Double?, Double?, Int64, ByteBuffer?, Bool, Int64).self)
                result.append(
                    SourceHealth(
                        source: String(buffer: source), marketplace: Marketplace(rawValue: marketplace) ?? .ozon,
                        lastPollAt: lastPollAt.map(Date.init(timeIntervalSince1970:)),
                        lastSuccessAt: lastSuccessAt.map(Date.init(timeIntervalSince1970:)), consecutiveFailures: Int(failures),
                        lastError: lastError.map { String(buffer: $0) }, down: down, downCount: Int(downCount)))
            }
            return result
        }
    }

    public func loadAlerts() throws(StoreError) -> [AlertState] {
        try loadAlerts(
            """
            SELECT source, request_id, rule, firings, repeats, active, last_fired_at, next_repeat_at, held_until, closed
            FROM alerts
            """)
    }

    public func loadAlerts(source: String) throws(StoreError) -> [AlertState] {
        try loadAlerts(
            """
            SELECT source, request_id, rule, firings, repeats, active, last_fired_at, next_repeat_at, held_until, closed
            FROM alerts WHERE source = \(bytes(source))
            """)
    }

    /// The alert states `query` returns as the columns of the `alerts` table, in order.
    private func loadAlerts(_ query: PostgresQuery) throws(StoreError) -> [AlertState] {
        try database.withSession { (session) throws(StoreError) in
            let rows = try session.query(query).rows
            var result: [AlertState] = []
            for row in rows {
                let (source, id, rule, firings, repeats, active, lastFiredAt, nextRepeatAt, heldUntil, closed) = try session.decode(
                    row, as: (ByteBuffer, ByteBuffer, ByteBuffer, Int64, Int64, Bool, Double?, Double?, Double?, Bool).self)
                result.append(
                    AlertState(
                        request: RequestKey(source: String(buffer: source), id: String(buffer: id)), rule: String(buffer: rule), firings: Int(firings),
                        repeats: Int(repeats), active: active, lastFiredAt: lastFiredAt.map(Date.init(timeIntervalSince1970:)),
                        nextRepeatAt: nextRepeatAt.map(Date.init(timeIntervalSince1970:)),
                        heldUntil: heldUntil.map(Date.init(timeIntervalSince1970:)), closed: closed))
            }
            return result
        }
    }

    // MARK: The outbox

    /// Due entries are claimed in one statement: those no one holds, those whose claim ran
    /// out and those this store holds already are locked (skipping any another replica is
    /// claiming at this moment) and marked as this store's until `now + claim`.
    public func dueDeliveries(sink: String, now: Date, limit: Int, claim: TimeInterval) throws(StoreError) -> DueDeliveries {
        let at = try seconds(now)
        let until = try seconds(now.addingTimeInterval(max(0, claim)))
        let me = claimant
        return try database.transaction { (session) throws(StoreError) in
            let rows = try session.query(
                """
                WITH due AS (
                    SELECT event_id FROM outbox
                    WHERE sink = \(bytes(sink)) AND status = 'pending' AND next_attempt_at <= \(at)
                        AND (claimed_until IS NULL OR claimed_until <= \(at) OR claimed_by = \(me))
                    ORDER BY next_attempt_at, created_at, queued LIMIT \(Int64(max(0, limit)))
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE outbox SET claimed_by = \(me), claimed_until = \(until)
                FROM due WHERE outbox.sink = \(bytes(sink)) AND outbox.event_id = due.event_id
                RETURNING outbox.event_id, outbox.event, outbox.attempts, outbox.next_attempt_at, outbox.sinks, outbox.created_at,
                    outbox.queued
                """
            ).rows
            typealias Claimed = (id: String, text: String, attempts: Int64, nextAttemptAt: Double, sinks: String?, order: (Double, Double, Int64))
            var claimed: [Claimed] = []
            for row in rows {
                let (idBytes, text, attempts, nextAttemptAt, sinks, createdAt, queued) = try session.decode(
                    row, as: (ByteBuffer, String, Int64, Double, String?, Double, Int64).self)
                claimed.append((String(buffer: idBytes), text, attempts, nextAttemptAt, sinks, (nextAttemptAt, createdAt, queued)))
            }
            // RETURNING keeps no order: oldest first again.
            claimed.sort { $0.order < $1.order }
            var result: [PendingDelivery] = []
            var unreadable: [(id: String, error: String)] = []
            for entry in claimed {
                do throws(StoreError) {
                    result.append(
                        PendingDelivery(
                            event: try AlertEvent(outboxText: entry.text, sinks: entry.sinks), sink: sink,
                            attempts: Int(entry.attempts), nextAttemptAt: Date(timeIntervalSince1970: entry.nextAttemptAt),
                            createdAt: Date(timeIntervalSince1970: entry.order.1)))
                } catch {
                    unreadable.append((entry.id, error.description))
                }
            }
            // An entry that cannot be read can never be sent: it becomes a dead letter (kept,
            // with the reason) instead of blocking the sink or failing every pass; a group's
            // members die with it (nothing else would ever finish them).
            for entry in unreadable {
                try session.execute(
                    """
                    UPDATE outbox SET status = 'dead', finished_at = \(at), claimed_until = NULL,
                        last_error = \(bytes("unreadable outbox entry: \(entry.error)"))
                    WHERE sink = \(bytes(sink))
                        AND (event_id = \(bytes(entry.id)) OR (group_id = \(bytes(entry.id)) AND status = 'grouped'))
                    """)
            }
            return DueDeliveries(
                deliveries: result,
                unreadable: unreadable.map {
                    "state database \(location): outbox entry \($0.id) for sink '\(sink)' is unreadable (\($0.error)); it is now a dead letter"
                },
                claimedUntil: Date(timeIntervalSince1970: until))
        }
    }

    public func nextDeliveryAttempt(sink: String, after: Date?) throws(StoreError) -> Date? {
        let floor = try after.map(seconds) ?? -Double.greatestFiniteMagnitude
        return try database.withSession { (session) throws(StoreError) in
            let rows = try session.query(
                """
                SELECT MIN(next) FROM (
                    SELECT CASE WHEN claimed_by IS DISTINCT FROM \(claimant) AND claimed_until > next_attempt_at
                        THEN claimed_until ELSE next_attempt_at END AS next
                    FROM outbox WHERE sink = \(bytes(sink)) AND status = 'pending'
                ) AS pending WHERE next > \(floor)
                """
            ).rows
            guard let row = rows.first else { return nil }
            return try session.decode(row, as: Double?.self).map(Date.init(timeIntervalSince1970:))
        }
    }

    /// The result lands while the entry is this store's, or no one's: once another replica
    /// has claimed it (this one's claim ran out), the other's attempt is the one that counts.
    /// The claim is let go (the entry stays marked with this store, so that a late result of
    /// a replica it took the entry from still finds it taken). A group's members follow it in
    /// the same statement, only when its own entry took the result.
    public func recordDelivery(_ result: DeliveryResult) throws(StoreError) {
        let status = result.status.outboxStatus
        let nextAttemptAt = try seconds(result.nextAttemptAt)
        let finishedAt = result.status == .retry ? nil : try seconds(result.at)
        let sink = bytes(result.sink)
        let error = result.error.map(bytes)
        try database.withSession { (session) throws(StoreError) in
            try session.execute(
                """
                WITH recorded AS (
                    UPDATE outbox SET status = \(status), attempts = \(Int64(result.attempts)),
                        next_attempt_at = COALESCE(\(nextAttemptAt), next_attempt_at), finished_at = \(finishedAt),
                        last_error = \(error), claimed_until = NULL
                    WHERE event_id = \(bytes(result.eventID)) AND sink = \(sink) AND status = 'pending'
                        AND (claimed_by IS NULL OR claimed_by = \(claimant))
                    RETURNING event_id
                )
                UPDATE outbox SET status = \(status), finished_at = \(finishedAt), last_error = \(error)
                FROM recorded
                WHERE \(result.status != .retry) AND outbox.group_id = recorded.event_id AND outbox.sink = \(sink)
                    AND outbox.status = 'grouped'
                """)
        }
    }

    /// Only entries this store claimed (``dueDeliveries(sink:now:limit:claim:)``) are grouped,
    /// locked until the transaction ends; the group's entry is claimed as they were, so that
    /// no other replica sends it while this one does.
    public func formGroup(sink: String, members: [AlertEvent], now: Date) throws(StoreError) -> FormedGroup {
        let at = try seconds(now)
        let me = claimant
        let sinkBytes = bytes(sink)
        return try database.transaction { (session) throws(StoreError) in
            var formed = FormedGroup(delivery: nil, withdrawn: [])
            let rows = try session.query(
                """
                SELECT event_id, claimed_until FROM outbox
                WHERE sink = \(sinkBytes) AND event_id = ANY(\(members.map { bytes($0.id) })) AND status = 'pending'
                    AND group_id IS NULL AND claimed_by = \(me)
                FOR UPDATE
                """
            ).rows
            var waiting: Set<String> = []
            var claimedUntil: Double?
            for row in rows {
                let (id, until) = try session.decode(row, as: (ByteBuffer, Double?).self)
                waiting.insert(String(buffer: id))
                if let until { claimedUntil = max(claimedUntil ?? until, until) }
            }
            let candidates = members.filter { waiting.contains($0.id) }
            let keys = candidates.compactMap(\.request).map { RequestKey(source: $0.source, id: $0.id) }
            var open: Set<RequestKey> = []
            for row in try session.query(
                """
                SELECT source, id FROM requests
                WHERE (source, id) IN (SELECT * FROM unnest(\(keys.map { bytes($0.source) })::bytea[], \(keys.map { bytes($0.id) })::bytea[]))
                    AND status = \(TrackedStatus.pending.rawValue)
                """
            ).rows {
                let (source, id) = try session.decode(row, as: (ByteBuffer, ByteBuffer).self)
                open.insert(RequestKey(source: String(buffer: source), id: String(buffer: id)))
            }
            var grouped: [AlertEvent] = []
            for event in candidates {
                if let request = event.request, open.contains(RequestKey(source: request.source, id: request.id)) {
                    grouped.append(event)
                } else {
                    formed.withdrawn.append(event.id)
                }
            }
            if !formed.withdrawn.isEmpty {
                try session.execute(
                    """
                    UPDATE outbox SET status = 'withdrawn', finished_at = \(at), claimed_until = NULL
                    WHERE sink = \(sinkBytes) AND event_id = ANY(\(formed.withdrawn.map(bytes)))
                    """)
            }
            guard !grouped.isEmpty else { return formed }
            let (group, text, sinks) = try AlertEvent.storedGroup(of: grouped, sink: sink, at: now)
            let groupID = bytes(group.id)
            try session.execute(
                """
                INSERT INTO outbox (event_id, sink, event, sinks, status, attempts, next_attempt_at, created_at, claimed_by, claimed_until)
                VALUES (\(groupID), \(sinkBytes), \(text), \(sinks), 'pending', 0, \(at), \(at), \(me), \(claimedUntil))
                """)
            try session.execute(
                """
                UPDATE outbox SET status = 'grouped', group_id = \(groupID), claimed_until = NULL
                WHERE sink = \(sinkBytes) AND event_id = ANY(\(grouped.map { bytes($0.id) }))
                """)
            formed.delivery = PendingDelivery(event: group, sink: sink, attempts: 0, nextAttemptAt: now, createdAt: now)
            return formed
        }
    }

    public func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int {
        let delivered = try seconds(deliveredBefore)
        let dead = try seconds(deadBefore)
        return try database.withSession { (session) throws(StoreError) in
            let result = try session.query(
                """
                DELETE FROM outbox
                WHERE (status IN ('delivered', 'withdrawn') AND finished_at < \(delivered)) OR (status = 'dead' AND finished_at < \(dead))
                """)
            return result.metadata.rows ?? 0
        }
    }

    /// The latest dead letters, newest first; a dead group is one (its members are in its event).
    public func deadLetters(limit: Int) throws(StoreError) -> [DeadLetter] {
        try database.withSession { (session) throws(StoreError) in
            let rows = try session.query(
                """
                SELECT event_id, sink, event, attempts, finished_at, last_error, sinks FROM outbox
                WHERE status = 'dead' AND group_id IS NULL
                ORDER BY finished_at DESC, queued DESC LIMIT \(Int64(max(0, limit)))
                """
            ).rows
            var result: [DeadLetter] = []
            for row in rows {
                let (id, sink, text, attempts, finishedAt, lastError, sinks) = try session.decode(
                    row, as: (ByteBuffer, ByteBuffer, String, Int64, Double?, ByteBuffer?, String?).self)
                result.append(
                    DeadLetter(
                        eventID: String(buffer: id), sink: String(buffer: sink), event: try? AlertEvent(outboxText: text, sinks: sinks),
                        attempts: Int(attempts), at: finishedAt.map(Date.init(timeIntervalSince1970:)),
                        error: lastError.map { String(buffer: $0) } ?? ""))
            }
            return result
        }
    }

    public func outboxCounts() throws(StoreError) -> [OutboxCount] {
        try database.withSession { (session) throws(StoreError) in
            let rows = try session.query(
                #"""
                SELECT sink, counted, COUNT(*)
                FROM (SELECT sink, CASE WHEN group_id IS NULL THEN status ELSE 'grouped' END AS counted FROM outbox) AS entries
                GROUP BY sink, counted ORDER BY sink, counted COLLATE "C"
                """#
            ).rows
            var result: [OutboxCount] = []
            for row in rows {
                let (sink, status, count) = try session.decode(row, as: (ByteBuffer, String, Int64).self)
                result.append(OutboxCount(sink: String(buffer: sink), status: status, count: Int(count)))
            }
            return result
        }
    }

    /// A time as the database keeps it; a time that is not a number is refused (as the
    /// state file refuses it), so that nothing half-written reads back as "due now".
    func seconds(_ date: Date) throws(StoreError) -> Double {
        let value = date.timeIntervalSince1970
        guard value.isFinite else {
            throw StoreError("state database \(location): a time is not a finite number (\(value)); nothing was written")
        }
        return value
    }

    /// A key or a text from outside as the database keeps it: its UTF-8 bytes.
    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func seconds(_ date: Date?) throws(StoreError) -> Double? {
        guard let date else { return nil }
        return try seconds(date)
    }
}
