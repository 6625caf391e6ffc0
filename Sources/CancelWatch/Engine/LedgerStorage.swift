import Foundation

/// Where a tracked request stands from cancelwatch's point of view.
public enum TrackedStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending
    case approved
    case rejected
    /// It left the pending list and the marketplace no longer knows it.
    case vanished
    /// The deadline passed while it was pending: the marketplace decided instead of the seller.
    case expired

    public var isOpen: Bool { self == .pending }

    /// Its position in `allCases`.
    var index: Int { Self.ordered.firstIndex(of: self)! }
    /// The status at `index` in `allCases`.
    init(index: Int) { self = Self.ordered[index] }
    private static let ordered = allCases
}

/// A request as cancelwatch remembers it between polls and restarts.
///
/// The ledger keeps the raw object pruned to what rules read (`rawKept`); the whole
/// object is in the state file. A change the ledger reports for a request just listed
/// carries the object as the marketplace sent it.
public struct TrackedRequest: Sendable, Hashable {
    public var request: CancellationRequest
    public var status: TrackedStatus
    public var firstSeen: Date
    public var lastSeen: Date
    /// When it stopped being pending (resolved, vanished, or its deadline).
    public var closedAt: Date?
    /// What `request.raw` holds of the marketplace's object: `.everything`, or only these
    /// paths (then saving it leaves the object already in the state file as it is).
    public var rawKept: RawPaths
    /// The whole raw object's fingerprint (without the fields a marketplace changes on
    /// its own), so that a pruned `request.raw` still tells whether the object changed;
    /// nil: compute it from `request.raw`. Kept in memory only; not part of equality.
    public var rawFingerprint: UInt64?

    public init(
        request: CancellationRequest, status: TrackedStatus, firstSeen: Date, lastSeen: Date, closedAt: Date? = nil,
        rawKept: RawPaths = .everything, rawFingerprint: UInt64? = nil
    ) {
        self.request = request
        self.status = status
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.closedAt = closedAt
        self.rawKept = rawKept
        self.rawFingerprint = rawFingerprint
    }

    public var key: RequestKey { request.key }

    /// Whether `request.raw` is the whole object the marketplace sent.
    public var hasWholeRaw: Bool { rawKept.isEverything }

    public static func == (a: TrackedRequest, b: TrackedRequest) -> Bool {
        a.request == b.request && a.status == b.status && a.firstSeen == b.firstSeen && a.lastSeen == b.lastSeen
            && a.closedAt == b.closedAt && a.rawKept == b.rawKept
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(request)
        hasher.combine(status)
        hasher.combine(firstSeen)
        hasher.combine(lastSeen)
        hasher.combine(closedAt)
        hasher.combine(rawKept)
    }

    /// This request with its raw object pruned to `paths`, its fingerprint taken first
    /// (unchanged when it holds no more than `paths`, or lacks some of them).
    public func pruned(to paths: RawPaths) -> TrackedRequest {
        guard rawKept != paths, rawKept.covers(paths) else { return self }
        var copy = self
        if rawKept.isEverything { copy.rawFingerprint = rawFingerprint ?? LedgerStorage.rawFingerprint(request) }
        copy.request.rawObject = RawObject(request.rawObject.pruned(to: paths))
        copy.rawKept = paths
        return copy
    }
}

/// How a request changed between polls.
public enum RequestChange: Sendable, Hashable {
    /// First seen, pending.
    case new(TrackedRequest)
    /// Still pending; fields or the deadline may have been refined.
    case updated(TrackedRequest)
    /// Left the pending list: approved, rejected or vanished.
    case resolved(TrackedRequest, Outcome)
    /// Its deadline passed while pending.
    case expired(TrackedRequest)

    public var tracked: TrackedRequest {
        switch self {
        case .new(let t), .updated(let t), .resolved(let t, _), .expired(let t): return t
        }
    }
}

/// The changes of one `apply` or `expire`, in order. A change for a request just listed
/// names it in the listing rather than holding a copy (a first poll lists thousands): it
/// becomes a ``RequestChange`` value when it is read.
public struct RequestChanges: RandomAccessCollection, ExpressibleByArrayLiteral, Equatable, Sendable {
    /// A new or updated request of the listing, with what the ledger knows of it then.
    struct Listed: Sendable {
        var index: Int32
        var isNew: Bool
        /// Whether the listed raw object is the whole one (otherwise: `rawPaths` of it).
        var wholeRaw: Bool
        var firstSeen: Double
        var lastSeen: Double
        /// The deadline kept (a listed one within the tolerance of it is not a change).
        var deadline: Double
        var fingerprint: UInt64
    }

    enum Entry: Sendable {
        case listed(Listed)
        indirect case value(RequestChange)
    }

    private(set) var entries: [Entry]
    /// The listing the changes name (set once they are all made: while they are, `apply`
    /// reads it in place).
    fileprivate(set) var listing: [CancellationRequest]
    private let rawPaths: RawPaths

    /// No changes yet, of a poll that listed `listing`.
    init(listing: [CancellationRequest], rawPaths: RawPaths) {
        entries = []
        self.listing = listing
        self.rawPaths = rawPaths
    }

    /// These changes, as values.
    public init(_ changes: [RequestChange]) {
        entries = changes.map(Entry.value)
        listing = []
        rawPaths = .everything
    }

