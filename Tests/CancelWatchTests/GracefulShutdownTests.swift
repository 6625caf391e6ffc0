import CancelWatchTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import CancelWatch

/// A gate that calls pass only while it is open, whatever happens to their task meanwhile: a
/// call in flight while the pipeline stops. It keeps who came and whether a task waiting at
/// it was cancelled.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var isOpen: Bool
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var came: [String] = []
    private var cancelled = false

    init(open: Bool) { isOpen = open }

    /// Who came to the gate, in order (whether they have passed or wait).
    var arrivals: [String] { lock.withLock { came } }
    /// Whether a task waiting at the gate was cancelled.
    var sawCancellation: Bool { lock.withLock { cancelled } }

    func close() { lock.withLock { isOpen = false } }

    func open() {
        let held = lock.withLock {
            isOpen = true
            defer { waiting.removeAll() }
            return waiting
        }
        for continuation in held { continuation.resume() }
    }

    func pass(_ who: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let go = lock.withLock {
                    came.append(who)
                    if !isOpen { waiting.append(continuation) }
                    return isOpen
                }
                if go { continuation.resume() }
            }
        } onCancel: {
            lock.withLock { if !isOpen { cancelled = true } }
        }
    }
}

/// A sink whose attempts wait at a gate (closed until the test opens it).
final class HeldSink: AlertSink, @unchecked Sendable {
    let name = "memory"
    let gate = Gate(open: false)

    /// The events whose attempt has begun.
    var attempted: [String] { gate.arrivals }

    func release() { gate.open() }

    func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        await gate.pass(event.id)
    }
}

/// A scripted marketplace whose listings wait at a gate (closed until the test opens it).
final class HeldMarketplace: MarketplaceClient, @unchecked Sendable {
    let market: ScriptedMarketplace
    let gate = Gate(open: false)
    var source: String { market.source }
    var marketplace: Marketplace { market.marketplace }

    init(_ market: ScriptedMarketplace) { self.market = market }

    func fetchPending() async throws(PollError) -> PendingSnapshot {
        await gate.pass("listing")
        return try await market.fetchPending()
    }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        try await market.lookupOutcomes(of: requests)
    }
}

/// The pipeline's stages in a service group on the manual clock: graceful shutdown (what
/// SIGTERM starts) returns every stage, the delivery in flight finishes, and every other
/// event the ledger committed before the stop is delivered or still in the outbox.
@Suite struct GracefulShutdownTests {
    let clock = ManualClock()
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Whether the group's run has returned.
    final class Returned: @unchecked Sendable {
        private let lock = NSLock()
        private var stored = false
        var value: Bool { lock.withLock { stored } }
        func set() { lock.withLock { stored = true } }
    }

    /// A pipeline of one source and one sink, threshold alerts in the final hour.
    func service(_ client: MarketplaceClient, sink: AlertSink, store: StateStore) throws -> WatchService {
        try WatchService(
            sources: [PolledSource(client: client, pollInterval: 60)], rules: [ThresholdRule(name: "final-hour", threshold: 3600)],
            routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock, logger: quiet)
    }

    /// A started service's stages running in a service group.
    struct Running {
        let group: ServiceGroup
        let returned = Returned()
        let task: Task<Void, Error>

        init(_ service: WatchService, logger: Logger) async {
            await service.start()
            let group = ServiceGroup(services: service.services, logger: logger)
            let returned = returned
            self.group = group
            task = Task {
                defer { returned.set() }
                try await group.run()
            }
        }

        /// A bounded wait on the group's end (a stage that never returns fails the test): whether
        /// it returned. If not, it is cancelled and `clock` moved past every sleep, so the test ends.
        func end(clock: ManualClock) async throws -> Bool {
            let stopped = await eventually { returned.value }
            if !stopped {
                task.cancel()
                clock.advance(by: 86_400)
            }
            try await task.value
            return stopped
        }
    }

    @Test func gracefulShutdownReturnsEveryStageFinishesTheAttemptInFlightAndLosesNoCommittedEvent() async throws {
        let market = ScriptedMarketplace()
        market.list(
            ["a", "b"].map { id in
                CancellationRequest(
                    marketplace: .ozon, source: market.source, id: id, order: "order-\(id)", state: .pending,
                    rawState: "ON_APPROVAL", deadline: clock.now().addingTimeInterval(600))
            })
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-shutdown"))
        let sink = HeldSink()
        let running = await Running(try service(market, sink: sink, store: store), logger: quiet)

        // The first poll's two events are committed; the first one's delivery is in flight.
        try await waitFor { sink.attempted.count == 1 }
        let inFlight = try #require(sink.attempted.first)
        await running.group.triggerGracefulShutdown()
        sink.release()

        #expect(try await running.end(clock: clock), "a stage did not return on graceful shutdown")
        #expect(clock.sleeperCount == 0, "a loop still waits on the clock")
        // The attempt in flight finished; the other event was delivered before the deliveries
        // stopped, or waits in the outbox for the next run.
        let later = clock.now().addingTimeInterval(86_400)
        let queued = try store.dueDeliveries(sink: "memory", now: later, limit: 10).deliveries.map(\.event.id)
        #expect(!queued.contains(inFlight))
        let outbox = try store.outboxCounts().map { "\($0.status)/\($0.count)" }
        #expect(outbox == ["delivered/2"] || (Set(outbox) == ["delivered/1", "pending/1"] && queued.count == 1), "\(outbox)")
    }

    /// The group stops the stages in reverse of ``WatchService/services``: the poller first
    /// (nothing new comes in), then the ledger (nothing new is decided), the deliveries last
    /// (what was decided still goes out). Each stage is held as it stops, and the stages that
    /// stop after it must still be at work.
    @Test func gracefulShutdownStopsThePollerFirstThenTheLedgerAndTheDeliveriesLast() async throws {
        let market = ScriptedMarketplace()
        market.list([
            CancellationRequest(
                marketplace: .ozon, source: market.source, id: "a", order: "order-a", state: .pending, rawState: "ON_APPROVAL",
                deadline: clock.now().addingTimeInterval(7200))
        ])
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-stop-order"))
        let sink = HeldSink()
        // A first run tracks the request; its final hour starts an hour later.
        let first = try service(market, sink: sink, store: store)
        await first.start()
        _ = await first.once()
        let held = HeldMarketplace(market)
        let running = await Running(try service(held, sink: sink, store: store), logger: quiet)

        // The poller's first poll is held; the group starts stopping, and once it stops the
        // poller (every stage before it has returned), the ledger still fires at the final
        // hour and the deliveries still attempt the event.
        try await waitFor { held.gate.arrivals.count == 1 }
        await running.group.triggerGracefulShutdown()
        try await waitFor { held.gate.sawCancellation }
        clock.advance(by: 3600)
        let ledgerAndDeliveriesRan = await eventually { sink.attempted.count == 1 }
        #expect(ledgerAndDeliveriesRan, "a stage stopped before the poller")
        // The poll let go, the poller returns and the ledger stops next: no loop waits on the
        // clock any more while the deliveries' attempt is still held.
        held.gate.open()
        let ledgerStopped = await eventually { clock.sleeperCount == 0 }
        #expect(ledgerStopped, "the deliveries stopped before the ledger")
        sink.release()

        #expect(try await running.end(clock: clock), "a stage did not return on graceful shutdown")
        #expect(try store.outboxCounts().map { "\($0.status)/\($0.count)" } == ["delivered/1"])
    }
}
