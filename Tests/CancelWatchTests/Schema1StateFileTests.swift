import Foundation
import Testing

@testable import CancelWatch

/// A state file written by schema 1 (a column per request field, outbox events in their own
/// form with seconds since 1970) keeps working: a writer converts it, a reader reads it.
@Suite struct Schema1StateFileTests {
    static let now = Date(timeIntervalSince1970: 1_764_000_000.25)
    /// A raw object as a marketplace wrote it: its own member order, a number as sent, a
    /// non-BMP character and an escape. These bytes must come back as they are.
    static let rawText = #"{"z":1,"cancellation_id":42,"price":"1.50","amount":1.50,"note":"😀 \u00e9","a":null}"#

    static func expectedRequest() -> TrackedRequest {
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "42\u{0}x", order: "1234-0001-1", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал 😀", reasonID: "5", logistics: "",
            createdAt: now.addingTimeInterval(-600.5), deadline: now.addingTimeInterval(7200.123456),
            rawObject: try! RawObject(json: Array(rawText.utf8)))
        return TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now.addingTimeInterval(60))
    }

    /// An outbox row in schema 1's form (as `AlertEvent.storageJSON` wrote it).
    static let schema1Event = """
        {"id":"ev1","kind":"firing","rule":"final-hour","severity":"critical","source":"ozon-main","marketplace":"ozon",\
        "outcome":null,"occurred_at":1764000000.25,"message":"Ответьте до 22:00","sinks":["hook","mail"],\
        "request":{"marketplace":"ozon","source":"ozon-main","id":"42","order":"1234-0001-1","state":"pending",\
        "raw_state":"ON_APPROVAL","initiator":"CLIENT","reason":"Передумал","reason_id":"5","logistics":"",\
        "created_at":null,"deadline":1764003600.5,"raw":{"cancellation_id":42}}}
        """

    static func expectedEvent() -> AlertEvent {
        AlertEvent(
            id: "ev1", kind: .firing, rule: "final-hour", severity: .critical, source: "ozon-main", marketplace: .ozon,
            request: CancellationRequest(
                marketplace: .ozon, source: "ozon-main", id: "42", order: "1234-0001-1", state: .pending, rawState: "ON_APPROVAL",
                initiator: "CLIENT", reason: "Передумал", reasonID: "5", logistics: "", createdAt: nil,
                deadline: Date(timeIntervalSince1970: 1_764_003_600.5), raw: ["cancellation_id": 42]),
            occurredAt: now, message: "Ответьте до 22:00", sinks: ["hook", "mail"])
    }

    /// Builds a state file as schema 1 did, with one request and one outbox row for two sinks.
    static func schema1File() throws -> String {
        let path = try temporaryStatePath("cw-schema1")
        let database = try SQLiteDatabase(path: path, readOnly: false)
        try database.execute(
            """
            CREATE TABLE requests (
                source TEXT NOT NULL, id TEXT NOT NULL, marketplace TEXT NOT NULL, order_id TEXT NOT NULL, state TEXT NOT NULL,
                raw_state TEXT NOT NULL, initiator TEXT NOT NULL, reason TEXT NOT NULL, reason_id TEXT NOT NULL,
                logistics TEXT NOT NULL, created_at REAL, deadline REAL NOT NULL, raw TEXT NOT NULL, status TEXT NOT NULL,
                first_seen REAL NOT NULL, last_seen REAL NOT NULL, closed_at REAL, PRIMARY KEY (source, id)
            );
            CREATE INDEX requests_open ON requests (status, deadline);
            CREATE TABLE source_health (
                source TEXT PRIMARY KEY, marketplace TEXT NOT NULL, last_poll_at REAL, last_success_at REAL,
                consecutive_failures INTEGER NOT NULL, last_error TEXT, down INTEGER NOT NULL, down_count INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE alerts (
                source TEXT NOT NULL, request_id TEXT NOT NULL, rule TEXT NOT NULL, firings INTEGER NOT NULL, repeats INTEGER NOT NULL,
                active INTEGER NOT NULL, last_fired_at REAL, next_repeat_at REAL, held_until REAL, closed INTEGER NOT NULL,
                PRIMARY KEY (source, request_id, rule)
            );
            CREATE TABLE outbox (
                event_id TEXT NOT NULL, sink TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
                next_attempt_at REAL NOT NULL, created_at REAL NOT NULL, finished_at REAL, last_error TEXT,
                PRIMARY KEY (event_id, sink)
            );
            CREATE INDEX outbox_due ON outbox (sink, status, next_attempt_at);
            PRAGMA user_version = 1;
            """)
        let r = expectedRequest()
        try database.query(
            """
            INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(r.request.source), .text(r.request.id), .text("ozon"), .text(r.request.order), .text("pending"),
                .text(r.request.rawState), .text(r.request.initiator), .text(r.request.reason), .text(r.request.reasonID),
                .text(r.request.logistics), SQLiteValue(r.request.createdAt), SQLiteValue(r.request.deadline), .text(rawText),
                .text("pending"), SQLiteValue(r.firstSeen), SQLiteValue(r.lastSeen), .null,
            ])
        for sink in ["hook", "mail"] {
            try database.query(
                "INSERT INTO outbox VALUES ('ev1', ?, ?, 'pending', 0, ?, ?, NULL, NULL)",
                [.text(sink), .text(schema1Event), SQLiteValue(now), SQLiteValue(now)])
        }
        return path
    }

    static func userVersion(_ store: SQLiteStateStore) throws -> Int64 {
        var version: Int64 = 0
        try store.database.query("PRAGMA user_version") { row in version = row.integer(0) }
        return version
    }

    @Test func aWriterConvertsItKeepingEveryFieldTheRawBytesAndTheOutbox() throws {
        let path = try Self.schema1File()
        let store = try SQLiteStateStore(path: path)
        #expect(try Self.userVersion(store) == SQLiteStateStore.schemaVersion)
        #expect(try store.loadTracked() == [Self.expectedRequest()])
        var raws: [String] = []
        try store.database.query("SELECT raw FROM requests") { row in raws.append(row.string(0)) }
        #expect(raws == [Self.rawText])
        var indexes: [String] = []
        try store.database.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'") { row in
            if !row.string(0).hasPrefix("sqlite_autoindex") { indexes.append(row.string(0)) }
        }
        #expect(indexes.isEmpty)

        let due = try store.dueDeliveries(sink: "mail", now: Self.now, limit: 10)
        #expect(due.unreadable.isEmpty)
        #expect(due.deliveries.map(\.event) == [Self.expectedEvent()])
        // Converted once: reopening changes nothing.
        let reopened = try SQLiteStateStore(path: path)
        #expect(try reopened.loadTracked() == [Self.expectedRequest()])
    }

    @Test func aReaderReadsItUnconverted() throws {
        let path = try Self.schema1File()
        let store = try SQLiteStateStore(path: path, readOnly: true)
        #expect(try Self.userVersion(store) == 1)
        #expect(try store.loadTracked() == [Self.expectedRequest()])
        #expect(try store.outboxCounts() == [OutboxCount(sink: "hook", status: "pending", count: 1), OutboxCount(sink: "mail", status: "pending", count: 1)])
        #expect(try store.deadLetters(limit: 5).isEmpty)
    }

    /// Not about schema 1, but about the one column that replaced its columns: a deadline that
    /// is not a number is refused by name, and a row whose fields do not read says where.
    @Test func theFieldsColumnRefusesAnInstantThatIsNotANumberAndNamesAnUnreadableMember() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-fields"))
        var item = Self.expectedRequest()
        item.request.deadline = Date(timeIntervalSince1970: .nan)
        do {
            try store.save([item], health: nil)
            Issue.record("a NaN deadline was stored")
        } catch {
            #expect(error.message.contains("deadline: not a finite instant"), "\(error.message)")
        }
        try store.save([Self.expectedRequest()], health: nil)
        try store.database.execute(#"UPDATE requests SET fields = replace(fields, '"state":"pending"', '"state":"waiting"')"#)
        do {
            _ = try store.loadTracked()
            Issue.record("an unknown state was read")
        } catch {
            #expect(error.message.contains("state"), "\(error.message)")
        }
    }
}
