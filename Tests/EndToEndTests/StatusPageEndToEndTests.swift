import Foundation
import MarketSim
import Testing

/// The real binary serves the status page on its `listen:` address: `/api/v1/requests` lists
/// what `status --format json` lists, in the same order with the same fields, plus the rules
/// that fired; `GET /` shows the same rows, a hostile reason as text. `demo` serves it too.
@Suite(.serialized) struct StatusPageEndToEndTests {
    static let hostileReason = #"<script>alert(1)</script>"><img src=x onerror=alert(2)>"#

    func json(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    /// A watcher with `listen:` on five requests and a sixth, the nearest deadline of all
    /// (`deadlineIn` seconds away), whose reason is markup.
    static func setupWithAHostileReason(deadlineIn seconds: TimeInterval) throws -> WatchSetup {
        var options = WatchOptions()
        options.listen = true
        let setup = try WatchSetup(ozon: 3, red: 2, options: options)
        _ = try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .absolute(Date().addingTimeInterval(-60)),
                deadline: .absolute(Date().addingTimeInterval(seconds)), reason: hostileReason))
        return setup
    }

    @Test func theRequestsAPIAndThePageShowWhatStatusShowsInDeadlineOrder() async throws {
        let setup = try Self.setupWithAHostileReason(deadlineIn: 2 * 3600)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let url = try await run.metricsURL()
        let due = try setup.dueFirings()
        try await eventually("the first firings\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }

        var rows: [[String: Any]] = []
        var status: [[String: Any]] = []
        try await eventually("the API listing what status lists, each with its firing\n\(run.stderr)") {
            status = try await setup.status()
            let (code, body) = try await httpGet(url + "/api/v1/requests")
            guard code == 200, let list = try json(body)["requests"] as? [[String: Any]] else { return false }
            rows = list
            return list.map { $0["id"] as? String } == status.map { $0["id"] as? String }
                && list.allSatisfy { ($0["alerts"] as? [Any])?.count == 1 }
        }
        #expect(status.count == 6)
        for (row, line) in zip(rows, status) {
            for (key, value) in line where key != "remaining_seconds" { #expect("\(row[key] ?? "absent")" == "\(value)", "\(key)") }
            #expect(Set(row.keys) == Set(line.keys).union(["alerts", "deadline_local"]))
            let alert = try #require((row["alerts"] as? [[String: Any]])?.first)
            #expect(alert["rule"] as? String == "pending" && alert["firings"] as? Int == 1)
        }
        #expect(rows.first?["reason"] as? String == Self.hostileReason)

        let (code, page) = try await httpGet(url + "/")
        #expect(code == 200)
        let orders = page.split(separator: "\n").filter { $0.hasPrefix("<tr class=\"band-") }.map { row in
            status.firstIndex { row.contains("<td>\($0["order"] as? String ?? "?")</td>") }
        }
        #expect(orders == Array(0..<status.count).map { Optional($0) }, "\(page)")
        #expect(!page.contains("<script>alert") && !page.contains("<img"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
        #expect(page.contains("<td>pending</td></tr>"))

        let sources = try #require(try json(try await httpGet(url + "/api/v1/sources").body)["sources"] as? [[String: Any]])
        #expect(sources.compactMap { $0["source"] as? String } == ["ozon", "red"])
        #expect(sources.allSatisfy { $0["last_success_at"] is String && $0["down"] as? Bool == false })
        #expect(try await run.stop() == 0)
    }

    @Test func theDemoPrintsTheAddressOfItsStatusPageAndServesIt() async throws {
        let directory = try temporaryDirectory()
        let demo = try RunningCommand(["demo", "--duration", "120s", "--rules", packageRoot().appendingPathComponent("rules").path], directory: directory)
        defer { if demo.process.isRunning { kill(demo.process.processIdentifier, SIGTERM) } }
        let line = try await demo.waitForLine { $0.contains("status:  http://127.0.0.1:") }
        let start = try #require(line.range(of: "http://"))
        let url = String(line[start.lowerBound...].prefix { $0 != " " })
        #expect(url.hasSuffix("/"))
        try await eventually("the demo's requests on its page\n\(demo.stdout)") {
            let (code, body) = try await httpGet(url + "api/v1/requests")
            guard code == 200 else { return false }
            return (try json(body)["requests"] as? [Any])?.isEmpty == false
        }
        let (code, page) = try await httpGet(url)
        #expect(code == 200 && page.contains("<tr class=\"band-"))
        kill(demo.process.processIdentifier, SIGTERM)
        #expect(try await demo.wait(timeout: 60) == 0)
    }
}
