import Foundation

/// The state file: an embedded SQLite database in WAL mode, mode 0600 (made so on every
/// open), written by one process at a time (``StateFileLock``).
public final class SQLiteStateStore: StateStore {
    /// 4: grouped deliveries (`outbox.group_id`). 3: the answer journal (`answers`). 2: a request's fields in one column (`fields`, its
    /// Codable form); outbox events in their Codable form with their sinks beside them.
    /// 1: a column per field.
    static let schemaVersion: Int64 = 4
    let database: SQLiteDatabase
    /// Held while the store is open for writing.
    private let lock: StateFileLock?
    public var path: String { database.path }
    /// Files found readable or writable by others when it opened, now owner-only: one
    /// line each, for the log.
    public var warnings: [String] { database.warnings }
    /// Whether the file is still in schema 1 (opened for reading only: a writer converts it).
    private let schema1: Bool
    /// Whether the outbox has `group_id` (schema 4; a file read beside an older watcher may not).
    private let groupColumn: Bool

    /// Opens the state file, creating it when absent. A file that is not a cancelwatch
    /// state file is reported, never replaced. Opening for writing takes the state
    /// file's lock, or throws naming the process that holds it; reading takes no lock.
    public convenience init(path: String, readOnly: Bool = false) throws(StoreError) {
        try self.init(path: path, access: readOnly ? .read : .write)
    }

    /// How a process opens the state file.
    public enum Access: Sendable {
        /// The watcher: takes the lock, creates or converts the file.
        case write
        /// Beside a running watcher (`status`): takes no lock, writes nothing.
        case read
        /// To answer requests (`approve`, `refuse`): as `write` when no watcher runs; beside a
        /// running one, without the lock, writing the answer journal alone (the file must be
        /// in this version's schema, which that watcher made it).
        case answer
    }

    public init(path: String, access: Access) throws(StoreError) {
        if access != .write && !FileManager.default.fileExists(atPath: path) {
            throw StoreError("state file \(path) does not exist yet: run `cancelwatch once` or `cancelwatch run` first")
        }
        // The lock first: a process refused by it never opens the file nor changes its mode.
        if access != .read { try SQLiteDatabase.requireDirectory(of: path) }
        var besideWatcher = false
        switch access {
        case .read: lock = nil
        case .write: lock = try StateFileLock(statePath: path)
        case .answer:
            do {
                lock = try StateFileLock(statePath: path)
            } catch where error.lockHeld {
                lock = nil
                besideWatcher = true
            }
        }
        let readOnly = access == .read
        database = try SQLiteDatabase(path: path, readOnly: readOnly)
        schema1 = readOnly ? try Self.columns(of: "requests", in: database).contains("order_id") : false
        groupColumn = readOnly ? try Self.columns(of: "outbox", in: database).contains("group_id") : true
        if readOnly {
            try checkVersion()
        } else if besideWatcher {
            var version: Int64 = 0
            try database.query("PRAGMA user_version") { row in version = row.integer(0) }
            guard version == Self.schemaVersion else {
                throw StoreError(
                    "state file \(path) is in use by a cancelwatch of another version (schema \(version), this one writes \(Self.schemaVersion)): answer with that version, or restart the watcher with this one")
            }
        } else {
            try migrate()
        }
    }

    private func checkVersion() throws(StoreError) {
        var version: Int64 = 0
        try database.query("PRAGMA user_version") { row in version = row.integer(0) }
        if version > Self.schemaVersion {
            throw StoreError("state file \(path) was written by a newer cancelwatch (schema \(version)); upgrade cancelwatch")
        }
    }

