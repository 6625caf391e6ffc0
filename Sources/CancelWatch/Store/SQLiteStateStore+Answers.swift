import Foundation

/// The answer journal in the state file (`answers`, schema 3): one row per request, the
/// latest answer to it. A watcher that runs writes none of it; the command line writes it
/// beside a running watcher (``SQLiteStateStore/Access/answer``), SQLite's own locking
/// serializing the two.
extension SQLiteStateStore {
    static let answersTable = """
        CREATE TABLE IF NOT EXISTS answers (
            source TEXT NOT NULL,
            request_id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            comment TEXT NOT NULL,
            actor TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            state TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            message TEXT NOT NULL,
            PRIMARY KEY (source, request_id)
        );
        CREATE INDEX IF NOT EXISTS answers_by_actor ON answers (actor_kind, started_at);
        """

    public func beginAnswer(_ record: AnswerRecord) throws(StoreError) -> AnswerRecord? {
        try database.transaction { () throws(StoreError) -> AnswerRecord? in
            if let existing = try answers(where: "source = ? AND request_id = ?", [.text(record.request.source), .text(record.request.id)])
                .first, existing.state.mayHaveApplied
            {
                return existing
            }
            try database.query(
                """
                INSERT OR REPLACE INTO answers
                    (source, request_id, order_id, decision, comment, actor, actor_kind, state, started_at, finished_at, message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(record.request.source), .text(record.request.id), .text(record.order), .text(record.decision.rawValue),
                    .text(record.comment), .text(record.actor.description), .text(record.actor.kind.rawValue),
                    .text(AnswerRecord.State.sending.rawValue), SQLiteValue(record.startedAt), .null, .text(""),
                ])
            return nil
        }
    }

    public func finishAnswer(_ request: RequestKey, state: AnswerRecord.State, message: String, at: Date) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            try database.query(
                "UPDATE answers SET state = ?, finished_at = ?, message = ? WHERE source = ? AND request_id = ? AND state = 'sending'",
                [.text(state.rawValue), SQLiteValue(at), .text(message), .text(request.source), .text(request.id)])
        }
    }

    public func answers(for requests: [RequestKey]) throws(StoreError) -> [RequestKey: AnswerRecord] {
        var result: [RequestKey: AnswerRecord] = [:]
        for request in requests where result[request] == nil {
            if let record = try answers(where: "source = ? AND request_id = ?", [.text(request.source), .text(request.id)]).first {
                result[request] = record
            }
        }
        return result
    }

    public func answerCount(by kind: AnswerActor.Kind, since: Date) throws(StoreError) -> Int {
        var count = 0
        try database.query(
            "SELECT COUNT(*) FROM answers WHERE actor_kind = ? AND started_at >= ?", [.text(kind.rawValue), SQLiteValue(since)]
        ) { row in count = Int(row.integer(0)) }
        return count
    }

    /// The latest answers, newest first.
    public func recentAnswers(limit: Int) throws(StoreError) -> [AnswerRecord] {
        try answers(where: "1 = 1 ORDER BY started_at DESC LIMIT ?", [.integer(Int64(max(0, limit)))])
    }

    private func answers(where condition: String, _ bindings: [SQLiteValue]) throws(StoreError) -> [AnswerRecord] {
        var result: [AnswerRecord] = []
        try database.query(
            """
            SELECT source, request_id, order_id, decision, comment, actor, state, started_at, finished_at, message
            FROM answers WHERE \(condition)
            """, bindings
        ) { (row) throws(StoreError) in
            guard let decision = Decision(rawValue: row.string(3)), let actor = AnswerActor(row.string(5)),
                let state = AnswerRecord.State(rawValue: row.string(6)), let startedAt = row.date(7)
            else { throw StoreError("state file \(path): an answer to \(row.string(0))/\(row.string(1)) has values this cancelwatch does not know") }
            result.append(
                AnswerRecord(
                    request: RequestKey(source: row.string(0), id: row.string(1)), order: row.string(2), decision: decision,
                    comment: row.string(4), actor: actor, state: state, startedAt: startedAt, finishedAt: row.date(8),
                    message: row.string(9)))
        }
        return result
    }
}
