import Foundation

/// How one source's polling is going.
public struct SourceHealth: Sendable, Hashable {
    public var source: String
    public var marketplace: Marketplace
    public var lastPollAt: Date?
    public var lastSuccessAt: Date?
    public var consecutiveFailures: Int
    /// The last failure's message (never holds credentials).
    public var lastError: String?
    /// Whether `source_down` has been raised and not yet answered by `source_up`.
    public var down: Bool
    /// How many times it has gone down (the occurrence number of `source_down` events).
    public var downCount: Int

    public init(
        source: String, marketplace: Marketplace, lastPollAt: Date? = nil, lastSuccessAt: Date? = nil,
        consecutiveFailures: Int = 0, lastError: String? = nil, down: Bool = false, downCount: Int = 0
    ) {
        self.downCount = downCount
        self.source = source
        self.marketplace = marketplace
        self.lastPollAt = lastPollAt
        self.lastSuccessAt = lastSuccessAt
        self.consecutiveFailures = consecutiveFailures
        self.lastError = lastError
        self.down = down
    }
}

/// Where cancelwatch keeps what must survive a restart and be visible to a second
/// process (`status`). SQLite today; a shared PostgreSQL store can come behind the
/// same protocol.
public protocol StateStore: AnswerJournal {
    /// Every tracked request (open and recently closed).
    func loadTracked() throws(StoreError) -> [TrackedRequest]
    /// Every tracked request, each raw object pruned to `paths` as it is read (with the
    /// whole object's fingerprint), so that the whole objects never sit in memory together.
    func loadTracked(keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest]
    /// `source`'s tracked requests alone (read by their key, not the whole table), each raw
    /// object pruned to `paths` as ``loadTracked(keepingRaw:)`` prunes it: what a replica
    /// reads of a source it takes over.
    func loadTracked(source: String, keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest]
    /// Writes one step of the engine in one transaction: the requests that changed, their
    /// alert states, sources' health, and the events queued for each sink (an event is in
    /// the outbox before anything tries to send it). A request whose raw object is pruned
    /// (`rawKept`) leaves the object already saved as it is (a request not saved before is
    /// saved with what it has); an event in `eventsTakingSavedRaw` carries the whole
    /// object saved for its request, where the store has one.
    func commit(_ changes: StoreChanges, at now: Date) throws(StoreError)
    /// Forgets these requests and their alert states.
    func delete(_ keys: [RequestKey]) throws(StoreError)
    /// Forgets outbox entries delivered before `deliveredBefore` and dead letters
    /// finished before `deadBefore`; returns how many.
    func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int
    func loadHealth() throws(StoreError) -> [SourceHealth]

    /// Every (request, rule) alert state.
    func loadAlerts() throws(StoreError) -> [AlertState]
    /// The alert states of `source`'s requests alone (read by their key, not the whole table).
    func loadAlerts(source: String) throws(StoreError) -> [AlertState]
    /// Deliveries of `sink` due at `now`, oldest first. Where replicas share the store each
    /// is claimed for this store until `now + claim` (``DueDeliveries/claimedUntil``): no
    /// other replica gets it before then, and this one gets it again when it asks again.
    func dueDeliveries(sink: String, now: Date, limit: Int, claim: TimeInterval) throws(StoreError) -> DueDeliveries
    /// The earliest next attempt among `sink`'s pending deliveries (one another replica
    /// holds counts from the end of its claim), only among those later than `after` when given.
    func nextDeliveryAttempt(sink: String, after: Date?) throws(StoreError) -> Date?
    /// Records one attempt's result; a finished (delivered or dead) entry stays as it is.
    /// Where replicas share the store, a result lands only
    /// while no other replica has claimed the entry since: a replica whose claim ran out
    /// and was taken over leaves the new claimant's entry as it is. A group's entry that
    /// ends delivered or dead takes its members with it (the same status, instant and error).
    func recordDelivery(_ result: DeliveryResult) throws(StoreError)
    /// Makes one delivery of `members` (events due for `sink`, as ``dueDeliveries(sink:now:limit:claim:)``
    /// gave them), in one transaction: a new pending entry for `sink` holding
    /// ``AlertEvent/group(_:sink:at:)`` of those still pending, not in a group and (replicas)
    /// claimed by this store, each of which becomes `grouped` under the group's id. A member
    /// whose request is no longer pending (closed, or forgotten) is `withdrawn` instead.
    func formGroup(sink: String, members: [AlertEvent], now: Date) throws(StoreError) -> FormedGroup
    /// Outbox counts by sink and status (`pending`, `delivered`, `dead`, `withdrawn`; `grouped`
    /// for every member of a group, whatever became of the group: the group's own entry
    /// counts as the one delivery).
    func outboxCounts() throws(StoreError) -> [OutboxCount]
}

extension StateStore {
    /// The earliest next attempt among `sink`'s pending deliveries.
    public func nextDeliveryAttempt(sink: String) throws(StoreError) -> Date? { try nextDeliveryAttempt(sink: sink, after: nil) }

    public func loadTracked(keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] {
        try loadTracked().map { $0.pruned(to: paths) }
    }
}

