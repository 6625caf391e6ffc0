import Foundation
import Logging

/// The whole pipeline for one configuration: poll → track → evaluate → schedule →
/// deliver. `run` keeps it going until cancelled; `once` does one cycle (for cron).
public final class WatchService: Sendable {
    public let watcher: Watcher
    public let scheduler: AlertScheduler
    public let delivery: DeliveryQueue
    public let metrics: CancelWatchMetrics
    private let clock: WatchClock
    private let logger: Logger

    public init(
        sources: [PolledSource], rules: [AlertRule], routes: [DeliveryQueue.Route], store: StateStore, clock: WatchClock,
        logger: Logger, health: HealthConfig = HealthConfig(), metrics: CancelWatchMetrics = CancelWatchMetrics()
    ) throws(StoreError) {
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        watcher = try Watcher(
            sources: sources, store: store, clock: clock, logger: logger, downAfter: health.downAfter,
            silentAfter: health.silentAfter, healthNotify: health.notify, keepingRaw: rules.rawPaths)
        delivery = DeliveryQueue(routes: routes, store: store, clock: clock, logger: logger)
        scheduler = AlertScheduler(rules: rules, store: store, clock: clock, logger: logger, delivery: delivery)
    }

    /// Connects the pieces and hands the scheduler what the state file knows, so that
    /// what fell due while the process was down fires now (once).
    public func start() async {
        let scheduler = scheduler
        let watcher = watcher
        let delivery = delivery
        let metrics = metrics
        // The actors hold these hooks, so the hooks hold them weakly: a service let go (after
        // a reload) frees its actors and their threads.
        await watcher.onPoll { [weak watcher, weak scheduler] report in
            metrics.recordPoll(report)
            if !report.changes.isEmpty { await scheduler?.handle(report.changes) }
            if let watcher { metrics.setTracked(await watcher.statusCounts(), nearestDeadline: await watcher.nearestDeadline()) }
        }
        await watcher.onHealthState { metrics.setSources($0) }
        await delivery.onOutboxCounts { metrics.setOutbox($0) }
        await watcher.onHealthEvent { event in
            metrics.recordEvents([event])
            delivery.wake(sinks: event.sinks)
        }
        await scheduler.onEvents { [weak watcher] events in
            metrics.recordEvents(events)
            if events.contains(where: { $0.kind == .expired }), let watcher {
                metrics.setTracked(await watcher.statusCounts(), nearestDeadline: await watcher.nearestDeadline())
            }
        }
        await delivery.onAttempt { delivery, result in metrics.recordDelivery(sink: delivery.sink, result: result.status) }
        await scheduler.setExpireHook { [weak watcher] in await watcher?.expireDue() ?? [] }
        await scheduler.start(tracked: await watcher.tracked)
        metrics.setTracked(await watcher.statusCounts(), nearestDeadline: await watcher.nearestDeadline())
    }

    /// Polls, schedules and delivers until the task is cancelled. Deliveries in flight
    /// finish or stay in the outbox.
    public func run() async {
        let watcher = watcher
        let scheduler = scheduler
        let delivery = delivery
        let clock = clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await watcher.run() }
            group.addTask { await scheduler.run() }
            group.addTask { await delivery.run() }
            group.addTask {
                // Closed requests are kept a week for `status`, then forgotten.
                while !Task.isCancelled {
                    await scheduler.forget(await watcher.prune())
                    try? await clock.sleep(for: 3600)
                }
            }
        }
    }

    /// One poll of every source, the events that are due, one delivery attempt each.
    public func once() async -> [PollReport] {
        let reports = await watcher.pollAllOnce()
        await scheduler.processDue()
        await delivery.deliverDueOnce()
        await scheduler.forget(await watcher.prune())
        return reports
    }
}
