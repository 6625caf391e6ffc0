import Foundation
import Logging

/// What a poll brought back for the ledger to apply: the listing and the outcome lookups,
/// or the failure (or both: a listing whose lookups failed).
public struct PollResult: Sendable {
    public struct Listing: Sendable {
        public var snapshot: PendingSnapshot
        public var outcomes: [RequestKey: OutcomeLookup]
        /// When the listing was asked for.
        public var listedAt: Date

        public init(snapshot: PendingSnapshot, outcomes: [RequestKey: OutcomeLookup] = [:], listedAt: Date) {
            self.snapshot = snapshot
            self.outcomes = outcomes
            self.listedAt = listedAt
        }
    }

    public var source: String
    public var marketplace: Marketplace
    public var startedAt: Date
    public var listing: Listing?
    public var failure: PollError?

    public init(source: String, marketplace: Marketplace, startedAt: Date, listing: Listing?, failure: PollError? = nil) {
        self.source = source
        self.marketplace = marketplace
        self.startedAt = startedAt
        self.listing = listing
        self.failure = failure
    }
}

/// What one poll of one source did.
public struct PollReport: Sendable {
    public var source: String
    public var changes: RequestChanges
    public var pending: Int
    public var error: PollError?
    public var health: SourceHealth
    /// `source_down` or `source_up`, when this poll changed the source's health.
    public var healthEvent: AlertEvent?
    /// Every event this poll put in the outbox.
    public var events: [AlertEvent] = []
    /// Whether the store recorded the poll (false: it refused, or the poll was not applied).
    public var recorded = true
}

/// One source's health as the ledger sees it (what `/healthz` answers from).
public struct SourceHealthState: Sendable, Equatable {
    public var source: String
    /// Reported down (`source_down`, by the deadman or by `downAfter` failures), not yet up again.
    public var down: Bool
    public var lastSuccessAt: Date?
    /// How long it may go without a successful poll before it is reported down.
    public var window: TimeInterval
}

/// What the ledger tells whoever listens (metrics, the demo): one way, never waited on.
public enum LedgerReport: Sendable {
    case poll(PollReport)
    case events([AlertEvent])
    case tracked([TrackedStatus: Int], nearestDeadline: Date?)
    case sources([SourceHealthState])
}

