import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A marketplace that never answers: each listing waits until the test ends.
final class HangingMarketplace: MarketplaceClient, @unchecked Sendable {
    let source = "hangs"
    let marketplace = Marketplace.ozon
    private let lock = NSLock()
    private var calls = 0
    var callCount: Int { lock.withLock { calls } }

    func fetchPending() async throws(PollError) -> PendingSnapshot {
        lock.withLock { calls += 1 }
        try? await Task.sleep(for: .seconds(3600))
        throw PollError(source: source, kind: .transport, message: "cancelled")
    }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] { [:] }
}

/// Health is a deadman: a source with no successful poll within its window is reported
/// down, whether its polls fail, hang or never run.
@Suite struct SilencedSourceTests {
    let clock = ManualClock()
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A ledger and a poller of `client`, running until the task is cancelled, their health events collected.
    func watching(_ client: MarketplaceClient, silentAfter: TimeInterval?) async throws -> (Task<Void, Never>, SQLiteStateStore, HealthEvents) {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-silent"))
        let sources = [PolledSource(client: client, pollInterval: 60)]
        let ledger = try Ledger(
            rules: [], store: store, clock: clock, logger: quiet, sources: sources,
            health: HealthConfig(notify: ["ops"], downAfter: 3, silentAfter: silentAfter))
        let events = HealthEvents()
        let running = await runLoops(
            ledger: ledger, poller: Poller(sources: sources, ledger: ledger, clock: clock, logger: quiet),
            take: { report in for event in report.healthEvents { events.add(event) } })
        return (running, store, events)
    }

    @Test func aSourceWhoseFirstPollNeverAnswersIsReportedDownAtTheEndOfItsWindow() async throws {
        let market = HangingMarketplace()
        let (running, store, events) = try await watching(market, silentAfter: 300)
        defer { running.cancel() }
        try await waitFor { market.callCount == 1 && clock.sleeperCount > 0 }
        clock.advance(by: 299)
        try await waitFor { clock.sleeperCount > 0 }
        #expect(events.all.isEmpty)
        clock.advance(by: 1)
        try await waitFor { !events.all.isEmpty }
        let down = try #require(events.all.first)
        #expect(down.kind == .sourceDown)
        #expect(down.message.contains("no successful poll for 5m"), "\(down.message)")
        #expect(try store.loadHealth().first?.down == true)
        #expect(try store.outboxCounts().contains { $0.status == "pending" && $0.count == 1 })
    }

    /// A marketplace that keeps asking to wait 15 minutes (the cap): the polls fail too
    /// seldom to count to `down_after` soon, yet the source is down at the end of its window.
    @Test func aSourceKeptWaitingByRetryAfterIsReportedDownByTheDeadmanNotTheCount() async throws {
        let market = ScriptedMarketplace()
        market.failListings(PollError(source: market.source, kind: .rateLimited, status: 429, message: "wait", retryAfter: 900))
        let (running, _, events) = try await watching(market, silentAfter: 600)
        defer { running.cancel() }
        try await waitFor { market.listingCount == 1 && clock.sleeperCount >= 2 }
        clock.advance(by: 600)
        try await waitFor { !events.all.isEmpty }
        #expect(market.listingCount == 1, "the Retry-After was not honoured")
        #expect(events.all.first?.kind == .sourceDown)
        #expect(events.all.first?.message.contains("429") == true, "\(events.all.first?.message ?? "")")
        // Polling resumes within the cap, and the first success brings the source up.
        market.failListings(nil)
        clock.advance(by: 300)
        try await waitFor { events.all.count == 2 }
        #expect(events.all.last?.kind == .sourceUp)
    }

    @Test func theDefaultWindowIsDownAfterIntervalsPlusTheCapAndTheConfigCanSetIt() throws {
        #expect(Ledger.silenceWindow(pollInterval: 60, health: HealthConfig(downAfter: 3)) == 3 * 60 + 900)
        let yaml = """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            health: {down_after: 2, silent_after: 10m}
            """
        let path = try temporaryStatePath("cw-silent-config") + ".yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try CancelWatchConfig.load(path: path, environment: [:])
        #expect(config.health.silentAfter == 600)
        #expect(config.health.downAfter == 2)
    }
}

final class HealthEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [AlertEvent] = []
    func add(_ event: AlertEvent) { lock.withLock { stored.append(event) } }
    var all: [AlertEvent] { lock.withLock { stored } }
}
