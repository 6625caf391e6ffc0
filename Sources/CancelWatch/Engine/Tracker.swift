import Foundation

/// Where a tracked request stands from cancelwatch's point of view.
public enum TrackedStatus: String, Sendable, Hashable, Codable {
    case pending
    case approved
    case rejected
    /// It left the pending list and the marketplace no longer knows it.
    case vanished
    /// The deadline passed while it was pending: the marketplace decided instead of the seller.
    case expired

    public var isOpen: Bool { self == .pending }
}

/// A request as cancelwatch remembers it between polls and restarts.
public struct TrackedRequest: Sendable, Hashable {
    public var request: CancellationRequest
    public var status: TrackedStatus
    public var firstSeen: Date
    public var lastSeen: Date
    /// When it stopped being pending (resolved, vanished, or its deadline).
    public var closedAt: Date?

    public init(request: CancellationRequest, status: TrackedStatus, firstSeen: Date, lastSeen: Date, closedAt: Date? = nil) {
        self.request = request
        self.status = status
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.closedAt = closedAt
    }

    public var key: RequestKey { request.key }
}

/// How a request changed between polls.
public enum TrackerChange: Sendable, Hashable {
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

/// The set of known requests and how each changed between polls. A value:
/// the watcher owns one and persists every change it returns.
///
/// Indexed for fleets: pending keys by source (a poll touches only its source), and a
/// heap of pending deadlines (expiring looks only at what is due), so a poll costs what
/// its source holds, not what every source holds.
public struct Tracker: Sendable {
    /// Deadline moves smaller than this are measurement noise (Xiaohongshu's
    /// deadline is computed from the send time of each poll) and are ignored.
    public static let deadlineTolerance: TimeInterval = 30
    /// Listings in a row a request must be missing from, with the marketplace not
    /// knowing it either, before it is called vanished (a listing can miss an item once
    /// when pages shift under the cursor).
    public static let defaultVanishConfirmations = 2
    public let vanishConfirmations: Int

    public private(set) var requests: [RequestKey: TrackedRequest]
    private var pendingBySource: [String: Set<RequestKey>] = [:]
    /// How many tracked requests are in each state.
    public private(set) var statusCounts: [TrackedStatus: Int] = [:]
    /// Pending deadlines, one heap per source.
    private var deadlines: [String: DateHeap<RequestKey>] = [:]
    /// Times in a row each pending request was missing and unknown to the marketplace.
    private var unconfirmedVanish: [RequestKey: Int] = [:]
    /// While recording: the value each key had before the first change (for `rollback`).
    private var journal: [RequestKey: TrackedRequest?]?