    private func migrate() throws(StoreError) {
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=NORMAL")
        // A checkpoint (the log copied into the file, two fsyncs, inside the commit that
        // crosses the mark) every 64 MB of log rather than SQLite's 4 MB: a first poll of a
        // large fleet writes hundreds of MB of rows and every checkpoint stalls the watcher
        // (fleet benchmark: 19 s → 12 s). The log file is cut back to 64 MB after one.
        try database.execute("PRAGMA wal_autocheckpoint=16384")
        try database.execute("PRAGMA journal_size_limit=67108864")
        try checkVersion()
        try database.transaction { () throws(StoreError) in
            try convertSchema1()
            try database.execute(
                """
                CREATE TABLE IF NOT EXISTS requests (\(Self.requestsColumns));
                -- Nothing reads requests by (status, deadline): an index on it cost a random
                -- page write per new request (a fleet's first poll wrote GBs of log for it).
                DROP INDEX IF EXISTS requests_open;
                CREATE TABLE IF NOT EXISTS source_health (
                    source TEXT PRIMARY KEY,
                    marketplace TEXT NOT NULL,
                    last_poll_at REAL,
                    last_success_at REAL,
                    consecutive_failures INTEGER NOT NULL,
                    last_error TEXT,
                    down INTEGER NOT NULL,
                    down_count INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE IF NOT EXISTS alerts (
                    source TEXT NOT NULL,
                    request_id TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    firings INTEGER NOT NULL,
                    repeats INTEGER NOT NULL,
                    active INTEGER NOT NULL,
                    last_fired_at REAL,
                    next_repeat_at REAL,
                    held_until REAL,
                    closed INTEGER NOT NULL,
                    PRIMARY KEY (source, request_id, rule)
                );
                CREATE TABLE IF NOT EXISTS outbox (
                    event_id TEXT NOT NULL,
                    sink TEXT NOT NULL,
                    event TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt_at REAL NOT NULL,
                    created_at REAL NOT NULL,
                    finished_at REAL,
                    last_error TEXT,
                    sinks TEXT,
                    group_id TEXT,
                    PRIMARY KEY (event_id, sink)
                );
                CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sink, status, next_attempt_at);
                \(Self.answersTable)
                """)
            if try !Self.columns(of: "outbox", in: database).contains("group_id") {
                try database.execute("ALTER TABLE outbox ADD COLUMN group_id TEXT")
            }
            try database.execute(
                """
                CREATE INDEX IF NOT EXISTS outbox_groups ON outbox (group_id, sink) WHERE group_id IS NOT NULL;
                PRAGMA user_version = \(Self.schemaVersion);
                """)
        }
    }

    /// The `requests` table: its key, what is queried or kept per row, and the request's
    /// fields in one column (`CancellationRequest.storedFields`): a new field needs no column.
    static let requestsColumns = """
        source TEXT NOT NULL,
            id TEXT NOT NULL,
            fields TEXT NOT NULL,
            raw TEXT NOT NULL,
            status TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            closed_at REAL,
            PRIMARY KEY (source, id)
        """

    private static func columns(of table: String, in database: SQLiteDatabase) throws(StoreError) -> Set<String> {
        var names: Set<String> = []
        try database.query("PRAGMA table_info(\(table))") { row in names.insert(row.string(1)) }
        return names
    }

    /// Converts a schema 1 file (a column per request field; outbox rows without `sinks`)
    /// in place. Raw objects are copied as they are; outbox rows keep their schema 1 text,
    /// which is still read.
    private func convertSchema1() throws(StoreError) {
        if try Self.columns(of: "requests", in: database).contains("order_id") {
            try database.execute(
                """
                ALTER TABLE requests RENAME TO requests_schema1;
                CREATE TABLE requests (\(Self.requestsColumns));
                INSERT INTO requests (source, id, fields, raw, status, first_seen, last_seen, closed_at)
                    SELECT source, id, '', raw, status, first_seen, last_seen, closed_at FROM requests_schema1;
                """)
            // Without their raw objects: the whole objects never sit in memory together.
            for item in try loadSchema1Requests(from: "requests_schema1", raw: "'{}'") {
                try database.query(
                    "UPDATE requests SET fields = ? WHERE source = ? AND id = ?",
                    [.text(try item.request.storedFields()), .text(item.request.source), .text(item.request.id)])
            }
            try database.execute("DROP TABLE requests_schema1")
        }
        let outbox = try Self.columns(of: "outbox", in: database)
        if !outbox.isEmpty && !outbox.contains("sinks") { try database.execute("ALTER TABLE outbox ADD COLUMN sinks TEXT") }
    }

