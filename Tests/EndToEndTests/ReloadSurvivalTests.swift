import CancelWatch
import Foundation
import MarketSim
import Testing

/// A SIGHUP reload never ends the process: whatever fails (a listen address that is taken,
/// a state file that cannot be opened, a config that does not load) is logged with its
/// reason, the running config, rules and /metrics stay, and the next good reload works.
/// On deb1852 a reload to a taken port ended `run` with exit code 1.
@Suite struct ReloadSurvivalTests {
    func failures(_ url: String) async throws -> Double? {
        try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="failure"}"#)
    }

    @Test func aReloadToATakenPortOrAnUnopenableStateKeepsWatchingAndTheNextGoodReloadWorks() async throws {
        var options = WatchOptions()
        options.listen = true
        let setup = try WatchSetup(ozon: 2, red: 1, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let url = try await run.metricsURL()
        let first = try setup.dueFirings()
        try await eventually("the first firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: first) }
        let original = try String(contentsOfFile: setup.configPath, encoding: .utf8)

        // A port another server holds (the webhook receiver's).
        let taken = try #require(URL(string: setup.receiver.url)?.port)
        try original.replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:\(taken)")
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the failed reload in the metrics\n\(run.stderr)") {
            if !run.process.isRunning { return true }
            return try await failures(url) == 1
        }
        try #require(run.process.isRunning, "the reload ended the process (\(run.process.terminationStatus)):\n\(run.stderr)")
        #expect(run.stderr.contains("reload failed; the running config and rules stay"), "\(run.stderr)")
        #expect(run.stderr.contains("listen 127.0.0.1:\(taken)"), "the reason names the address: \(run.stderr)")

        // A state file that cannot be opened (a directory): the new pipeline cannot start, the old one does again.
        let directory = setup.directory.appendingPathComponent("not-a-file.sqlite")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try original.replacingOccurrences(of: "state: ./state.sqlite", with: "state: ./not-a-file.sqlite")
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the second failed reload\n\(run.stderr)") {
            if !run.process.isRunning { return true }
            return try await failures(url) == 2
        }
        try #require(run.process.isRunning, "the reload ended the process (\(run.process.terminationStatus)):\n\(run.stderr)")
        #expect(run.stderr.contains("not-a-file.sqlite"), "the reason names the file: \(run.stderr)")

        // Still watching under the running set: a new request fires and is delivered.
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-60), deadline: .relative(40 * 60)))
        let due = try setup.dueFirings()
        try await eventually("the new request's firing after the failed reloads\n\(run.stderr)") {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }

        // A good reload still works: a second rule joins.
        try original.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        try setup.writeRules(ReloadTests.secondRule, file: "second.rules")
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the good reload\n\(run.stderr)") {
            try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="success"}"#) == 1
        }
        let ozon = try setup.pendingRequests().filter { $0.marketplace == .ozon }
        let second = try setup.dueFirings(rule: "ozon-second", of: ozon)
        try await eventually("the new rule's firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: second) }
        #expect(try await scrapedMetric(url, "cancelwatch_config_last_reload_success") == 1)
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }

    @Test func aReloadThatMovesListenToAFreeAddressServesThereAndStopsServingTheOldOne() async throws {
        var options = WatchOptions()
        options.listen = true
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let old = try await run.metricsURL()
        #expect(try run.listeningAddresses().contains(String(old.dropFirst("http://".count))))
        let original = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        try original.replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.2:0")
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload\n\(run.stderr)") { run.stderr.contains("reloaded") }
        let moved = try #require(
            run.stderr.range(of: #"listen=http://127\.0\.0\.2:[0-9]+"#, options: .regularExpression).map {
                String(run.stderr[run.stderr.index($0.lowerBound, offsetBy: "listen=".count)..<$0.upperBound])
            }, "\(run.stderr)")
        #expect(try await scrapedMetric(moved, "cancelwatch_config_last_reload_success") == 1)
        // The old address is no longer this watcher's (a request to it could reach another
        // test's server, given the freed port).
        let listening = try run.listeningAddresses()
        #expect(!listening.contains(String(old.dropFirst("http://".count))), "\(listening)")
        #expect(listening.contains(String(moved.dropFirst("http://".count))), "\(listening)")
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }
}