/// The one owner of the requests cancelwatch knows: per request its tracked state, its
/// alert states and its next wake-up, and per source its health.
///
/// A poll's result is applied as: the request changes, then what the rules decide about
/// them (``Decisions``), then the source's health, then ONE transaction in the state file
/// with all of it and the events' outbox rows. When the file refuses, memory is rolled
/// back and the next poll or wake decides again. Timers (thresholds, repeats, the end of
/// quiet windows, deadlines) are decided the same way. Events about a request whose whole
/// raw object memory does not hold take it from the state file inside that transaction.
///
/// At a deadline, a source that a running ``Poller`` asks is polled then (the poller
/// schedules it); the requests of a source that cannot be asked (its last poll failed,
/// it is down, or it is no longer configured) are expired at once.
///
/// Where replicas share the store (`leased`), it knows only the sources whose leases this
/// replica holds: ``adopt(_:)`` reads one from the store when its lease is taken, and
/// ``release(_:)`` forgets it when the lease goes. Every commit carries the claims of the
/// sources it writes for, so that nothing is written for a source another replica took.
public actor Ledger {
    /// Its methods call the state store: they run on a thread of their own.
    private let executor = BlockingExecutor(name: "ledger")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Closed requests are kept this long for `status`, then forgotten.
    public static let retention: TimeInterval = 7 * 86400
    /// Dead letters stay this long in the state file, for an operator to look at.
    public static let deadLetterRetention: TimeInterval = 30 * 86400
    /// How soon a step the state file refused is decided again while nothing else happens.
    static let storeRetry: TimeInterval = 5

    /// A configured source: what health decisions need of it.
    private struct Source: Sendable {
        var marketplace: Marketplace
        /// How long it may go without a successful poll before it is reported down.
        var window: TimeInterval
    }

    private let rules: [AlertRule]
    /// When each digest is due next.
    private var digests: DigestSchedule
    /// Whether acting rules' `action` events say what is done or what would be (dry-run, logged).
    private let actionMode: ActionMode
    private let store: StateStore
    private let clock: WatchClock
    private let logger: Logger
    private let delivery: DeliveryQueue?
    private let healthConfig: HealthConfig
    private let sources: [String: Source]
    private var storage: LedgerStorage
    private var health: [String: SourceHealth]
    /// Sources a running poller asks at their deadlines.
    private var asked: Set<String> = []
    /// When `run` started: no source is silent for longer than the ledger has been watching.
    private var watchingSince: Date?
    /// Where replicas share the store: the sources this replica holds, each with the claim
    /// its commits make. nil: it holds every configured source (a state file, read whole).
    private var claims: [String: LeaseClaim]? {
        didSet { watchedSorted = nil }
    }
    /// When this replica took each source it holds by lease: no source is silent for
    /// longer than it has been watched here.
    private var heldSince: [String: Date] = [:]
    /// When each source's listing last came back, recorded or not: a store that could not
    /// record a poll does not make the source silent.
    private var listedAt: [String: Date] = [:]
    /// Commits, reads for digests and reads of the answer journal that keep failing while a
    /// store is down: each outage is logged once, and its end.
    private var commits = RepeatedFailure()
    private var digestReads = RepeatedFailure()
    private var journalReads = RepeatedFailure()
    /// After the state file refused `processDue`'s step: when the deadman and the
    /// expiries it held are tried again (not at once, again and again).
    private var retryAt: Date?
    private let waker = Waker()
    private let listeners = ReportListeners<LedgerReport>()

    /// Loads what the state file knows: requests (each raw object pruned to what `rules`
    /// read), alert states and sources' health. `leased`: replicas share the store, and it
    /// starts knowing nothing (``adopt(_:)``). `vanishConfirmations`: see ``LedgerStorage``.
    /// `actionMode`: the config's `actions.mode`; in dry-run each committed `action` is logged
    /// (at notice level, once); when live, each goes to ``RuleActionSink`` through the outbox.
    /// `digests`: sent at their instants, or within ``DigestSchedule/grace`` after one that
    /// passed before the ledger was made.
    public init(
        rules: [AlertRule], digests: [CompiledDigest] = [], store: StateStore, clock: WatchClock, logger: Logger,
        sources: [PolledSource] = [],
        health: HealthConfig = HealthConfig(), delivery: DeliveryQueue? = nil, leased: Bool = false,
        vanishConfirmations: Int = LedgerStorage.defaultVanishConfirmations, actionMode: ActionMode = .dryRun
    ) throws(StoreError) {
        self.rules = rules
        self.digests = DigestSchedule(digests, now: clock.now())
        self.actionMode = actionMode
        self.store = store
        self.clock = clock
        self.logger = logger
        self.delivery = delivery
        healthConfig = health
        var known: [String: Source] = [:]
        for source in sources where known[source.client.source] == nil {
            known[source.client.source] = Source(
                marketplace: source.client.marketplace, window: Self.silenceWindow(pollInterval: source.pollInterval, health: health))
        }
        self.sources = known
        var ruleIDs: [String: UInt16] = [:]
        for (index, rule) in rules.enumerated() where ruleIDs[rule.name] == nil { ruleIDs[rule.name] = UInt16(clamping: index) }
        self.ruleIDs = ruleIDs
        guard !leased else {
            storage = LedgerStorage(vanishConfirmations: vanishConfirmations, keepingRaw: rules.rawPaths)
            self.health = [:]
            claims = [:]
            return
        }
        var storage = LedgerStorage(
            try store.loadTracked(keepingRaw: rules.rawPaths), vanishConfirmations: vanishConfirmations, keepingRaw: rules.rawPaths)
        Self.take(try store.loadAlerts(), into: &storage, ruleIDs: ruleIDs)
        self.storage = storage
        var health: [String: SourceHealth] = [:]
        for item in try store.loadHealth() { health[item.source] = item }
        for (name, source) in known where health[name] == nil {
            health[name] = SourceHealth(source: name, marketplace: source.marketplace)
        }
        self.health = health
    }

    /// Rules by name (an alert state names its rule).
    private let ruleIDs: [String: UInt16]

    /// Takes in alert states read from the store (of rules that still exist, for requests it knows).
    private static func take(_ alerts: [AlertState], into storage: inout LedgerStorage, ruleIDs: [String: UInt16]) {
        for state in alerts {
            guard let rule = ruleIDs[state.rule], let slot = storage.slot(of: state.request) else { continue }
            storage.setAlert(PackedAlert(state, rule: rule), at: slot)
        }
    }

    /// How long a source polled every `pollInterval` may go without a successful poll
    /// before it is reported down: `health.silent_after`, or `downAfter` intervals plus
    /// the backoff's cap.
    public static func silenceWindow(pollInterval: TimeInterval, health: HealthConfig) -> TimeInterval {
        WakeTime.delay(health.silentAfter ?? Double(health.downAfter) * pollInterval + OutsideDelay.cap)
    }

    // MARK: - Reading

    /// Every tracked request (each raw object as kept in memory).
    public var tracked: [TrackedRequest] { storage.requests.values }

    /// How many tracked requests are in each state.
    public func statusCounts() -> [TrackedStatus: Int] { storage.statusCounts.filter { $0.value > 0 } }

    /// The nearest deadline among pending requests (of `source`, or of all).
    public func nearestDeadline(source: String? = nil) -> Date? { storage.nearestDeadline(source: source) }

    public func sourceHealth() -> [SourceHealth] { health.values.sorted { $0.source < $1.source } }

    /// The pending requests nearest their deadlines first (at most `limit`), each with the
    /// alert states of the rules that fired on it, and how many are pending (the status page).
    public func pendingByDeadline(limit: Int) -> (requests: [PendingRequest], total: Int) {
        let (slots, total) = storage.pendingByDeadline(limit: limit)
        let requests = slots.map { slot in
            let key = storage.key(at: slot)
            let fired = storage.alerts(at: slot).filter { $0.firings > 0 && Int($0.rule) < rules.count }
            return PendingRequest(
                request: storage.request(at: slot), alerts: fired.map { $0.state(request: key, rule: rules[Int($0.rule)].name) })
        }
        return (requests, total)
    }

    /// The next instant something falls due: a rule's timer, a deadline the ledger
    /// expires itself, or (while `run` runs) a source falling silent.
    public var nextWake: Date? { nextInstant() }

    /// Pending requests of `source` that `snapshot` does not list: their outcomes are to
    /// be looked up before the poll is applied.
    public func missing(from snapshot: PendingSnapshot, source: String) -> [CancellationRequest] {
        storage.missing(from: snapshot, source: source)
    }

    /// A one-way sequence of what happens, starting with the sources' health and the
    /// tracked counts as they are now.
    public func reports() -> AsyncStream<LedgerReport> {
        listeners.listen(first: [.sources(healthStates()), .tracked(statusCounts(), nearestDeadline: storage.nearestDeadline())])
    }

    private func publish(_ report: LedgerReport) { listeners.publish(report) }

    private func publishTracked() {
        guard !listeners.isEmpty else { return }
        publish(.tracked(statusCounts(), nearestDeadline: storage.nearestDeadline()))
    }

    /// The sources it watches: those it holds a lease on, or every configured one.
    private var watched: [String] {
        if let cached = watchedSorted { return cached }
        let names = claims.map { $0.keys.filter { sources[$0] != nil }.sorted() } ?? sources.keys.sorted()
        watchedSorted = names
        return names
    }
    /// ``watched``, kept between changes of the claims (the deadman reads it at every wake).
    private var watchedSorted: [String]?

    private func healthStates() -> [SourceHealthState] {
        watched.map { name in
            SourceHealthState(
                source: name, down: health[name]?.down ?? false, lastSuccessAt: health[name]?.lastSuccessAt,
                window: sources[name]?.window ?? 0)
        }
    }

    // MARK: - Steps

    /// At start-up: what fell due while the process was down fires once now, and alerts of
    /// requests that closed while down get their `resolved`/`expired`.
    @discardableResult
    public func start() -> [AlertEvent] { settle(storage.slots) }

    /// What fell due for the requests in `slots` while nobody watched them fires once now,
    /// and alerts of those that closed meanwhile get their `resolved`/`expired`.
    private func settle(_ slots: [Int32]) -> [AlertEvent] {
        let now = clock.now()
        storage.beginChanges()
        var step = StoreChanges()
        var pending: [Int32] = []
        for slot in slots {
            let status = storage.status(at: slot)
            switch status {
            case .pending: pending.append(slot)
            case .expired: close(slot, as: .expired, request: storage.request(at: slot), wholeRaw: false, now: now, into: &step)
            case .approved, .rejected, .vanished:
                close(
                    slot, as: .resolved(Outcome(status)), request: storage.request(at: slot), wholeRaw: false, now: now, into: &step)
            }
        }
        evaluate(pending.map { ($0, nil) }, now: now, into: &step)
        defer { waker.signal() }
        return commit(step, now: now) ? step.events : []
    }

    /// Where replicas share the store: takes over the sources of `claims`, whose leases this
    /// replica has just taken. What the store knows of each is read again (another replica
    /// may have written it since), and what fell due meanwhile fires once, as at start-up.
    /// Returns the sources taken over: a source whose state cannot be read is not (the next
    /// lease round tries again). Holding every source, it only lets the poller ask them.
    @discardableResult
    public func adopt(_ claims: [LeaseClaim]) -> Set<String> {
        guard self.claims != nil else {
            asked.formUnion(claims.map(\.source))
            return Set(claims.map(\.source))
        }
        var loaded: [(claim: LeaseClaim, tracked: [TrackedRequest], alerts: [AlertState])] = []
        var known: [String: SourceHealth] = [:]
        do {
            for item in try store.loadHealth() { known[item.source] = item }
        } catch {
            logger.error("could not read the state of the sources this replica took: \(error.description)")
            return []
        }
        for claim in claims {
            do {
                let tracked = try store.loadTracked(source: claim.source, keepingRaw: rules.rawPaths)
                loaded.append((claim, tracked, try store.loadAlerts(source: claim.source)))
            } catch {
                logger.error(
                    "could not read the state of a source this replica took; its lease is given back: \(error.description)",
                    metadata: ["source": "\(claim.source)"])
            }
        }
        guard !loaded.isEmpty else { return [] }
        let names = loaded.map(\.claim.source)
        storage.replace(sources: names, with: loaded.flatMap(\.tracked))
        let now = clock.now()
        for (claim, _, alerts) in loaded {
            let source = claim.source
            Self.take(alerts, into: &storage, ruleIDs: ruleIDs)
            let marketplace = sources[source]?.marketplace ?? known[source]?.marketplace ?? .ozon
            health[source] = known[source] ?? SourceHealth(source: source, marketplace: marketplace)
            listedAt[source] = nil
            self.claims?[source] = claim
            heldSince[source] = now
            asked.insert(source)
        }
        let slots = storage.slots(of: names)
        logger.info("took sources over", metadata: ["sources": "\(names.count)", "requests": "\(slots.count)"])
        _ = settle(slots)
        publish(.sources(healthStates()))
        publishTracked()
        waker.signal()
        return Set(names)
    }

    /// The poller no longer asks `sources`; where replicas share the store, their leases are
    /// gone (given back, or taken by another replica): what is known of them is forgotten,
    /// and nothing more is decided or written for them here.
    public func release(_ sources: [String]) {
        asked.subtract(sources)
        guard claims != nil else { return }
        forget(sources)
        publish(.sources(healthStates()))
        publishTracked()
        waker.signal()
    }

    private func forget(_ sources: [String]) {
        let held = sources.filter { claims?.removeValue(forKey: $0) != nil }
        guard !held.isEmpty else { return }
        storage.replace(sources: held, with: [])
        for source in held {
            health[source] = nil
            heldSince[source] = nil
            listedAt[source] = nil
        }
    }

    /// Applies one poll of one source: its request changes, the alerts they decide, the
    /// source's health, in one transaction. Only a successful listing may resolve
    /// anything; a poll that could not list expires the source's deadlines that passed.
    /// Where replicas share the store, a poll of a source this replica does not hold
    /// (its lease went while the poll ran) is not recorded.
    @discardableResult
    public func apply(_ poll: PollResult) -> PollReport {
        let source = poll.source
        if let claims, claims[source] == nil {
            return unrecordedPoll(of: source, marketplace: poll.marketplace, error: poll.failure)
        }
        if poll.listing != nil { listedAt[source] = clock.now() }
        storage.beginChanges()
        var changes: RequestChanges = []
        if let listing = poll.listing {
            changes = storage.apply(
                snapshot: listing.snapshot, outcomes: listing.outcomes, source: source, now: clock.now(), listedAt: listing.listedAt)
        } else if poll.failure != nil {
            // The marketplace could not be asked: deadlines that passed are taken as passed.
            changes = storage.expire(now: clock.now(), source: source)
        }
        let now = clock.now()
        var step = StoreChanges()
        process(changes, now: now, into: &step)
        let decision = Decisions.afterPoll(
            health[source] ?? SourceHealth(source: source, marketplace: poll.marketplace), startedAt: poll.startedAt,
            failure: poll.failure.map { TextCut.cut($0.description, limit: TextCut.errorTextLimit) },
            downAfter: healthConfig.downAfter, risk: earliestPending(of: source), notify: healthConfig.notify, now: now)
        if let failure = poll.failure {
            logger.warning(
                "poll failed: \(decision.health.lastError ?? "")",
                metadata: [
                    "source": "\(source)", "kind": "\(failure.kind.rawValue)", "failures": "\(decision.health.consecutiveFailures)",
                ])
        }
        if let notice = decision.notice { logger.notice("\(notice)", metadata: ["source": "\(source)"]) }
        step.health.append(decision.health)
        if let event = decision.event { step.events.append(event) }
        let committed = commit(step, now: now)
        if committed { health[source] = decision.health }
        // The run loop's next instant may have moved (timers, health, deadlines).
        waker.signal()
        let report = PollReport(
            source: source, changes: committed ? changes : [], pending: storage.pendingCount(source: source), error: poll.failure,
            health: health[source] ?? decision.health, healthEvent: committed ? decision.event : nil,
            events: committed ? step.events : [], recorded: committed)
        if committed && decision.event != nil { publish(.sources(healthStates())) }
        publish(.poll(report))
        // Counts and the nearest deadline move only with changes (a scan of every source).
        if !report.changes.isEmpty { publishTracked() }
        return report
    }

    /// What a poll cut short by shutdown reports: nothing is recorded.
    public func unrecordedPoll(of source: String, marketplace: Marketplace, error: PollError?) -> PollReport {
        PollReport(
            source: source, changes: [], pending: storage.pendingCount(source: source), error: error,
            health: health[source] ?? SourceHealth(source: source, marketplace: marketplace), recorded: false)
    }

    /// Decides everything due now: the timers, the deadlines of sources that cannot be
    /// asked, and (while `run` runs) the deadman. Returns the events committed.
    @discardableResult
    public func processDue() -> [AlertEvent] {
        let now = clock.now()
        storage.beginChanges()
        var step = StoreChanges()
        var expired: [RequestChange] = []
        for source in storage.sourcesWithDeadlinesPassed(now: now) where !canAsk(source) {
            expired += storage.expire(now: now, source: source)
        }
        let changes = RequestChanges(expired)
        process(changes, now: now, into: &step)
        var due: [(Int32, CancellationRequest?)] = []
        while let slot = storage.popDue(now: now) { due.append((slot, nil)) }
        evaluate(due, now: now, into: &step)
        let (digestsDue, digestsSkipped) = digests.takeDue(now: now)
        logSkipped(digestsSkipped)
        let digestEvents = digestsDue.isEmpty ? [] : self.digestEvents(digestsDue, now: now)
        step.events += digestEvents ?? []
        var silenced: [SourceHealth] = []
        let retrying = retryAt.map { $0 > now } ?? false
        if !retrying { retryAt = nil }
        if watchingSince != nil && !retrying {
            for decision in silenceDecisions(now: now) {
                if let notice = decision.notice { logger.notice("\(notice)", metadata: ["source": "\(decision.health.source)"]) }
                silenced.append(decision.health)
                step.health.append(decision.health)
                if let event = decision.event { step.events.append(event) }
            }
        }
        guard commit(step, now: now) else {
            retryAt = now.addingTimeInterval(Self.storeRetry)
            logSkipped(digests.retry(digestsDue, at: now.addingTimeInterval(Self.storeRetry), now: now))
            return []
        }
        if digestEvents == nil {
            logSkipped(digests.retry(digestsDue, at: now.addingTimeInterval(Self.storeRetry), now: now))
        } else {
            digests.sent(digestsDue, now: now)
        }
        for item in silenced { health[item.source] = item }
        if !silenced.isEmpty { publish(.sources(healthStates())) }
        if !changes.isEmpty { publishTracked() }
        return step.events
    }

    /// Runs the timers and the deadman until cancelled.
    public func run() async {
        watchingSince = clock.now()
        defer { watchingSince = nil }
        while !Task.isCancelled {
            processDue()
            await waker.wait(until: nextInstant(), clock: clock)
        }
    }

    /// The poller asks these sources at their deadlines from now on (besides those it has
    /// taken over, ``adopt(_:)``), until it lets them go (``release(_:)``).
    public func ask(_ polled: Set<String>) {
        asked.formUnion(polled)
        waker.signal()
    }

    /// Marks requests whose deadline has come as expired (of `sources`, or all), without
    /// asking the marketplace, with their `expired` events.
    @discardableResult
    public func expireNow(sources names: [String]? = nil) -> RequestChanges {
        let now = clock.now()
        storage.beginChanges()
        let changes = names.map { RequestChanges($0.flatMap { storage.expire(now: now, source: $0) }) } ?? storage.expire(now: now)
        var step = StoreChanges()
        process(changes, now: now, into: &step)
        guard commit(step, now: now) else { return [] }
        waker.signal()
        if !changes.isEmpty { publishTracked() }
        return changes
    }

    /// Forgets requests closed longer ago than `retention` (with their alert states),
    /// deliveries finished that long ago, and dead letters after `deadLetterRetention`.
    /// Returns the requests forgotten.
    @discardableResult
    public func prune() -> [RequestKey] {
        let now = clock.now()
        do {
            _ = try store.pruneOutbox(
                deliveredBefore: now.addingTimeInterval(-Self.retention),
                deadBefore: now.addingTimeInterval(-Self.deadLetterRetention))
        } catch {
            logger.error("could not prune the outbox: \(error.description)")
        }
        storage.beginChanges()
        let old = storage.prune(closedBefore: now.addingTimeInterval(-Self.retention))
        guard !old.isEmpty else {
            storage.commitChanges()
            return []
        }
        do {
            try store.delete(old)
            storage.commitChanges()
        } catch {
            storage.rollbackChanges()
            logger.error("could not prune the state: \(error.description)")
            return []
        }
        publishTracked()
        return old
    }

    // MARK: - Deciding

    /// Takes in a poll's (or an expiry's) changes: closed requests get their
    /// `resolved`/`expired`; opened or refined ones are evaluated (with the raw object
    /// the change brought).
    private func process(_ changes: RequestChanges, now: Date, into step: inout StoreChanges) {
        guard !changes.isEmpty else { return }
        var touched: [Int32: CancellationRequest?] = [:]
        var order: [Int32] = []
        let answered = answerers(of: changes)
        for change in changes {
            let tracked = change.tracked
            step.tracked.append(tracked)
            guard let slot = storage.slot(of: tracked.key) else { continue }
            switch change {
            case .new, .updated:
                for alert in storage.alerts(at: slot) where alert.closed {
                    let reopened = Decisions.reopen(alert).state
                    storage.setAlert(reopened, at: slot)
                    step.alerts.append(reopened.state(request: tracked.key, rule: rules[Int(alert.rule)].name))
                }
                if touched.updateValue(tracked.hasWholeRaw ? tracked.request : nil, forKey: slot) == nil { order.append(slot) }
            case .resolved(_, let outcome):
                close(
                    slot, as: .resolved(outcome), request: tracked.request, wholeRaw: tracked.hasWholeRaw,
                    actor: answered[tracked.key].flatMap { $0.decision.outcome == outcome ? $0.actor : nil }, now: now, into: &step)
            case .expired:
                close(slot, as: .expired, request: tracked.request, wholeRaw: tracked.hasWholeRaw, now: now, into: &step)
            }
        }
        evaluate(order.map { ($0, touched[$0] ?? nil) }, now: now, into: &step)
    }

    /// The answers cancelwatch recorded for the requests `changes` resolve (that may have
    /// applied): whose answer a `resolved` event names. None when the journal cannot be read:
    /// the events go out without it.
    private func answerers(of changes: RequestChanges) -> [RequestKey: AnswerRecord] {
        let keys = changes.compactMap { change -> RequestKey? in
            guard case .resolved(let tracked, let outcome) = change, outcome != .vanished else { return nil }
            return tracked.key
        }
        guard !keys.isEmpty else { return [:] }
        do {
            let answers = try store.answers(for: keys).filter { $0.value.state.mayHaveApplied }
            if journalReads.ended() { logger.notice("the answer journal is read again") }
            return answers
        } catch {
            logger.log(
                level: journalReads.failed(at: .warning, now: clock.now()),
                "could not read the answer journal: resolved events name no actor (\(error.description))")
            return [:]
        }
    }

    /// Evaluates every rule for the pending requests in `slots` at `now`, and sets their
    /// timers. A request given with a slot is the one a change brought (its whole raw object).
    private func evaluate(_ slots: [(Int32, CancellationRequest?)], now: Date, into step: inout StoreChanges) {
        guard !rules.isEmpty else { return }
        var pending = slots.filter { storage.status(at: $0.0) == .pending }.map { (key: storage.key(at: $0.0), slot: $0.0, given: $0.1) }
        pending.sort { $0.key < $1.key }
        for item in pending {
            let request = item.given ?? storage.request(at: item.slot)
            let wholeRaw = item.given != nil || storage.rawPaths.isEverything
            let states = rules.indices.map { storage.alert(UInt16(clamping: $0), at: item.slot) }
            let evaluation = Decisions.evaluate(request, states: states, rules: rules, now: now, actions: actionMode)
            for index in evaluation.changed {
                guard var state = evaluation.states[index] else { continue }
                state.rule = UInt16(clamping: index)
                storage.setAlert(state, at: item.slot)
                step.alerts.append(state.state(request: item.key, rule: rules[index].name))
            }
            step.events += evaluation.events
            if !wholeRaw { step.eventsTakingSavedRaw.formUnion(evaluation.events.map(\.id)) }
            // Not the deadline: a rule that changes there says so (`nextChange`), and expiring
            // is the poller's (at the deadline) or `processDue`'s.
            storage.schedule(item.slot, at: evaluation.wake)
        }
    }

    /// Closes the alerts of the request in `slot`: each rule's state closed, with
    /// `resolved`/`expired` for those that fired.
    private func close(
        _ slot: Int32, as closing: Decisions.Closing, request: CancellationRequest, wholeRaw: Bool, actor: AnswerActor? = nil,
        now: Date, into step: inout StoreChanges
    ) {
        storage.schedule(slot, at: nil)
        let alerts = storage.alerts(at: slot)
        guard !alerts.isEmpty else { return }
        var states = [PackedAlert?](repeating: nil, count: rules.count)
        for alert in alerts where Int(alert.rule) < states.count { states[Int(alert.rule)] = alert }
        let decision = Decisions.close(request, as: closing, states: states, rules: rules, actor: actor, now: now)
        for (index, state) in decision.states.enumerated() {
            guard let state else { continue }
            storage.setAlert(state, at: slot)
            step.alerts.append(state.state(request: request.key, rule: rules[index].name))
        }
        step.events += decision.events
        if !wholeRaw { step.eventsTakingSavedRaw.formUnion(decision.events.map(\.id)) }
    }

    /// `source_down` for every configured source silent past its window.
    private func silenceDecisions(now: Date) -> [Decisions.HealthDecision] {
        watched.compactMap { name in
            guard let source = sources[name] else { return nil }
            let current = health[name] ?? SourceHealth(source: name, marketplace: source.marketplace)
            let since = silentSince(name, since: watchingSince ?? now)
            return Decisions.silence(
                current, since: since, window: source.window, risk: earliestPending(of: name), notify: healthConfig.notify, now: now)
        }
    }

    /// When `run` wakes next: a timer, a source falling silent, or a retry.
    private func nextInstant() -> Date? {
        var next = storage.nextWake
        func consider(_ date: Date?) {
            if let date { next = min(next ?? date, date) }
        }
        consider(digests.nextWake)
        if let retryAt {
            consider(retryAt)
            return next
        }
        if let since = watchingSince {
            for name in watched where health[name]?.down != true {
                guard let source = sources[name] else { continue }
                consider(silentSince(name, since: since).addingTimeInterval(source.window))
            }
        }
        // Deadlines of sources that cannot be asked expire at once.
        for name in storage.sourcesWithPending where !canAsk(name) { consider(storage.nearestDeadline(source: name)) }
        return next
    }

    /// Digests given up an hour after their time (a store that would not answer): said once each.
    private func logSkipped(_ skipped: [DigestSchedule.Due]) {
        for item in skipped {
            logger.error(
                "digest '\(item.digest.name)' of \(Timestamp.format(item.scheduled)) was not sent: not within an hour of its time (the state store did not answer)",
                metadata: ["digest": "\(item.digest.name)"])
        }
    }

    /// The events of the digests due at `now`. Each lists every source's pending requests as
    /// the store has them (where replicas share it, memory holds only this replica's sources),
    /// so every replica lists the same and sends the same event. Nil when the store cannot be read.
    private func digestEvents(_ due: [DigestSchedule.Due], now: Date) -> [AlertEvent]? {
        let pending: [CancellationRequest]
        do {
            let paths = due.reduce(RawPaths.none) { $0.union($1.digest.rawPaths) }
            pending = try store.loadTracked(keepingRaw: paths).filter { $0.status == .pending }.map(\.request)
        } catch {
            logger.log(
                level: digestReads.failed(at: .error, now: clock.now()),
                "could not read the pending requests for a digest (tried again shortly): \(error.description)",
                metadata: ["digests": "\(due.map(\.digest.name).joined(separator: ","))"])
            return nil
        }
        if digestReads.ended() { logger.notice("the pending requests are read for digests again") }
        return due.compactMap { Decisions.digest($0.digest, scheduled: $0.scheduled, pending: pending, now: now) }
    }

    /// Since when `source` has had no answer, for the deadman: its last successful poll, or
    /// the last listing that came back while the store could not record it, and never
    /// before it was watched here (`since`, or when this replica took it).
    private func silentSince(_ source: String, since: Date) -> Date {
        max(health[source]?.lastSuccessAt ?? .distantPast, listedAt[source] ?? .distantPast, heldSince[source] ?? since, since)
    }

    /// Whether a running poller asks `source` at its deadlines: it polls it, its last poll
    /// succeeded (a source backing off, maybe told to by Retry-After, is not asked out of
    /// turn), and it is not reported down (its polls may hang).
    private func canAsk(_ source: String) -> Bool {
        asked.contains(source) && (health[source]?.consecutiveFailures ?? 0) == 0 && health[source]?.down != true
    }

    /// The pending request of `source` with the earliest deadline (the one a down source puts at risk).
    private func earliestPending(of source: String) -> CancellationRequest? {
        storage.earliestPending(source: source)
    }

    /// Writes `step` in one transaction; when the state file refuses, memory goes back to
    /// what the file has, and the requests concerned are decided again shortly.
    private func commit(_ step: StoreChanges, now: Date) -> Bool {
        guard !step.isEmpty else {
            storage.commitChanges()
            return true
        }
        var step = step
        if let claims {
            var written = Set(step.tracked.map(\.key.source))
            written.formUnion(step.alerts.map(\.request.source))
            written.formUnion(step.health.map(\.source))
            step.leases = written.sorted().compactMap { claims[$0] }
        }
        do {
            try store.commit(step, at: now)
        } catch {
            let keys = storage.changedKeys ?? []
            storage.rollbackChanges()
            let retry = now.addingTimeInterval(Self.storeRetry)
            for key in keys {
                if let slot = storage.slot(of: key), storage.status(at: slot) == .pending { storage.schedule(slot, at: retry) }
            }
            if let lost = error.lostLease {
                // Another replica polls it now (or will): the rest is decided again shortly.
                logger.warning("\(error.description); the source is left to the replica that holds it", metadata: ["source": "\(lost)"])
                forget([lost])
                asked.remove(lost)
                publish(.sources(healthStates()))
            } else {
                // Once per outage at error level: a database that is down refuses every poll.
                logger.log(
                    level: commits.failed(at: .error, now: clock.now()),
                    "could not save the state (\(step.events.count) events not sent; decided again shortly): \(error.description)")
            }
            return false
        }
        if commits.ended() { logger.notice("the state is saved again") }
        storage.commitChanges()
        if !step.events.isEmpty {
            delivery?.wake(sinks: Array(Set(step.events.flatMap(\.sinks))))
            publish(.events(step.events))
            if actionMode == .dryRun { logDryRun(step.events) }
        }
        return true
    }

    /// Says what each rule's `action` just committed would have done (in dry-run nothing is sent).
    private func logDryRun(_ events: [AlertEvent]) {
        for action in events where action.kind == .action {
            logger.notice(
                "\(action.message)",
                metadata: ["source": "\(action.source)", "request": "\(action.request?.id ?? "")", "rule": "\(action.rule)"])
        }
    }
}

extension Outcome {
    init(_ status: TrackedStatus) {
        switch status {
        case .rejected: self = .rejected
        case .vanished: self = .vanished
        default: self = .approved
        }
    }
}

/// A failure that repeats for as long as it lasts (a store that is down): said at its own
/// level when it begins and again every ``remindEvery`` while it goes on, at debug between,
/// and its end once. A read that runs rarely (a digest's, once a day) may not see the end:
/// the reminder keeps a later failure from staying at debug.
struct RepeatedFailure {
    static let remindEvery: TimeInterval = 600
    private(set) var ongoing = false
    private var saidAt: Date?

    /// The level to log this failure at: `first` when it begins or is due a reminder, else debug.
    mutating func failed(at first: Logger.Level, now: Date) -> Logger.Level {
        defer { ongoing = true }
        if ongoing, let saidAt, now.timeIntervalSince(saidAt) < Self.remindEvery, now >= saidAt { return .debug }
        saidAt = now
        return first
    }

    /// Whether a failure was going on until now (its end is worth a line).
    mutating func ended() -> Bool {
        defer { ongoing = false }
        return ongoing
    }
}
