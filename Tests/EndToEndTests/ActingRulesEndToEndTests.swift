import Foundation
import Testing

/// The real binary with rules that act: `check` warns about each and names the mode, and
/// in dry-run (the default) `once` emits and logs what each rule would answer, once, and
/// sends nothing.
@Suite struct ActingRulesEndToEndTests {
    static let actingRule = """
        rule "auto-refuse" {
          when     state == "pending"
          severity critical
          notify   hook
          act      refuse "out of stock"
        }
        """

    func configured(_ actions: String) throws -> URL {
        let directory = try temporaryDirectory()
        try """
            rules: [./acting.rules]
            sources:
              - {name: shop, kind: ozon, client_id: "100001", api_key: "k"}
            sinks:
              - {name: hook, kind: stdout}
            \(actions)
            """.write(to: directory.appendingPathComponent("cancelwatch.yaml"), atomically: true, encoding: .utf8)
        try Self.actingRule.write(to: directory.appendingPathComponent("acting.rules"), atomically: true, encoding: .utf8)
        return directory
    }

    @Test func checkWarnsAboutAnActingRuleAtItsActClauseAndSaysNothingIsSentInDryRun() async throws {
        let directory = try configured("")
        let result = try await RunningCommand.run(["check"], directory: directory)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "ok: 1 rule in 1 file (1 warning)\n")
        // The config's rules: paths are absolute once read.
        let file = directory.appendingPathComponent("acting.rules").path
        #expect(
            result.stderr == """
                \(file):5:3: warning: rule "auto-refuse" answers the request when it fires: refuse "out of stock"; \
                actions are dry-run: nothing is sent (set actions: {mode: live} to send)
                  act      refuse "out of stock"
                  ^~~

                """)
    }

    @Test func checkSaysActionsAreLiveWithTheirHourlyLimit() async throws {
        let result = try await RunningCommand.run(["check"], directory: try configured("actions: {mode: live, max_per_hour: 7}"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains(
                #"/acting.rules:5:3: warning: rule "auto-refuse" answers the request when it fires: refuse "out of stock"; actions are LIVE: the answer is sent to the marketplace, at most 7 an hour from all rules"#
            ), "\(result.stderr)")
    }

    @Test func checkRefusesARefusalWithoutAComment() async throws {
        let directory = try configured("")
        try "rule \"r\" {\n  when remaining <= 1h\n  notify hook\n  act refuse\n}\n".write(
            to: directory.appendingPathComponent("acting.rules"), atomically: true, encoding: .utf8)
        let result = try await RunningCommand.run(["check"], directory: directory)
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix(directory.appendingPathComponent("acting.rules").path + ":4:7: error: a refusal needs a comment"),
            "\(result.stderr)")
    }

    @Test func inDryRunOnceEmitsAndLogsEachWouldBeAnswerOnceAndSendsNothing() async throws {
        let setup = try WatchSetup(ozon: 1, red: 1, options: WatchOptions(rules: Self.actingRule))
        defer { setup.shutdown() }
        let first = try await setup.capture(["once", "--config", setup.configPath])
        #expect(first.status == 0, "\(first.stderr)")

        let pending = try setup.pendingRequests()
        #expect(pending.count == 2, "nothing was answered")
        let actions = setup.receiver.acknowledgedReceipts.filter { $0.event == "action" }
        #expect(actions.count == 2, "\(setup.receiver.allReceipts.map(\.event))")
        #expect(setup.receiver.acknowledgedReceipts.filter { $0.event == "firing" }.count == 2)
        for action in actions {
            let body = try #require(try JSONSerialization.jsonObject(with: Data(action.body.utf8)) as? [String: Any])
            #expect(body["outcome"] as? String == "rejected")
            #expect(body["actor"] as? String == "rule:auto-refuse")
            #expect(body["severity"] as? String == "critical")
            #expect(action.message.hasPrefix("dry-run: rule auto-refuse would refuse "))
            #expect(action.message.hasSuffix(#" (comment "out of stock")"#))
        }
        let logged = first.stderr.split(separator: "\n").filter { $0.contains("dry-run: rule auto-refuse would refuse") }
        #expect(logged.count == 2, "\(first.stderr)")
        #expect(logged.allSatisfy { $0.contains("notice") }, "\(logged)")

        let second = try await setup.capture(["once", "--config", setup.configPath])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stderr.contains("dry-run:"), "each would-be answer is logged once")
        #expect(setup.receiver.acknowledgedReceipts.filter { $0.event == "action" }.count == 2)
        #expect(try setup.pendingRequests().count == 2)
    }

    /// Live: each action goes through the outbox to the marketplace, within the hourly
    /// budget; the next listing resolves the answered request, naming the rule.
    @Test func inLiveModeARuleAnswersWithinItsHourlyBudgetAndTheResolvedEventNamesTheRule() async throws {
        var options = WatchOptions(rules: Self.actingRule)
        options.extraConfig = "actions: {mode: live, max_per_hour: 1}"
        let setup = try WatchSetup(ozon: 1, red: 1, options: options)
        defer { setup.shutdown() }
        let first = try await setup.capture(["once", "--config", setup.configPath])
        #expect(first.status == 0, "\(first.stderr)")
        let answered = try setup.simulator.requests().filter { $0.state == "rejected" }
        #expect(answered.count == 1, "one answer within max_per_hour 1:\n\(first.stderr)")
        #expect(try setup.pendingRequests().count == 1)
        #expect(first.stderr.contains("actions.max_per_hour (1) reached: rule auto-refuse's answer (refuse)"), "\(first.stderr)")
        let actions = setup.receiver.acknowledgedReceipts.filter { $0.event == "action" }
        #expect(actions.count == 2 && actions.allSatisfy { $0.message.hasPrefix("rule auto-refuse refuses ") }, "\(actions.map(\.message))")

        let second = try await setup.capture(["once", "--config", setup.configPath])
        #expect(second.status == 0, "\(second.stderr)")
        let resolved = setup.receiver.acknowledgedReceipts.filter { $0.event == "resolved" }
        #expect(resolved.count == 1, "\(setup.receiver.allReceipts.map(\.event))")
        let receipt = try #require(resolved.first)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(receipt.body.utf8)) as? [String: Any])
        #expect(body["outcome"] as? String == "rejected")
        #expect(body["actor"] as? String == "rule:auto-refuse")
        #expect(try setup.simulator.requests().filter { $0.state == "rejected" }.count == 1, "the action over budget is never sent later")
    }
}
