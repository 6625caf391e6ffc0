import Foundation
import Logging

/// One source the watcher polls, and how often.
public struct PolledSource: Sendable {
    public var client: MarketplaceClient
    public var pollInterval: TimeInterval

    public init(client: MarketplaceClient, pollInterval: TimeInterval) {
        self.client = client
        self.pollInterval = pollInterval
    }
}

/// What one poll of one source did.
public struct PollReport: Sendable {
    public var source: String
    public var changes: [TrackerChange]
    public var pending: Int
    public var error: PollError?
    public var health: SourceHealth
    /// `source_down` or `source_up`, when this poll changed the source's health.
    public var healthEvent: AlertEvent?
}

/// One source's health as the watcher sees it (what `/healthz` answers from).
public struct SourceHealthState: Sendable, Equatable {
    public var source: String
    /// Reported down (`source_down`, by the deadman or by `downAfter` failures), not yet up again.
    public var down: Bool
    public var lastSuccessAt: Date?
    /// How long it may go without a successful poll before it is reported down.
    public var window: TimeInterval
}

/// Polls every source, keeps the tracked set and the state file in step, and tells
/// the rest of the pipeline what changed. Each source is polled on its own interval,
/// with backoff after failures; a failed poll never resolves anything. A source is
/// reported down after `downAfter` failures in a row, or when it has had no successful
/// poll within its window, whether its polls fail, hang or never run (a deadman).
public actor Watcher {
    /// The state file is written from this actor's methods (SQLite may wait seconds for a
    /// lock, and fsyncs): they run on a thread of their own, not on the cooperative pool.
    private let executor = BlockingExecutor(name: "watcher")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// After this many failures in a row a source is reported down.
    public let downAfter: Int
    /// How long a source may go without a successful poll before it is reported down
    /// (`health.silent_after`); nil: `downAfter` intervals plus the backoff's cap.
    public let silentAfter: TimeInterval?
    /// Closed requests are kept this long for `status`, then forgotten.
    public let retention: TimeInterval = 7 * 86400

    private let sources: [PolledSource]
    private let store: StateStore
    private let clock: WatchClock
    private let logger: Logger
    /// Sinks for `source_down` and `source_up` (the config's `health.notify`).
    private let healthNotify: [String]
    private var tracker: Tracker
    private var health: [String: SourceHealth]
    private var observers: [@Sendable (PollReport) async -> Void] = []
    /// One per source: cuts the wait before its next poll short (a deadline came).
    private let pollWakers: [String: Waker]
    /// True while `run` polls each source on its own loop.
    private var running = false
    /// When `run` started: no source is silent for longer than the watcher has been watching.
    private var watchingSince: Date?
    /// Cuts the deadman's wait short (a source came back up).
    private let silenceWaker = Waker()
    private var healthObservers: [@Sendable (AlertEvent) async -> Void] = []
    private var stateObservers: [@Sendable ([SourceHealthState]) -> Void] = []

    /// `keepingRaw`: what of each request's raw object stays in memory, the paths the
    /// rules read (the whole object is in the state file; events read it there).
    public init(
        sources: [PolledSource], store: StateStore, clock: WatchClock, logger: Logger, downAfter: Int = 3,
        silentAfter: TimeInterval? = nil, healthNotify: [String] = [], keepingRaw rawPaths: RawPaths = .none
    ) throws(StoreError) {
        self.healthNotify = healthNotify
        self.silentAfter = silentAfter
        self.sources = sources
        self.store = store
        self.clock = clock
        self.logger = logger
        self.downAfter = downAfter
        tracker = Tracker(try store.loadTracked(keepingRaw: rawPaths), keepingRaw: rawPaths)
        var health: [String: SourceHealth] = [:]
        for item in try store.loadHealth() { health[item.source] = item }
        for source in sources where health[source.client.source] == nil {
            health[source.client.source] = SourceHealth(source: source.client.source, marketplace: source.client.marketplace)
        }
        self.health = health
        pollWakers = Dictionary(sources.map { ($0.client.source, Waker()) }, uniquingKeysWith: { first, _ in first })
    }

    /// Called after every poll with what it found (events, demo output, metrics).
    public func onPoll(_ observer: @escaping @Sendable (PollReport) async -> Void) {
        observers.append(observer)
    }

    /// Called with every `source_down` and `source_up` event once it is in the outbox.
    public func onHealthEvent(_ observer: @escaping @Sendable (AlertEvent) async -> Void) {
        healthObservers.append(observer)
    }

    /// Called with every source's health now and whenever it changes (metrics, `/healthz`):
    /// the watcher is the one owner of health.
    public func onHealthState(_ observer: @escaping @Sendable ([SourceHealthState]) -> Void) {
        stateObservers.append(observer)
        observer(healthStates())
    }

    private func healthStates() -> [SourceHealthState] {
        sources.map { source in
            let name = source.client.source
            return SourceHealthState(
                source: name, down: health[name]?.down ?? false, lastSuccessAt: health[name]?.lastSuccessAt,
                window: silenceWindow(of: source))
        }
    }

    private func publishHealth() {
        guard !stateObservers.isEmpty else { return }
        let states = healthStates()
        for observer in stateObservers { observer(states) }
    }

    public var tracked: [TrackedRequest] { Array(tracker.requests.values) }

    public func sourceHealth() -> [SourceHealth] { health.values.sorted { $0.source < $1.source } }

    /// Polls every source once, concurrently. Returns each source's report.
    public func pollAllOnce() async -> [PollReport] {
        await withTaskGroup(of: PollReport.self) { group in
            for source in sources {
                group.addTask { await self.poll(source.client) }
            }
            var reports: [PollReport] = []
            for await report in group { reports.append(report) }
            return reports.sorted { $0.source < $1.source }
        }
    }

    /// Polls each source on its interval until cancelled.
    public func run() async {
        running = true
        watchingSince = clock.now()
        defer { running = false }
        await withTaskGroup(of: Void.self) { group in
            for source in sources {
                group.addTask { await self.pollLoop(source) }
            }
            group.addTask { await self.watchForSilence() }
        }
    }

    private func pollLoop(_ source: PolledSource) async {
        while !Task.isCancelled {
            let report = await poll(source.client)
            let wait = nextPollDelay(after: report, interval: source.pollInterval)
            await pollWakers[source.client.source]?.wait(until: clock.now().addingTimeInterval(wait), clock: clock)
        }
    }

    /// The wait before the next poll: the interval after a success; after failures,
    /// exponential backoff with jitter (capped at 15 minutes), `Retry-After` honoured,
    /// and at least 5 minutes after an authentication failure.
    /// `interval` is bounded by the config and `Retry-After` where it came in; the poll
    /// loop's waker keeps the wake time finite and at least the floor away.
    nonisolated func nextPollDelay(after report: PollReport, interval: TimeInterval) -> TimeInterval {
        guard let error = report.error else { return interval }
        let failures = max(1, report.health.consecutiveFailures)
        let backoff = min(OutsideDelay.cap, interval * pow(2, Double(min(failures - 1, 10))))
        var wait = backoff * Double.random(in: 0.75...1)
        if let retryAfter = error.retryAfter { wait = max(wait, retryAfter) }
        if error.kind == .auth { wait = max(wait, 300) }
        return max(wait, min(interval, 1))
    }

    /// How long `source` may go without a successful poll before it is reported down.
    nonisolated func silenceWindow(of source: PolledSource) -> TimeInterval {
        WakeTime.delay(silentAfter ?? Double(downAfter) * source.pollInterval + OutsideDelay.cap)
    }

    /// The deadman: reports each source that has had no successful poll within its window
    /// (since `run` started, at the earliest), however its polls are doing.
    private func watchForSilence() async {
        while !Task.isCancelled {
            let next = await reportSilentSources()
            await silenceWaker.wait(until: next, clock: clock)
        }
    }

    /// Raises `source_down` for every source silent past its window; returns when the next
    /// one may fall silent (nil: every source is down already).
    private func reportSilentSources() async -> Date? {
        let now = clock.now()
        var next: Date?
        for source in sources {
            let name = source.client.source
            let current = health[name] ?? SourceHealth(source: name, marketplace: source.client.marketplace)
            guard !current.down else { continue }
            let since = max(current.lastSuccessAt ?? .distantPast, watchingSince ?? now)
            let window = silenceWindow(of: source)
            guard
                let decision = Decisions.silence(
                    current, since: since, window: window, risk: earliestPending(of: name), notify: healthNotify, now: now)
            else {
                let due = since.addingTimeInterval(window)
                next = min(next ?? due, due)
                continue
            }
            if let notice = decision.notice { logger.notice("\(notice)", metadata: ["source": "\(name)"]) }
            let sourceHealth = decision.health
            let event = decision.event
            do {
                if let event {
                    try store.commit(alerts: [], events: [event], health: sourceHealth, at: now)
                } else {
                    try store.save([], health: sourceHealth)
                }
                health[name] = sourceHealth
                publishHealth()
                if let event { await notifyHealth(event) }
            } catch {
                logger.error("could not save the state: \(error.description)", metadata: ["source": "\(name)"])
                let retry = now.addingTimeInterval(DeliveryQueue.storeRetryDelay)
                next = min(next ?? retry, retry)
            }
        }
        return next
    }

    private func notifyHealth(_ event: AlertEvent) async {
        for observer in healthObservers { await observer(event) }
    }

    /// One poll of one source: the pending list, then outcomes of what left it,
    /// then one transaction with every change.
    public func poll(_ client: MarketplaceClient) async -> PollReport {
        let source = client.source
        let started = clock.now()
        var succeededAt: Date?
        var changes: [TrackerChange] = []
        var failure: PollError?
        // Whether a listing arrived and was applied (even if its outcome lookup then failed).
        var listed = false
        do throws(PollError) {
            let listedAt = clock.now()
            let snapshot = try await client.fetchPending()
            for warning in snapshot.warnings { logger.warning("\(TextCut.cut(warning, limit: TextCut.errorTextLimit))") }
            if !snapshot.complete {
                logger.warning(
                    "an item of the listing could not be read, not even its id: no request is taken for gone this poll",
                    metadata: ["source": "\(source)"])
            }
            let missing = tracker.missing(from: snapshot, source: source)
            var outcomes: [RequestKey: OutcomeLookup] = [:]
            if !missing.isEmpty {
                do throws(PollError) {
                    outcomes = try await client.lookupOutcomes(of: missing)
                } catch {
                    if Task.isCancelled { throw error }
                    // The listing itself is good: what it shows is applied; the requests that
                    // left it stay pending until a lookup succeeds. The poll counts as failed.
                    failure = error
                }
            }
            tracker.beginChanges()
            changes = tracker.apply(snapshot: snapshot, outcomes: outcomes, source: source, now: clock.now(), listedAt: listedAt)
            listed = true
            if failure == nil { succeededAt = clock.now() }
            logger.debug(
                "polled source",
                metadata: ["source": "\(source)", "pending": "\(snapshot.requests.count)", "pages": "\(snapshot.pages)",
                    "changes": "\(changes.count)"])
        } catch {
            if Task.isCancelled {
                // Shutting down mid-poll is not the source's fault: record nothing.
                return PollReport(
                    source: source, changes: [], pending: tracker.pendingCount(source: source), error: error,
                    health: health[source] ?? SourceHealth(source: source, marketplace: client.marketplace))
            }
            failure = error
        }
        if failure != nil && !listed {
            // The marketplace could not be asked: deadlines that passed are taken as passed.
            tracker.beginChanges()
            changes = tracker.expire(now: clock.now(), source: source)
        }
        // Read after the calls: the deadman may have changed it meanwhile.
        let previousHealth = health[source]
        let decision = Decisions.afterPoll(
            previousHealth ?? SourceHealth(source: source, marketplace: client.marketplace), startedAt: started,
            failure: failure.map { TextCut.cut($0.description, limit: TextCut.errorTextLimit) }, downAfter: downAfter,
            risk: earliestPending(of: source), notify: healthNotify, now: succeededAt ?? clock.now())
        let sourceHealth = decision.health
        if let failure {
            logger.warning(
                "poll failed: \(sourceHealth.lastError ?? "")",
                metadata: ["source": "\(source)", "kind": "\(failure.kind.rawValue)", "failures": "\(sourceHealth.consecutiveFailures)"])
        }
        if let notice = decision.notice { logger.notice("\(notice)", metadata: ["source": "\(source)"]) }
        var healthEvent = decision.event
        var healthCommitted = false
        do {
            // The health event first, with the health that raised it: a crash after it
            // loses no event, and the tracked changes come again with the next poll.
            if let healthEvent {
                try store.commit(alerts: [], events: [healthEvent], health: sourceHealth, at: clock.now())
                healthCommitted = true
            }
            try store.save(changes.map(\.tracked), health: sourceHealth)
            health[source] = sourceHealth
            tracker.commitChanges()
        } catch {
            // Memory must not run ahead of the state file: undo, and the next poll finds
            // the same changes again (and the same health change, if it did not commit).
            logger.error("could not save the state: \(error.description)", metadata: ["source": "\(source)"])
            tracker.rollbackChanges()
            changes = []
            if healthCommitted {
                health[source] = sourceHealth
            } else {
                health[source] = previousHealth
                healthEvent = nil
            }
        }
        publishHealth()
        if let healthEvent {
            if healthEvent.kind == .sourceUp { silenceWaker.signal() }
            await notifyHealth(healthEvent)
        }
        let report = PollReport(
            source: source, changes: changes, pending: tracker.pendingCount(source: source), error: failure,
            health: health[source] ?? sourceHealth, healthEvent: healthEvent)
        for observer in observers { await observer(report) }
        return report
    }

    /// The pending request of `source` with the earliest deadline (the one a down source puts at risk).
    private func earliestPending(of source: String) -> CancellationRequest? {
        tracker.pending(source: source).min(by: { $0.request.deadline < $1.request.deadline })?.request
    }

    /// A deadline came (the scheduler's timer). While `run` polls, the sources concerned
    /// are polled now, so that a seller's answer just before the deadline is seen: the
    /// poll expires what is still pending, or what it cannot confirm when it fails.
    /// Otherwise (`once`, tests) the requests are expired at once.
    @discardableResult
    public func expireDue() -> [TrackerChange] {
        guard running else { return expireNow() }
        var unpolled: [String] = []
        for source in tracker.sourcesWithDeadlinesPassed(now: clock.now()) {
            // A source whose last poll failed is backing off (maybe told to by Retry-After):
            // it is not asked out of turn, and like a failed poll its deadlines are taken as
            // passed. So is a source reported down (its polls may hang) and one no longer in
            // the config, which cannot be asked.
            if let waker = pollWakers[source], (health[source]?.consecutiveFailures ?? 0) == 0, health[source]?.down != true {
                waker.signal()
            } else {
                unpolled.append(source)
            }
        }
        return unpolled.isEmpty ? [] : expireNow(sources: unpolled)
    }

    /// Marks requests whose deadline has come as expired (of `sources`, or all), without
    /// asking the marketplace.
    @discardableResult
    public func expireNow(sources: [String]? = nil) -> [TrackerChange] {
        let now = clock.now()
        return inTransaction("could not save the state") { tracker in
            sources.map { $0.flatMap { tracker.expire(now: now, source: $0) } } ?? tracker.expire(now: now)
        } record: { (changes) throws(StoreError) in
            try store.save(changes.map(\.tracked), health: nil)
        }
    }

    /// Changes the tracker and records what changed in the state file, as one: when the file
    /// refuses, the tracker is rolled back (memory never runs ahead of the file) and nothing
    /// is returned.
    private func inTransaction<T: RangeReplaceableCollection>(
        _ failure: String, change: (inout Tracker) -> T, record: (T) throws(StoreError) -> Void
    ) -> T {
        tracker.beginChanges()
        let result = change(&tracker)
        guard !result.isEmpty else {
            tracker.commitChanges()
            return result
        }
        do throws(StoreError) {
            try record(result)
            tracker.commitChanges()
            return result
        } catch {
            tracker.rollbackChanges()
            logger.error("\(failure): \(error.description)")
            return T()
        }
    }

    /// How many tracked requests are in each state.
    public func statusCounts() -> [TrackedStatus: Int] {
        tracker.statusCounts.filter { $0.value > 0 }
    }

    /// The nearest deadline among pending requests.
    public func nearestDeadline() -> Date? {
        tracker.nearestDeadline()
    }

    /// Forgets requests closed longer ago than `retention` (with their alert states),
    /// deliveries finished that long ago, and dead letters after `deadLetterRetention`.
    /// Returns the requests forgotten.
    @discardableResult
    public func prune() -> [RequestKey] {
        let now = clock.now()
        do {
            _ = try store.pruneOutbox(
                deliveredBefore: now.addingTimeInterval(-retention), deadBefore: now.addingTimeInterval(-deadLetterRetention))
        } catch {
            logger.error("could not prune the outbox: \(error.description)")
        }
        return inTransaction("could not prune the state") { tracker in
            tracker.prune(closedBefore: now.addingTimeInterval(-retention))
        } record: { (keys) throws(StoreError) in
            try store.delete(keys)
        }
    }

    /// Dead letters stay this long in the state file, for an operator to look at.
    public let deadLetterRetention: TimeInterval = 30 * 86400
}