    public init(arrayLiteral changes: RequestChange...) { self.init(changes) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count }

    public subscript(position: Int) -> RequestChange {
        switch entries[position] {
        case .value(let change):
            return change
        case .listed(let listed):
            var request = listing[Int(listed.index)]
            request.deadline = Date(timeIntervalSinceReferenceDate: listed.deadline)
            let tracked = TrackedRequest(
                request: request, status: .pending, firstSeen: Date(timeIntervalSinceReferenceDate: listed.firstSeen),
                lastSeen: Date(timeIntervalSinceReferenceDate: listed.lastSeen), rawKept: listed.wholeRaw ? .everything : rawPaths,
                rawFingerprint: listed.fingerprint)
            return listed.isNew ? .new(tracked) : .updated(tracked)
        }
    }

    /// The same changes, as values.
    public static func == (a: RequestChanges, b: RequestChanges) -> Bool { a.elementsEqual(b) }

    mutating func append(_ change: RequestChange) { entries.append(.value(change)) }

    mutating func append(_ listed: Listed) { entries.append(.listed(listed)) }

    mutating func reserveCapacity(_ n: Int) { entries.reserveCapacity(n) }
}

/// The ledger's storage: every known request, how each changed between polls, its alert
/// states and its timer. A value: the ``Ledger`` owns one and persists every change.
///
/// Indexed for fleets: pending requests by source (a poll touches only its source), and a
/// heap of pending deadlines (expiring looks only at what is due), so a poll costs what
/// its source holds, not what every source holds.
///
/// Compact for a million requests: each is a packed record in a slot array (repeated
/// strings shared through a pool, the raw object pruned to `rawPaths` and pooled too, a
/// fingerprint of the whole object to notice when it changes), found through an
/// open-addressing index; the pending lists, deadline heaps and timers hold slots, and
/// each record heads its short list of alert states.
public struct LedgerStorage: Sendable {
    /// Deadline moves smaller than this are measurement noise (Xiaohongshu's
    /// deadline is computed from the send time of each poll) and are ignored.
    public static let deadlineTolerance: TimeInterval = 30
    /// Listings in a row a request must be missing from, with the marketplace not
    /// knowing it either, before it is called vanished (a listing can miss an item once
    /// when pages shift under the cursor).
    public static let defaultVanishConfirmations = 2
    public let vanishConfirmations: Int

    private var table: RequestTable<Record>
    /// Each source's pending slots and deadlines, at the source's position in `sourcePositions`
    /// (looked up once per change of source, not once per request).
    private var sources: [SourceIndex] = []
    private var sourcePositions: [String: Int] = [:]
    /// The source last looked up, and its position.
    private var lastSource: (name: String, position: Int)?
    /// How many tracked requests are in each status.
    public var statusCounts: [TrackedStatus: Int] {
        var counts: [TrackedStatus: Int] = [:]
        for (status, count) in zip(TrackedStatus.allCases, countByStatus) where count != 0 { counts[status] = count }
        return counts
    }
    /// By `TrackedStatus.index` (no hashing per change).
    private var countByStatus = [Int](repeating: 0, count: TrackedStatus.allCases.count)
    /// Times in a row each pending request was missing and unknown to the marketplace.
    private var unconfirmedVanish: [RequestKey: Int] = [:]
    /// Alert states, a list per record (`Record.alerts`).
    private var alertLists = AlertList()
    /// One timer per slot: when its request is evaluated next.
    private var timers = SlotTimers()
    /// While recording: what each key had before the first change (for `rollback`).
    private var journal: [RequestKey: Saved]?

    /// A key's request and alert states as they were before a change.
    private struct Saved {
        var tracked: TrackedRequest?
        var alerts: [PackedAlert]
    }

    /// A source's pending requests.
    struct SourceIndex: Sendable {
        /// Pending slots; each record knows its position (`pendingPosition`).
        var pending: [Int32] = []
        /// Their deadlines (with stale entries, dropped when they reach the top).
        var deadlines = DateHeap<Int32>()
    }

    /// What a tracked request holds besides the request, in 40 bytes (a million of them
    /// with their alert states fit in 256 bytes each): the status shares a word with the
    /// pending position, and "not closed" is a NaN.
    struct Record: Sendable {
        var firstSeen: Double
        var lastSeen: Double
        /// NaN: not closed.
        private var closedTime: Double
        /// The whole raw object's fingerprint, without the fields the marketplace changes on its own.
        var fingerprint: UInt64
        /// Pending: the slot's position in its source's pending list, or -1 before it has
        /// one; otherwise -2 - the status's index.
        private var place: Int32
        /// The head of its alert states in `alertLists`; -1: none.
        var alerts: Int32

        init(
            firstSeen: Double, lastSeen: Double, closedAt: Double?, fingerprint: UInt64, pendingPosition: Int32, alerts: Int32,
            status: TrackedStatus
        ) {
            self.firstSeen = firstSeen
            self.lastSeen = lastSeen
            closedTime = closedAt ?? .nan
            self.fingerprint = fingerprint
            place = status == .pending ? max(pendingPosition, -1) : -2 - Int32(status.index)
            self.alerts = alerts
        }

        var closedAt: Double? { closedTime.isNaN ? nil : closedTime }
        var status: TrackedStatus { place >= -1 ? .pending : TrackedStatus(index: Int(-2 - place)) }

