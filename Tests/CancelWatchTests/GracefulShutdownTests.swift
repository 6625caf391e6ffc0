import CancelWatchTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import CancelWatch

/// A sink whose attempts wait until the test lets them go, whatever happens to their task:
/// a delivery in flight while the pipeline stops.
final class HeldSink: AlertSink, @unchecked Sendable {
    let name = "memory"
    private let lock = NSLock()
    private var released = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var started: [String] = []

    /// The events whose attempt has begun.
    var attempted: [String] { lock.withLock { started } }

    func release() {
        let held = lock.withLock {
            released = true
            defer { waiting.removeAll() }
            return waiting
        }
        for continuation in held { continuation.resume() }
    }

    func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let go = lock.withLock {
                started.append(event.id)
                if !released { waiting.append(continuation) }
                return released
            }
            if go { continuation.resume() }
        }
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
        let service = try WatchService(
            sources: [PolledSource(client: market, pollInterval: 60)], rules: [ThresholdRule(name: "final-hour", threshold: 3600)],
            routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock, logger: quiet)
        await service.start()
        let group = ServiceGroup(services: service.services, logger: quiet)
        let returned = Returned()
        let running = Task {
            defer { returned.set() }
            try await group.run()
        }

        // The first poll's two events are committed; the first one's delivery is in flight.
        try await waitFor { sink.attempted.count == 1 }
        let inFlight = try #require(sink.attempted.first)
        await group.triggerGracefulShutdown()
        sink.release()

        // A bounded wait on the group's end: a stage that never returns fails the test.
        let stopped = await eventually { returned.value }
        if !stopped {
            running.cancel()
            clock.advance(by: 86_400)
        }
        try await running.value
        #expect(stopped, "a stage did not return on graceful shutdown")
        #expect(clock.sleeperCount == 0, "a loop still waits on the clock")
        // The attempt in flight finished; the other event was delivered before the deliveries
        // stopped, or waits in the outbox for the next run.
        let later = clock.now().addingTimeInterval(86_400)
        let queued = try store.dueDeliveries(sink: "memory", now: later, limit: 10).deliveries.map(\.event.id)
        #expect(!queued.contains(inFlight))
        let outbox = try store.outboxCounts().map { "\($0.status)/\($0.count)" }
        #expect(outbox == ["delivered/2"] || (Set(outbox) == ["delivered/1", "pending/1"] && queued.count == 1), "\(outbox)")
    }
}
