import Foundation
import Testing

/// The real binary against the real simulator: `simulate`, `once`, `status`.
@Suite(.serialized) struct TrackingEndToEndTests {
    func writeConfig(_ directory: URL, simulator: SimulatorProcess, extraSources: String = "") throws -> URL {
        let config = """
            state: ./state.sqlite
            rules: []
            timezone: Europe/Moscow
            sources:
              - {name: ozon-main, kind: ozon, client_id: "100001", api_key: "${SIM_OZON_KEY_1}", base_url: "\(simulator.baseURL)"}
              - {name: ozon-bulk, kind: ozon, client_id: "100002", api_key: "sim-ozon-key-2", base_url: "\(simulator.baseURL)"}
              - {name: red-shop, kind: red, app_key: "sim-red-key", app_secret: "${SIM_RED_SECRET}", logistics: [red_auto, red_box],
                 base_url: "\(simulator.baseURL)"}
            \(extraSources)
            sinks:
              - {name: console, kind: stdout}
            """
        let url = directory.appendingPathComponent("cancelwatch.yaml")
        try config.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    let environment = ["SIM_OZON_KEY_1": "sim-ozon-key-1", "SIM_RED_SECRET": "sim-red-secret"]

    @Test func onceTracksEveryPendingRequestOfEveryAccountWithItsDeadline() async throws {
        let directory = try temporaryDirectory()
        let simulator = try await SimulatorProcess(directory: directory)
        let config = try writeConfig(directory, simulator: simulator)

        // The scenario moves on while the commands run: a request may appear or be decided in
        // between. What was pending both before `once` and after `status` must be tracked;
        // nothing tracked may be unknown to both.
        func pending() async throws -> [[String: Any]] {
            let state = try #require(try await simulator.get("/_sim/state") as? [String: Any])
            return try #require(state["requests"] as? [[String: Any]]).filter { ($0["state"] as? String) == "pending" }
        }
        let before = try await pending()
        let once = try await RunningCommand.run(["once", "--config", config.path], environment: environment)
        #expect(once.status == 0, "once failed: \(once.stderr)")

        let status = try await RunningCommand.run(["status", "--config", config.path, "--format", "json"], environment: environment)
        #expect(status.status == 0, "status failed: \(status.stderr)")
        let rows = try status.stdout.split(separator: "\n").map { line in
            try #require(
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                "not a JSON object: \(line) (stdout \(status.stdout.utf8.count) bytes)")
        }

        let after = try await pending()
        let accounts = ["100001": "ozon-main", "100002": "ozon-bulk", "sim-red-key": "red-shop"]
        func key(_ request: [String: Any]) -> String { "\(accounts[request["account"] as! String]!)|\(request["order"] as! String)" }
        let afterKeys = Set(after.map(key))
        let simulated = before.filter { afterKeys.contains(key($0)) }
        let known = Set(before.map(key)).union(afterKeys)
        let trackedKeys = rows.map { "\($0["source"] as? String ?? "")|\($0["order"] as? String ?? "")" }
        #expect(trackedKeys.allSatisfy(known.contains), "tracked but never pending: \(trackedKeys.filter { !known.contains($0) })")
        let missingKeys = Set(simulated.map(key)).subtracting(trackedKeys)
        #expect(missingKeys.isEmpty, "pending before and after, but not tracked: \(missingKeys.sorted())")
        #expect(Set(rows.compactMap { $0["source"] as? String }) == ["ozon-main", "ozon-bulk", "red-shop"])
        #expect(rows.filter { ($0["source"] as? String) == "ozon-bulk" }.count > 500)  // paged past one page

        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for expected in simulated {
            let source = accounts[expected["account"] as! String]!
            let order = expected["order"] as! String
            let row = rows.first { ($0["source"] as? String) == source && ($0["order"] as? String) == order }
            guard let row else {
                Issue.record("\(source) \(order) is not tracked")
                continue
            }
            let deadline = iso.date(from: expected["deadline"] as! String)!
            let tracked = ISO8601DateFormatter().date(from: row["deadline"] as! String)!
            if source.hasPrefix("ozon") {
                #expect(abs(tracked.timeIntervalSince(deadline)) < 1, "\(order): \(tracked) vs \(deadline)")
            } else {
                // Xiaohongshu: send time + time left; never later than the real deadline.
                #expect(tracked.timeIntervalSince(deadline) <= 1, "\(order) is late: \(tracked) vs \(deadline)")
                #expect(tracked.timeIntervalSince(deadline) > -5, "\(order) is far too early: \(tracked) vs \(deadline)")
            }
            #expect(row["state"] as? String == "pending")
            #expect(row["remaining_seconds"] is Int)
            for key in ["marketplace", "id", "raw_state", "initiator", "reason", "logistics", "created_at"] {
                #expect(row[key] != nil, "\(key) missing")
            }
        }

        // Sorted by time remaining.
        let remaining = rows.compactMap { $0["remaining_seconds"] as? Int }
        #expect(remaining == remaining.sorted())

        // The text table shows them too, with each source's health.
        let table = try await RunningCommand.run(["status", "--config", config.path], environment: environment)
        #expect(table.status == 0)
        #expect(table.stdout.contains("REMAINING"))
        #expect(table.stdout.contains("red-shop: ok"))
    }

    @Test func onceExitsOneNamingEachSourceThatFailed() async throws {
        let directory = try temporaryDirectory()
        let simulator = try await SimulatorProcess(directory: directory)
        let config = try writeConfig(
            directory, simulator: simulator,
            extraSources: """
                  - {name: ozon-wrong-key, kind: ozon, client_id: "100001", api_key: "not-the-key", base_url: "\(simulator.baseURL)"}
                  - {name: red-wrong-secret, kind: red, app_key: "sim-red-key", app_secret: "not-the-secret", base_url: "\(simulator.baseURL)"}
                """.replacingOccurrences(of: "      - ", with: "  - "))
        let once = try await RunningCommand.run(["once", "--config", config.path], environment: environment)
        #expect(once.status == 1)
        #expect(once.stderr.contains("ozon-wrong-key"))
        #expect(once.stderr.contains("red-wrong-secret"))
        #expect(!once.stderr.contains("source 'ozon-main'"))
        #expect(!once.stderr.contains("not-the-key") && !once.stderr.contains("not-the-secret"))
        // The sources that answered were tracked all the same.
        let status = try await RunningCommand.run(["status", "--config", config.path, "--format", "json"], environment: environment)
        #expect(status.stdout.contains("\"source\":\"ozon-main\""))
    }

    @Test func aBadConfigIsAnErrorNamingTheFileLineAndKey() async throws {
        let directory = try temporaryDirectory()
        let config = directory.appendingPathComponent("cancelwatch.yaml")
        try """
            state: ./state.sqlite
            sources:
              - {name: a, kind: ozon, client_id: "1", api_key: "k", pol_interval: 10s}
            sinks: []
            """.write(to: config, atomically: true, encoding: .utf8)
        let once = try await RunningCommand.run(["once", "--config", config.path])
        #expect(once.status == 1)
        #expect(once.stderr.contains("\(config.path):3:"))
        #expect(once.stderr.contains("pol_interval"))
        #expect(once.stderr.contains("poll_interval"))
    }
}