        /// Where the slot is in its source's pending list; -1 when it has none (not pending).
        var pendingPosition: Int32 {
            get { max(place, -1) }
            set { if place >= -1 { place = max(newValue, -1) } }
        }
    }

    /// `vanishConfirmations`: how many listings in a row must miss a request the
    /// marketplace does not know either before it is vanished (1 where the caller has
    /// already made sure, as the rule test runner, which is told).
    ///
    /// `keepingRaw`: what of each raw object stays in memory (the paths the rules read);
    /// the changes for a request just listed carry the whole object all the same.
    public init(
        _ tracked: [TrackedRequest] = [], vanishConfirmations: Int = LedgerStorage.defaultVanishConfirmations,
        keepingRaw rawPaths: RawPaths = .none
    ) {
        self.vanishConfirmations = max(1, vanishConfirmations)
        table = RequestTable(rawPaths: rawPaths)
        table.reserveCapacity(tracked.count)
        // The last of two with the same key wins.
        for item in tracked { set(item.key, item) }
    }

    /// What of each raw object is kept in memory.
    public var rawPaths: RawPaths { table.rawPaths }

    /// Every tracked request, by key (each raw object as kept: `rawPaths`).
    public var requests: TrackedRequests { TrackedRequests(storage: self) }

    /// A read-only view of the tracked requests.
    public struct TrackedRequests: Sendable {
        let storage: LedgerStorage

        public subscript(key: RequestKey) -> TrackedRequest? { storage.table.slot(of: key).map(storage.tracked(at:)) }
        public var count: Int { storage.table.count }
        public var isEmpty: Bool { storage.table.count == 0 }
        public var keys: [RequestKey] { storage.table.slots.map(storage.table.key(at:)) }
        public var values: [TrackedRequest] { storage.table.slots.map(storage.tracked(at:)) }
    }

    public func pending(source: String? = nil) -> [TrackedRequest] {
        guard let source else { return table.slots.filter { table[extra: $0].status == .pending }.map(tracked(at:)) }
        return (sourcePositions[source].map { sources[$0].pending } ?? []).map(tracked(at:))
    }

    /// The pending slots nearest their deadlines first (ties by key), at most `limit`, and how
    /// many are pending. One pass with a heap of `limit` (not a sort of every pending request):
    /// the status page asks after each poll.
    func pendingByDeadline(limit: Int) -> (slots: [Int32], total: Int) {
        let limit = max(0, limit)
        // The nearest so far, the farthest of them on top (a max-heap), replaced by a nearer one.
        var deadlines: [Double] = []
        var slots: [Int32] = []
        deadlines.reserveCapacity(limit)
        slots.reserveCapacity(limit)
        func before(_ a: (Double, Int32), _ b: (Double, Int32)) -> Bool {
            a.0 < b.0 || a.0 == b.0 && table.key(at: a.1) < table.key(at: b.1)
        }
        func after(_ i: Int, _ j: Int) -> Bool { before((deadlines[j], slots[j]), (deadlines[i], slots[i])) }
        func swap(_ i: Int, _ j: Int) {
            deadlines.swapAt(i, j)
            slots.swapAt(i, j)
        }
        var total = 0
        for source in sources {
            total += source.pending.count
            for slot in source.pending {
                let deadline = table.entries[Int(slot)].request.deadline
                if deadlines.count < limit {
                    deadlines.append(deadline)
                    slots.append(slot)
                    BinaryHeap.siftUp(from: deadlines.count - 1, less: after, swap: swap)
                } else if limit > 0, before((deadline, slot), (deadlines[0], slots[0])) {
                    deadlines[0] = deadline
                    slots[0] = slot
                    BinaryHeap.siftDown(from: 0, count: limit, less: after, swap: swap)
                }
            }
        }
        let order = deadlines.indices.sorted { before((deadlines[$0], slots[$0]), (deadlines[$1], slots[$1])) }
        return (order.map { slots[$0] }, total)
    }

    /// How many requests are pending (for one source, or all).
    public func pendingCount(source: String? = nil) -> Int {
        guard let source else { return sources.reduce(0) { $0 + $1.pending.count } }
        return sourcePositions[source].map { sources[$0].pending.count } ?? 0
    }

    /// The nearest deadline among pending requests.
    public mutating func nearestDeadline(source: String? = nil) -> Date? {
        guard let source else {
            return sourcePositions.keys.compactMap { nearestDeadline(source: $0) }.min()
        }
        guard let p = sourcePositions[source] else { return nil }
        while let top = sources[p].deadlines.top, !isPending(top.payload, deadline: top.at, source: source) {
            sources[p].deadlines.pop()
        }
        return sources[p].deadlines.top?.at
    }

    /// Sources with a pending request whose deadline has come.
    /// The pending request of `source` with the earliest deadline.
    mutating func earliestPending(source: String) -> CancellationRequest? {
        guard nearestDeadline(source: source) != nil, let p = sourcePositions[source], let top = sources[p].deadlines.top else {
            return nil
        }
        return table.request(at: top.payload)
    }

    /// Sources with a pending request.
    var sourcesWithPending: [String] { sourcePositions.filter { !sources[$0.value].pending.isEmpty }.map(\.key).sorted() }

