import Foundation
import Testing

/// SIGTERM stops `run` while a marketplace keeps saying "there is another page": the page
/// loops stop at the next call instead of paging on (up to 10,000 pages, each up to the
/// source's timeout), and a second SIGTERM during the graceful stop ends the process at once.
/// On deb1852 the first `run` paged on after SIGTERM and the second ignored the second signal.
@Suite struct ShutdownDuringEndlessPagingTests {
    /// A RED listing that is always empty and always has 10,000 pages.
    static let endlessPage = #"{"success": true, "error_code": 0, "data": {"total_page": 10000, "current_page": 1, "package_list": []}}"#

    /// A setup whose only source is RED, on `server`.
    func redOnly(on server: CannedAnswerServer, timeout: String) throws -> WatchSetup {
        var options = WatchOptions()
        options.ozon = false
        options.sourceTimeout = timeout
        let setup = try WatchSetup(ozon: 0, red: 1, options: options)
        let config = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: setup.baseURL, with: server.url)
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        return setup
    }

    @Test func sigtermStopsRunWhileAMarketplaceAnswersEveryPageSlowlyWithANextPage() async throws {
        let server = try CannedAnswerServer(status: 200, body: Self.endlessPage, delay: 0.2)
        defer { server.stop() }
        let setup = try redOnly(on: server, timeout: "5s")
        defer { setup.shutdown() }
        let run = try setup.startRun()
        try await eventually("paging\n\(run.stderr)") { server.answered >= 3 }
        let status = try await run.stop(signal: SIGTERM, timeout: 60)
        #expect(status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("stopped"), "\(run.stderr)")
    }

    @Test func aSecondSigtermDuringTheGracefulStopExitsAtOnceWithAFailureStatus() async throws {
        // The answer is held far longer than the test waits: only the second signal ends `run`.
        let server = try CannedAnswerServer(status: 200, body: Self.endlessPage, delay: 3600)
        defer { server.stop() }
        let setup = try redOnly(on: server, timeout: "600s")
        defer { setup.shutdown() }
        let run = try setup.startRun()
        try await eventually("the first page asked for\n\(run.stderr)") { server.received >= 1 }
        kill(run.process.processIdentifier, SIGTERM)
        try await eventually("the graceful stop begun\n\(run.stderr)") { run.stderr.contains("shutting down") }
        let status = try await run.stop(signal: SIGTERM, timeout: 60)
        #expect(status != 0, "\(run.stderr)")
        #expect(run.stderr.contains("second signal: exiting now"), "\(run.stderr)")
    }
}
