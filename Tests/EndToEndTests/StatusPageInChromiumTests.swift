import Foundation
import MarketSim
import Testing
import TestServers

/// The status page in a real browser: headless Chromium (Debian's `chromium`, which the
/// README's test command installs) loads the real binary's page on the simulator, runs its
/// script, and the DOM it renders is checked: rows in deadline order, the script's countdown
/// moved on from what the server wrote, a hostile reason shown as text only. It also saves a
/// screenshot. Where no Chromium is installed the test runs only under CI, and fails there.
@Suite(.serialized) struct StatusPageInChromiumTests {
    static let chromium = "/usr/bin/chromium"
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: chromium) || ProcessInfo.processInfo.environment["CI"] != nil
    }

    /// Runs headless Chromium with `arguments` and a profile of its own; returns what it printed.
    static func headless(_ arguments: [String], in directory: URL) async throws -> String {
        let output = directory.appendingPathComponent("chromium-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        let child = try ChildProcess(
            executable: chromium,
            arguments: [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--user-data-dir=\(directory.appendingPathComponent("profile-\(UUID().uuidString)").path)",
            ] + arguments, environment: ProcessInfo.processInfo.environment, standardOutput: handle.fileDescriptor)
        try handle.close()
        let exited = try await offPool { () -> Bool in
            let limit = Date().addingTimeInterval(90)
            while child.isRunning && Date() < limit { usleep(50_000) }
            if child.isRunning { child.terminate() }
            child.waitUntilExit()
            return Date() < limit
        }
        guard exited else { throw CommandFailure("chromium did not finish within 90 s") }
        return try String(contentsOf: output, encoding: .utf8)
    }

    /// Seconds in the page's own form: `45s`, `4m 10s`, `1h 05m`, `2d 03h`.
    static func seconds(_ text: String) -> Int? {
        var total = 0
        for part in text.split(separator: " ") {
            guard let unit = part.last, let value = Int(part.dropLast()) else { return nil }
            switch unit {
            case "d": total += value * 86400
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
        }
        return total
    }

    @Test(.enabled(if: available)) func thePageRunsInChromiumWithRowsInDeadlineOrderAMovingCountdownAndTheHostileReasonAsText() async throws {
        // The nearest deadline twenty minutes away: its countdown shows seconds.
        let setup = try StatusPageEndToEndTests.setupWithAHostileReason(deadlineIn: 20 * 60)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let url = try await run.metricsURL()
        var status: [[String: Any]] = []
        try await eventually("the page's API listing every pending request\n\(run.stderr)") {
            status = try await setup.status()
            let (code, body) = try await httpGet(url + "/api/v1/requests")
            return code == 200 && status.count == 6 && body.contains(status.last?["order"] as? String ?? "?")
        }

        // Seven seconds of the page's own time: its script refreshes from the API (at 5 s, taking
        // the server's clock) and ticks on.
        let dom = try await Self.headless(["--virtual-time-budget=7000", "--dump-dom", url + "/"], in: setup.directory)
        let rows = dom.components(separatedBy: "<tr").filter { $0.contains("data-deadline=") }
        let orders = rows.map { row in status.firstIndex { row.contains("<td>\($0["order"] as? String ?? "?")</td>") } }
        #expect(orders == Array(0..<status.count).map { Optional($0) }, "rows in deadline order:\n\(dom)")
        // The script rebuilt them from the API (it sets the deadline before the band; the server wrote the band first).
        #expect(rows.allSatisfy { $0.hasPrefix(#" data-deadline=""#) }, "\(dom)")

        // The countdown moved on from the instant the server wrote the page.
        let generated = try #require(dom.range(of: #"data-now="([^"]+)""#, options: .regularExpression).map { String(dom[$0].dropFirst(10).dropLast()) })
        let first = try #require(rows.first)
        let deadline = try #require(first.range(of: #"data-deadline="([^"]+)""#, options: .regularExpression).map { String(first[$0].dropFirst(15).dropLast()) })
        let left = try #require(first.range(of: #"class="left">[^<]*"#, options: .regularExpression).map { String(first[$0].dropFirst(13)) })
        let written = Int(try #require(ISO8601DateFormatter().date(from: deadline)).timeIntervalSince(try #require(ISO8601DateFormatter().date(from: generated))))
        let shown = try #require(Self.seconds(left), "countdown '\(left)'")
        #expect(shown <= written - 2, "the countdown shows \(left) (\(shown) s); the server wrote \(written) s at \(generated)")

        // The hostile reason is text: escaped in the DOM, no element made of it.
        #expect(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
            || dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;\"&gt;&lt;img src=x onerror=alert(2)&gt;"), "\(dom)")
        #expect(!dom.contains("<img"))
        #expect(!dom.contains("<script>alert"))

        // And a picture of it.
        let picture = setup.directory.appendingPathComponent("status-page.png")
        _ = try await Self.headless(["--window-size=1280,900", "--screenshot=\(picture.path)", url + "/"], in: setup.directory)
        let png = try Data(contentsOf: picture)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "\(png.count) bytes")
        #expect(try await run.stop() == 0)
    }

    /// One Ozon request, served on every interface with the token from `CW_STATUS_TOKEN`.
    static func setupWithAToken() throws -> (WatchSetup, environment: [String: String]) {
        (try WatchSetup(ozon: 1, red: 0, options: .onEveryInterfaceWithAToken), WatchOptions.statusTokenEnvironment)
    }

    @Test(.enabled(if: available)) func onAnAddressOtherMachinesCanReachChromiumGets401AndTheSignInFormWithoutTheToken() async throws {
        let (setup, environment) = try Self.setupWithAToken()
        defer { setup.shutdown() }
        let token = environment["CW_STATUS_TOKEN"]!
        let run = try setup.startRun(environment: environment)
        let url = try await run.metricsURL()
        var status: [[String: Any]] = []
        try await eventually("the simulator's requests tracked\n\(run.stderr)") {
            status = try await setup.status(environment: environment)
            return !status.isEmpty
        }

        let netLog = setup.directory.appendingPathComponent("net-log.json")
        let dom = try await Self.headless(["--log-net-log=\(netLog.path)", "--dump-dom", url + "/"], in: setup.directory)
        // The browser got a 401, and rendered its sign-in form.
        let statuses = try String(contentsOf: netLog, encoding: .utf8).components(separatedBy: #""headers":["HTTP/1.1 "#).dropFirst()
            .map { $0.prefix(3) }
        // The page (401), then its style sheet (200: the assets hold no data) and the icon (404).
        #expect(statuses.first == "401", "statuses in Chromium's net log: \(statuses)")
        #expect(statuses.filter { $0 == "200" }.count <= 1, "statuses in Chromium's net log: \(statuses)")
        #expect(dom.contains(#"<form method="post" action="/login" id="login">"#), "\(dom)")
        #expect(dom.contains(#"type="password" name="token""#), "\(dom)")
        // Nothing of the requests reached it.
        #expect(!dom.contains("data-deadline"), "\(dom)")
        for request in status {
            let order = try #require(request["order"] as? String)
            #expect(!dom.contains(order), "order \(order) shown without the token")
        }
        #expect(!dom.contains(token))
        #expect(try await run.stop() == 0)
    }

    @Test(.enabled(if: available)) func aUserSignsInAndApprovesARequestInChromiumAndTheMarketplaceTakesItOnce() async throws {
        let (setup, environment) = try Self.setupWithAToken()
        defer { setup.shutdown() }
        let token = environment["CW_STATUS_TOKEN"]!
        let run = try setup.startRun(environment: environment)
        let url = try await run.metricsURL()
        let request = try #require(try setup.pendingRequests().first)
        let id = WatchSetup.requestID(of: request)
        try await eventually("the request tracked\n\(run.stderr)") {
            try await setup.status(environment: environment).contains { $0["id"] as? String == id }
        }

        // As a user: the page asks to sign in; the token and a name; the row's Approve…; its confirmation.
        func quoted(_ text: String) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast().description }
        let token_ = try quoted(token)
        let link = try quoted("a.approve[href*=\"id=\(id)&\"]")
        let pages = try await offPool { () -> [String] in
            let browser = try DevToolsPipe(chromium: Self.chromium, directory: setup.directory)
            defer { browser.stop() }
            try browser.openPage()
            try browser.navigate(url + "/")
            let signIn = try browser.html()
            try browser.loading {
                _ = try browser.evaluate(
                    "document.querySelector('input[name=token]').value = \(token_); document.querySelector('input[name=name]').value = 'ann'; "
                        + "document.querySelector('#login button').click(); true")
            }
            let page = try browser.html()
            guard try browser.evaluate("document.querySelector(\(link)) !== null") as? Bool == true else {
                throw CommandFailure("no Approve… link for request \(id) on the page:\n\(page)")
            }
            try browser.loading { _ = try browser.evaluate("document.querySelector(\(link)).click(); true") }
            let confirmation = try browser.html()
            try browser.loading { _ = try browser.evaluate("document.querySelector('form.approve button').click(); true") }
            return [signIn, page, confirmation, try browser.html()]
        }
        #expect(pages[0].contains(#"id="login""#) && !pages[0].contains(request.order), "\(pages[0])")
        #expect(pages[1].contains("Signed in as ann") && pages[1].contains(request.order), "\(pages[1])")
        #expect(pages[2].contains("Approve: cancel the order") && pages[2].contains(request.order), "\(pages[2])")
        #expect(pages[3].contains("(order \(request.order)): approved; the marketplace accepted the answer"), "\(pages[3])")
        let state = try #require(try setup.simulator.requests().first { $0.simID == request.simID }?.state)
        #expect(state == "approved")
        // The watcher's next listing resolves it, naming the user.
        try await eventually("the resolved event\n\(run.stderr)", timeout: 60) {
            setup.receiver.acknowledgedReceipts.contains { $0.event == "resolved" && $0.requestID == id }
        }
        let resolved = try #require(setup.receiver.acknowledgedReceipts.first { $0.event == "resolved" && $0.requestID == id })
        #expect(resolved.body.contains(#""actor":"web:ann""#), "\(resolved.body)")
        #expect(try await run.stop() == 0)
    }
}