/// What one step of the engine writes, as one transaction (``StateStore/commit(_:at:)``).
public struct StoreChanges: Sendable {
    public var tracked: [TrackedRequest]
    public var alerts: [AlertState]
    public var events: [AlertEvent]
    /// Ids of events whose request holds only what memory keeps of its raw object: the
    /// store gives them the whole object saved for the request.
    public var eventsTakingSavedRaw: Set<String>
    public var health: [SourceHealth]
    /// The leases the changes are written under, where replicas share the store: the commit
    /// renews every one, or writes nothing when any is no longer that holding
    /// (``StoreError/lostLease`` names the first such source). A state file ignores them.
    public var leases: [LeaseClaim]

    public init(
        tracked: [TrackedRequest] = [], alerts: [AlertState] = [], events: [AlertEvent] = [],
        eventsTakingSavedRaw: Set<String> = [], health: [SourceHealth] = [], leases: [LeaseClaim] = []
    ) {
        self.tracked = tracked
        self.alerts = alerts
        self.events = events
        self.eventsTakingSavedRaw = eventsTakingSavedRaw
        self.health = health
        self.leases = leases
    }

    /// Nothing to write (leases alone are nothing to write).
    public var isEmpty: Bool { tracked.isEmpty && alerts.isEmpty && events.isEmpty && health.isEmpty }
}

/// The scheduling state of one (request, rule) pair: how often it has fired and when it next may.
public struct AlertState: Sendable, Hashable {
    public var request: RequestKey
    public var rule: String
    /// `firing` events so far (the occurrence number of the last).
    public var firings: Int
    public var repeats: Int
    /// The condition was true at the last evaluation and `firing` went out.
    public var active: Bool
    public var lastFiredAt: Date?
    public var nextRepeatAt: Date?
    /// A firing held back by a quiet window, due at this instant.
    public var heldUntil: Date?
    /// `resolved` or `expired` went out (or the request closed): nothing more for this pair.
    public var closed: Bool

    public init(
        request: RequestKey, rule: String, firings: Int = 0, repeats: Int = 0, active: Bool = false, lastFiredAt: Date? = nil,
        nextRepeatAt: Date? = nil, heldUntil: Date? = nil, closed: Bool = false
    ) {
        self.request = request
        self.rule = rule
        self.firings = firings
        self.repeats = repeats
        self.active = active
        self.lastFiredAt = lastFiredAt
        self.nextRepeatAt = nextRepeatAt
        self.heldUntil = heldUntil
        self.closed = closed
    }
}

/// One (event, sink) delivery waiting in the outbox.
public struct PendingDelivery: Sendable, Hashable {
    public var event: AlertEvent
    public var sink: String
    public var attempts: Int
    public var nextAttemptAt: Date
    /// When the event was queued for the sink (a grouped sink waits from its oldest).
    public var createdAt: Date
}

/// A group ``StateStore/formGroup(sink:members:now:)`` made.
public struct FormedGroup: Sendable {
    /// The group's own entry, pending, to be delivered as any other; nil when no candidate was left.
    public var delivery: PendingDelivery?
    /// Ids of the candidates left out because their request is no longer pending.
    public var withdrawn: [String]

    public init(delivery: PendingDelivery?, withdrawn: [String]) {
        self.delivery = delivery
        self.withdrawn = withdrawn
    }
}

/// What one delivery attempt came to.
public struct DeliveryResult: Sendable, Hashable {
    public enum Status: String, Sendable {
        case delivered
        /// Try again at `nextAttemptAt`.
        case retry
        /// Given up: a permanent failure or too many attempts.
        case dead
    }
    public var eventID: String
    public var sink: String
    public var status: Status
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var error: String?
    public var at: Date

    public init(eventID: String, sink: String, status: Status, attempts: Int, nextAttemptAt: Date? = nil, error: String? = nil, at: Date) {
        self.eventID = eventID
        self.sink = sink
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.error = error
        self.at = at
    }
}

extension DeliveryResult.Status {
    /// The outbox row's `status` once an attempt came to this.
    var outboxStatus: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "pending"
        case .dead: "dead"
        }
    }
}

public struct OutboxCount: Sendable, Hashable {
    public var sink: String
    public var status: String
    public var count: Int
}

extension [OutboxCount] {
    /// `sink`'s entries in `status` (0 when none).
    public func count(sink: String, status: String) -> Int { first { $0.sink == sink && $0.status == status }?.count ?? 0 }
    /// The `configured` sinks in order, then any other the outbox still holds entries for.
    public func sinks(configured: [String]) -> [String] {
        var names = configured
        for entry in self where !names.contains(entry.sink) { names.append(entry.sink) }
        return names
    }
    /// Dead letters of every sink.
    public var dead: Int { filter { $0.status == "dead" }.reduce(0) { $0 + $1.count } }
}

/// An event a sink will never get (not retryable, attempts used up, or unreadable), as
/// the outbox keeps it.
public struct DeadLetter: Sendable {
    public var eventID: String
    public var sink: String
    /// The event, when its stored form can still be read.
    public var event: AlertEvent?
    public var attempts: Int
    public var at: Date?
    public var error: String
}

/// What is due for one sink, oldest first, and the entries that could not be read
/// (each already turned into a dead letter; one message per entry, for the log).
public struct DueDeliveries: Sendable {
    public var deliveries: [PendingDelivery]
    public var unreadable: [String]
    /// When the claim on `deliveries` runs out; nil where one process has the store to itself.
    public var claimedUntil: Date?
    public init(deliveries: [PendingDelivery], unreadable: [String] = [], claimedUntil: Date? = nil) {
        self.deliveries = deliveries
        self.unreadable = unreadable
        self.claimedUntil = claimedUntil
    }
}
