import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A marketplace answering from a script: the listing and the outcome lookups.
final class ScriptedMarketplace: MarketplaceClient, @unchecked Sendable {
    let source = "ozon-main"
    let marketplace = Marketplace.ozon
    private let lock = NSLock()
    private var listing: [CancellationRequest] = []
    private var lookupFailure: PollError?

    func list(_ requests: [CancellationRequest]) { lock.withLock { listing = requests } }
    func failLookups(_ error: PollError?) { lock.withLock { lookupFailure = error } }

    func fetchPending() async throws(PollError) -> PendingSnapshot { PendingSnapshot(requests: lock.withLock { listing }) }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        if let failure = lock.withLock({ lookupFailure }) { throw failure }
        return Dictionary(uniqueKeysWithValues: requests.map { ($0.key, OutcomeLookup.resolved(.approved, at: nil)) })
    }
}

@Suite struct WatcherTests {
    let clock = ManualClock()

    func request(_ id: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: clock.now().addingTimeInterval(3600))
    }

    @Test func aFailedOutcomeLookupStillAppliesTheListingAndResolvesNothing() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-watcher"))
        let market = ScriptedMarketplace()
        let watcher = try Watcher(
            sources: [PolledSource(client: market, pollInterval: 60)], store: store, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        market.list([request("a"), request("b")])
        _ = await watcher.poll(market)

        market.list([request("b"), request("c")])
        market.failLookups(PollError(source: "ozon-main", kind: .server, status: 503, message: "lookup down"))
        let report = await watcher.poll(market)
        #expect(report.error?.status == 503)
        #expect(report.changes.contains { if case .new(let t) = $0 { t.request.id == "c" } else { false } }, "the new request is applied")
        #expect(report.health.consecutiveFailures == 1)
        #expect(Set(try store.loadTracked().filter { $0.status == .pending }.map(\.request.id)) == ["a", "b", "c"])

        market.failLookups(nil)
        let next = await watcher.poll(market)
        #expect(next.error == nil)
        #expect(try store.loadTracked().first { $0.request.id == "a" }?.status == .approved)
        #expect(next.health.consecutiveFailures == 0)
    }
}