    /// Requests as schema 1 kept them in `table`, each raw object read from the expression `raw`.
    /// Only `source`'s, when given.
    private func loadSchema1Requests(
        from table: String, raw: String, keeping paths: RawPaths = .everything, source only: String? = nil
    ) throws(StoreError) -> [TrackedRequest] {
        var result: [TrackedRequest] = []
        try database.query(
            """
            SELECT source, id, marketplace, order_id, state, raw_state, initiator, reason, reason_id, logistics,
                   created_at, deadline, \(raw), status, first_seen, last_seen, closed_at FROM \(table)
            \(only == nil ? "" : "WHERE source = ?")
            """,
            only.map { [.text($0)] } ?? []
        ) { (row) throws(StoreError) in
            let source = row.string(0)
            let id = row.string(1)
            guard let marketplace = Marketplace(rawValue: row.string(2)),
                let state = RequestState(rawValue: row.string(4)),
                let status = TrackedStatus(rawValue: row.string(13)),
                let deadline = row.date(11), let firstSeen = row.date(14), let lastSeen = row.date(15)
            else {
                throw StoreError("state file \(path): request \(source)/\(id) has values this cancelwatch does not know")
            }
            let request = CancellationRequest(
                marketplace: marketplace, source: source, id: id, order: row.string(3), state: state,
                rawState: row.string(5), initiator: row.string(6), reason: row.string(7), reasonID: row.string(8),
                logistics: row.string(9), createdAt: row.date(10), deadline: deadline,
                rawObject: Self.rawObject(row.string(12)))
            result.append(
                TrackedRequest(request: request, status: status, firstSeen: firstSeen, lastSeen: lastSeen, closedAt: row.date(16))
                    .pruned(to: paths))
        }
        return result
    }