    public mutating func sourcesWithDeadlinesPassed(now: Date) -> [String] {
        sourcePositions.keys.sorted().filter { source in nearestDeadline(source: source).map { $0 <= now } ?? false }
    }

    /// Pending requests of `source` that are not in `snapshot`: their outcome must be
    /// looked up. Items listed but undecodable are not missing. When the listing is
    /// incomplete (an item whose id was unreadable could be any of them) they are still
    /// looked up, so approvals and rejections are seen, but `apply` takes no `vanished`
    /// from such a poll. Their raw objects are as kept in memory (`rawPaths`): a lookup
    /// answers with the marketplace's.
    public func missing(from snapshot: PendingSnapshot, source: String) -> [CancellationRequest] {
        guard let slots = sourcePositions[source].map({ sources[$0].pending }), !slots.isEmpty else { return [] }
        // Ids by their bytes, as the table and the clients tell them apart.
        var present = TextSet()
        for request in snapshot.requests where request.source == source { present.insert(request.id) }
        for id in snapshot.skippedIDs { present.insert(id) }
        var result: [CancellationRequest] = []
        for slot in slots where !present.contains(table.id(at: slot)) { result.append(table.request(at: slot)) }
        return result.sorted { $0.key < $1.key }
    }

    /// Applies one successful poll of `source`: the pending list and the outcomes of
    /// the requests that left it. Only a successful poll may resolve anything.
    ///
    /// `listedAt`: when the listing was asked for. A request whose deadline came before
    /// that and is still listed pending has expired; one whose deadline came after it
    /// waits for the next listing (the seller may have answered in between).
    public mutating func apply(
        snapshot: PendingSnapshot, outcomes: [RequestKey: OutcomeLookup], source: String, now: Date, listedAt: Date? = nil
    ) -> RequestChanges {
        let cutoff = min(listedAt ?? now, now)
        let listing = snapshot.requests
        var changes = RequestChanges(listing: [], rawPaths: table.rawPaths)
        changes.reserveCapacity(listing.count)
        // What the source did not have pending is mostly new.
        table.reserveCapacity(adding: max(0, listing.count - pendingCount(source: source)))
        // Each request is read in place (no copy; never written), and a change names its place
        // in the listing.
        listing.withUnsafeBufferPointer { requests in
            let requests = UnsafeMutableBufferPointer(mutating: requests)
            for index in requests.indices {
                observePending(&requests[index], of: source, listed: Int32(index), now: now, cutoff: cutoff, into: &changes)
            }
        }
        if !unconfirmedVanish.isEmpty {
            for id in snapshot.skippedIDs { unconfirmedVanish[RequestKey(source: source, id: id)] = nil }
        }
        for (key, lookup) in outcomes.sorted(by: { $0.key < $1.key }) where key.source == source {
            guard let slot = table.slot(of: key), table[extra: slot].status == .pending else { continue }
            var tracked = self.tracked(at: slot)
            switch lookup {
            case .stillPending(let request):
                unconfirmedVanish[key] = nil
                var request = request
                observePending(&request, of: source, listed: nil, now: now, cutoff: cutoff, into: &changes)
            case .resolved(.vanished, _) where !snapshot.complete:
                // The unreadable item may be this one: not gone, and not a miss either.
                continue
            case .resolved(.vanished, _) where tracked.request.deadline > now:
                let misses = (unconfirmedVanish[key] ?? 0) + 1
                if misses < vanishConfirmations {
                    unconfirmedVanish[key] = misses
                    continue
                }
                unconfirmedVanish[key] = nil
                tracked.status = .vanished
                tracked.closedAt = now
                set(key, tracked)
                changes.append(.resolved(tracked, .vanished))
            case .resolved(let outcome, let at):
                unconfirmedVanish[key] = nil
                if tracked.request.deadline <= now && (at.map { $0 >= tracked.request.deadline } ?? true) {
                    // It passed its deadline pending; the marketplace decided.
                    tracked.status = .expired
                    tracked.closedAt = tracked.request.deadline
                    set(key, tracked)
                    changes.append(.expired(tracked))
                    continue
                }
                tracked.status = TrackedStatus(outcome)
                tracked.request.state = outcome == .rejected ? .rejected : (outcome == .approved ? .approved : tracked.request.state)
                tracked.closedAt = at ?? now
                set(key, tracked)
                changes.append(.resolved(tracked, outcome))
            }
        }
        for change in expiring(now: cutoff, source: source) { changes.append(change) }
        changes.listing = listing
        return changes
    }

    /// Marks every pending request (of `source`, or of all) whose deadline has come as expired.
    public mutating func expire(now: Date, source: String? = nil) -> RequestChanges {
        RequestChanges(expiring(now: now, source: source))
    }

    private mutating func expiring(now: Date, source: String?) -> [RequestChange] {
        guard let source else {
            return sourcePositions.keys.flatMap { expiring(now: now, source: $0) }.sorted { $0.tracked.key < $1.tracked.key }
        }
        guard let p = sourcePositions[source] else { return [] }
        var changes: [RequestChange] = []
        while let top = sources[p].deadlines.top, top.at <= now {
            sources[p].deadlines.pop()
            guard isPending(top.payload, deadline: top.at, source: source) else { continue }
            var tracked = self.tracked(at: top.payload)
            tracked.status = .expired
            tracked.closedAt = tracked.request.deadline
            set(tracked.key, tracked)
            changes.append(.expired(tracked))
        }
        return changes.sorted { $0.tracked.key < $1.tracked.key }
    }