    /// `vanishConfirmations`: how many listings in a row must miss a request the
    /// marketplace does not know either before it is vanished (1 where the caller has
    /// already made sure, as the rule test runner, which is told).
    public init(_ tracked: [TrackedRequest] = [], vanishConfirmations: Int = Tracker.defaultVanishConfirmations) {
        self.vanishConfirmations = max(1, vanishConfirmations)
        requests = Dictionary(tracked.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        for item in requests.values { statusCounts[item.status, default: 0] += 1 }
        for item in requests.values where item.status == .pending {
            pendingBySource[item.request.source, default: []].insert(item.key)
            deadlines[item.request.source, default: DateHeap()].push(item.request.deadline, item.key)
        }
    }

    public func pending(source: String? = nil) -> [TrackedRequest] {
        guard let source else { return requests.values.filter { $0.status == .pending } }
        return (pendingBySource[source] ?? []).compactMap { requests[$0] }
    }

    /// How many requests are pending (for one source, or all).
    public func pendingCount(source: String? = nil) -> Int {
        guard let source else { return pendingBySource.values.reduce(0) { $0 + $1.count } }
        return pendingBySource[source]?.count ?? 0
    }

    /// The nearest deadline among pending requests.
    public mutating func nearestDeadline(source: String? = nil) -> Date? {
        guard let source else {
            return deadlines.keys.sorted().compactMap { nearestDeadline(source: $0) }.min()
        }
        while let top = deadlines[source]?.top, !isPending(top.payload, deadline: top.at) { deadlines[source]?.pop() }
        return deadlines[source]?.top?.at
    }

    /// Sources with a pending request whose deadline has come.
    public mutating func sourcesWithDeadlinesPassed(now: Date) -> [String] {
        deadlines.keys.sorted().filter { source in nearestDeadline(source: source).map { $0 <= now } ?? false }
    }

    /// Pending requests of `source` that are not in `snapshot`: their outcome must be
    /// looked up. None when the listing is incomplete (an item whose id was unreadable
    /// could be any of them); items listed but undecodable are not missing.
    public func missing(from snapshot: PendingSnapshot, source: String) -> [CancellationRequest] {
        guard snapshot.complete, let keys = pendingBySource[source], !keys.isEmpty else { return [] }
        var present = Set<String>(minimumCapacity: snapshot.requests.count + snapshot.skippedIDs.count)
        for request in snapshot.requests where request.source == source { present.insert(request.id) }
        present.formUnion(snapshot.skippedIDs)
        var result: [CancellationRequest] = []
        for key in keys where !present.contains(key.id) {
            if let tracked = requests[key] { result.append(tracked.request) }
        }
        return result.sorted { $0.id < $1.id }
    }

    /// Applies one successful poll of `source`: the pending list and the outcomes of
    /// the requests that left it. Only a successful poll may resolve anything.
    ///
    /// `listedAt`: when the listing was asked for. A request whose deadline came before
    /// that and is still listed pending has expired; one whose deadline came after it
    /// waits for the next listing (the seller may have answered in between).
    public mutating func apply(
        snapshot: PendingSnapshot, outcomes: [RequestKey: OutcomeLookup], source: String, now: Date, listedAt: Date? = nil
    ) -> [TrackerChange] {
        let cutoff = min(listedAt ?? now, now)
        var changes: [TrackerChange] = []
        for request in snapshot.requests where request.source == source {
            unconfirmedVanish[request.key] = nil
            changes.append(contentsOf: observePending(request, now: now, cutoff: cutoff))
        }
        for id in snapshot.skippedIDs { unconfirmedVanish[RequestKey(source: source, id: id)] = nil }
        for (key, lookup) in outcomes.sorted(by: { $0.key < $1.key }) where key.source == source {
            guard var tracked = requests[key], tracked.status == .pending else { continue }
            switch lookup {
            case .stillPending(let request):
                unconfirmedVanish[key] = nil
                changes.append(contentsOf: observePending(request, now: now, cutoff: cutoff))
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
        changes.append(contentsOf: expire(now: cutoff, source: source))
        return changes
    }

    /// Marks every pending request (of `source`, or of all) whose deadline has come as expired.
    public mutating func expire(now: Date, source: String? = nil) -> [TrackerChange] {
        guard let source else {
            return deadlines.keys.sorted().flatMap { expire(now: now, source: $0) }.sorted { $0.tracked.key < $1.tracked.key }
        }
        var changes: [TrackerChange] = []
        while let top = deadlines[source]?.top, top.at <= now {
            deadlines[source]?.pop()
            let key = top.payload
            guard var tracked = requests[key], tracked.status == .pending, tracked.request.deadline == top.at else { continue }
            tracked.status = .expired
            tracked.closedAt = tracked.request.deadline
            set(key, tracked)
            changes.append(.expired(tracked))
        }
        return changes.sorted { $0.tracked.key < $1.tracked.key }
    }

    /// Forgets closed requests closed before `cutoff` (they only matter for `status` history).
    public mutating func prune(closedBefore cutoff: Date) -> [RequestKey] {
        let old = requests.values.filter { !$0.status.isOpen && ($0.closedAt ?? $0.lastSeen) < cutoff }.map(\.key)
        for key in old { set(key, nil) }
        return old
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
        for (key, previous) in undo { set(key, previous) }
    }

    // MARK: - Internals

    private func isPending(_ key: RequestKey, deadline: Date) -> Bool {
        guard let tracked = requests[key] else { return false }
        return tracked.status == .pending && tracked.request.deadline == deadline
    }

    /// Every change to `requests` goes through here: it keeps the indexes and the journal.
    private mutating func set(_ key: RequestKey, _ value: TrackedRequest?) {
        let old = requests[key]
        if journal != nil && journal?[key] == nil { journal?[key] = .some(old) }
        requests[key] = value
        if let old { statusCounts[old.status, default: 0] -= 1 }
        if let value { statusCounts[value.status, default: 0] += 1 }
        let wasPending = old?.status == .pending
        let isPending = value?.status == .pending
        if wasPending && !isPending {
            pendingBySource[key.source]?.remove(key)
            if pendingBySource[key.source]?.isEmpty == true { pendingBySource[key.source] = nil }
            unconfirmedVanish[key] = nil
        } else if isPending && !wasPending {
            pendingBySource[key.source, default: []].insert(key)
        }
        if isPending, let value, !(wasPending && old?.request.deadline == value.request.deadline) {
            deadlines[key.source, default: DateHeap()].push(value.request.deadline, key)
        }
    }

    private mutating func observePending(_ request: CancellationRequest, now: Date, cutoff: Date) -> [TrackerChange] {
        guard var tracked = requests[request.key] else {
            let tracked = TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now)
            set(request.key, tracked)
            if request.deadline <= cutoff { return [.new(tracked)] + expireOne(request.key) }
            return [.new(tracked)]
        }
        if tracked.status == .expired {
            guard request.deadline.timeIntervalSince(tracked.request.deadline) >= Self.deadlineTolerance, request.deadline > now
            else {
                // The marketplace has not caught up with its own deadline yet. (Only
                // `lastSeen` moves: not worth a write.)
                return []
            }
            // Listed again with a later deadline than the one that passed: the deadline
            // was extended (or the one we had was wrong). Open again, with the new one.
        }
        var refined = request
        if abs(request.deadline.timeIntervalSince(tracked.request.deadline)) < Self.deadlineTolerance {
            refined.deadline = tracked.request.deadline
        }
        let reopened = tracked.status != .pending
        let changed = reopened || !Self.sameForAlerting(refined, tracked.request)
        guard changed else { return [] }
        tracked.request = refined
        tracked.status = .pending
        tracked.closedAt = nil
        tracked.lastSeen = now
        set(request.key, tracked)
        var changes: [TrackerChange] = [.updated(tracked)]
        if refined.deadline <= cutoff { changes += expireOne(request.key) }
        return changes
    }

    /// Equal in everything a rule, a message or `status` can see, except the fields a
    /// marketplace changes on every poll on its own (Xiaohongshu's `max_audit_time`
    /// counts down; the deadline it implies is compared with a tolerance instead).
    static func sameForAlerting(_ a: CancellationRequest, _ b: CancellationRequest) -> Bool {
        guard a.marketplace == b.marketplace, a.deadline == b.deadline, a.state == b.state, a.rawState == b.rawState,
            a.order == b.order, a.initiator == b.initiator, a.reason == b.reason, a.reasonID == b.reasonID,
            a.logistics == b.logistics, a.createdAt == b.createdAt
        else { return false }
        let volatile = volatileRawKeys[a.marketplace] ?? []
        guard !volatile.isEmpty, case .object(var left) = a.raw, case .object(var right) = b.raw else { return a.raw == b.raw }
        for key in volatile {
            left[key] = nil
            right[key] = nil
        }
        return left == right
    }

    static let volatileRawKeys: [Marketplace: [String]] = [.xiaohongshu: ["max_audit_time"]]

    private mutating func expireOne(_ key: RequestKey) -> [TrackerChange] {
        guard var tracked = requests[key], tracked.status == .pending else { return [] }
        tracked.status = .expired
        tracked.closedAt = tracked.request.deadline
        set(key, tracked)
        return [.expired(tracked)]
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