    private static func rawObject(_ text: String) -> RawObject {
        (try? RawObject(json: Array(text.utf8))) ?? RawObject(.object([:]))
    }

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
        if schema1 { return try loadSchema1Requests(from: "requests", raw: "raw", keeping: paths, source: only) }
        var result: [TrackedRequest] = []
        try database.query(
            "SELECT source, id, fields, raw, status, first_seen, last_seen, closed_at FROM requests \(only == nil ? "" : "WHERE source = ?")",
            only.map { [.text($0)] } ?? []
        ) { (row) throws(StoreError) in
            let source = row.string(0)
            let id = row.string(1)
            let request: CancellationRequest
            do throws(StoreError) {
                request = try CancellationRequest(storedFields: row.string(2), raw: Self.rawObject(row.string(3)))
            } catch {
                throw StoreError("state file \(path): request \(source)/\(id) does not read: \(error.description)")
            }
            guard let status = TrackedStatus(rawValue: row.string(4)), let firstSeen = row.date(5), let lastSeen = row.date(6),
                sameBytes(request.source, source), sameBytes(request.id, id)
            else {
                throw StoreError("state file \(path): request \(source)/\(id) has values this cancelwatch does not know")
            }
            // Pruned row by row: the whole objects never sit in memory together.
            result.append(
                TrackedRequest(request: request, status: status, firstSeen: firstSeen, lastSeen: lastSeen, closedAt: row.date(7))
                    .pruned(to: paths))
        }
        return result
    }

    public func commit(_ changes: StoreChanges, at now: Date) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            try save(changes.tracked, health: nil)
            try commit(alerts: changes.alerts, events: changes.events, health: nil, at: now)
            for event in changes.events where changes.eventsTakingSavedRaw.contains(event.id) { try giveSavedRaw(to: event) }
            for health in changes.health { try saveHealth(health) }
        }
    }

    /// The event's queued entries take the whole raw object saved for its request (memory
    /// keeps only what rules read), where there is one: read in the same transaction.
    private func giveSavedRaw(to event: AlertEvent) throws(StoreError) {
        guard let request = event.request else { return }
        try database.query(
            """
            UPDATE outbox SET event = json_set(event, '$.request.raw', json(requests.raw))
            FROM requests WHERE requests.source = ? AND requests.id = ? AND outbox.event_id = ? AND outbox.status = 'pending'
            """,
            [.text(request.source), .text(request.id), .text(event.id)])
    }

    /// The requests part of `commit` (its transaction joins the commit's).
    private func save(_ tracked: [TrackedRequest], health: SourceHealth?) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            for item in tracked {
                let r = item.request
                try database.query(
                    """
                    INSERT INTO requests (source, id, fields, raw, status, first_seen, last_seen, closed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (source, id) DO UPDATE SET
                        fields = excluded.fields, status = excluded.status,
                        last_seen = excluded.last_seen, closed_at = excluded.closed_at,
                        raw = CASE WHEN ? THEN requests.raw ELSE excluded.raw END
                    """,
                    [
                        .text(r.source), .text(r.id), .text(try r.storedFields()),
                        .text(String(decoding: r.rawObject.jsonBytes, as: UTF8.self)), .text(item.status.rawValue),
                        SQLiteValue(item.firstSeen), SQLiteValue(item.lastSeen), SQLiteValue(item.closedAt),
                        // A pruned raw object leaves the whole one already saved as it is.
                        .integer(item.hasWholeRaw ? 0 : 1),
                    ])
            }
            if let health { try saveHealth(health) }
        }
    }

    private func saveHealth(_ health: SourceHealth) throws(StoreError) {
        try database.query(
            """
            INSERT INTO source_health (source, marketplace, last_poll_at, last_success_at, consecutive_failures, last_error, down,
                down_count)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (source) DO UPDATE SET
                marketplace = excluded.marketplace, last_poll_at = excluded.last_poll_at,
                last_success_at = excluded.last_success_at, consecutive_failures = excluded.consecutive_failures,
                last_error = excluded.last_error, down = excluded.down, down_count = excluded.down_count
            """,
            [
                .text(health.source), .text(health.marketplace.rawValue), SQLiteValue(health.lastPollAt),
                SQLiteValue(health.lastSuccessAt), .integer(Int64(health.consecutiveFailures)), SQLiteValue(health.lastError),
                .integer(health.down ? 1 : 0), .integer(Int64(health.downCount)),
            ])
    }

    public func delete(_ keys: [RequestKey]) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            for key in keys {
                try database.query("DELETE FROM requests WHERE source = ? AND id = ?", [.text(key.source), .text(key.id)])
                try database.query("DELETE FROM alerts WHERE source = ? AND request_id = ?", [.text(key.source), .text(key.id)])
            }
        }
    }

    public func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int {
        var removed = 0
        try database.transaction { () throws(StoreError) in
            try database.query(
                """
                DELETE FROM outbox
                WHERE (status IN ('delivered', 'withdrawn') AND finished_at < ?) OR (status = 'dead' AND finished_at < ?)
                """,
                [SQLiteValue(deliveredBefore), SQLiteValue(deadBefore)])
            try database.query("SELECT changes()") { row in removed = Int(row.integer(0)) }
        }
        return removed
    }

    public func loadHealth() throws(StoreError) -> [SourceHealth] {
        var result: [SourceHealth] = []
        try database.query(
            "SELECT source, marketplace, last_poll_at, last_success_at, consecutive_failures, last_error, down, down_count FROM source_health ORDER BY source"
        ) { row in
            result.append(
                SourceHealth(
                    source: row.string(0), marketplace: Marketplace(rawValue: row.string(1)) ?? .ozon, lastPollAt: row.date(2),
                    lastSuccessAt: row.date(3), consecutiveFailures: Int(row.integer(4)), lastError: row.text(5),
                    down: row.integer(6) != 0, downCount: Int(row.integer(7))))
        }
        return result
    }

    public func loadAlerts() throws(StoreError) -> [AlertState] {
        var result: [AlertState] = []
        try database.query("SELECT \(Self.alertColumns) FROM alerts") { row in result.append(Self.alertState(row)) }
        return result
    }

    public func loadAlerts(source: String) throws(StoreError) -> [AlertState] {
        var result: [AlertState] = []
        try database.query("SELECT \(Self.alertColumns) FROM alerts WHERE source = ?", [.text(source)]) { row in
            result.append(Self.alertState(row))
        }
        return result
    }

    static let alertColumns =
        "source, request_id, rule, firings, repeats, active, last_fired_at, next_repeat_at, held_until, closed"

    static func alertState(_ row: SQLiteRow) -> AlertState {
        AlertState(
            request: RequestKey(source: row.string(0), id: row.string(1)), rule: row.string(2),
            firings: Int(row.integer(3)), repeats: Int(row.integer(4)), active: row.integer(5) != 0,
            lastFiredAt: row.date(6), nextRepeatAt: row.date(7), heldUntil: row.date(8), closed: row.integer(9) != 0)
    }

    /// The alerts and outbox part of `commit` (its transaction joins the commit's).
    private func commit(alerts: [AlertState], events: [AlertEvent], health: SourceHealth?, at now: Date) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            for alert in alerts {
                try database.query(
                    """
                    INSERT INTO alerts (source, request_id, rule, firings, repeats, active, last_fired_at, next_repeat_at,
                        held_until, closed)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (source, request_id, rule) DO UPDATE SET
                        firings = excluded.firings, repeats = excluded.repeats, active = excluded.active,
                        last_fired_at = excluded.last_fired_at, next_repeat_at = excluded.next_repeat_at,
                        held_until = excluded.held_until, closed = excluded.closed
                    """,
                    [
                        .text(alert.request.source), .text(alert.request.id), .text(alert.rule), .integer(Int64(alert.firings)),
                        .integer(Int64(alert.repeats)), .integer(alert.active ? 1 : 0), SQLiteValue(alert.lastFiredAt),
                        SQLiteValue(alert.nextRepeatAt), SQLiteValue(alert.heldUntil), .integer(alert.closed ? 1 : 0),
                    ])
            }
            for event in events {
                let text = try event.outboxText()
                let sinks = AlertEvent.outboxSinks(event.sinks)
                for sink in event.sinks {
                    // The same event id for the same sink is queued once, whatever happens.
                    try database.query(
                        """
                        INSERT OR IGNORE INTO outbox (event_id, sink, event, sinks, status, attempts, next_attempt_at, created_at)
                        VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
                        """,
                        [.text(event.id), .text(sink), .text(text), .text(sinks), SQLiteValue(now), SQLiteValue(now)])
                }
            }
            if let health { try saveHealth(health) }
        }
    }

    /// One process writes the file (``StateFileLock``): nothing is claimed.
    public func dueDeliveries(sink: String, now: Date, limit: Int, claim: TimeInterval) throws(StoreError) -> DueDeliveries {
        var result: [PendingDelivery] = []
        var unreadable: [(id: String, error: String)] = []
        try database.query(
            """
            SELECT event_id, event, attempts, next_attempt_at, \(outboxSinks), created_at FROM outbox
            WHERE sink = ? AND status = 'pending' AND next_attempt_at <= ?
            ORDER BY next_attempt_at, created_at LIMIT ?
            """,
            [.text(sink), SQLiteValue(now), .integer(Int64(limit))]
        ) { (row) throws(StoreError) in
            let id = row.string(0)
            do throws(StoreError) {
                result.append(
                    PendingDelivery(
                        event: try AlertEvent(outboxText: row.string(1), sinks: row.text(4)), sink: sink, attempts: Int(row.integer(2)),
                        nextAttemptAt: row.date(3) ?? now, createdAt: row.date(5) ?? now))
            } catch {
                unreadable.append((id, error.description))
            }
        }
        // An entry that cannot be read can never be sent: it becomes a dead letter (kept,
        // with the reason) instead of blocking the sink or failing every pass; a group's
        // members die with it (nothing else would ever finish them).
        for entry in unreadable {
            try database.query(
                """
                UPDATE outbox SET status = 'dead', finished_at = ?1, last_error = ?2
                WHERE sink = ?4 AND (event_id = ?3 OR (group_id = ?3 AND status = 'grouped'))
                """,
                [SQLiteValue(now), .text("unreadable outbox entry: \(entry.error)"), .text(entry.id), .text(sink)])
        }
        return DueDeliveries(
            deliveries: result,
            unreadable: unreadable.map { "state file \(path): outbox entry \($0.id) for sink '\(sink)' is unreadable (\($0.error)); it is now a dead letter" })
    }

    public func nextDeliveryAttempt(sink: String, after: Date?) throws(StoreError) -> Date? {
        var next: Date?
        try database.query(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE sink = ? AND status = 'pending' AND (?2 IS NULL OR next_attempt_at > ?2)",
            [.text(sink), SQLiteValue(after)]
        ) { row in
            next = row.date(0)
        }
        return next
    }

    public func recordDelivery(_ result: DeliveryResult) throws(StoreError) {
        let status = result.status.outboxStatus
        let finishedAt = result.status == .retry ? SQLiteValue.null : SQLiteValue(result.at)
        try database.transaction { () throws(StoreError) in
            try database.query(
                """
                UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at),
                    finished_at = ?, last_error = ?
                WHERE event_id = ? AND sink = ? AND status = 'pending'
                """,
                [
                    .text(status), .integer(Int64(result.attempts)), SQLiteValue(result.nextAttemptAt), finishedAt,
                    SQLiteValue(result.error), .text(result.eventID), .text(result.sink),
                ])
            var changed: Int64 = 0
            try database.query("SELECT changes()") { row in changed = row.integer(0) }
            guard changed > 0, result.status != .retry else { return }
            try database.query(
                "UPDATE outbox SET status = ?, finished_at = ?, last_error = ? WHERE group_id = ? AND sink = ? AND status = 'grouped'",
                [.text(status), finishedAt, SQLiteValue(result.error), .text(result.eventID), .text(result.sink)])
        }
    }

    /// One process writes the file (``StateFileLock``): every pending entry is this store's.
    public func formGroup(sink: String, members: [AlertEvent], now: Date) throws(StoreError) -> FormedGroup {
        var formed = FormedGroup(delivery: nil, withdrawn: [])
        try database.transaction { () throws(StoreError) in
            var grouped: [AlertEvent] = []
            for event in members {
                var waiting = false
                try database.query(
                    "SELECT 1 FROM outbox WHERE event_id = ? AND sink = ? AND status = 'pending' AND group_id IS NULL",
                    [.text(event.id), .text(sink)]
                ) { _ in waiting = true }
                guard waiting else { continue }
                var open = false
                if let request = event.request {
                    try database.query(
                        "SELECT status FROM requests WHERE source = ? AND id = ?", [.text(request.source), .text(request.id)]
                    ) { row in open = TrackedStatus(rawValue: row.string(0))?.isOpen ?? false }
                }
                if open {
                    grouped.append(event)
                } else {
                    formed.withdrawn.append(event.id)
                    try database.query(
                        "UPDATE outbox SET status = 'withdrawn', finished_at = ? WHERE event_id = ? AND sink = ?",
                        [SQLiteValue(now), .text(event.id), .text(sink)])
                }
            }
            guard !grouped.isEmpty else { return }
            let (group, text, sinks) = try AlertEvent.storedGroup(of: grouped, sink: sink, at: now)
            try database.query(
                """
                INSERT INTO outbox (event_id, sink, event, sinks, status, attempts, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
                """,
                [.text(group.id), .text(sink), .text(text), .text(sinks), SQLiteValue(now), SQLiteValue(now)])
            for event in grouped {
                try database.query(
                    "UPDATE outbox SET status = 'grouped', group_id = ? WHERE event_id = ? AND sink = ?",
                    [.text(group.id), .text(event.id), .text(sink)])
            }
            formed.delivery = PendingDelivery(event: group, sink: sink, attempts: 0, nextAttemptAt: now, createdAt: now)
        }
        return formed
    }

    /// The latest dead letters, newest first; a dead group is one (its members are in its event).
    public func deadLetters(limit: Int) throws(StoreError) -> [DeadLetter] {
        var result: [DeadLetter] = []
        try database.query(
            """
            SELECT event_id, sink, event, attempts, finished_at, last_error, \(outboxSinks) FROM outbox
            WHERE status = 'dead'\(groupColumn ? " AND group_id IS NULL" : "") ORDER BY finished_at DESC, rowid DESC LIMIT ?
            """,
            [.integer(Int64(limit))]
        ) { row in
            let event = try? AlertEvent(outboxText: row.string(2), sinks: row.text(6))
            result.append(
                DeadLetter(
                    eventID: row.string(0), sink: row.string(1), event: event, attempts: Int(row.integer(3)), at: row.date(4),
                    error: row.string(5)))
        }
        return result
    }

    /// The outbox's `sinks` column (none in a schema 1 file).
    private var outboxSinks: String { schema1 ? "NULL" : "sinks" }

    public func outboxCounts() throws(StoreError) -> [OutboxCount] {
        var result: [OutboxCount] = []
        let status = groupColumn ? "CASE WHEN group_id IS NULL THEN status ELSE 'grouped' END" : "status"
        try database.query("SELECT sink, \(status) AS counted, COUNT(*) FROM outbox GROUP BY sink, counted ORDER BY sink, counted") { row in
            result.append(OutboxCount(sink: row.string(0), status: row.string(1), count: Int(row.integer(2))))
        }
        return result
    }
}