    /// Forgets closed requests closed before `cutoff` (they only matter for `status` history).
    public mutating func prune(closedBefore cutoff: Date) -> [RequestKey] {
        let limit = cutoff.timeIntervalSinceReferenceDate
        var old: [RequestKey] = []
        for slot in table.slots {
            let record = table[extra: slot]
            if !record.status.isOpen && (record.closedAt ?? record.lastSeen) < limit { old.append(table.key(at: slot)) }
        }
        for key in old { set(key, nil) }
        return old
    }

    /// The slots of the requests of `sources` (one pass over the table).
    func slots(of sources: [String]) -> [Int32] { table.slots(ofSources: sources) }

    /// Takes `tracked` as everything known of `sources`, forgetting what was known of them
    /// before (their requests, alert states and timers); the requests come without alert
    /// states (``setAlert(_:at:)``). Not recorded for rollback: call it between changes.
    public mutating func replace(sources: [String], with tracked: [TrackedRequest]) {
        for slot in slots(of: sources) { set(table.key(at: slot), nil) }
        let names = Set(sources)
        unconfirmedVanish = unconfirmedVanish.filter { !names.contains($0.key.source) }
        for item in tracked where names.contains(item.key.source) { set(item.key, item) }
    }

    // MARK: - All or nothing

    /// Starts remembering what changes, so that `rollback` can undo it (when the state
    /// file could not record the changes, memory must not run ahead of it).
    public mutating func beginChanges() { journal = [:] }

    /// Keeps what changed since `beginChanges`.
    public mutating func commitChanges() { journal = nil }

    /// Undoes everything since `beginChanges`: the next poll finds the same changes again.
    public mutating func rollbackChanges() {
        guard let undo = journal else { return }
        journal = nil
        for (key, saved) in undo {
            set(key, saved.tracked)
            guard let slot = table.slot(of: key) else { continue }
            var head = table[extra: slot].alerts
            alertLists.removeAll(head)
            head = -1
            for alert in saved.alerts.reversed() { alertLists.set(alert, in: &head) }
            table[extra: slot].alerts = head
        }
    }

    /// Keys changed since `beginChanges` (nil when not recording).
    var changedKeys: [RequestKey]? { journal.map { Array($0.keys) } }

    // MARK: - Alert states and timers

    /// The alert state of `rule` for the request in `slot`.
    func alert(_ rule: UInt16, at slot: Int32) -> PackedAlert? {
        alertLists.find(rule, in: table[extra: slot].alerts).map { alertLists[$0] }
    }

    /// Every alert state of the request in `slot`.
    func alerts(at slot: Int32) -> [PackedAlert] { alertLists.all(table[extra: slot].alerts) }

    /// Stores `alert` (over the state of the same rule) for the request in `slot`.
    mutating func setAlert(_ alert: PackedAlert, at slot: Int32) {
        note(table.key(at: slot), slot: slot)
        var head = table[extra: slot].alerts
        alertLists.set(alert, in: &head)
        table[extra: slot].alerts = head
    }

    /// Evaluates the request in `slot` next at `date` (nil: not by time).
    mutating func schedule(_ slot: Int32, at date: Date?) {
        if let date { timers.schedule(slot, at: date) } else { timers.remove(slot) }
    }

    /// The next slot whose timer is due at `now`, taken off the timers.
    mutating func popDue(now: Date) -> Int32? { timers.popDue(now: now) }

    /// The earliest timer.
    var nextWake: Date? { timers.earliest }

    func slot(of key: RequestKey) -> Int32? { table.slot(of: key) }
    func key(at slot: Int32) -> RequestKey { table.key(at: slot) }
    func status(at slot: Int32) -> TrackedStatus { table[extra: slot].status }
    /// The request in `slot`, its raw object as kept (`rawPaths`).
    func request(at slot: Int32) -> CancellationRequest { table.request(at: slot) }
    /// Every slot in use.
    var slots: [Int32] { table.slots }

    // MARK: - Internals

    /// The request in `slot` as a value (its raw object as kept).
    func tracked(at slot: Int32) -> TrackedRequest {
        let record = table[extra: slot]
        return TrackedRequest(
            request: table.request(at: slot), status: record.status,
            firstSeen: Date(timeIntervalSinceReferenceDate: record.firstSeen),
            lastSeen: Date(timeIntervalSinceReferenceDate: record.lastSeen),
            closedAt: record.closedAt.map { Date(timeIntervalSinceReferenceDate: $0) }, rawKept: table.rawPaths,
            rawFingerprint: record.fingerprint)
    }

    private func isPending(_ slot: Int32, deadline: Date, source: String) -> Bool {
        guard table.isLive(slot), table[extra: slot].status == .pending,
            table.entries[Int(slot)].request.deadline == deadline.timeIntervalSinceReferenceDate
        else { return false }
        return table.source(at: slot) == source
    }

    /// Every change to the table goes through here (or `set(_:_:at:)`): it keeps the indexes
    /// and the journal.
    private mutating func set(_ key: RequestKey, _ value: TrackedRequest?) {
        let location = table.locate(key)
        if let value {
            set(key, value, at: location)
        } else {
            let existing = leave(key, at: location, pending: false)
            if let slot = existing.slot {
                alertLists.removeAll(existing.alerts)
                timers.remove(slot)
                table.remove(slot)
            }
        }
    }

