import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// The status page and its JSON API on the real `listen:` server (127.0.0.1, port 0): what
/// each endpoint answers from the board the pipeline keeps, in deadline order, escaped, bounded,
/// with a strict Content-Security-Policy, and refused on an address other machines can reach.
@Suite struct StatusPageTests {
    // 2025-11-24 16:00:00 UTC
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let transport = CurlHTTPTransport(threads: 1)
    let metrics = CancelWatchMetrics()

    static let hostileReason = #"<script>alert(1)</script>"><img src=x onerror=alert(2)> & "quoted""#

    func serve(host: String = "127.0.0.1") throws -> MetricsServer {
        try MetricsServer(address: ListenAddress(host: host, port: 0), metrics: metrics, clock: clock)
    }

    func get(_ server: MetricsServer, _ path: String, method: String = "GET") async throws -> HTTPResponse {
        let base = server.baseURL.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
        return try await transport.send(HTTPRequest(method: method, url: base + path))
    }

    func object(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
    }

    func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    func header(_ response: HTTPResponse, _ name: String) -> String? {
        response.headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    func request(_ id: String, in seconds: TimeInterval, reason: String = "Передумал") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: reason, createdAt: clock.now().addingTimeInterval(-60),
            deadline: clock.now().addingTimeInterval(seconds))
    }

    /// A ledger with a rule that fires within the hour, that has applied a listing of `requests`,
    /// and the board brought up to date from it as the pipeline does.
    func ledger(listing requests: [CancellationRequest]) async throws -> Ledger {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-status-page"))
        let ledger = try Ledger(rules: [ThresholdRule(name: "within-the-hour", threshold: 3600)], store: store, clock: clock, logger: quiet)
        metrics.board.configure(StatusBoard.Configured(sources: ["ozon"], sinks: ["memory"], timeZone: TimeZone(identifier: "Europe/Moscow")!))
        let report = await ledger.apply(.listing(requests, source: "ozon", at: clock.now()))
        metrics.recordEvents(report.events)
        await WatchService.show(ledger, on: metrics.board, clock: clock)
        return ledger
    }

    // MARK: - The requests

    @Test func thePageListsPendingRequestsNearestDeadlineFirstEachRowInItsBandOfTimeLeft() async throws {
        _ = try await ledger(listing: [
            request("later", in: 2 * 86400), request("day", in: 5 * 3600), request("soon", in: 600), request("hours", in: 2 * 3600),
        ])
        let server = try serve()
        let page = try await get(server, "/")
        #expect(page.status == 200)
        #expect(header(page, "Content-Type") == "text/html; charset=utf-8")
        let body = text(page)
        let rows = body.split(separator: "\n").filter { $0.hasPrefix("<tr class=\"band-") }
        #expect(rows.map { $0.split(separator: "\"")[1] } == ["band-soon", "band-hours", "band-day", "band-later"], "\(body)")
        #expect(rows.map { $0.contains("order-soon") } == [true, false, false, false])
        #expect(rows[0].contains("data-deadline=\"2025-11-24T16:10:00Z\""))
        // The deadline in the config's time zone (UTC+3), the time left, the rule that fired.
        #expect(rows[0].contains("<td>2025-11-24 19:10:00</td>") && rows[0].contains("<td class=\"left\">10m 00s</td>"))
        #expect(rows[0].hasSuffix("<td>within-the-hour</td></tr>") && rows[1].hasSuffix("<td></td></tr>"), "\(rows)")
        #expect(body.contains("Pending requests: 4"))
    }

    @Test func theRequestsAPIHasStatusJSONsFieldsAndTheRulesThatFiredInTheSameOrder() async throws {
        let requests = [request("b", in: 7200), request("a", in: 1200)]
        _ = try await ledger(listing: requests)
        let server = try serve()
        let answer = try object(try await get(server, "/api/v1/requests"))
        #expect(answer["pending"] as? Int == 2 && answer["truncated"] as? Bool == false)
        #expect(answer["time_zone"] as? String == "Europe/Moscow")
        let rows = try #require(answer["requests"] as? [[String: Any]])
        #expect(rows.map { $0["id"] as? String } == ["a", "b"])
        for (row, request) in zip(rows, [requests[1], requests[0]]) {
            // Every field of `status --format json`, with the same values.
            let status = try #require(try JSONSerialization.jsonObject(with: request.statusJSON(now: clock.now()).serializedData()) as? [String: Any])
            for (key, value) in status { #expect("\(row[key] ?? "absent")" == "\(value)", "\(key)") }
        }
        let alerts = try #require(rows[0]["alerts"] as? [[String: Any]])
        #expect(alerts.count == 1 && alerts[0]["rule"] as? String == "within-the-hour" && alerts[0]["firings"] as? Int == 1)
        #expect(alerts[0]["active"] as? Bool == true && alerts[0]["last_fired_at"] as? String == "2025-11-24T16:00:00Z")
        #expect((rows[1]["alerts"] as? [Any])?.isEmpty == true)
        #expect(rows[0]["deadline_local"] as? String == "2025-11-24 19:20:00")
    }

    @Test func aHostileReasonIsShownAsTextInThePageAndKeptWholeInTheAPI() async throws {
        _ = try await ledger(listing: [request("x", in: 600, reason: Self.hostileReason + "\u{0}\u{1B}[2J")])
        let server = try serve()
        let body = text(try await get(server, "/"))
        #expect(!body.contains("<script>alert") && !body.contains("<img"), "\(body)")
        #expect(
            body.contains(
                "<td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt; &amp; &quot;quoted&quot;\u{FFFD}\u{FFFD}[2J</td>"
            ), "\(body)")
        let rows = try #require(try object(try await get(server, "/api/v1/requests"))["requests"] as? [[String: Any]])
        #expect(rows.first?["reason"] as? String == Self.hostileReason + "\u{0}\u{1B}[2J")
    }

    @Test func aReasonOfAMegabyteIsCutOnThePageAndInTheAPIItsScriptRebuildsRowsFrom() async throws {
        _ = try await ledger(listing: [request("x", in: 600, reason: String(repeating: "Передумал ", count: 60_000))])
        let server = try serve()
        let body = text(try await get(server, "/"))
        let cell = try #require(body.split(separator: "\n").first { $0.contains("Передумал") })
        #expect(cell.utf8.count < 2 * StatusPage.textLimit, "\(cell.utf8.count) bytes in the row")
        #expect(cell.contains("Передумал Передумал") && cell.contains(TextCut.marker))
        let rows = try #require(try object(try await get(server, "/api/v1/requests"))["requests"] as? [[String: Any]])
        let reason = try #require(rows.first?["reason"] as? String)
        #expect(reason.utf8.count <= StatusPage.textLimit && reason.hasSuffix(TextCut.marker), "\(reason.utf8.count) bytes")
    }

    @Test func atMostAThousandRequestsAreShownTheNearestDeadlinesAndTheAnswerSaysItWasCut() async throws {
        let requests = (0..<1200).map { request(String(format: "r%04d", $0), in: Double(1200 - $0) * 60) }
        let ledger = try await ledger(listing: requests.shuffled())
        let (nearest, total) = await ledger.pendingByDeadline(limit: 1000)
        #expect(total == 1200 && nearest.count == 1000)
        #expect(nearest.first?.request.id == "r1199" && nearest.last?.request.id == "r0200")
        let server = try serve()
        let answer = try object(try await get(server, "/api/v1/requests"))
        #expect(answer["pending"] as? Int == 1200 && answer["truncated"] as? Bool == true)
        let rows = try #require(answer["requests"] as? [[String: Any]])
        #expect(rows.count == 1000 && rows.first?["id"] as? String == "r1199" && rows.last?["id"] as? String == "r0200")
        let body = text(try await get(server, "/"))
        #expect(body.contains("Showing the 1000 nearest deadlines of 1200."))
        #expect(body.components(separatedBy: "<tr class=\"band-").count - 1 == 1000)
    }

    // MARK: - Sources, deliveries, events

    @Test func theSourcesAPISaysEachSourcesLastPollSuccessFailuresErrorAndWhetherItIsDown() async throws {
        metrics.board.configure(StatusBoard.Configured(sources: ["ozon", "red"], sinks: [], timeZone: .gmt))
        let health = SourceHealth(
            source: "ozon", marketplace: .ozon, lastPollAt: clock.now(), lastSuccessAt: clock.now().addingTimeInterval(-600),
            consecutiveFailures: 3, lastError: "HTTP 503: <b>busy</b>", down: true, downCount: 1)
        metrics.board.setPending([], total: 0, health: [health], at: clock.now())
        let server = try serve()
        let sources = try #require(try object(try await get(server, "/api/v1/sources"))["sources"] as? [[String: Any]])
        #expect(sources.count == 2)
        #expect(sources[0]["source"] as? String == "ozon" && sources[0]["marketplace"] as? String == "ozon")
        #expect(sources[0]["last_poll_at"] as? String == "2025-11-24T16:00:00Z")
        #expect(sources[0]["last_success_at"] as? String == "2025-11-24T15:50:00Z")
        #expect(sources[0]["consecutive_failures"] as? Int == 3 && sources[0]["down"] as? Bool == true)
        #expect(sources[0]["last_error"] as? String == "HTTP 503: <b>busy</b>")
        #expect(sources[1]["source"] as? String == "red" && sources[1]["polled"] as? Bool == false && sources[1]["down"] as? Bool == false)
        let body = text(try await get(server, "/"))
        #expect(body.contains("<tr class=\"source-down\"><td>ozon</td><td>down</td>") && body.contains("HTTP 503: &lt;b&gt;busy&lt;/b&gt;"))
        #expect(body.contains("<tr class=\"source-waiting\"><td>red</td><td>not polled yet</td>"))
    }

    @Test func theDeliveriesAPICountsEachSinksOutboxAndListsTheLatestDeadLettersWithTheirError() async throws {
        metrics.board.configure(StatusBoard.Configured(sources: [], sinks: ["hook", "mail"], timeZone: .gmt))
        metrics.setOutbox([
            OutboxCount(sink: "hook", status: "pending", count: 4), OutboxCount(sink: "hook", status: "dead", count: 2),
            OutboxCount(sink: "hook", status: "delivered", count: 9), OutboxCount(sink: "hook", status: "grouped", count: 3),
            OutboxCount(sink: "old", status: "dead", count: 1),
        ])
        let event = AlertEvent(
            id: "e1", kind: .firing, rule: "pending", severity: .warning, source: "ozon", marketplace: .ozon,
            request: request("1", in: 600), occurredAt: clock.now(), message: "m", sinks: ["hook"])
        metrics.board.setDeadLetters([
            DeadLetter(eventID: "e1", sink: "hook", event: event, attempts: 1, at: clock.now(), error: "HTTP 404: <html>nope</html>")
        ])
        let server = try serve()
        let answer = try object(try await get(server, "/api/v1/deliveries"))
        let sinks = try #require(answer["sinks"] as? [[String: Any]])
        #expect(sinks.map { $0["sink"] as? String } == ["hook", "mail", "old"])
        #expect(sinks[0]["pending"] as? Int == 4 && sinks[0]["dead"] as? Int == 2 && sinks[0]["delivered"] as? Int == 9)
        #expect(sinks[1]["pending"] as? Int == 0 && sinks[2]["configured"] as? Bool == false)
        #expect(sinks[0]["counts"] as? [String: Int] == ["pending": 4, "dead": 2, "delivered": 9, "grouped": 3])
        #expect(answer["dead_total"] as? Int == 3)
        let letters = try #require(answer["dead_letters"] as? [[String: Any]])
        #expect(letters.count == 1 && letters[0]["error"] as? String == "HTTP 404: <html>nope</html>")
        #expect(letters[0]["event"] as? String == "firing" && letters[0]["order"] as? String == "order-1" && letters[0]["attempts"] as? Int == 1)
        let body = text(try await get(server, "/"))
        #expect(body.contains("<tr class=\"sink-dead\"><td>hook</td><td>4</td><td>2</td></tr>"), "\(body)")
        #expect(body.contains("<td>old (no longer configured)</td>"))
        #expect(body.contains("HTTP 404: &lt;html&gt;nope&lt;/html&gt;"))
    }

    func events(_ count: Int) -> [AlertEvent] {
        (1...count).map { n in
            AlertEvent(
                id: "e\(n)", kind: .firing, rule: "pending", severity: .info, source: "ozon", marketplace: .ozon, request: nil,
                occurredAt: clock.now().addingTimeInterval(Double(n)), message: "event \(n)", sinks: [])
        }
    }

    @Test func theEventsAPIAnswersTheNewestEventsAfterACursorOrATimeNewestLastAndBounded() async throws {
        metrics.recordEvents(events(300))
        let server = try serve()
        let all = try object(try await get(server, "/api/v1/events"))
        var list = try #require(all["events"] as? [[String: Any]])
        #expect(list.count == StatusPage.maxEvents && all["truncated"] as? Bool == true && all["cursor"] as? Int == 300)
        #expect(list.first?["id"] as? String == "e201" && list.last?["id"] as? String == "e300")

        let after = try object(try await get(server, "/api/v1/events?since=250"))
        list = try #require(after["events"] as? [[String: Any]])
        #expect(list.map { $0["cursor"] as? Int } == (251...300).map { $0 } && after["truncated"] as? Bool == false)

        // 2025-11-24T16:04:50Z is event 290's time: the ten after it.
        let since = try object(try await get(server, "/api/v1/events?since=2025-11-24T16:04:50Z"))
        list = try #require(since["events"] as? [[String: Any]])
        #expect(list.map { $0["id"] as? String } == (291...300).map { "e\($0)" })

        // The board keeps the last 200: a cursor older than that says some are gone.
        let old = try object(try await get(server, "/api/v1/events?since=50"))
        #expect(old["truncated"] as? Bool == true)
        let none = try object(try await get(server, "/api/v1/events?since=300"))
        #expect((none["events"] as? [Any])?.isEmpty == true && none["truncated"] as? Bool == false)
    }

    /// A client passing each answer's `cursor` back gets every event kept, a hundred at a time.
    @Test func eventsAfterACursorComeOldestFirstInTurnsSoNoneIsSkipped() async throws {
        metrics.recordEvents(events(300))
        let server = try serve()
        var cursor = 150
        var seen: [Int] = []
        var answers: [[String: Any]] = []
        repeat {
            let answer = try object(try await get(server, "/api/v1/events?since=\(cursor)"))
            answers.append(answer)
            seen += (answer["events"] as? [[String: Any]] ?? []).compactMap { $0["cursor"] as? Int }
            cursor = try #require(answer["cursor"] as? Int)
        } while answers.last?["more"] as? Bool == true && answers.count < 10
        #expect(seen == Array(151...300))
        #expect(answers.map { $0["more"] as? Bool } == [true, false])
        #expect(answers.allSatisfy { $0["truncated"] as? Bool == false })
    }

    @Test func aSinceThatIsNeitherACursorNorATimeIsRefusedWith400NamingIt() async throws {
        let server = try serve()
        for bad in ["yesterday", "-1", "1.5", "2025-11-24", "99999999999999999999999"] {
            let answer = try await get(server, "/api/v1/events?since=\(bad)")
            #expect(answer.status == 400, "\(bad)")
            #expect(try object(answer)["error"].map { "\($0)" }?.hasPrefix("bad parameter since:") == true, "\(bad)")
        }
    }

    // MARK: - Headers, assets, access

    @Test func everyAnswerCarriesAStrictContentSecurityPolicyAndIsNeverCached() async throws {
        let server = try serve()
        let paths = [
            "/": "text/html; charset=utf-8", "/assets/status.js": "text/javascript; charset=utf-8",
            "/assets/status.css": "text/css; charset=utf-8", "/api/v1/requests": "application/json; charset=utf-8",
            "/api/v1/sources": "application/json; charset=utf-8", "/api/v1/deliveries": "application/json; charset=utf-8",
            "/api/v1/events": "application/json; charset=utf-8",
        ]
        for (path, type) in paths {
            let answer = try await get(server, path)
            #expect(answer.status == 200, "\(path)")
            #expect(header(answer, "Content-Type") == type, "\(path)")
            #expect(
                header(answer, "Content-Security-Policy")
                    == "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                "\(path)")
            #expect(header(answer, "X-Content-Type-Options") == "nosniff", "\(path)")
            #expect(header(answer, "Referrer-Policy") == "no-referrer", "\(path)")
            #expect(header(answer, "Cache-Control") == "no-store", "\(path)")
        }
    }

    @Test func thePageLoadsItsScriptAndStyleFromTheServerAndHasNothingInline() async throws {
        _ = try await ledger(listing: [request("1", in: 600)])
        let server = try serve()
        let body = text(try await get(server, "/"))
        #expect(body.contains("<script src=\"/assets/status.js\" defer></script>"))
        #expect(body.contains("<link rel=\"stylesheet\" href=\"/assets/status.css\">"))
        #expect(body.components(separatedBy: "<script").count == 2)
        #expect(!body.contains("<style") && !body.contains(" style=") && !body.contains(" onload=") && !body.contains("javascript:"))
        #expect(!body.contains("http://") && !body.contains("https://"), "nothing from another origin")
        let script = text(try await get(server, "/assets/status.js"))
        #expect(script.contains("/api/v1/requests") && script.contains("data-deadline") && !script.contains("innerHTML"))
    }

    @Test func otherMethodsAreRefusedAndUnknownAPIPathsAre404() async throws {
        let server = try serve()
        let post = try await get(server, "/api/v1/requests", method: "DELETE")
        #expect(post.status == 405 && header(post, "Allow") == "GET, HEAD")
        let head = try await get(server, "/", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty && header(head, "Content-Security-Policy") != nil)
        #expect(try await get(server, "/api/v2/requests").status == 404)
        #expect(try await get(server, "/assets/other.js").status == 404)
        #expect(try await get(server, "/metrics").status == 200)
    }

    @Test func onAnAddressOtherMachinesCanReachThePageAndTheAPIAreRefusedAndMetricsStay() async throws {
        let server = try serve(host: "0.0.0.0")
        for path in ["/", "/api/v1/requests", "/api/v1/events", "/assets/status.js"] {
            let answer = try await get(server, path)
            #expect(answer.status == 403, "\(path)")
            #expect(text(answer).contains("loopback"), "\(path)")
        }
        #expect(try await get(server, "/metrics").status == 200)
        #expect(try await get(server, "/healthz").status == 200)
    }

    @Test func aRequestNamingAnotherHostIsRefusedSoNoOtherSiteCanReadThePageByRebindingItsName() async throws {
        let server = try serve()
        let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
        for host in ["evil.example:\(port)", "evil.example", "127.0.0.1.evil.example", "10.0.0.1:\(port)"] {
            let answer = try await transport.send(
                HTTPRequest(method: "GET", url: server.baseURL + "/api/v1/requests", headers: [HTTPHeader("Host", host)]))
            #expect(answer.status == 403, "\(host)")
        }
        for host in ["127.0.0.1:\(port)", "localhost:\(port)", "LOCALHOST", "[::1]:\(port)"] {
            let answer = try await transport.send(
                HTTPRequest(method: "GET", url: server.baseURL + "/api/v1/requests", headers: [HTTPHeader("Host", host)]))
            #expect(answer.status == 200, "\(host)")
        }
        #expect(try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/metrics", headers: [HTTPHeader("Host", "evil.example")])).status == 200)
    }

    @Test func withoutATokenARequestThatCameThroughAProxyIsRefusedAndAHostMustBeANameAndAPort() async throws {
        // A proxy in front of a loopback listen: would serve the open page to whoever reaches the proxy.
        let server = try serve()
        for header in StatusPage.proxyHeaders {
            let answer = try await transport.send(
                HTTPRequest(method: "GET", url: server.baseURL + "/api/v1/requests", headers: [HTTPHeader(header, "203.0.113.9")]))
            #expect(answer.status == 403, "\(header)")
            #expect(text(answer).contains("auth: {token"), "\(header)")
        }
        let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
        for host in ["[::1]x", "localhost:abc", "127.0.0.1:", "127.0.0.1:\(port):1", "[::1]:1234567", "127.0.0.1 :\(port)"] {
            let answer = try await transport.send(
                HTTPRequest(method: "GET", url: server.baseURL + "/api/v1/requests", headers: [HTTPHeader("Host", host)]))
            #expect(answer.status == 403, "\(host)")
        }
        #expect(try await get(server, "/metrics").status == 200)
    }

    @Test func loopbackAddressesAreTheOnesThePageIsOpenOn() throws {
        for open in ["127.0.0.1:9464", "127.1.2.3:1", "localhost:9464", "[::1]:9464"] {
            #expect(StatusPage.access(loopback: try #require(ListenAddress(parsing: open)).isLoopback, auth: nil) == .open, "\(open)")
        }
        for refused in ["0.0.0.0:9464", "[::]:9464", "10.0.0.5:9464", "192.168.1.2:80", "[fe80::1]:9464", "[::ffff:127.0.0.1]:1"] {
            #expect(StatusPage.access(loopback: try #require(ListenAddress(parsing: refused)).isLoopback, auth: nil) == .refused, "\(refused)")
        }
    }
}
