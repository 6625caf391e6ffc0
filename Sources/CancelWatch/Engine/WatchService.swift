import Foundation
import Logging

/// The whole pipeline for one configuration: poll → ledger (track, decide, record) →
/// deliver. ``services`` runs it in a service group; `once` does one cycle (for cron).
public final class WatchService: Sendable {
    public let ledger: Ledger
    public let poller: Poller
    public let delivery: DeliveryQueue
    public let metrics: CancelWatchMetrics
    private let clock: WatchClock
    /// Reads the latest dead letters (from the state store: blocking) for the status page.
    private let deadLetters: (@Sendable (Int) -> [DeadLetter]?)?

    /// `leases`: replicas share the store, and this one watches the sources whose leases it
    /// holds (nil: it watches every source). `actions`: what acting rules may do (dry-run: their
    /// `action` events are logged; live: they go to ``RuleActionSink`` too, whose route
    /// `routes` must then hold). `digests`: the rule files' digests, sent at their local times.
    /// `deadLetters`: reads the store's latest dead letters for the status page (``StatusBoard``),
    /// on a blocking worker; nil: the page shows none.
    public init(
        sources: [PolledSource], rules: [AlertRule], digests: [CompiledDigest] = [], routes: [DeliveryQueue.Route], store: StateStore, clock: WatchClock,
        logger: Logger, health: HealthConfig = HealthConfig(), metrics: CancelWatchMetrics = CancelWatchMetrics(),
        leases: LeaseKeeper? = nil, actions: ActionsConfig = ActionsConfig(), deadLetters: (@Sendable (Int) -> [DeadLetter]?)? = nil
    ) throws(StoreError) {
        self.clock = clock
        self.metrics = metrics
        self.deadLetters = deadLetters
        delivery = DeliveryQueue(routes: routes, store: store, clock: clock, logger: logger)
        ledger = try Ledger(
            rules: rules, digests: digests, store: store, clock: clock, logger: logger, sources: sources, health: health, delivery: delivery,
            leased: leases != nil, actionMode: actions.mode)
        poller = Poller(sources: sources, ledger: ledger, clock: clock, logger: logger, leases: leases)
    }

    /// Lets the ledger decide what fell due while the process was down (it fires now, once).
    public func start() async {
        metrics.recordEvents(await ledger.start())
        metrics.setTracked(await ledger.statusCounts(), nearestDeadline: await ledger.nearestDeadline())
        await Self.show(ledger, on: metrics.board, clock: clock)
    }

    /// Puts the ledger's pending requests (the nearest deadlines) and sources' health on the status board.
    static func show(_ ledger: Ledger, on board: StatusBoard, clock: WatchClock) async {
        let (requests, total) = await ledger.pendingByDeadline(limit: StatusBoard.maxRequests)
        board.setPending(requests, total: total, health: await ledger.sourceHealth(), at: clock.now())
    }

    /// The ledger's stage (see ``services``): its timers, its reports into the metrics and
    /// the status board, and pruning, until the task is cancelled.
    func runLedger() async {
        let ledger = ledger
        let metrics = metrics
        let clock = clock
        let reports = await ledger.reports()
        // The board is brought up to date after reports, once for a burst of them.
        let (refreshes, refresh) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // Before the ledger's timers run: a deadline that passed while the process was down
        // is the first poll's to settle, not an expiry without asking.
        await ledger.ask(poller.polledFromStart)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await ledger.run() }
            group.addTask {
                for await report in reports {
                    if Task.isCancelled { break }
                    metrics.record(report)
                    refresh.yield()
                }
                refresh.finish()
            }
            group.addTask {
                for await _ in refreshes { await Self.show(ledger, on: metrics.board, clock: clock) }
            }
            group.addTask {
                // Closed requests are kept a week for `status`, then forgotten.
                while !Task.isCancelled {
                    await ledger.prune()
                    try? await clock.sleep(for: 3600)
                }
            }
        }
    }

    /// The deliveries' stage (see ``services``): the delivery queue and its reports into the
    /// metrics, until the task is cancelled.
    func runDeliveries() async {
        let delivery = delivery
        let metrics = metrics
        let reports = await delivery.reports()
        let deadLetters = deadLetters
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await delivery.run() }
            group.addTask {
                var deadCounted: Int?
                for await report in reports {
                    metrics.record(report)
                    // The board's dead letters are read again when their number changes.
                    guard case .outbox(let counts) = report, let deadLetters else { continue }
                    let dead = counts.dead
                    guard dead != deadCounted else { continue }
                    if let letters = await BlockingWorkers.shared.run({ deadLetters(StatusBoard.deadLettersShown) }) {
                        deadCounted = dead
                        metrics.board.setDeadLetters(letters)
                    }
                }
            }
        }
    }

    /// One poll of every source (where sources are leased: those this replica gets in one
    /// lease round, given back at the end), the events that are due, one delivery attempt each.
    public func once() async -> [PollReport] {
        let reports = await poller.pollAllOnce()
        for report in reports {
            metrics.recordPoll(report)
            metrics.recordEvents(report.events)
        }
        metrics.recordEvents(await ledger.processDue())
        for report in await delivery.deliverDueOnce() { metrics.record(report) }
        await ledger.prune()
        await poller.letGo()
        return reports
    }
}

extension CancelWatchMetrics {
    /// Records what the delivery queue reports.
    public func record(_ report: DeliveryReport) {
        switch report {
        case .attempt(let result): recordDelivery(sink: result.sink, result: result.status)
        case .outbox(let counts): setOutbox(counts)
        }
    }

    /// Records what the ledger reports.
    public func record(_ report: LedgerReport) {
        switch report {
        case .poll(let poll): recordPoll(poll)
        case .events(let events): recordEvents(events)
        case .tracked(let counts, let nearest): setTracked(counts, nearestDeadline: nearest)
        case .sources(let states): setSources(states)
        }
    }
}
