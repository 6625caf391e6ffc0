import Foundation
import Logging

/// What the delivery queue tells whoever listens (the metrics, tests): one way, never waited on.
public enum DeliveryReport: Sendable {
    /// An attempt's result, once the state file has it (or has refused it).
    case attempt(DeliveryResult)
    /// The outbox's counts, first and after each pass (a scrape never reads the state file,
    /// where SQLite may wait seconds).
    case outbox([OutboxCount])
}

/// Delivers queued events from the outbox to each sink, each sink on its own loop
/// so that one failing sink never holds back another. Retries retryable failures
/// with the sink's backoff; permanent failures become dead letters, logged with
/// what the receiver said. Everything it knows lives in the state store, so a
/// restart picks up where it left off, with the same event ids.
public actor DeliveryQueue {
    /// Its methods call the state store: they run on a thread of their own (as the ``Ledger``'s).
    private let executor = BlockingExecutor(name: "delivery")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// A sink, how it retries, the longest one attempt takes (its `timeout:`), and how it
    /// groups events (its `group:`).
    public struct Route: Sendable {
        public var sink: AlertSink
        public var retry: RetryPolicy
        /// Bounded to 0…10 min (a sink's `timeout:` range); 30 s for a sink without one.
        public var timeout: TimeInterval
        /// Its `wait` bounded to 1 s…1 h and its `max` to 1…500, as the config bounds them.
        public var group: GroupPolicy?
        public init(
            sink: AlertSink, retry: RetryPolicy = .standard, timeout: TimeInterval = Route.defaultTimeout, group: GroupPolicy? = nil
        ) {
            self.sink = sink
            self.retry = retry
            self.timeout = timeout.isFinite ? min(max(timeout, 0), 600) : Route.defaultTimeout
            self.group = group?.bounded
        }

        public static let defaultTimeout: TimeInterval = 30

        /// How long one attempt holds its outbox entry at most: the sink's time limit and
        /// ``DeliveryQueue/claimMargin``. Entries are claimed for two of these (replicas).
        var attemptBound: TimeInterval { timeout + DeliveryQueue.claimMargin }
    }

    /// What an attempt takes beyond its sink's time limit: waiting for a thread, recording
    /// the result, and the difference between replicas' clocks.
    static let claimMargin: TimeInterval = 15

    private let routes: [String: Route]
    private let store: StateStore
    private let clock: WatchClock
    private let logger: Logger
    private let wakers: [String: Waker]
    private let listeners = ReportListeners<DeliveryReport>()

    public init(routes: [Route], store: StateStore, clock: WatchClock, logger: Logger) {
        self.routes = Dictionary(routes.map { ($0.sink.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.store = store
        self.clock = clock
        self.logger = logger
        wakers = Dictionary(routes.map { ($0.sink.name, Waker()) }, uniquingKeysWith: { first, _ in first })
    }

    /// A one-way sequence of every attempt's result and of the outbox's counts, starting
    /// with the counts as they are now.
    public func reports() -> AsyncStream<DeliveryReport> {
        listeners.listen(first: outboxCounts().map { [.outbox($0)] } ?? [])
    }

    private func publishCounts() {
        guard !listeners.isEmpty, let counts = outboxCounts() else { return }
        listeners.publish(.outbox(counts))
    }

    private func outboxCounts() -> [OutboxCount]? {
        do {
            return try store.outboxCounts()
        } catch {
            storeFailed("cannot count the outbox: \(error.description)", sink: nil)
            return nil
        }
    }

    /// New events are in the outbox: wake the sinks' loops.
    public nonisolated func wake(sinks: [String]? = nil) {
        for (name, waker) in wakers where sinks?.contains(name) ?? true { waker.signal() }
    }

    /// Runs every sink's loop until cancelled. An attempt in flight finishes; what it
    /// could not record stays in the outbox and is sent again (same id) after a restart.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for name in routes.keys.sorted() {
                group.addTask { await self.sinkLoop(name) }
            }
        }
    }

    /// One pass over what is due now for every sink (for `once`); failures stay queued. A
    /// grouped sink's events are grouped at once, however recent (nothing else would send them).
    /// Returns what it reports: each attempt's result (sink by sink), then the outbox's counts.
    @discardableResult
    public func deliverDueOnce() async -> [DeliveryReport] {
        let results = await withTaskGroup(of: (String, [DeliveryResult]).self) { group in
            for name in routes.keys.sorted() {
                group.addTask { (name, await self.deliverDue(name, groupingAll: true).results) }
            }
            var bySink: [String: [DeliveryResult]] = [:]
            for await (name, results) in group { bySink[name] = results }
            return bySink.keys.sorted().flatMap { bySink[$0] ?? [] }
        }
        let counts = outboxCounts()
        if let counts { listeners.publish(.outbox(counts)) }
        return results.map { .attempt($0) } + (counts.map { [.outbox($0)] } ?? [])
    }

    private func sinkLoop(_ name: String) async {
        guard let waker = wakers[name] else { return }
        while !Task.isCancelled {
            let pass = await deliverDue(name)
            publishCounts()
            let next: Date?
            if let resumeAt = pass.resumeAt {
                // The sink failed (or the outbox could not be read or written): the whole sink
                // waits, not only the one event, so a failing receiver is not flooded.
                next = resumeAt
            } else if pass.attempted > 0 {
                continue
            } else if let formAt = pass.formAt {
                // Events waiting for their group are due in the outbox (their next attempt is
                // past): the wait is until the group forms, or until another entry's next
                // attempt comes first (a retry is never held back by a group).
                do {
                    next = min(formAt, try store.nextDeliveryAttempt(sink: name, after: clock.now()) ?? formAt)
                } catch {
                    storeFailed("cannot read the outbox: \(error.description)", sink: name)
                    next = min(formAt, clock.now().addingTimeInterval(Self.storeRetryDelay))
                }
            } else {
                do {
                    next = try store.nextDeliveryAttempt(sink: name)
                } catch {
                    storeFailed("cannot read the outbox: \(error.description)", sink: name)
                    next = clock.now().addingTimeInterval(Self.storeRetryDelay)
                }
            }
            // A wake (a new event) does not cut a sink's pause short; it only ends an idle wait.
            // Either wait is at least the floor: a pause ends at a stored next attempt
            // (WakeTime.after), an idle wait is the waker's. Nothing the outbox holds makes this loop spin.
            if let resumeAt = pass.resumeAt {
                try? await clock.sleep(until: resumeAt)
            } else {
                await waker.wait(until: next, clock: clock)
            }
        }
    }

    /// How long a sink waits when the state file cannot be read or written.
    static let storeRetryDelay: TimeInterval = 5

    struct Pass {
        var results: [DeliveryResult] = []
        var attempted: Int { results.count }
        /// Set when the sink should wait before its next attempt.
        var resumeAt: Date?
        /// Set when events wait to be grouped: when their group forms unless more come.
        var formAt: Date?
    }

    /// Events that failed retryably in a row on each sink since its last success.
    private var failingInARow: [String: Set<String>] = [:]
    /// Per sink, rate-limit replies in a row that named no wait (DingTalk's 130101): each
    /// waits the backoff's next step, so a throttled robot is not asked again every second.
    /// Any other outcome of an attempt on the sink ends the row.
    private var unstatedRateLimits: [String: Int] = [:]
    /// Per sink, an attempt's result the store could not record (at most one: the sink
    /// waits until it is recorded). Recorded before anything is claimed again, so that an
    /// event the receiver acknowledged while the database was away is not sent twice.
    private var unrecorded: [String: DeliveryResult] = [:]
    /// Whether the store failed at its last use: an outage is logged once at error level
    /// (the sinks retry every few seconds meanwhile), and its end.
    private var storeFailing = false

    private func storeFailed(_ message: String, sink: String?) {
        logger.log(level: storeFailing ? .debug : .error, "\(message)", metadata: sink.map { ["sink": "\($0)"] })
        storeFailing = true
    }

    private func storeAnswered() {
        guard storeFailing else { return }
        storeFailing = false
        logger.notice("the outbox can be read and written again")
    }

    /// Attempts the deliveries of `name` due now, oldest first. One event failing
    /// retryably waits on its own backoff while the others go on; when two different
    /// events fail in a row, the sink itself is failing and pauses as a whole until the
    /// latest failure's next attempt (its Retry-After or backoff).
    ///
    /// A grouped sink holds its `firing` and `repeat` events (``GroupPolicy/holds(_:)``) until
    /// the oldest has waited `wait` or `max` of them are due (`groupingAll`: at once), then
    /// sends those with the earliest deadlines, `max` at most, as one group; the rest wait
    /// for the next. Every other event goes on its own as it comes.
    private func deliverDue(_ name: String, groupingAll: Bool = false) async -> Pass {
        var pass = Pass()
        guard let route = routes[name] else { return pass }
        if let result = unrecorded[name] {
            do {
                try store.recordDelivery(result)
                unrecorded[name] = nil
            } catch {
                logger.debug("cannot record a delivery yet: \(error.description)", metadata: ["sink": "\(name)"])
                pass.resumeAt = clock.now().addingTimeInterval(Self.storeRetryDelay)
                return pass
            }
        }
        let due: DueDeliveries
        do {
            // Held events are grouped by deadline among those read at once: room for several
            // groups' worth (a flood is read whole), and beyond them for the others behind.
            let limit = 100 + 5 * (route.group?.max ?? 0)
            due = try store.dueDeliveries(sink: name, now: clock.now(), limit: limit, claim: 2 * route.attemptBound)
        } catch {
            storeFailed("cannot read the outbox: \(error.description)", sink: name)
            pass.resumeAt = clock.now().addingTimeInterval(Self.storeRetryDelay)
            return pass
        }
        storeAnswered()
        for message in due.unreadable { logger.error("dead letter: \(message)", metadata: ["sink": "\(name)"]) }
        var held: [PendingDelivery] = []
        for delivery in due.deliveries {
            if route.group?.holds(delivery.event) == true {
                held.append(delivery)
            } else if !(await send(delivery, route: route, claimedUntil: due.claimedUntil, in: &pass)) {
                return pass
            }
        }
        if let policy = route.group {
            await sendGroups(of: held, policy: policy, all: groupingAll, route: route, claimedUntil: due.claimedUntil, in: &pass)
        }
        return pass
    }

    /// Forms and sends the groups `held` makes now; sets `pass.formAt` when some wait for theirs.
    private func sendGroups(
        of held: [PendingDelivery], policy: GroupPolicy, all: Bool, route: Route, claimedUntil: Date?, in pass: inout Pass
    ) async {
        var waiting = held.sorted { RequestList.precedes($0.event.request, $0.event.id, $1.event.request, $1.event.id) }
        while let oldest = waiting.map(\.createdAt).min() {
            let formAt = oldest.addingTimeInterval(policy.wait)
            guard all || waiting.count >= policy.max || clock.now() >= formAt else {
                // Where replicas share the store the held entries are claimed: the queue comes
                // back to claim them again before that runs out, or another replica takes them.
                pass.formAt = claimedUntil.map { min(formAt, $0.addingTimeInterval(-route.attemptBound)) } ?? formAt
                return
            }
            let members = waiting.prefix(policy.max).map(\.event)
            waiting.removeFirst(members.count)
            let formed: FormedGroup
            do {
                formed = try store.formGroup(sink: route.sink.name, members: members, now: clock.now())
            } catch {
                storeFailed("cannot group deliveries: \(error.description)", sink: route.sink.name)
                pass.resumeAt = clock.now().addingTimeInterval(Self.storeRetryDelay)
                return
            }
            if !formed.withdrawn.isEmpty {
                logger.info(
                    "\(formed.withdrawn.count) event(s) left their group: the request is no longer pending",
                    metadata: ["sink": "\(route.sink.name)"])
            }
            if let group = formed.delivery, !(await send(group, route: route, claimedUntil: claimedUntil, in: &pass)) { return }
        }
    }

    /// Attempts `delivery` and notes its result in `pass`; returns whether the pass goes on.
    private func send(_ delivery: PendingDelivery, route: Route, claimedUntil: Date?, in pass: inout Pass) async -> Bool {
        let name = route.sink.name
        if Task.isCancelled { return false }
        // Another replica may take the entries once their claim runs out: an attempt
        // starts only while it can end within it, and the next pass claims afresh.
        if let claimedUntil, clock.now().addingTimeInterval(route.attemptBound) > claimedUntil { return false }
        let (result, recorded, rateLimited) = await attempt(delivery, route: route)
        pass.results.append(result)
        if !recorded {
            pass.resumeAt = clock.now().addingTimeInterval(Self.storeRetryDelay)
            return false
        }
        switch result.status {
        case .delivered:
            failingInARow[name] = nil
        case .retry:
            failingInARow[name, default: []].insert(result.eventID)
            // A rate limit is the sink's, not the event's: the whole sink waits at once.
            if rateLimited || failingInARow[name, default: []].count >= 2 {
                pass.resumeAt = result.nextAttemptAt
            }
        case .dead:
            break
        }
        return pass.resumeAt == nil
    }

    /// One attempt; returns its result, whether the state file recorded it, and whether the
    /// receiver's rate limit refused it. Such a refusal is not counted as an attempt (it never
    /// makes a dead letter) and waits the receiver's delay, clamped as every outside delay.
    private func attempt(_ delivery: PendingDelivery, route: Route) async -> (DeliveryResult, Bool, Bool) {
        var attempts = delivery.attempts + 1
        let result: DeliveryResult
        var rateLimited = false
        // Ended by any outcome but another rate limit without a stated wait.
        let inARow = unstatedRateLimits.removeValue(forKey: route.sink.name) ?? 0
        do {
            try await route.sink.deliver(delivery.event)
            result = DeliveryResult(eventID: delivery.event.id, sink: route.sink.name, status: .delivered, attempts: attempts, at: clock.now())
        } catch {
            let now = clock.now()
            if error.rateLimited {
                rateLimited = true
                attempts = delivery.attempts
            }
            let exhausted = !rateLimited && (route.retry.maxAttempts.map { attempts >= $0 } ?? false)
            // Sinks scrub and cut what they quote; this bounds what any sink says.
            let message = TextCut.cut(error.message, limit: TextCut.errorTextLimit)
            if !error.retryable || exhausted {
                result = DeliveryResult(
                    eventID: delivery.event.id, sink: route.sink.name, status: .dead, attempts: attempts, error: message, at: now)
                logger.error(
                    "dead letter: \(message)",
                    metadata: [
                        "sink": "\(route.sink.name)", "event": "\(delivery.event.id)", "kind": "\(delivery.event.kind.rawValue)",
                        "attempts": "\(attempts)",
                    ])
            } else {
                let wait: TimeInterval
                if rateLimited, let stated = error.retryAfter {
                    wait = WakeTime.delay(stated)
                } else if rateLimited {
                    unstatedRateLimits[route.sink.name] = min(inARow + 1, 64)
                    wait = route.retry.delay(afterAttempt: max(attempts, 1) + inARow, retryAfter: nil)
                } else {
                    wait = route.retry.delay(afterAttempt: attempts, retryAfter: error.retryAfter)
                }
                result = DeliveryResult(
                    eventID: delivery.event.id, sink: route.sink.name, status: .retry, attempts: attempts,
                    nextAttemptAt: WakeTime.after(wait, from: now), error: message, at: now)
                // Waiting for the sink's own pace is its normal work, not a failure.
                logger.log(
                    level: error.paced ? .debug : .warning,
                    "\(error.paced ? "waiting for the chat's pace" : rateLimited ? "rate-limited" : "delivery failed"), retrying in \(DurationText.format(wait)): \(message)",
                    metadata: ["sink": "\(route.sink.name)", "event": "\(delivery.event.id)", "attempts": "\(attempts)"])
            }
        }
        var recorded = true
        do {
            try store.recordDelivery(result)
        } catch {
            recorded = false
            unrecorded[route.sink.name] = result
            storeFailed("cannot record a delivery (recorded once the store answers): \(error.description)", sink: route.sink.name)
        }
        listeners.publish(.attempt(result))
        return (result, recorded, rateLimited)
    }
}