    /// What a slot was before a change, once `leave` has taken it out of the counts (and out
    /// of its source's pending list, unless it stays pending).
    private struct Left {
        var slot: Int32?
        var wasPending = false
        var deadline: Date?
        var pendingPosition: Int32 = -1
        var alerts: Int32 = -1
    }

    /// Notes in the journal what `key` holds before its first change.
    private mutating func note(_ key: RequestKey, slot: Int32?) {
        guard journal != nil && journal?[key] == nil else { return }
        let saved = Saved(tracked: slot.map(tracked(at:)), alerts: slot.map(alerts(at:)) ?? [])
        journal?[key] = saved
    }

    /// Notes the journal entry and takes the slot at `location` out of the counts; out of
    /// the pending list too unless the new value is `pending`.
    private mutating func leave(_ key: RequestKey, at location: RequestTable<Record>.Location, pending: Bool) -> Left {
        var left = Left(slot: location.slot)
        note(key, slot: location.slot)
        guard let existing = location.slot else { return left }
        let old = table[extra: existing]
        left.alerts = old.alerts
        countByStatus[old.status.index] -= 1
        left.wasPending = old.status == .pending
        left.deadline = table.deadline(at: existing)
        left.pendingPosition = old.pendingPosition
        if left.wasPending && !pending {
            removePending(existing, at: left.pendingPosition, source: position(of: key.source))
            left.pendingPosition = -1
            unconfirmedVanish[key] = nil
        }
        return left
    }

    /// `set`, where the caller has located the key. (`value` is borrowed: a request just
    /// listed is stored and handed on as a change without a copy.)
    private mutating func set(_ key: RequestKey, _ value: borrowing TrackedRequest, at location: RequestTable<Record>.Location) {
        set(
            key, value.request, status: value.status, firstSeen: value.firstSeen, lastSeen: value.lastSeen, closedAt: value.closedAt,
            rawKept: value.rawKept, fingerprint: value.rawFingerprint ?? Self.rawFingerprint(value.request), at: location)
    }

    /// `set`, from the parts of a tracked request (`request` is read in place: a request just
    /// listed is stored without a copy).
    private mutating func set(
        _ key: RequestKey, _ request: CancellationRequest, status: TrackedStatus, firstSeen: Date, lastSeen: Date, closedAt: Date?,
        rawKept: RawPaths, fingerprint: UInt64, at location: RequestTable<Record>.Location
    ) {
        let isPending = status == .pending
        let left = leave(key, at: location, pending: isPending)
        let record = Record(
            firstSeen: firstSeen.timeIntervalSinceReferenceDate, lastSeen: lastSeen.timeIntervalSinceReferenceDate,
            closedAt: closedAt?.timeIntervalSinceReferenceDate, fingerprint: fingerprint, pendingPosition: left.pendingPosition,
            alerts: left.alerts, status: status)
        let slot = table.set(request, rawKept: rawKept, extra: record, at: location)
        countByStatus[status.index] += 1
        guard isPending else { return }
        let p = self.position(of: key.source)
        if !left.wasPending {
            // Changed in place (no copy of the list).
            sources[p].pending.append(slot)
            table[extra: slot].pendingPosition = Int32(sources[p].pending.count - 1)
        }
        let deadline = request.deadline
        if !(left.wasPending && left.deadline == deadline) {
            sources[p].deadlines.push(deadline, slot)
            // Entries left behind by moved deadlines are dropped when they reach the top;
            // when they outnumber the live ones, the heap is built again.
            if sources[p].deadlines.count > 2 * sources[p].pending.count + 64 {
                sources[p].deadlines = DateHeap(sources[p].pending.map { (table.deadline(at: $0), $0) })
            }
        }
    }

    /// The position of `source` in `sources`, made on first use.
    private mutating func position(of source: String) -> Int {
        if let last = lastSource, last.name == source { return last.position }
        let p: Int
        if let known = sourcePositions[source] {
            p = known
        } else {
            p = sources.count
            sources.append(SourceIndex())
            sourcePositions[source] = p
        }
        lastSource = (source, p)
        return p
    }

    private mutating func removePending(_ slot: Int32, at position: Int32, source p: Int) {
        let count = sources[p].pending.count
        guard position >= 0, Int(position) < count else { return }
        let last = sources[p].pending.removeLast()
        if last != slot {
            sources[p].pending[Int(position)] = last
            table[extra: last].pendingPosition = position
        }
        table[extra: slot].pendingPosition = -1
        if sources[p].pending.isEmpty {
            // Nothing pending: every entry of its heap is stale.
            sources[p].deadlines = DateHeap()
        }
    }

