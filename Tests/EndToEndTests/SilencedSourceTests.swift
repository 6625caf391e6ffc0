import CancelWatch
import Foundation
import MarketSim
import Testing

/// A marketplace cannot silence a source: not by asking for an absurd wait, not by never
/// answering. Polling resumes within the cap, and a source with no successful poll within
/// its window is reported down.
@Suite struct SilencedSourceTests {
    @Test func aRetryAfterOfThirtyYearsNeitherStopsPollingNorHidesTheSourceBeingDown() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        try await eventually("the first firings\n\(run.stderr)") {
            Set(setup.receiver.acknowledged).isSuperset(of: try setup.dueFirings())
        }

        try setup.simulator.addFault(SimFault(.rateLimited(retryAfter: 1_000_000_000), marketplace: .ozon, times: nil))
        let down = WatchSetup.healthID(source: "ozon", kind: .sourceDown)
        try await eventually("source_down for ozon\n\(run.stderr)") { setup.receiver.acknowledged.contains(down) }
        let downEvent = try #require(setup.receiver.acknowledgedReceipts.first { $0.id == down })
        #expect(downEvent.message.contains("earliest pending deadline at risk"), "\(downEvent.message)")

        // The marketplace answers again: polling has not stopped, so the source comes back.
        try setup.simulator.clearFaults()
        try setup.simulator.resetRequestCounts()
        let up = WatchSetup.healthID(source: "ozon", kind: .sourceUp)
        try await eventually("source_up for ozon\n\(run.stderr)") { setup.receiver.acknowledged.contains(up) }
        #expect(try setup.simulator.requestCount(path: OzonClient.listPath, account: E2EAccounts.ozonClientID) > 0)
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }

    /// Ozon never answers its first poll; RED answers once, then never again. Neither poll
    /// fails (the source timeout is long), yet both sources are reported down within their
    /// window, RED naming its earliest deadline at risk.
    @Test func aSourceWhosePollsNeverAnswerIsReportedDownWithinItsWindow() async throws {
        var options = WatchOptions()
        options.sourceTimeout = "5m"
        options.silentAfter = "6s"
        let setup = try WatchSetup(ozon: 1, red: 2, options: options)
        defer { setup.shutdown() }
        try setup.simulator.addFault(SimFault(.slow(seconds: 3600), marketplace: .ozon, times: nil))
        let run = try setup.startRun()
        let redDue = try setup.dueFirings(of: setup.pendingRequests().filter { $0.marketplace == .red })
        try await eventually("RED's firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: redDue) }
        let hangsFrom = Date()
        try setup.simulator.addFault(SimFault(.slow(seconds: 3600), marketplace: .red, times: nil))

        func downs(of source: String) -> [WebhookReceiver.Receipt] {
            setup.receiver.acknowledgedReceipts.filter { $0.event == "source_down" && $0.source == source }
        }
        try await eventually("source_down for ozon and red\n\(run.stderr)") {
            !downs(of: "ozon").isEmpty && downs(of: "red").contains { $0.receivedAt > hangsFrom }
        }
        let ozon = try #require(downs(of: "ozon").first)
        #expect(ozon.message.contains("no successful poll"), "\(ozon.message)")
        #expect(ozon.message.contains("no pending request is known"), "\(ozon.message)")
        let red = try #require(downs(of: "red").last)
        let earliest = try #require(try setup.pendingRequests().filter { $0.marketplace == .red }.min { $0.deadline < $1.deadline })
        #expect(red.message.contains("earliest pending deadline at risk: \(earliest.order)"), "\(red.message)")
        // A transfer in flight holds a graceful stop up to the source timeout: not awaited here.
        try await run.killHard()
    }
}
