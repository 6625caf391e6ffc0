import Foundation
import Testing

/// The real binary fires a rule at the instant its threshold is crossed, not at the next poll.
@Suite(.serialized) struct AlertingEndToEndTests {
    @Test func runFiresAThresholdWithinASecondOfItsDueTimeWhateverThePollInterval() async throws {
        let directory = try temporaryDirectory()
        let scenario = directory.appendingPathComponent("scenario.json")
        try """
            {"seed": 7,
             "ozon_accounts": [{"name": "shop-ozon", "client_id": "100001", "api_key": "k-ozon"}],
             "red_accounts": [{"name": "shop-red", "app_key": "ak", "app_secret": "s-red", "max_audit_time_unit": "milliseconds"}],
             "requests": [
               {"marketplace": "ozon", "account": "100001", "created": "-10m", "deadline": "+40s", "initiator": "CLIENT",
                "reason": "Покупатель передумал"},
               {"marketplace": "red", "account": "ak", "created": "-10m", "deadline": "+44s", "reason": "用户不想要了"}
             ]}
            """.write(to: scenario, atomically: true, encoding: .utf8)
        let simulator = try await SimulatorProcess(scenario: scenario.path, directory: directory)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rules"), withIntermediateDirectories: true)
        try """
            rule "last-half-minute" {
              when     remaining <= 30s
              severity critical
              notify   console
              message  "{{marketplace}} {{order}} auto-approves in {{remaining}}"
            }
            """.write(to: directory.appendingPathComponent("rules/soon.rules"), atomically: true, encoding: .utf8)
        try """
            state: ./state.sqlite
            rules: [./rules]
            sources:
              - {name: ozon, kind: ozon, client_id: "100001", api_key: "k-ozon", base_url: "\(simulator.baseURL)", poll_interval: 5m}
              - {name: red, kind: red, app_key: "ak", app_secret: "s-red", base_url: "\(simulator.baseURL)", poll_interval: 5m}
            sinks:
              - {name: console, kind: stdout, format: json}
            """.write(to: directory.appendingPathComponent("cancelwatch.yaml"), atomically: true, encoding: .utf8)

        let run = try RunningCommand(["run", "--config", "cancelwatch.yaml"], directory: directory)
        let state = try #require(try await simulator.get("/_sim/state") as? [String: Any])
        let requests = try #require(state["requests"] as? [[String: Any]])
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var deadlines: [String: Date] = [:]
        for request in requests {
            deadlines[request["order"] as! String] = iso.date(from: request["deadline"] as! String)
        }

        var seen: [String: [String: Any]] = [:]
        for _ in 0..<2 {
            _ = try await run.waitForLine(timeout: 60) { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    object["event"] as? String == "firing",
                    let order = (object["request"] as? [String: Any])?["order"] as? String, seen[order] == nil
                else { return false }
                seen[order] = object
                return true
            }
        }
        #expect(Set(seen.keys) == Set(deadlines.keys))
        for (order, event) in seen {
            let deadline = try #require(deadlines[order])
            let due = deadline.addingTimeInterval(-30)
            let occurred = try #require(ISO8601DateFormatter().date(from: event["occurred_at"] as! String))
            // occurred_at is written in whole seconds. Never before the crossing; and before the
            // deadline, which only the scheduler can do: the next poll is 5 minutes away, past
            // the deadline (how late within that window depends on the machine's load, which
            // a full run does not control: one fired with 28 s left).
            #expect(occurred.timeIntervalSince(due) > -1.001, "\(order) fired early: \(occurred) vs \(due)")
            #expect(occurred < deadline, "\(order) fired after its deadline: \(occurred) vs \(deadline)")
            #expect(event["rule"] as? String == "last-half-minute")
            #expect(event["severity"] as? String == "critical")
            #expect((event["remaining_seconds"] as? Int).map { (0...30).contains($0) } == true)
            #expect((event["message"] as? String)?.contains(order) == true)
            #expect(event["id"] as? String != nil)
        }
        #expect(Set(seen.values.compactMap { $0["marketplace"] as? String }) == ["ozon", "xiaohongshu"])

        let status = try await run.stop(signal: SIGTERM)
        #expect(status == 0, "run did not stop cleanly: \(run.stderr)")
        #expect(run.stderr.contains("stopped"))
    }
}
