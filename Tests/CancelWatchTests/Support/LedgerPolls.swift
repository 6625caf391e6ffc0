import CancelWatch
import Foundation

extension PollResult {
    /// A successful poll of `source` at `now` listing `requests`, with `outcomes` for
    /// those that left the list.
    static func listing(
        _ requests: [CancellationRequest], source: String = "ozon-main", marketplace: Marketplace = .ozon,
        outcomes: [RequestKey: OutcomeLookup] = [:], at now: Date
    ) -> PollResult {
        PollResult(
            source: source, marketplace: marketplace, startedAt: now,
            listing: Listing(snapshot: PendingSnapshot(requests: requests), outcomes: outcomes, listedAt: now))
    }
}

/// Runs the poller's loops and the ledger's timers until the task is cancelled, handing
/// every report of the ledger to `take` (what `WatchService.run` does, minus delivery).
func runLoops(ledger: Ledger, poller: Poller, take: @escaping @Sendable (LedgerReport) -> Void = { _ in }) async
    -> Task<Void, Never>
{
    let reports = await ledger.reports()
    await ledger.ask(poller.polledFromStart)
    return Task {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await ledger.run() }
            group.addTask { await poller.run() }
            group.addTask {
                for await report in reports { take(report) }
            }
        }
    }
}

extension LedgerReport {
    /// The `source_down` and `source_up` events it carries.
    var healthEvents: [AlertEvent] {
        guard case .events(let events) = self else { return [] }
        return events.filter { $0.kind == .sourceDown || $0.kind == .sourceUp }
    }
}

/// Each ledger applies a listing of one request of its own, due within the hour, at once:
/// one commit each, for tests that hold the store while those commits wait.
func applyOneListingEach(_ ledgers: [Ledger], clock: ManualClock) -> [Task<Void, Never>] {
    ledgers.enumerated().map { index, ledger in
        Task {
            let request = CancellationRequest(
                marketplace: .ozon, source: "ozon", id: "\(index)", order: "order-\(index)", state: .pending,
                rawState: "ON_APPROVAL", deadline: clock.now().addingTimeInterval(600))
            await ledger.apply(.listing([request], source: "ozon", at: clock.now()))
        }
    }
}
