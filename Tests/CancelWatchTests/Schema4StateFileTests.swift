import Foundation
import Testing

@testable import CancelWatch

/// Schema 4 of the state file (`outbox.group_id`): a schema 3 file is brought up to date by
/// the next watcher, keeping its outbox, and `status` reads one beside an older watcher.
@Suite struct Schema4StateFileTests {
    /// A state file in schema 3, with one event waiting for `hook`, its writer still open (holding the lock).
    static func schema3File() throws -> (path: String, writer: SQLiteStateStore, event: AlertEvent) {
        let path = try temporaryStatePath("cw-schema3")
        let writer = try SQLiteStateStore(path: path)
        var event = SinkTestEvents.firing()
        event.sinks = ["hook"]
        try writer.commit(alerts: [], events: [event], health: nil, at: SinkTestEvents.occurredAt)
        try writer.database.execute(
            """
            DROP INDEX outbox_groups;
            ALTER TABLE outbox DROP COLUMN group_id;
            PRAGMA user_version = 3;
            """)
        return (path, writer, event)
    }

    @Test func aWriterAddsTheGroupColumnAndKeepsTheOutbox() throws {
        // Its writer gone (the lock let go) when the closure returns.
        let (path, event) = try { () throws -> (String, AlertEvent) in
            let file = try Self.schema3File()
            return (file.path, file.event)
        }()
        let store = try SQLiteStateStore(path: path)
        #expect(try Schema1StateFileTests.userVersion(store) == 4)
        #expect(try store.dueDeliveries(sink: "hook", now: SinkTestEvents.occurredAt, limit: 10).deliveries.map(\.event) == [event])
        #expect(try store.formGroup(sink: "hook", members: [event], now: SinkTestEvents.occurredAt).withdrawn == [event.id])
    }

    @Test func statusReadsItBesideAnOlderWatcher() throws {
        let (path, writer, _) = try Self.schema3File()
        let reader = try SQLiteStateStore(path: path, access: .read)
        #expect(try reader.outboxCounts() == [OutboxCount(sink: "hook", status: "pending", count: 1)])
        #expect(try reader.deadLetters(limit: 5).isEmpty)
        withExtendedLifetime(writer) {}
    }
}
