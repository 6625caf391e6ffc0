import CancelWatch
import Foundation

/// A state store that forwards every call to a real one after `willCall(_:)` with the
/// call's name: a test subclasses it to count calls, hold one back or refuse it (a full disk).
class ObservedStore: StateStore, @unchecked Sendable {
    let inner: SQLiteStateStore

    init(_ inner: SQLiteStateStore) { self.inner = inner }

    /// Called before each call is forwarded; throwing refuses it.
    func willCall(_ name: String) throws(StoreError) {}

    func loadTracked() throws(StoreError) -> [TrackedRequest] {
        try willCall("loadTracked")
        return try inner.loadTracked()
    }
    func loadTracked(keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] {
        try willCall("loadTracked")
        return try inner.loadTracked(keepingRaw: paths)
    }
    func loadTracked(source: String, keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] {
        try willCall("loadTracked")
        return try inner.loadTracked(source: source, keepingRaw: paths)
    }
    func commit(_ changes: StoreChanges, at now: Date) throws(StoreError) {
        try willCall("commit")
        try inner.commit(changes, at: now)
    }
    func delete(_ keys: [RequestKey]) throws(StoreError) {
        try willCall("delete")
        try inner.delete(keys)
    }
    func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int {
        try willCall("pruneOutbox")
        return try inner.pruneOutbox(deliveredBefore: deliveredBefore, deadBefore: deadBefore)
    }
    func loadHealth() throws(StoreError) -> [SourceHealth] {
        try willCall("loadHealth")
        return try inner.loadHealth()
    }
    func loadAlerts() throws(StoreError) -> [AlertState] {
        try willCall("loadAlerts")
        return try inner.loadAlerts()
    }
    func loadAlerts(source: String) throws(StoreError) -> [AlertState] {
        try willCall("loadAlerts")
        return try inner.loadAlerts(source: source)
    }
    func dueDeliveries(sink: String, now: Date, limit: Int, claim: TimeInterval) throws(StoreError) -> DueDeliveries {
        try willCall("dueDeliveries")
        return try inner.dueDeliveries(sink: sink, now: now, limit: limit, claim: claim)
    }
    func nextDeliveryAttempt(sink: String, after: Date?) throws(StoreError) -> Date? {
        try willCall("nextDeliveryAttempt")
        return try inner.nextDeliveryAttempt(sink: sink, after: after)
    }
    func recordDelivery(_ result: DeliveryResult) throws(StoreError) {
        try willCall("recordDelivery")
        try inner.recordDelivery(result)
    }
    func formGroup(sink: String, members: [AlertEvent], now: Date) throws(StoreError) -> FormedGroup {
        try willCall("formGroup")
        return try inner.formGroup(sink: sink, members: members, now: now)
    }
    func outboxCounts() throws(StoreError) -> [OutboxCount] {
        try willCall("outboxCounts")
        return try inner.outboxCounts()
    }
    func beginAnswer(_ record: AnswerRecord) throws(StoreError) -> AnswerRecord? {
        try willCall("beginAnswer")
        return try inner.beginAnswer(record)
    }
    func finishAnswer(_ request: RequestKey, state: AnswerRecord.State, message: String, at: Date) throws(StoreError) {
        try willCall("finishAnswer")
        try inner.finishAnswer(request, state: state, message: message, at: at)
    }
    func answers(for requests: [RequestKey]) throws(StoreError) -> [RequestKey: AnswerRecord] {
        try willCall("answers")
        return try inner.answers(for: requests)
    }
    func answerCount(by kind: AnswerActor.Kind, since: Date) throws(StoreError) -> Int {
        try willCall("answerCount")
        return try inner.answerCount(by: kind, since: since)
    }
}

/// A state file that refuses `calls` while `refusing` is set: by default the writes of
/// tracked requests (a full disk, a database gone away).
final class RefusingStore: ObservedStore, @unchecked Sendable {
    private let lock = NSLock()
    private var refuses = false
    private let calls: Set<String>?
    private let message: String

    /// `calls`: the calls refused (nil: every call but `commit`).
    init(_ inner: SQLiteStateStore, refusing calls: Set<String>? = ["commit", "delete"], message: String = "state file: disk full (test)") {
        self.calls = calls
        self.message = message
        super.init(inner)
    }

    var refusing: Bool {
        get { lock.withLock { refuses } }
        set { lock.withLock { refuses = newValue } }
    }

    override func willCall(_ name: String) throws(StoreError) {
        guard refusing else { return }
        if calls?.contains(name) ?? (name != "commit") { throw StoreError(message) }
    }
}
