import CancelWatch
import Foundation
import MarketSim
import Testing

/// `/metrics` in the Prometheus text format, one test per family, and `/healthz`.
@Suite(.serialized) struct MetricsTests {
    /// The exposition text parsed into `name{labels}` → value, with the families' TYPE lines.
    struct Exposition {
        var samples: [String: Double] = [:]
        var types: [String: String] = [:]

        init(_ text: String) {
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    let parts = line.split(separator: " ")
                    if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                    continue
                }
                if line.hasPrefix("#") { continue }
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                samples[withoutInstance(line[..<space])] = value
            }
        }

        subscript(_ sample: String) -> Double? { samples[sample] }
    }

    func scrape(_ url: String) async throws -> Exposition {
        let (status, body) = try await httpGet(url + "/metrics")
        guard status == 200 else { throw CommandFailure("/metrics answered \(status): \(body)") }
        return Exposition(body)
    }

    /// One watcher serves every family; each `@Test` below checks its own.
    final class Fixture: @unchecked Sendable {
        let setup: WatchSetup
        let run: RunningCommand
        let url: String

        init() async throws {
            var options = WatchOptions()
            options.listen = true
            options.downAfter = 2
            setup = try WatchSetup(ozon: 3, red: 2, options: options)
            run = try setup.startRun()
            url = try await run.metricsURL()
            let due = try setup.dueFirings()
            try await eventually("the first firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }
        }

        deinit { setup.shutdown() }
    }

    @Test func pollsAndLastSuccessfulPollPerSource() async throws {
        let fixture = try await Fixture()
        try await eventually("two polls of each source") {
            let m = try await scrape(fixture.url)
            return (m[#"cancelwatch_polls_total{source="ozon"}"#] ?? 0) >= 2 && (m[#"cancelwatch_polls_total{source="red"}"#] ?? 0) >= 2
        }
        let m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_polls_total"] == "counter")
        #expect(m.types["cancelwatch_last_successful_poll_timestamp_seconds"] == "gauge")
        for source in ["ozon", "red"] {
            let last = try #require(m["cancelwatch_last_successful_poll_timestamp_seconds{source=\"\(source)\"}"])
            #expect(abs(last - Date().timeIntervalSince1970) < 120)
        }
        #expect(try await fixture.run.stop() == 0)
    }

    @Test func pollErrorsBySourceAndKindAndHealthzNamesTheFailingSource() async throws {
        let fixture = try await Fixture()
        let (okStatus, okBody) = try await httpGet(fixture.url + "/healthz")
        #expect(okStatus == 200, "\(okBody)")
        try fixture.setup.simulator.addFault(SimFault(.serverError(status: 503), marketplace: .red, times: nil))
        try await eventually("red reported down\n\(fixture.run.stderr)", timeout: 90) {
            try await httpGet(fixture.url + "/healthz").status == 503
        }
        let (status, body) = try await httpGet(fixture.url + "/healthz")
        #expect(status == 503)
        #expect(body.contains("red") && !body.contains("ozon"), "\(body)")
        let m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_poll_errors_total"] == "counter")
        #expect((m[#"cancelwatch_poll_errors_total{source="red",kind="server"}"#] ?? 0) >= 2)
        #expect(m[#"cancelwatch_poll_errors_total{source="ozon",kind="server"}"#] == nil)

        try fixture.setup.simulator.clearFaults()
        try await eventually("red healthy again", timeout: 90) { try await httpGet(fixture.url + "/healthz").status == 200 }
        #expect(try await fixture.run.stop() == 0)
    }

    @Test func trackedRequestsByStateAndSecondsToTheNearestDeadline() async throws {
        let fixture = try await Fixture()
        try await eventually("five pending") {
            try await scrape(fixture.url)[#"cancelwatch_tracked_requests{state="pending"}"#] == 5
        }
        let ozon = try #require(try fixture.setup.pendingRequests().first { $0.marketplace == .ozon })
        #expect(try fixture.setup.simulator.resolve(.ozon, id: ozon.id, outcome: .rejected))
        try await eventually("one rejected") {
            let m = try await scrape(fixture.url)
            return m[#"cancelwatch_tracked_requests{state="rejected"}"#] == 1
                && m[#"cancelwatch_tracked_requests{state="pending"}"#] == 4
        }
        let m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_tracked_requests"] == "gauge")
        for state in ["approved", "vanished", "expired"] { #expect(m["cancelwatch_tracked_requests{state=\"\(state)\"}"] == 0) }
        let nearest = try #require(try fixture.setup.pendingRequests().map(\.deadline).min())
        let seconds = try #require(m["cancelwatch_nearest_deadline_seconds"])
        #expect(abs(seconds - nearest.timeIntervalSinceNow) < 60, "\(seconds) vs \(nearest.timeIntervalSinceNow)")
        #expect(try await fixture.run.stop() == 0)
    }

    @Test func eventsByKind() async throws {
        let fixture = try await Fixture()
        let ozon = try #require(try fixture.setup.pendingRequests().first { $0.marketplace == .ozon })
        #expect(try fixture.setup.simulator.resolve(.ozon, id: ozon.id, outcome: .approved))
        try await eventually("the resolved event counted") {
            try await scrape(fixture.url)[#"cancelwatch_events_total{kind="resolved"}"#] == 1
        }
        let m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_events_total"] == "counter")
        #expect(m[#"cancelwatch_events_total{kind="firing"}"#] == 5)
        for kind in ["repeat", "expired", "source_down", "source_up"] { #expect(m["cancelwatch_events_total{kind=\"\(kind)\"}"] == 0) }
        #expect(try await fixture.run.stop() == 0)
    }

    @Test func deliveriesBySinkAndResultAndTheOutboxDepthAndDeadLetters() async throws {
        let fixture = try await Fixture()
        var m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_deliveries_total"] == "counter")
        #expect(m[#"cancelwatch_deliveries_total{sink="hook",result="delivered"}"#] == 5)
        #expect(m[#"cancelwatch_outbox_pending{sink="hook"}"#] ?? 0 == 0)

        // Failing: retries pile up and the outbox holds the delivery.
        fixture.setup.receiver.setMode(.fail(status: 503, retryAfter: nil))
        try fixture.setup.simulator.addRequest(
            SimRequestPlan(marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-60), deadline: .relative(9000)))
        try await eventually("a retry and a pending delivery") {
            let m = try await scrape(fixture.url)
            return (m[#"cancelwatch_deliveries_total{sink="hook",result="retry"}"#] ?? 0) >= 1
                && m[#"cancelwatch_outbox_pending{sink="hook"}"#] == 1
        }
        #expect(try await scrape(fixture.url).types["cancelwatch_outbox_pending"] == "gauge")

        // Refused for good (400): a dead letter.
        fixture.setup.receiver.setMode(.fail(status: 400, retryAfter: nil))
        try await eventually("a dead letter", timeout: 60) {
            let m = try await scrape(fixture.url)
            return m[#"cancelwatch_outbox_dead_letters{sink="hook"}"#] == 1
                && m[#"cancelwatch_deliveries_total{sink="hook",result="dead"}"#] == 1
        }
        m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_outbox_dead_letters"] == "gauge")
        #expect(m[#"cancelwatch_outbox_pending{sink="hook"}"#] ?? 0 == 0)
        #expect(try await fixture.run.stop() == 0)
    }

    @Test func configReloadsAndUnknownPaths() async throws {
        let fixture = try await Fixture()
        var m = try await scrape(fixture.url)
        #expect(m.types["cancelwatch_config_reloads_total"] == "counter")
        #expect(m.types["cancelwatch_config_last_reload_success"] == "gauge")
        #expect(m[#"cancelwatch_config_reloads_total{result="success"}"#] == 0)
        #expect(m["cancelwatch_config_last_reload_success"] == 1)
        kill(fixture.run.process.processIdentifier, SIGHUP)
        try await eventually("the reload counted") {
            try await scrape(fixture.url)[#"cancelwatch_config_reloads_total{result="success"}"#] == 1
        }
        m = try await scrape(fixture.url)
        #expect(m["cancelwatch_config_last_reload_success"] == 1)
        #expect(try await httpGet(fixture.url + "/nothing-here").status == 404)
        #expect(try await fixture.run.stop() == 0)
    }
}
