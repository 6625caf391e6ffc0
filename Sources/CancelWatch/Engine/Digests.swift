import Foundation

/// When each digest is due next, as the ledger keeps it: a heap of (instant, digest), the
/// instant being the scheduled one or, after a store refused it, the retry.
///
/// A digest is sent at its instant, or late within ``grace`` of it (the watcher was down
/// then, or the store refused); its id comes from the scheduled instant, so the outbox keeps
/// it once however often it is sent. One missed by more than that is skipped.
struct DigestSchedule: Sendable {
    /// How late a digest may still go out.
    static let grace: TimeInterval = 3600

    /// One digest due: which, and the instant it was scheduled for (its id's occurrence).
    struct Due: Sendable {
        var digest: CompiledDigest
        var scheduled: Date
    }

    private var heap = DateHeap<Due>()

    /// Each digest at its first instant within ``grace`` before `now`, or after it.
    init(_ digests: [CompiledDigest], now: Date) {
        for digest in digests {
            if let first = digest.next(after: now.addingTimeInterval(-Self.grace)) { heap.push(first, Due(digest: digest, scheduled: first)) }
        }
    }

    /// The next instant a digest is due (or retried).
    var nextWake: Date? { heap.top?.at }

    /// Takes out the digests due at `now`; each must come back through ``sent(_:now:)`` or
    /// ``retry(_:at:now:)``. One due more than ``grace`` ago is skipped for its next instant.
    /// Those skipped come back in `skipped`, for the log.
    mutating func takeDue(now: Date) -> (due: [Due], skipped: [Due]) {
        var due: [Due] = []
        var skipped: [Due] = []
        while let top = heap.top, top.at <= now {
            heap.pop()
            if top.payload.scheduled.addingTimeInterval(Self.grace) < now {
                skipped.append(top.payload)
                sent([top.payload], now: now)
            } else {
                due.append(top.payload)
            }
        }
        return (due, skipped)
    }

    /// Schedules each digest's next instant after `due` went out (or was skipped): the first
    /// after its scheduled instant that is not past its grace at `now`.
    mutating func sent(_ due: [Due], now: Date) {
        for item in due {
            let after = max(item.scheduled, now.addingTimeInterval(-Self.grace))
            if let next = item.digest.next(after: after) { heap.push(next, Due(digest: item.digest, scheduled: next)) }
        }
    }

    /// The store could not take `due` at `now`: each is tried again at `at` while within its
    /// grace. Returns those given up (past their grace), for the log.
    @discardableResult
    mutating func retry(_ due: [Due], at: Date, now: Date) -> [Due] {
        var skipped: [Due] = []
        for item in due {
            if at <= item.scheduled.addingTimeInterval(Self.grace) {
                heap.push(at, item)
            } else {
                skipped.append(item)
                sent([item], now: now)
            }
        }
        return skipped
    }
}

extension Decisions {
    /// The `digest` event of `digest`'s instant `scheduled`, sent at `now`: the `pending`
    /// requests its `include` matches at `now`, sorted by deadline; nil when none does and it
    /// does not say `always`. Its id is the same wherever and whenever it is computed for that
    /// instant (replicas, a restart within the grace).
    static func digest(_ digest: CompiledDigest, scheduled: Date, pending: [CancellationRequest], now: Date) -> AlertEvent? {
        let listed = RequestList.sorted(pending.filter { digest.matches($0, now: now) })
        guard !listed.isEmpty || digest.always else { return nil }
        var event = AlertEvent(
            id: AlertEvent.makeID(
                source: "", request: "digest:" + digest.name, rule: digest.name, kind: .digest,
                occurrence: Int(scheduled.timeIntervalSince1970.rounded(.down))),
            kind: .digest, rule: digest.name, severity: .info, source: "", marketplace: listed.first?.marketplace ?? .ozon,
            request: nil, occurredAt: now, message: "", sinks: digest.notify, listed: listed)
        event.message = RequestList.headline(of: event)
        return event
    }
}