    /// `request` is read only: `inout` so that the listing's own is handed on in place (a
    /// borrowed one would be copied at every call). `listed`: its index in the listing the
    /// changes name (nil: it is not in it).
    private mutating func observePending(
        _ request: inout CancellationRequest, of source: String, listed: Int32?, now: Date, cutoff: Date,
        into changes: inout RequestChanges
    ) {
        guard request.source == source else { return }
        let key = request.key
        if !unconfirmedVanish.isEmpty { unconfirmedVanish[key] = nil }
        var fingerprint = Self.rawFingerprint(request)
        let location = table.locate(key)
        guard let slot = location.slot else {
            set(
                key, request, status: .pending, firstSeen: now, lastSeen: now, closedAt: nil, rawKept: .everything,
                fingerprint: fingerprint, at: location)
            if let listed {
                let seen = now.timeIntervalSinceReferenceDate
                changes.append(
                    RequestChanges.Listed(
                        index: listed, isNew: true, wholeRaw: true, firstSeen: seen, lastSeen: seen,
                        deadline: request.deadline.timeIntervalSinceReferenceDate, fingerprint: fingerprint))
            } else {
                changes.append(.new(TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now, rawFingerprint: fingerprint)))
            }
            if request.deadline <= cutoff { expireOne(key, into: &changes) }
            return
        }
        let record = table[extra: slot]
        let trackedDeadline = table.deadline(at: slot)
        if record.status == .expired {
            guard request.deadline.timeIntervalSince(trackedDeadline) >= Self.deadlineTolerance, request.deadline > now else {
                // The marketplace has not caught up with its own deadline yet. (Only
                // `lastSeen` moves: not worth a write.)
                return
            }
            // Listed again with a later deadline than the one that passed: the deadline
            // was extended (or the one we had was wrong). Open again, with the new one.
        }
        var refined = request
        if request.deadline != trackedDeadline && abs(request.deadline.timeIntervalSince(trackedDeadline)) < Self.deadlineTolerance {
            refined.deadline = trackedDeadline
        }
        // Equal in everything a rule, a message or `status` can see, except the fields a
        // marketplace changes on every poll on its own (Xiaohongshu's `max_audit_time`
        // counts down; the deadline it implies is compared with a tolerance instead).
        let reopened = record.status != .pending
        var rawKept = RawPaths.everything
        if fingerprint != record.fingerprint && !table.rawPaths.isEverything && table.keepsRaw(request.rawObject, in: slot) {
            // Our own copy handed back (as `missing` gave it, its raw object pruned): the
            // object is not compared, and the state file's stays as it is.
            fingerprint = record.fingerprint
            rawKept = table.rawPaths
        }
        guard reopened || record.fingerprint != fingerprint || !table.sameFields(slot, refined) else { return }
        let firstSeen = Date(timeIntervalSinceReferenceDate: record.firstSeen)
        set(
            key, refined, status: .pending, firstSeen: firstSeen, lastSeen: now, closedAt: nil, rawKept: rawKept, fingerprint: fingerprint,
            at: location)
        if let listed {
            changes.append(
                RequestChanges.Listed(
                    index: listed, isNew: false, wholeRaw: rawKept.isEverything, firstSeen: record.firstSeen,
                    lastSeen: now.timeIntervalSinceReferenceDate, deadline: refined.deadline.timeIntervalSinceReferenceDate,
                    fingerprint: fingerprint))
        } else {
            changes.append(
                .updated(
                    TrackedRequest(
                        request: refined, status: .pending, firstSeen: firstSeen, lastSeen: now, rawKept: rawKept, rawFingerprint: fingerprint)))
        }
        if refined.deadline <= cutoff { expireOne(key, into: &changes) }
    }

    /// The whole raw object's fingerprint, without the fields a marketplace changes on
    /// its own (Xiaohongshu's `max_audit_time` counts down on every poll).
    static func rawFingerprint(_ request: CancellationRequest) -> UInt64 {
        request.rawObject.changeFingerprint ?? request.rawObject.fingerprint(ignoring: request.marketplace.volatileRawKeys)
    }

    private mutating func expireOne(_ key: RequestKey, into changes: inout RequestChanges) {
        guard let slot = table.slot(of: key), table[extra: slot].status == .pending else { return }
        var tracked = self.tracked(at: slot)
        tracked.status = .expired
        tracked.closedAt = tracked.request.deadline
        set(key, tracked)
        changes.append(.expired(tracked))
    }
}

extension TrackedStatus {
    init(_ outcome: Outcome) {
        switch outcome {
        case .approved: self = .approved
        case .rejected: self = .rejected
        case .vanished: self = .vanished
        }
    }
}
/// One (request, rule) alert state in 40 bytes, a link in its request's list.
struct PackedAlert: Sendable, Equatable {
    private var lastFired: Double = 0
    private var nextRepeat: Double = 0
    private var held: Double = 0
    var firings: Int32 = 0
    var repeats: Int32 = 0
    /// The next state of the same request; -1 ends the list.
    var next: Int32 = -1
    var rule: UInt16
    private var flags: UInt8 = 0

    private static let activeFlag: UInt8 = 1
    private static let closedFlag: UInt8 = 2
    private static let lastFiredFlag: UInt8 = 4
    private static let nextRepeatFlag: UInt8 = 8
    private static let heldFlag: UInt8 = 16

    init(rule: UInt16) { self.rule = rule }

    init(_ state: AlertState, rule: UInt16) {
        self.rule = rule
        firings = Int32(clamping: state.firings)
        repeats = Int32(clamping: state.repeats)
        active = state.active
        closed = state.closed
        lastFiredAt = state.lastFiredAt
        nextRepeatAt = state.nextRepeatAt
        heldUntil = state.heldUntil
    }

