import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// `/healthz` has one idea of health, the ledger's: it fails exactly while a source is
/// reported down (by the deadman or by `down_after` failures), never on a formula of its own.
@Suite struct HealthzAgreesWithDeadmanTests {
    let clock = ManualClock()
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let transport = CurlHTTPTransport(threads: 1)

    @Test func healthzSays200UntilTheDeadmanReportsTheSourceDownAnd503FromThen() async throws {
        // A window far longer than three intervals plus a minute; too few failures to count down.
        let (market, metrics, service, server) = try failingSource(health: HealthConfig(notify: ["ops"], downAfter: 10, silentAfter: 600))
        let events = HealthEvents()
        await service.start()
        let running = await runLoops(ledger: service.ledger, poller: service.poller) { report in
            metrics.record(report)
            for event in report.healthEvents { events.add(event) }
        }
        defer { running.cancel() }

        try await waitFor { market.listingCount == 1 && clock.sleeperCount >= 2 }
        #expect(try await healthz(server).status == 200)
        clock.advance(by: 300)
        try await waitFor { market.listingCount == 2 && clock.sleeperCount >= 2 }
        #expect(try await healthz(server).status == 200)
        clock.advance(by: 299)
        try await waitFor { market.listingCount == 3 && clock.sleeperCount >= 2 }
        #expect(events.all.isEmpty)
        #expect(try await healthz(server).status == 200)

        clock.advance(by: 1)
        try await waitFor { !events.all.isEmpty }
        #expect(events.all.first?.kind == .sourceDown)
        // The sources' report that /healthz reads follows the poll's report that carries the
        // event: wait for it (the clock does not move meanwhile, so nothing else can change it).
        try await waitFor { try await healthz(server).status == 503 }
        let down = try await healthz(server)
        #expect(down.body.contains(market.source), "\(down.body)")

        market.failListings(nil)
        clock.advance(by: 900)
        try await waitFor { events.all.count == 2 }
        #expect(events.all.last?.kind == .sourceUp)
        try await waitFor { try await healthz(server).status == 200 }
        await server.shutdown()
    }

    @Test func healthzSays503OnceDownAfterPollsFailedInARow() async throws {
        let (market, metrics, service, server) = try failingSource(health: HealthConfig(notify: ["ops"], downAfter: 1, silentAfter: 7 * 86400))
        let events = HealthEvents()
        await service.start()
        let reports = await service.ledger.reports()
        let report = await service.poller.poll(market)
        for event in report.events { events.add(event) }
        #expect(events.all.map(\.kind) == [.sourceDown])
        for await item in reports {
            metrics.record(item)
            if case .poll = item { break }
        }
        let down = try await healthz(server)
        #expect(down.status == 503)
        #expect(down.body.contains(market.source), "\(down.body)")
        await server.shutdown()
    }

    /// A source whose listings fail with 503, polled every minute by a service with `health`, and
    /// the /metrics server on its metrics.
    private func failingSource(
        health: HealthConfig
    ) throws -> (ScriptedMarketplace, CancelWatchMetrics, WatchService, MetricsServer) {
        let market = ScriptedMarketplace()
        market.failListings(PollError(source: market.source, kind: .server, status: 503, message: "unavailable"))
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-healthz"))
        let metrics = CancelWatchMetrics()
        let service = try WatchService(
            sources: [PolledSource(client: market, pollInterval: 60)], rules: [], routes: [], store: store, clock: clock,
            logger: quiet, health: health, metrics: metrics)
        let server = try MetricsServer(address: ListenAddress(host: "127.0.0.1", port: 0), metrics: metrics, clock: clock)
        return (market, metrics, service, server)
    }

    private func healthz(_ server: MetricsServer) async throws -> (status: Int, body: String) {
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/healthz"))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }
}
