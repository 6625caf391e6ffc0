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
public struct Tracker: Sendable {
    /// Deadline moves smaller than this are measurement noise (Xiaohongshu's
    /// deadline is computed from the send time of each poll) and are ignored.
    public static let deadlineTolerance: TimeInterval = 30

    public private(set) var requests: [RequestKey: TrackedRequest]

    public init(_ tracked: [TrackedRequest] = []) {
        requests = Dictionary(tracked.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func pending(source: String? = nil) -> [TrackedRequest] {
        requests.values.filter { $0.status == .pending && (source == nil || $0.request.source == source) }
    }

    /// Pending requests of `source` that are not in `snapshot`: their outcome must be looked up.
    public func missing(from snapshot: PendingSnapshot, source: String) -> [CancellationRequest] {
        let present = Set(snapshot.requests.map(\.id))
        return pending(source: source).filter { !present.contains($0.request.id) }.map(\.request)
            .sorted { $0.id < $1.id }
    }

    /// Applies one successful poll of `source`: the pending list and the outcomes of
    /// the requests that left it. Only a successful poll may resolve anything.
    public mutating func apply(
        snapshot: PendingSnapshot, outcomes: [RequestKey: OutcomeLookup], source: String, now: Date
    ) -> [TrackerChange] {
        var changes: [TrackerChange] = []
        for request in snapshot.requests where request.source == source {
            changes.append(contentsOf: observePending(request, now: now))
        }
        for (key, lookup) in outcomes.sorted(by: { $0.key < $1.key }) where key.source == source {
            guard var tracked = requests[key], tracked.status == .pending else { continue }
            switch lookup {
            case .stillPending(let request):
                changes.append(contentsOf: observePending(request, now: now))
            case .resolved(let outcome, let at):
                if tracked.request.deadline <= now && (at.map { $0 >= tracked.request.deadline } ?? true) {
                    // It passed its deadline pending; the marketplace decided.
                    tracked.status = .expired
                    tracked.closedAt = tracked.request.deadline
                    requests[key] = tracked
                    changes.append(.expired(tracked))
                    continue
                }
                tracked.status = TrackedStatus(outcome)
                tracked.request.state = outcome == .rejected ? .rejected : (outcome == .approved ? .approved : tracked.request.state)
                tracked.closedAt = at ?? now
                requests[key] = tracked
                changes.append(.resolved(tracked, outcome))
            }
        }
        changes.append(contentsOf: expire(now: now))
        return changes
    }

    /// Marks every pending request whose deadline has come as expired.
    public mutating func expire(now: Date) -> [TrackerChange] {
        var changes: [TrackerChange] = []
        for (key, var tracked) in requests where tracked.status == .pending && tracked.request.deadline <= now {
            tracked.status = .expired
            tracked.closedAt = tracked.request.deadline
            requests[key] = tracked
            changes.append(.expired(tracked))
        }
        return changes.sorted { $0.tracked.key < $1.tracked.key }
    }

    /// Forgets closed requests closed before `cutoff` (they only matter for `status` history).
    public mutating func prune(closedBefore cutoff: Date) -> [RequestKey] {
        let old = requests.values.filter { !$0.status.isOpen && ($0.closedAt ?? $0.lastSeen) < cutoff }.map(\.key)
        for key in old { requests[key] = nil }
        return old
    }

    private mutating func observePending(_ request: CancellationRequest, now: Date) -> [TrackerChange] {
        guard var tracked = requests[request.key] else {
            let tracked = TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now)
            requests[request.key] = tracked
            if request.deadline <= now { return [.new(tracked)] + expireOne(request.key) }
            return [.new(tracked)]
        }
        if tracked.status == .expired {
            // The marketplace has not caught up with its own deadline yet.
            tracked.lastSeen = now
            requests[request.key] = tracked
            return []
        }
        var refined = request
        if abs(request.deadline.timeIntervalSince(tracked.request.deadline)) < Self.deadlineTolerance {
            refined.deadline = tracked.request.deadline
        }
        let reopened = tracked.status != .pending
        let changed = reopened || refined != tracked.request
        tracked.request = refined
        tracked.status = .pending
        tracked.closedAt = nil
        tracked.lastSeen = now
        requests[request.key] = tracked
        var changes: [TrackerChange] = changed ? [.updated(tracked)] : []
        if refined.deadline <= now { changes += expireOne(request.key) }
        return changes
    }

    private mutating func expireOne(_ key: RequestKey) -> [TrackerChange] {
        guard var tracked = requests[key], tracked.status == .pending else { return [] }
        tracked.status = .expired
        tracked.closedAt = tracked.request.deadline
        requests[key] = tracked
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