    func state(request: RequestKey, rule name: String) -> AlertState {
        AlertState(
            request: request, rule: name, firings: Int(firings), repeats: Int(repeats), active: active, lastFiredAt: lastFiredAt,
            nextRepeatAt: nextRepeatAt, heldUntil: heldUntil, closed: closed)
    }

    private func flag(_ bit: UInt8) -> Bool { flags & bit != 0 }
    private mutating func set(_ bit: UInt8, _ on: Bool) { flags = on ? flags | bit : flags & ~bit }

    var active: Bool {
        get { flag(Self.activeFlag) }
        set { set(Self.activeFlag, newValue) }
    }
    var closed: Bool {
        get { flag(Self.closedFlag) }
        set { set(Self.closedFlag, newValue) }
    }
    var lastFiredAt: Date? {
        get { flag(Self.lastFiredFlag) ? Date(timeIntervalSinceReferenceDate: lastFired) : nil }
        set {
            lastFired = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.lastFiredFlag, newValue != nil)
        }
    }
    var nextRepeatAt: Date? {
        get { flag(Self.nextRepeatFlag) ? Date(timeIntervalSinceReferenceDate: nextRepeat) : nil }
        set {
            nextRepeat = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.nextRepeatFlag, newValue != nil)
        }
    }
    var heldUntil: Date? {
        get { flag(Self.heldFlag) ? Date(timeIntervalSinceReferenceDate: held) : nil }
        set {
            held = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.heldFlag, newValue != nil)
        }
    }
}

/// Alert states, a short list per request (one per rule that ever fired or was held for
/// it), in one array with a free list. A list is named by its head (-1: empty).
struct AlertList: Sendable {
    private var items: [PackedAlert] = []
    private var free: [Int32] = []

    subscript(index: Int32) -> PackedAlert {
        get { items[Int(index)] }
        set { items[Int(index)] = newValue }
    }

    func find(_ rule: UInt16, in head: Int32) -> Int32? {
        var i = head
        while i >= 0 {
            if items[Int(i)].rule == rule { return i }
            i = items[Int(i)].next
        }
        return nil
    }

    /// Stores `alert` in the list starting at `head`: over the state of the same rule, or as a new head.
    mutating func set(_ alert: PackedAlert, in head: inout Int32) {
        if let existing = find(alert.rule, in: head) {
            var copy = alert
            copy.next = items[Int(existing)].next
            items[Int(existing)] = copy
            return
        }
        var copy = alert
        copy.next = head
        if let slot = free.popLast() {
            items[Int(slot)] = copy
            head = slot
        } else {
            head = Int32(items.count)
            items.append(copy)
        }
    }

    func all(_ head: Int32) -> [PackedAlert] {
        var result: [PackedAlert] = []
        var i = head
        while i >= 0 {
            result.append(items[Int(i)])
            i = items[Int(i)].next
        }
        return result
    }

    mutating func removeAll(_ head: Int32) {
        var i = head
        while i >= 0 {
            let next = items[Int(i)].next
            free.append(i)
            i = next
        }
    }
}

/// One timer per slot in a min-heap that knows where each slot is: re-scheduling moves
/// the entry (no stale entries pile up). Instants and slots are two arrays (12 bytes an
/// entry, not a padded 16).
struct SlotTimers: Sendable {
    private var ats: [Double] = []
    private var slots: [Int32] = []
    /// By slot: its index in the heap, or -1.
    private var position: [Int32] = []

    var earliest: Date? { ats.first.map { Date(timeIntervalSinceReferenceDate: $0) } }

    mutating func schedule(_ slot: Int32, at date: Date) {
        let at = date.timeIntervalSinceReferenceDate
        while position.count <= Int(slot) { position.append(-1) }
        let current = position[Int(slot)]
        if current >= 0 {
            let old = ats[Int(current)]
            if old == at { return }
            ats[Int(current)] = at
            if at < old { siftUp(Int(current)) } else { siftDown(Int(current)) }
            return
        }
        ats.append(at)
        slots.append(slot)
        position[Int(slot)] = Int32(ats.count - 1)
        siftUp(ats.count - 1)
    }

    mutating func remove(_ slot: Int32) {
        guard Int(slot) < position.count, position[Int(slot)] >= 0 else { return }
        let index = Int(position[Int(slot)])
        position[Int(slot)] = -1
        let lastAt = ats.removeLast()
        let lastSlot = slots.removeLast()
        guard index < ats.count else { return }
        ats[index] = lastAt
        slots[index] = lastSlot
        position[Int(lastSlot)] = Int32(index)
        siftUp(index)
        siftDown(Int(position[Int(lastSlot)]))
    }

    mutating func popDue(now: Date) -> Int32? {
        guard let top = ats.first, top <= now.timeIntervalSinceReferenceDate else { return nil }
        let slot = slots[0]
        remove(slot)
        return slot
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        ats.swapAt(i, j)
        slots.swapAt(i, j)
        position[Int(slots[i])] = Int32(i)
        position[Int(slots[j])] = Int32(j)
    }

    private mutating func siftUp(_ start: Int) {
        BinaryHeap.siftUp(from: start, less: { ats[$0] < ats[$1] }, swap: { swapAt($0, $1) })
    }

    private mutating func siftDown(_ start: Int) {
        BinaryHeap.siftDown(from: start, count: ats.count, less: { ats[$0] < ats[$1] }, swap: { swapAt($0, $1) })
    }
}
