import Foundation
import PostgresNIO

/// The answer journal in the shared database (schema 5), as the state file keeps it
/// (``SQLiteStateStore``): one row per request. Two replicas or commands answering one
/// request at once meet at its key: one records its answer, the other gets that one back.
extension PostgresStateStore {
    public func beginAnswer(_ record: AnswerRecord) throws(StoreError) -> AnswerRecord? {
        let startedAt = try seconds(record.startedAt)
        return try database.transaction { (session) throws(StoreError) -> AnswerRecord? in
            let written = try session.query(
                """
                INSERT INTO answers
                    (source, request_id, order_id, decision, comment, actor, actor_kind, state, started_at, finished_at, message)
                VALUES (\(bytes(record.request.source)), \(bytes(record.request.id)), \(bytes(record.order)),
                    \(record.decision.rawValue), \(bytes(record.comment)), \(bytes(record.actor.description)),
                    \(record.actor.kind.rawValue), 'sending', \(startedAt), NULL, \(bytes("")))
                ON CONFLICT (source, request_id) DO UPDATE SET
                    order_id = EXCLUDED.order_id, decision = EXCLUDED.decision, comment = EXCLUDED.comment, actor = EXCLUDED.actor,
                    actor_kind = EXCLUDED.actor_kind, state = 'sending', started_at = EXCLUDED.started_at, finished_at = NULL,
                    message = EXCLUDED.message
                WHERE answers.state = 'refused'
                RETURNING 1
                """
            ).rows
            guard written.isEmpty else { return nil }
            return try answers(
                in: session,
                "\(unescaped: Self.answerColumns) WHERE source = \(bytes(record.request.source)) AND request_id = \(bytes(record.request.id))"
            ).first
        }
    }

    public func finishAnswer(_ request: RequestKey, state: AnswerRecord.State, message: String, at: Date) throws(StoreError) {
        let finishedAt = try seconds(at)
        try database.withSession { (session) throws(StoreError) in
            try session.execute(
                """
                UPDATE answers SET state = \(state.rawValue), finished_at = \(finishedAt), message = \(bytes(message))
                WHERE source = \(bytes(request.source)) AND request_id = \(bytes(request.id)) AND state = 'sending'
                """)
        }
    }

    public func answers(for requests: [RequestKey]) throws(StoreError) -> [RequestKey: AnswerRecord] {
        guard !requests.isEmpty else { return [:] }
        let found = try database.withSession { (session) throws(StoreError) in
            try answers(
                in: session,
                """
                \(unescaped: Self.answerColumns) JOIN unnest(\(requests.map { bytes($0.source) }), \(requests.map { bytes($0.id) })) AS asked (source, id)
                ON answers.source = asked.source AND answers.request_id = asked.id
                """)
        }
        var result: [RequestKey: AnswerRecord] = [:]
        for record in found { result[record.request] = record }
        return result
    }

    public func answerCount(by kind: AnswerActor.Kind, since: Date) throws(StoreError) -> Int {
        let from = try seconds(since)
        return try database.withSession { (session) throws(StoreError) in
            for row in try session.query(
                "SELECT COUNT(*) FROM answers WHERE actor_kind = \(kind.rawValue) AND started_at >= \(from)"
            ).rows {
                return Int(try session.decode(row, as: Int64.self))
            }
            return 0
        }
    }

    /// The latest answers, newest first.
    public func recentAnswers(limit: Int) throws(StoreError) -> [AnswerRecord] {
        try database.withSession { (session) throws(StoreError) in
            try answers(in: session, "\(unescaped: Self.answerColumns) ORDER BY started_at DESC LIMIT \(Int64(max(0, limit)))")
        }
    }

    private static let answerColumns = """
        SELECT answers.source, request_id, order_id, decision, comment, actor, state, started_at, finished_at, message FROM answers
        """

    private func answers(in session: StateDatabaseSession, _ query: PostgresQuery) throws(StoreError) -> [AnswerRecord] {
        var result: [AnswerRecord] = []
        for row in try session.query(query).rows {
            let (source, id, order, decisionText, comment, actorText, stateText, startedAt, finishedAt, message) = try session.decode(
                row, as: (ByteBuffer, ByteBuffer, ByteBuffer, String, ByteBuffer, ByteBuffer, String, Double, Double?, ByteBuffer).self)
            guard let decision = Decision(rawValue: decisionText), let actor = AnswerActor(String(buffer: actorText)),
                let state = AnswerRecord.State(rawValue: stateText)
            else {
                throw StoreError(
                    "state database \(location): an answer to \(String(buffer: source))/\(String(buffer: id)) has values this cancelwatch does not know")
            }
            result.append(
                AnswerRecord(
                    request: RequestKey(source: String(buffer: source), id: String(buffer: id)), order: String(buffer: order),
                    decision: decision, comment: String(buffer: comment), actor: actor, state: state,
                    startedAt: Date(timeIntervalSince1970: startedAt), finishedAt: finishedAt.map(Date.init(timeIntervalSince1970:)),
                    message: String(buffer: message)))
        }
        return result
    }
}
