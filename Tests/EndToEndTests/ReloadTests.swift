import CancelWatch
import Foundation
import MarketSim
import Testing

/// SIGHUP reloads the config and the rules; a broken reload is logged with its
/// diagnostics and the running set stays; both outcomes show in the metrics.
@Suite struct ReloadTests {
    static let secondRule = """
        rule "ozon-second" {
          when     marketplace == "ozon" and state == "pending"
          notify   hook
        }
        """

    @Test func aGoodReloadAddsRulesAndABrokenOneIsLoggedWithItsDiagnosticsWhileTheRunningRulesKeepFiring() async throws {
        var options = WatchOptions()
        options.listen = true
        let setup = try WatchSetup(ozon: 2, red: 1, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let url = try await run.metricsURL()
        let first = try setup.dueFirings()
        try await eventually("the first firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: first) }
        #expect(try await scrapedMetric(url, "cancelwatch_config_last_reload_success") == 1)

        // A good reload: a second rule joins; the first one's alerts are not sent again.
        try setup.writeRules(Self.secondRule, file: "second.rules")
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the reload\n\(run.stderr)") { run.stderr.contains("reloaded") }
        let ozon = try setup.pendingRequests().filter { $0.marketplace == .ozon }
        let second = try setup.dueFirings(rule: "ozon-second", of: ozon)
        try await eventually("the new rule's firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: second) }
        #expect(try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="success"}"#) == 1)
        #expect(try await scrapedMetric(url, "cancelwatch_config_last_reload_success") == 1)

        // A broken reload: a misspelt field. The diagnostics are logged, the rules stay.
        try """
            rule "broken" {
              when     remainig <= 1h
              notify   hook
            }
            """.write(to: setup.directory.appendingPathComponent("rules/broken.rules"), atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the failed reload\n\(run.stderr)") { run.stderr.contains("reload failed") }
        #expect(run.stderr.contains("broken.rules:2:"), "\(run.stderr)")
        #expect(run.stderr.contains("remainig"))
        #expect(run.stderr.contains("remaining"), "no suggestion in \(run.stderr)")
        try await eventually("the failure in the metrics") {
            try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="failure"}"#) == 1
        }
        #expect(try await scrapedMetric(url, "cancelwatch_config_last_reload_success") == 0)
        #expect(try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="success"}"#) == 1)

        // A broken config is refused the same way.
        let config = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        try (config + "\nunknown_key: 1\n").write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        kill(run.process.processIdentifier, SIGHUP)
        try await eventually("the second failed reload") {
            try await scrapedMetric(url, #"cancelwatch_config_reloads_total{result="failure"}"#) == 2
        }
        #expect(run.stderr.contains("unknown_key"))

        // Events keep firing per the rules that were running: both rules, not the broken one.
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-60), deadline: .relative(40 * 60)))
        let now = try setup.pendingRequests().filter { $0.marketplace == .ozon }
        let due = try setup.dueFirings(of: setup.pendingRequests()).union(setup.dueFirings(rule: "ozon-second", of: now))
        try await eventually("the new request's firings under the running rules\n\(run.stderr)") {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(2))
        FaultInjectionTests.expectEachDueEventAcknowledgedOnce(setup.receiver, due: due)
        #expect(!setup.receiver.allReceipts.contains { $0.body.contains("\"rule\":\"broken\"") })
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }
}
