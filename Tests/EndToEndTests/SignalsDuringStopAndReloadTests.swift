import Foundation
import Testing

/// Signals that overlap: a SIGHUP while `run` stops, a SIGTERM while a reload waits for the
/// running pipeline to stop, and a SIGTERM that stops `once` in the middle of its cycle.
@Suite struct SignalsDuringStopAndReloadTests {
    /// `run` on a RED source whose answer is held far longer than the tests wait, so that its
    /// pipeline cannot stop before the call's `timeout` (by default longer than the tests wait
    /// too); returns once the first page is asked for.
    func runHeld(timeout: String = "600s") async throws -> (server: CannedAnswerServer, setup: WatchSetup, run: RunningCommand) {
        let server = try CannedAnswerServer(status: 200, body: ShutdownDuringEndlessPagingTests.endlessPage, delay: 3600)
        let setup = try ShutdownDuringEndlessPagingTests().redOnly(on: server, timeout: timeout)
        let run = try setup.startRun()
        try await eventually("the first page asked for\n\(run.stderr)") { server.received >= 1 }
        return (server, setup, run)
    }

    /// The second SIGTERM ends `run` at once, with status 1 and its log line.
    func expectASecondSigtermEndsIt(_ run: RunningCommand) async throws {
        let status = try await run.stop(signal: SIGTERM, timeout: 60)
        #expect(status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("second signal: exiting now"), "\(run.stderr)")
    }

    @Test func aSighupWhileRunStopsIsIgnoredAndASecondSigtermStillEndsItAtOnce() async throws {
        let (server, setup, run) = try await runHeld()
        defer { server.stop(); setup.shutdown() }
        kill(run.process.processIdentifier, SIGTERM)
        try await eventually("the graceful stop begun\n\(run.stderr)") { run.stderr.contains("shutting down") }
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the SIGHUP turned away\n\(run.stderr)") { run.stderr.contains("SIGHUP ignored: shutting down") }
        #expect(!run.stderr.contains("reloading the config"), "\(run.stderr)")
        try await expectASecondSigtermEndsIt(run)
    }

    @Test func aSigtermWhileAReloadWaitsForTheRunningPipelineBeginsTheStopAndASecondOneEndsRun() async throws {
        let (server, setup, run) = try await runHeld()
        defer { server.stop(); setup.shutdown() }
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload begun\n\(run.stderr)") { run.stderr.contains("reloading the config and the rules") }
        kill(run.process.processIdentifier, SIGTERM)
        try await eventually("the graceful stop begun during the reload\n\(run.stderr)") { run.stderr.contains("shutting down") }
        try await expectASecondSigtermEndsIt(run)
        #expect(!run.stderr.contains("info reloaded"), "\(run.stderr)")
    }

    @Test func aSigtermWhileAReloadWaitsForTheRunningPipelineStopsRunCleanlyWithoutStartingTheNewConfig() async throws {
        // The page in flight is answered only once both signals are in: then the pipeline stops.
        let (server, setup, run) = try await runHeld()
        defer { server.stop(); setup.shutdown() }
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload begun\n\(run.stderr)") { run.stderr.contains("reloading the config and the rules") }
        kill(run.process.processIdentifier, SIGTERM)
        try await eventually("the graceful stop begun during the reload\n\(run.stderr)") { run.stderr.contains("shutting down") }
        server.stop()
        let status = try await run.wait(timeout: 60)
        #expect(status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("stopped"), "\(run.stderr)")
        #expect(!run.stderr.contains("info reloaded"), "\(run.stderr)")
        #expect(run.stderr.components(separatedBy: "info watching").count == 2, "\(run.stderr)")
    }

    @Test func aSigtermRightAfterASighupStopsRunCleanlyWhereverTheReloadWas() async throws {
        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        try await eventually("run is watching\n\(run.stderr)") { run.stderr.contains("watching") }
        kill(run.process.processIdentifier, SIGHUP)
        let status = try await run.stop(signal: SIGTERM, timeout: 60)
        #expect(status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("stopped"), "\(run.stderr)")
    }

    @Test func sigtermStopsOnceBetweenPagesAndItExitsOnItsOwnNamingTheSourceItCut() async throws {
        let server = try CannedAnswerServer(status: 200, body: ShutdownDuringEndlessPagingTests.endlessPage, delay: 0.2)
        defer { server.stop() }
        let setup = try ShutdownDuringEndlessPagingTests().redOnly(on: server, timeout: "5s")
        defer { setup.shutdown() }
        let once = try RunningCommand(["once", "--config", setup.configPath], directory: setup.directory)
        defer { if once.process.isRunning { kill(once.process.processIdentifier, SIGKILL) } }
        try await eventually("paging") { server.answered >= 3 }
        let status = try await once.stop(signal: SIGTERM, timeout: 60)
        #expect(once.process.terminationReason == .exit, "ended by the signal:\n\(once.stderr)")
        #expect(status == 1, "\(once.stderr)")
        #expect(once.stderr.contains("error: source 'red': cancelled"), "\(once.stderr)")
    }
}
