import Foundation
import Logging

/// Decides when each (request, rule) event is due and emits it at that instant.
///
/// Not a fixed tick: each open request has one timer at the earliest instant any of
/// its rules can change (a threshold on `remaining` crossed, a repeat, the end of a
/// quiet window, its deadline). Events are committed to the outbox together with the
/// alert state that produced them, then the delivery queue is woken.
public actor AlertScheduler {
    public typealias ExpireHook = @Sendable () async -> [TrackerChange]

    private var rules: [AlertRule]
    private let store: StateStore
    private let clock: WatchClock
    private let logger: Logger
    private let delivery: DeliveryQueue?
    private var expireHook: ExpireHook?

    private var open: [RequestKey: CancellationRequest] = [:]
    private var alerts: [AlertKey: AlertState] = [:]
    private var timers = TimerQueue()
    private let waker = Waker()
    private var observers: [@Sendable ([AlertEvent]) async -> Void] = []

    struct AlertKey: Hashable {
        var request: RequestKey
        var rule: String
    }

    public init(rules: [AlertRule], store: StateStore, clock: WatchClock, logger: Logger, delivery: DeliveryQueue?) {
        self.rules = rules
        self.store = store
        self.clock = clock
        self.logger = logger
        self.delivery = delivery
    }

    /// How to expire requests whose deadline came (the watcher's `expireDue`).
    public func setExpireHook(_ hook: @escaping ExpireHook) { expireHook = hook }

    /// Called with every batch of events after it is in the outbox.
    public func onEvents(_ observer: @escaping @Sendable ([AlertEvent]) async -> Void) { observers.append(observer) }

    /// Replaces the rule set (SIGHUP). Alert states of rules that remain are kept.
    public func replaceRules(_ newRules: [AlertRule]) async {
        rules = newRules
        await evaluate(Array(open.keys), now: clock.now())
    }

    /// Takes the tracked requests and the saved alert states at start-up. What fell due
    /// while the process was down fires once now; alerts of requests that closed while
    /// down get their `resolved`/`expired`.
    public func start(tracked: [TrackedRequest]) async {
        do {
            for alert in try store.loadAlerts() {
                alerts[AlertKey(request: alert.request, rule: alert.rule)] = alert
            }
        } catch {
            logger.error("cannot read alert states: \(error.description)")
        }
        let now = clock.now()
        var closed: [TrackerChange] = []
        for item in tracked {
            switch item.status {
            case .pending: open[item.key] = item.request
            case .expired: closed.append(.expired(item))
            case .approved: closed.append(.resolved(item, .approved))
            case .rejected: closed.append(.resolved(item, .rejected))
            case .vanished: closed.append(.resolved(item, .vanished))
            }
        }
        await apply(closed, now: now)
        await evaluate(Array(open.keys), now: now)
    }

    /// Applies the watcher's changes from one poll (or an expiry).
    public func handle(_ changes: [TrackerChange]) async {
        await apply(changes, now: clock.now())
    }

    /// Runs the timer loop until cancelled.
    public func run() async {
        while !Task.isCancelled {
            await processDue()
            await waker.wait(until: timers.earliest, clock: clock)
        }
    }

    /// Fires everything due now (the timer loop's body; `once` calls it directly).
    public func processDue() async {
        let now = clock.now()
        var due: [RequestKey] = []
        while let next = timers.popDue(now: now) { due.append(next) }
        guard !due.isEmpty else { return }
        if due.contains(where: { open[$0].map { $0.deadline <= now } ?? false }), let expireHook {
            await apply(await expireHook(), now: clock.now())
        }
        await evaluate(due.filter { open[$0] != nil }, now: clock.now())
    }

    public var openCount: Int { open.count }

    /// Drops what it remembers about requests the watcher forgot (closed long ago).
    public func forget(_ keys: [RequestKey]) {
        guard !keys.isEmpty else { return }
        let forgotten = Set(keys)
        for key in keys {
            open[key] = nil
            timers.remove(key)
        }
        alerts = alerts.filter { !forgotten.contains($0.key.request) }
    }

    /// The next instant the scheduler will wake at.
    public var nextWake: Date? { timers.earliest }

    // MARK: - Evaluation

    private func apply(_ changes: [TrackerChange], now: Date) async {
        var touched: [RequestKey] = []
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        for change in changes {
            let tracked = change.tracked
            switch change {
            case .new, .updated:
                guard tracked.status == .pending else { continue }
                if open[tracked.key] == nil { reopen(tracked.key, states: &states) }
                open[tracked.key] = tracked.request
                touched.append(tracked.key)
            case .resolved(_, let outcome):
                open[tracked.key] = nil
                timers.remove(tracked.key)
                close(tracked, kind: .resolved, outcome: outcome, now: now, events: &events, states: &states)
            case .expired:
                open[tracked.key] = nil
                timers.remove(tracked.key)
                close(tracked, kind: .expired, outcome: nil, now: now, events: &events, states: &states)
            }
        }
        await commit(states: states, events: events, now: now)
        await evaluate(touched, now: now)
    }

    /// A request that closed is pending again (listed again, or its deadline was
    /// extended): its rules may fire again, with new occurrence numbers (new ids).
    private func reopen(_ key: RequestKey, states: inout [AlertState]) {
        for rule in rules {
            let alertKey = AlertKey(request: key, rule: rule.name)
            guard var state = alerts[alertKey], state.closed else { continue }
            state.closed = false
            state.active = false
            state.nextRepeatAt = nil
            state.heldUntil = nil
            // Not fired since it reopened: closing again sends no second `resolved`.
            state.lastFiredAt = nil
            alerts[alertKey] = state
            states.append(state)
        }
    }

    private func close(
        _ tracked: TrackedRequest, kind: AlertEvent.Kind, outcome: Outcome?, now: Date, events: inout [AlertEvent],
        states: inout [AlertState]
    ) {
        for rule in rules {
            let key = AlertKey(request: tracked.key, rule: rule.name)
            guard var state = alerts[key], !state.closed else { continue }
            state.closed = true
            state.active = false
            state.nextRepeatAt = nil
            state.heldUntil = nil
            alerts[key] = state
            states.append(state)
            guard state.firings > 0, state.lastFiredAt != nil, rule.notifiesResolution else { continue }
            let request = tracked.request
            let text: String
            if kind == .expired {
                text = "\(request.marketplace.rawValue) \(request.source) \(request.order): the deadline \(Timestamp.format(request.deadline)) passed while pending; the marketplace decided (rule \(rule.name))"
            } else {
                text = "\(request.marketplace.rawValue) \(request.source) \(request.order): cancellation request \(outcome?.rawValue ?? "resolved") (rule \(rule.name))"
            }
            events.append(
                AlertEvent(
                    id: AlertEvent.makeID(source: request.source, request: request.id, rule: rule.name, kind: kind, occurrence: state.firings),
                    kind: kind, rule: rule.name, severity: rule.severity, source: request.source, marketplace: request.marketplace,
                    request: request, outcome: outcome, occurredAt: now, message: text, sinks: rule.notify))
        }
    }

    /// Evaluates every rule for `keys` at `now`, emits what is due, and re-arms their timers.
    private func evaluate(_ keys: [RequestKey], now: Date) async {
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        for key in keys.sorted() {
            guard let request = open[key] else { continue }
            var wake: Date? = request.deadline > now ? request.deadline : nil
            for rule in rules {
                let alertKey = AlertKey(request: key, rule: rule.name)
                let before = alerts[alertKey]
                var state = before ?? AlertState(request: key, rule: rule.name)
                if state.closed { continue }
                let matches = rule.matches(request, now: now)
                if matches {
                    let due: Bool
                    let kind: AlertEvent.Kind
                    if !state.active {
                        due = true
                        kind = .firing
                    } else if let next = state.nextRepeatAt, next <= now {
                        due = true
                        kind = .repeat
                    } else {
                        due = false
                        kind = .repeat
                    }
                    if due {
                        let release = rule.quietRelease(at: now, deadline: request.deadline)
                        if release > now {
                            state.heldUntil = release
                        } else {
                            state.heldUntil = nil
                            let occurrence: Int
                            if kind == .firing {
                                state.firings += 1
                                state.active = true
                                occurrence = state.firings
                            } else {
                                state.repeats += 1
                                occurrence = state.repeats
                            }
                            state.lastFiredAt = now
                            // After downtime, one repeat now, then the cadence from here.
                            state.nextRepeatAt = rule.repeatEvery.map { now.addingTimeInterval($0) }
                            events.append(
                                AlertEvent(
                                    id: AlertEvent.makeID(
                                        source: key.source, request: key.id, rule: rule.name, kind: kind, occurrence: occurrence),
                                    kind: kind, rule: rule.name, severity: rule.severity, source: key.source,
                                    marketplace: request.marketplace, request: request, occurredAt: now,
                                    message: rule.message(for: request, now: now), sinks: rule.notify))
                        }
                    }
                } else if state.active || state.heldUntil != nil {
                    state.active = false
                    state.nextRepeatAt = nil
                    state.heldUntil = nil
                }
                if state != before && (before != nil || state.firings > 0 || state.heldUntil != nil) {
                    alerts[alertKey] = state
                    states.append(state)
                }
                for candidate in [rule.nextChange(for: request, after: now), state.active ? state.nextRepeatAt : nil, state.heldUntil] {
                    if let candidate, candidate > now { wake = min(wake ?? candidate, candidate) }
                }
            }
            if let wake { timers.schedule(key, at: wake) } else { timers.remove(key) }
        }
        await commit(states: states, events: events, now: now)
        waker.signal()
    }

    private func commit(states: [AlertState], events: [AlertEvent], now: Date) async {
        guard !states.isEmpty || !events.isEmpty else { return }
        do {
            try store.commit(alerts: states, events: events, health: nil, at: now)
        } catch {
            logger.error("cannot save alerts: \(error.description)")
            return
        }
        guard !events.isEmpty else { return }
        delivery?.wake(sinks: Array(Set(events.flatMap(\.sinks))))
        for observer in observers { await observer(events) }
    }
}

/// Timers by instant, one per request; re-scheduling replaces the old one.
struct TimerQueue {
    private var heap = DateHeap<(key: RequestKey, generation: UInt64)>()
    private var current: [RequestKey: (at: Date, generation: UInt64)] = [:]
    private var generation: UInt64 = 0

    var earliest: Date? {
        mutating get {
            dropStale()
            return heap.top?.at
        }
    }

    mutating func schedule(_ key: RequestKey, at date: Date) {
        if let existing = current[key], existing.at == date { return }
        generation += 1
        current[key] = (date, generation)
        heap.push(date, (key, generation))
    }

    mutating func remove(_ key: RequestKey) { current[key] = nil }

    mutating func popDue(now: Date) -> RequestKey? {
        dropStale()
        guard let top = heap.top, top.at <= now else { return nil }
        heap.pop()
        current[top.payload.key] = nil
        return top.payload.key
    }

    private mutating func dropStale() {
        while let top = heap.top, current[top.payload.key]?.generation != top.payload.generation { heap.pop() }
    }
}
