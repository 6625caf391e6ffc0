import CancelWatchTesting
import Foundation
import Logging
import TestServers
import Testing

@testable import CancelWatch

/// Who polled which source, as the marketplaces saw it.
final class PollLog: @unchecked Sendable {
    private let lock = NSLock()
    private var polls: [String: Set<String>] = [:]

    func record(_ replica: String, _ source: String) { lock.withLock { _ = polls[replica, default: []].insert(source) } }
    func sources(polledBy replica: String) -> Set<String> { lock.withLock { polls[replica] ?? [] } }
    func forget() { lock.withLock { polls = [:] } }
}

/// An empty marketplace that notes in `log` which replica asked it.
struct LoggedMarketplace: MarketplaceClient {
    var source: String
    var replica: String
    var log: PollLog
    var marketplace: Marketplace { .ozon }

    func fetchPending() async throws(PollError) -> PendingSnapshot {
        log.record(replica, source)
        return PendingSnapshot(requests: [])
    }
    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] { [:] }
}

/// Pollers of replicas sharing a database poll only what their leases hold, split the
/// sources between them, and give their leases back when they stop.
@Suite struct ReplicaPollerTests {
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let names = ["shop-1", "shop-2", "shop-3", "shop-4"]

    /// A replica's poller over its own store, running until the task is cancelled.
    func replica(_ instance: String, at location: PostgresLocation, log: PollLog) async throws -> (Task<Void, Never>, PostgresStateStore) {
        let store = try await offPool { try PostgresStateStore(location: location, instance: instance) }
        let sources = names.map { PolledSource(client: LoggedMarketplace(source: $0, replica: instance, log: log), pollInterval: 1) }
        let clock = SystemClock()
        let ledger = try Ledger(rules: [], store: store, clock: clock, logger: quiet, sources: sources, leased: true)
        let leases = LeaseKeeper(leases: store, sources: names, ttl: 3, logger: quiet)
        let poller = Poller(sources: sources, ledger: ledger, clock: clock, logger: quiet, leases: leases)
        return (Task { await poller.run() }, store)
    }

    func holders(_ store: PostgresStateStore) async throws -> [String: String] {
        let leases = try await offPool { try store.leases() }
        return Dictionary(leases.map { ($0.source, $0.holder) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func replicasSplitTheSourcesAndOneThatStopsGivesItsSourcesToTheOther() async throws {
        let location = try await PostgresStores.freshLocation()
        let log = PollLog()
        let (a, store) = try await replica("replica-a", at: location, log: log)
        defer { a.cancel() }
        try await waitFor { log.sources(polledBy: "replica-a") == Set(names) }

        let (b, _) = try await replica("replica-b", at: location, log: log)
        defer { b.cancel() }
        try await waitFor {
            let held = try await holders(store)
            return held.values.filter { $0 == "replica-a" }.count == 2 && held.values.filter { $0 == "replica-b" }.count == 2
        }
        let heldByB = Set(try await holders(store).filter { $0.value == "replica-b" }.keys)
        try await waitFor { log.sources(polledBy: "replica-b") == heldByB }

        a.cancel()
        await a.value
        #expect(try await holders(store).values.allSatisfy { $0 == "replica-b" })
        log.forget()
        try await waitFor { log.sources(polledBy: "replica-b") == Set(names) }
        #expect(try await holders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, "replica-b") }))
    }
}
