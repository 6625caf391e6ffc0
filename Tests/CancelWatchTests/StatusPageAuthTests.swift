import CancelWatchTesting
import Foundation
import Logging
import Synchronization
import TestServers
import Testing

@testable import CancelWatch

/// A marketplace whose lookups wait until the test lets them go, saying when each begins.
final class HangingAnswering: AnsweringClient, @unchecked Sendable {
    let source = "ozon-main"
    let marketplace = Marketplace.ozon
    let started: AsyncStream<Void>
    private let start: AsyncStream<Void>.Continuation
    private let gate = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    /// Whether answers wait for the gate (lookups then go on at once), rather than lookups.
    let hangsAnswers: Bool

    init(hangsAnswers: Bool = false) {
        self.hangsAnswers = hangsAnswers
        (started, start) = AsyncStream.makeStream()
    }

    private func waitForTheGate() async {
        start.yield()
        await withCheckedContinuation { continuation in
            let open = gate.withLock { state in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    /// Lets every lookup waiting, and every later one, go on.
    func release() {
        let waiting = gate.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    func fetchPending() async throws(PollError) -> PendingSnapshot { PendingSnapshot(requests: []) }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        if !hangsAnswers { await waitForTheGate() }
        return Dictionary(uniqueKeysWithValues: requests.map { ($0.key, OutcomeLookup.stillPending($0)) })
    }

    func answer(_ request: CancellationRequest, with answer: Answer) async -> AnswerOutcome {
        if hangsAnswers { await waitForTheGate() }
        return .accepted
    }
}

/// The status page with a token (`auth:`) on the real `listen:` server: 401 without it, a
/// bearer token for the API, a sign-in that sets a signed HttpOnly SameSite cookie, CSRF on
/// every form, and answers that go through the pipeline's `Answerer` (recorded in the journal,
/// never sent twice).
@Suite struct StatusPageAuthTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let transport = CurlHTTPTransport(threads: 1)
    let metrics = CancelWatchMetrics()
    let market = ScriptedAnswering()
    let token = "s3cret-token-0123456789abcdef"

    func serve(
        host: String = "0.0.0.0", answering store: (any StateStore)? = nil, client: (any AnsweringClient)? = nil, token: String? = nil
    ) throws -> MetricsServer {
        let answerer = store.map { Answerer(store: $0, clients: [client ?? market], clock: clock, logger: quiet) }
        metrics.board.configure(
            StatusBoard.Configured(
                sources: ["ozon-main"], sinks: [], timeZone: TimeZone(identifier: "Europe/Moscow")!,
                auth: StatusAuth(token: Secret(token ?? self.token)), answerer: answerer))
        return try MetricsServer(address: ListenAddress(host: host, port: 0), metrics: metrics, clock: clock)
    }

    func url(_ server: MetricsServer, _ path: String) -> String {
        server.baseURL.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1") + path
    }

    func get(_ server: MetricsServer, _ path: String, headers: [HTTPHeader] = []) async throws -> HTTPResponse {
        try await transport.send(HTTPRequest(method: "GET", url: url(server, path), headers: headers))
    }

    func post(_ server: MetricsServer, _ path: String, form: [(String, String)], headers: [HTTPHeader] = []) async throws -> HTTPResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
        return try await transport.send(
            HTTPRequest(
                method: "POST", url: url(server, path),
                headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")] + headers, body: Data(body.utf8)))
    }

    func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    func header(_ response: HTTPResponse, _ name: String) -> String? {
        response.headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Signs in and returns the cookie to send back (`cw_session=…`).
    func signIn(_ server: MetricsServer, name: String = "alice") async throws -> String {
        let answer = try await post(server, "/login", form: [("token", token), ("name", name)])
        #expect(answer.status == 303 && header(answer, "Location") == "/")
        let setCookie = try #require(header(answer, "Set-Cookie"))
        return try #require(setCookie.split(separator: ";").first.map(String.init))
    }

    /// The CSRF token the signed-in page carries.
    func csrf(_ server: MetricsServer, cookie: String) async throws -> String {
        let page = text(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]))
        let marker = #"name="csrf" value=""#
        let start = try #require(page.range(of: marker)?.upperBound)
        return String(page[start...].prefix { $0 != "\"" })
    }

    func pending(_ id: String, in seconds: TimeInterval = 3600, reason: String = "Передумал") -> TrackedRequest {
        TrackedRequest(
            request: CancellationRequest(
                marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
                initiator: "CLIENT", reason: reason, deadline: clock.now().addingTimeInterval(seconds)),
            status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
    }

    func store(tracking requests: [TrackedRequest]) throws -> SQLiteStateStore {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-page-auth"))
        try store.save(requests, health: nil)
        return store
    }

    // MARK: - Without the token

    @Test func withoutTheTokenThePageAnswers401WithTheSignInFormAndTheAPI401WithBearerChallenge() async throws {
        let server = try serve()
        let page = try await get(server, "/")
        #expect(page.status == 401)
        #expect(text(page).contains(#"<form method="post" action="/login""#))
        #expect(!text(page).contains("Pending requests"))
        #expect(header(page, "Content-Security-Policy") != nil)
        for path in ["/api/v1/requests", "/api/v1/sources", "/api/v1/deliveries", "/api/v1/events", "/answer?source=a&id=1"] {
            let answer = try await get(server, path)
            #expect(answer.status == 401, "\(path)")
        }
        let api = try await get(server, "/api/v1/requests")
        #expect(header(api, "WWW-Authenticate") == #"Bearer realm="cancelwatch""#)
        for wrong in ["Bearer wrong", "Bearer \(token)x", "Basic \(token)", "Bearer", token] {
            #expect(try await get(server, "/api/v1/requests", headers: [HTTPHeader("Authorization", wrong)]).status == 401, "\(wrong)")
        }
        // The assets hold no data: the sign-in page needs its style sheet.
        #expect(try await get(server, "/assets/status.css").status == 200)
        // /metrics and /healthz stay as they were (Prometheus and probes).
        #expect(try await get(server, "/metrics").status == 200)
        #expect(try await get(server, "/healthz").status == 200)
    }

    @Test func theBearerTokenOpensTheAPIAndThePageWithoutAnyHostCheck() async throws {
        let server = try serve()
        let bearer = HTTPHeader("Authorization", "Bearer \(token)")
        for path in ["/api/v1/requests", "/api/v1/sources", "/api/v1/deliveries", "/api/v1/events", "/"] {
            let answer = try await get(server, path, headers: [bearer, HTTPHeader("Host", "status.shop.example:9464")])
            #expect(answer.status == 200, "\(path)")
        }
    }

    // MARK: - Signing in

    @Test func signingInSetsASignedHttpOnlySameSiteCookieThatOpensThePageUntilItExpires() async throws {
        let server = try serve()
        let answer = try await post(server, "/login", form: [("token", token), ("name", "alice")])
        #expect(answer.status == 303)
        let setCookie = try #require(header(answer, "Set-Cookie"))
        let attributes = setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict") && attributes.contains("Path=/"))
        #expect(!attributes.contains("Secure"), "served over plain HTTP, a Secure cookie would never come back")
        #expect(!setCookie.contains(token), "the cookie never holds the token")
        let cookie = try #require(attributes.first)
        let page = try await get(server, "/", headers: [HTTPHeader("Cookie", "other=1; " + cookie)])
        #expect(page.status == 200)
        #expect(text(page).contains("Signed in as alice"))
        #expect(try await get(server, "/api/v1/requests", headers: [HTTPHeader("Cookie", cookie)]).status == 200)
        // Tampered: the name changed, or the signature.
        let forged = cookie.replacingOccurrences(of: ".alice.", with: ".mallory.")
        #expect(forged != cookie)
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", forged)]).status == 401)
        let flipped = String(cookie.dropLast()) + (cookie.last == "0" ? "1" : "0")
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", flipped)]).status == 401)
        // Twelve hours on, the session is over.
        clock.advance(by: StatusAuth.sessionLifetime + 1)
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]).status == 401)
    }

    @Test func signingOutNeedsTheSessionsCSRFTokenAndClearsTheCookie() async throws {
        let server = try serve()
        let cookie = try await signIn(server)
        let csrf = try await csrf(server, cookie: cookie)
        #expect(try await post(server, "/logout", form: [], headers: [HTTPHeader("Cookie", cookie)]).status == 403)
        let out = try await post(server, "/logout", form: [("csrf", csrf)], headers: [HTTPHeader("Cookie", cookie)])
        #expect(out.status == 303 && header(out, "Location") == "/login")
        #expect(header(out, "Set-Cookie")?.hasPrefix("\(StatusAuth.cookieName)=; ") == true)
        #expect(header(out, "Set-Cookie")?.contains("Max-Age=0") == true)
    }

    @Test func behindAnHTTPSProxyTheCookieIsSecure() async throws {
        let server = try serve()
        let answer = try await post(
            server, "/login", form: [("token", token), ("name", "bob")], headers: [HTTPHeader("X-Forwarded-Proto", "https")])
        #expect(header(answer, "Set-Cookie")?.contains("; Secure") == true)
    }

    @Test func aSignedOutSessionsCookieIsRefusedEvenWhenReplayedAndNobodySignsInAsApi() async throws {
        let server = try serve()
        let cookie = try await signIn(server)
        let csrf = try await csrf(server, cookie: cookie)
        let other = try await signIn(server, name: "bob")
        _ = try await post(server, "/logout", form: [("csrf", csrf)], headers: [HTTPHeader("Cookie", cookie)])
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]).status == 401)
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", other)]).status == 200)
        for name in ["api", "API"] {
            #expect(try await post(server, "/login", form: [("token", token), ("name", name)]).status == 400, "\(name)")
        }
    }

    @Test func aChangedTokenEndsEverySessionAtOnce() async throws {
        let server = try serve()
        let cookie = try await signIn(server)
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]).status == 200)
        // A reload with a new token configures the board again; the server stays.
        metrics.board.configure(StatusBoard.Configured(auth: StatusAuth(token: "another-token-0123456789")))
        #expect(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]).status == 401)
        #expect(try await get(server, "/api/v1/requests", headers: [HTTPHeader("Authorization", "Bearer \(token)")]).status == 401)
    }

    @Test func aWrongTokenOrABadNameIsRefusedAndTenWrongTokensAMinuteStopSigningIn() async throws {
        let server = try serve()
        let wrong = try await post(server, "/login", form: [("token", "guess"), ("name", "eve")])
        #expect(wrong.status == 401 && header(wrong, "Set-Cookie") == nil)
        #expect(text(wrong).contains("That is not the token."))
        let badName = try await post(server, "/login", form: [("token", token), ("name", "<b>eve</b>")])
        #expect(badName.status == 400 && header(badName, "Set-Cookie") == nil)
        #expect(!text(badName).contains("<b>eve"))
        for _ in 1..<LoginThrottle.limit {
            #expect(try await post(server, "/login", form: [("token", "guess"), ("name", "eve")]).status == 401)
        }
        let blocked = try await post(server, "/login", form: [("token", token), ("name", "alice")])
        #expect(blocked.status == 429 && header(blocked, "Set-Cookie") == nil)
        #expect(Int(header(blocked, "Retry-After") ?? "") == Int(LoginThrottle.window))
        clock.advance(by: LoginThrottle.window)
        _ = try await signIn(server)
    }

    @Test func wrongBearerTokensCountAsWrongSignInsAndOnlyTheirAddressIsStopped() async throws {
        let server = try serve()
        for _ in 0..<LoginThrottle.limit {
            #expect(try await get(server, "/api/v1/requests", headers: [HTTPHeader("Authorization", "Bearer guess")]).status == 401)
        }
        let right = try await get(server, "/api/v1/requests", headers: [HTTPHeader("Authorization", "Bearer \(token)")])
        #expect(right.status == 429 && header(right, "Retry-After") == "60")
        #expect(try await post(server, "/login", form: [("token", token), ("name", "alice")]).status == 429)
        // Another address is not stopped by this one's guesses.
        let throttle = LoginThrottle()
        for _ in 0..<LoginThrottle.limit { throttle.recordFailure(client: LoginThrottle.client("203.0.113.9:5000"), now: clock.now()) }
        #expect(throttle.blockedUntil(client: "203.0.113.9", now: clock.now()) != nil)
        #expect(throttle.blockedUntil(client: LoginThrottle.client("198.51.100.7:5001"), now: clock.now()) == nil)
        // An IPv6 client is its /64: a host picks any address in it.
        #expect(LoginThrottle.client("[2001:db8:1:2::1]:443") == LoginThrottle.client("[2001:db8:1:2:ffff::9]:80"))
        #expect(LoginThrottle.client("[2001:db8:1:2::1]:443") != LoginThrottle.client("[2001:db8:1:3::1]:443"))
    }

    @Test func theThrottleRemembersABoundedNumberOfAddressesForgettingTheQuietestFirst() {
        let throttle = LoginThrottle()
        let start = clock.now()
        for _ in 0..<LoginThrottle.limit { throttle.recordFailure(client: "10.9.9.9", now: start) }
        #expect(throttle.blockedUntil(client: "10.9.9.9", now: start) != nil)
        // As many other addresses as it remembers, each after it: 10.9.9.9 is forgotten.
        for n in 0..<LoginThrottle.maxClients {
            throttle.recordFailure(client: "10.0.\(n / 256).\(n % 256)", now: start.addingTimeInterval(1))
        }
        #expect(throttle.blockedUntil(client: "10.9.9.9", now: start.addingTimeInterval(1)) == nil)
    }

    @Test func aSignInPostedByAnotherSiteIsRefused() async throws {
        let server = try serve()
        for headers in [
            [HTTPHeader("Origin", "https://evil.example")], [HTTPHeader("Sec-Fetch-Site", "cross-site")],
            [HTTPHeader("Origin", "null"), HTTPHeader("Sec-Fetch-Site", "cross-site")],
            [HTTPHeader("Origin", "http://127.0.0.1:1"), HTTPHeader("Sec-Fetch-Site", "same-site")],
        ] {
            let answer = try await post(server, "/login", form: [("token", token), ("name", "alice")], headers: headers)
            #expect(answer.status == 403 && header(answer, "Set-Cookie") == nil, "\(headers)")
        }
        // What Chromium sends for the page's own form under Referrer-Policy: no-referrer.
        let chromium = try await post(
            server, "/login", form: [("token", token), ("name", "alice")],
            headers: [HTTPHeader("Origin", "null"), HTTPHeader("Sec-Fetch-Site", "same-origin")])
        #expect(chromium.status == 303)
        let port = try #require(URL(string: url(server, "/"))?.port)
        let same = try await post(
            server, "/login", form: [("token", token), ("name", "alice")],
            headers: [HTTPHeader("Origin", "http://127.0.0.1:\(port)"), HTTPHeader("Sec-Fetch-Site", "same-origin")])
        #expect(same.status == 303)
    }

    // MARK: - Answering

    @Test func aSignedInUserAnswersThroughTheAnswererAndTheJournalNamesThem() async throws {
        let tracked = [pending("1"), pending("2")]
        let store = try store(tracking: tracked)
        let server = try serve(answering: store)
        metrics.board.setPending(tracked.map { PendingRequest(request: $0.request) }, total: 2, health: [], at: clock.now())
        let cookie = try await signIn(server, name: "alice")
        let page = text(try await get(server, "/", headers: [HTTPHeader("Cookie", cookie)]))
        #expect(page.contains(#"data-answers="on""#))
        #expect(page.contains(#"href="/answer?source=ozon-main&amp;id=1&amp;decision=approve">Approve…</a>"#))
        #expect(page.contains(#"href="/answer?source=ozon-main&amp;id=2&amp;decision=refuse">Refuse…</a>"#))
        let chosen = text(try await get(server, "/answer?source=ozon-main&id=1&decision=approve", headers: [HTTPHeader("Cookie", cookie)]))
        #expect(chosen.contains(#"value="approve""#) && !chosen.contains(#"value="refuse""#))
        let form = try await get(server, "/answer?source=ozon-main&id=1", headers: [HTTPHeader("Cookie", cookie)])
        #expect(form.status == 200)
        #expect(text(form).contains("order-1") && text(form).contains(#"value="approve""#) && text(form).contains(#"value="refuse""#))
        #expect(market.answers.isEmpty, "showing the form sends nothing")
        let csrf = try await csrf(server, cookie: cookie)

        let approved = try await post(
            server, "/answer", form: [("csrf", csrf), ("source", "ozon-main"), ("id", "1"), ("decision", "approve")],
            headers: [HTTPHeader("Cookie", cookie)])
        #expect(approved.status == 200, "\(text(approved))")
        #expect(text(approved).contains("approved; the marketplace accepted the answer"))
        let record = try #require(try store.answers(for: [RequestKey(source: "ozon-main", id: "1")]).first?.value)
        #expect(record.actor == AnswerActor(.web, "alice") && record.decision == .approve && record.state == .accepted)

        // The same again: the journal stops it before the marketplace.
        let again = try await post(
            server, "/answer", form: [("csrf", csrf), ("source", "ozon-main"), ("id", "1"), ("decision", "approve")],
            headers: [HTTPHeader("Cookie", cookie)])
        #expect(again.status == 409)
        #expect(text(again).contains("answered it before"))

        // A refusal needs its reason.
        let bare = try await post(
            server, "/answer", form: [("csrf", csrf), ("source", "ozon-main"), ("id", "2"), ("decision", "refuse")],
            headers: [HTTPHeader("Cookie", cookie)])
        #expect(bare.status == 400 && text(bare).contains("a refusal needs a comment"))
        let refused = try await post(
            server, "/answer",
            form: [("csrf", csrf), ("source", "ozon-main"), ("id", "2"), ("decision", "refuse"), ("comment", "Уже отправлен")],
            headers: [HTTPHeader("Cookie", cookie)])
        #expect(refused.status == 200)
        #expect(market.answers.map(\.id) == ["1", "2"])
        #expect(market.answers.last?.answer.comment == "Уже отправлен")
    }

    @Test func anAnswerWithoutTheSessionsCSRFTokenOrFromAnotherSiteSendsNothing() async throws {
        let store = try store(tracking: [pending("1")])
        let server = try serve(answering: store)
        let cookie = try await signIn(server, name: "alice")
        let other = try await signIn(server, name: "bob")
        let othersCSRF = try await csrf(server, cookie: other)
        let csrf = try await csrf(server, cookie: cookie)
        #expect(othersCSRF != csrf)
        let fields = [("source", "ozon-main"), ("id", "1"), ("decision", "approve")]
        for (form, headers) in [
            (fields, [HTTPHeader("Cookie", cookie)]),
            ([("csrf", othersCSRF)] + fields, [HTTPHeader("Cookie", cookie)]),
            ([("csrf", csrf)] + fields, [HTTPHeader("Cookie", cookie), HTTPHeader("Origin", "https://evil.example")]),
            ([("csrf", csrf)] + fields, [HTTPHeader("Cookie", cookie), HTTPHeader("Sec-Fetch-Site", "same-site")]),
            ([("csrf", csrf)] + fields, [HTTPHeader("Authorization", "Bearer \(token)")]),
        ] {
            let answer = try await post(server, "/answer", form: form, headers: headers)
            #expect(answer.status == 403, "\(headers)")
        }
        #expect(market.answers.isEmpty)
        #expect(try store.answers(for: [RequestKey(source: "ozon-main", id: "1")]).isEmpty)
    }

    @Test func whileTheMarketplaceHangsAtMostTwoAnswerPagesWaitForItAndTheRestAreTurnedAwayAtOnce() async throws {
        // Each answer page asks the marketplace on the transport the sources poll with: a
        // marketplace that hangs must not take its threads one page view at a time.
        let hanging = HangingAnswering()
        let store = try store(tracking: [pending("1")])
        let server = try serve(answering: store, client: hanging)
        let cookie = try await signIn(server)
        let path = "/answer?source=ozon-main&id=1"
        // A thread for each view that waits.
        let waiting = CurlHTTPTransport(threads: AnswerSlots.limit)
        let views = (0..<AnswerSlots.limit).map { _ in
            Task { try await waiting.send(HTTPRequest(method: "GET", url: url(server, path), headers: [HTTPHeader("Cookie", cookie)])) }
        }
        var started = hanging.started.makeAsyncIterator()
        for _ in 0..<AnswerSlots.limit { _ = await started.next() }
        let turnedAway = try await get(server, path, headers: [HTTPHeader("Cookie", cookie)])
        #expect(turnedAway.status == 503 && header(turnedAway, "Retry-After") == "5")
        #expect(text(turnedAway).contains("try again in a moment"))
        let api = try await transport.send(
            HTTPRequest(
                method: "POST", url: url(server, "/api/v1/answers"), headers: [HTTPHeader("Authorization", "Bearer \(token)")],
                body: Data(#"{"source":"ozon-main","id":"1","decision":"approve"}"#.utf8)))
        #expect(api.status == 503 && header(api, "Retry-After") == "5" && text(api).contains("try again in a moment"))
        hanging.release()
        for view in views { #expect(try await view.value.status == 200) }
        // Their slots are free again.
        #expect(try await get(server, path, headers: [HTTPHeader("Cookie", cookie)]).status == 200)
    }

    @Test func anAnswerTheMarketplaceHasNotRepliedToInTimeIsSaidToBeSendingAndFinishesAfter() async throws {
        let metrics = CancelWatchMetrics(board: StatusBoard(guards: StatusPageGuards(answering: AnswerSlots(answerWait: 0.3))))
        let hanging = HangingAnswering(hangsAnswers: true)
        let store = try store(tracking: [pending("1"), pending("2")])
        metrics.board.configure(
            StatusBoard.Configured(
                auth: StatusAuth(token: Secret(token)), answerer: Answerer(store: store, clients: [hanging], clock: clock, logger: quiet)))
        let server = try MetricsServer(address: ListenAddress(host: "127.0.0.1", port: 0), metrics: metrics, clock: clock)
        let api = try await transport.send(
            HTTPRequest(
                method: "POST", url: server.baseURL + "/api/v1/answers", headers: [HTTPHeader("Authorization", "Bearer \(token)")],
                body: Data(#"{"source":"ozon-main","id":"1","decision":"approve"}"#.utf8)))
        #expect(api.status == 202)
        let body = try #require(try JSONSerialization.jsonObject(with: api.body) as? [String: Any])
        #expect(body["outcome"] as? String == "sending" && body["id"] as? String == "1" && body["accepted"] as? Bool == false)
        let cookie = try await signIn(server)
        let csrf = try await csrf(server, cookie: cookie)
        let form = try await post(
            server, "/answer", form: [("csrf", csrf), ("source", "ozon-main"), ("id", "2"), ("decision", "approve")],
            headers: [HTTPHeader("Cookie", cookie)])
        #expect(form.status == 202 && text(form).contains("is never sent twice"), "\(text(form))")
        // Both go on once the marketplace replies, and the journal records them.
        hanging.release()
        let keys = [RequestKey(source: "ozon-main", id: "1"), RequestKey(source: "ozon-main", id: "2")]
        try await waitFor { try store.answers(for: keys).values.allSatisfy { $0.state == .accepted } && (try store.answers(for: keys).count == 2) }
    }

    @Test func aProxysBasicCredentialsBesideASessionAreNotCountedAsWrongTokens() async throws {
        let server = try serve()
        let cookie = try await signIn(server)
        for _ in 0...LoginThrottle.limit {
            let page = try await get(server, "/api/v1/requests", headers: [HTTPHeader("Cookie", cookie), HTTPHeader("Authorization", "Basic dTpw")])
            #expect(page.status == 200)
        }
        for _ in 0...LoginThrottle.limit {
            #expect(try await get(server, "/api/v1/requests", headers: [HTTPHeader("Authorization", "Basic dTpw")]).status == 401)
        }
        _ = try await signIn(server, name: "bob")
    }

    @Test func anAnswerPageWaitsForTheMarketplaceOnlySoLongAndItsSlotIsHeldUntilTheWorkEnds() async throws {
        let slots = AnswerSlots()
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let late = try await offPool { slots.run(within: 0.2) { for await _ in gate {} } }
        guard case .late = late else { Issue.record("\(late)"); return }
        #expect(slots.running == 1)
        open.finish()
        let next = try await offPool { slots.run(within: 30) { 7 } }
        guard case .done(7) = next else { Issue.record("\(next)"); return }
    }

    @Test func anAnswerPageOpenedFromAnotherSitesPageAsksTheMarketplaceNothing() async throws {
        let hanging = HangingAnswering()
        hanging.release()
        let store = try store(tracking: [pending("1")])
        let server = try serve(answering: store, client: hanging)
        let cookie = try await signIn(server)
        for site in ["same-site", "cross-site"] {
            let answer = try await get(
                server, "/answer?source=ozon-main&id=1", headers: [HTTPHeader("Cookie", cookie), HTTPHeader("Sec-Fetch-Site", site)])
            #expect(answer.status == 403, "\(site)")
        }
        let own = try await get(
            server, "/answer?source=ozon-main&id=1", headers: [HTTPHeader("Cookie", cookie), HTTPHeader("Sec-Fetch-Site", "same-origin")])
        #expect(own.status == 200)
        var started = hanging.started.makeAsyncIterator()
        _ = await started.next()
        hanging.release()
    }

    @Test func theAPIAnswersWithTheBearerTokenInJSON() async throws {
        let store = try store(tracking: [pending("1"), pending("2", in: -5)])
        let server = try serve(answering: store)
        let bearer = HTTPHeader("Authorization", "Bearer \(token)")
        func answer(_ body: String, _ headers: [HTTPHeader]) async throws -> HTTPResponse {
            try await transport.send(
                HTTPRequest(
                    method: "POST", url: url(server, "/api/v1/answers"),
                    headers: [HTTPHeader("Content-Type", "application/json")] + headers, body: Data(body.utf8)))
        }
        #expect(try await answer(#"{"source":"ozon-main","id":"1","decision":"approve"}"#, []).status == 401)
        let bad = try await answer(#"{"source":"ozon-main","id":"1","decision":"maybe"}"#, [bearer])
        #expect(bad.status == 400 && text(bad).contains("approve or refuse"))
        #expect(try await answer("not json", [bearer]).status == 400)
        let late = try await answer(#"{"source":"ozon-main","id":"2","decision":"approve"}"#, [bearer])
        #expect(late.status == 409 && text(late).contains("has passed"))
        let done = try await answer(#"{"source":"ozon-main","id":"1","decision":"approve"}"#, [bearer])
        #expect(done.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: done.body) as? [String: Any])
        #expect(body["outcome"] as? String == "accepted" && body["accepted"] as? Bool == true)
        let record = try #require(try store.answers(for: [RequestKey(source: "ozon-main", id: "1")]).first?.value)
        #expect(record.actor == AnswerActor(.web, "api"))
        #expect(market.answers.map(\.id) == ["1"])
    }

    @Test func aBodyLargerThanEightKilobytesIsRefusedFromItsHead() async throws {
        let server = try serve()
        let answer = try await post(server, "/login", form: [("token", String(repeating: "x", count: 9000)), ("name", "a")])
        #expect(answer.status == 413)
    }

    // MARK: - The config

    @Test func aTokenBelowSixteenCharactersOrWithSpacesIsRefused() {
        #expect(StatusAuth.problem(with: "short") != nil)
        #expect(StatusAuth.problem(with: "sixteen chars ok") != nil)
        #expect(StatusAuth.problem(with: "0123456789abcdef") == nil)
    }
}

@Suite struct HMACTests {
    @Test func hmacSHA256MatchesTheKnownValueAndAnEmptyKeyIsStillAKey() {
        let known = Digest.hmacSHA256(key: Data("key".utf8), message: Data("The quick brown fox jumps over the lazy dog".utf8))
        #expect(Digest.hex(known) == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        // HMAC-SHA256 with an empty key (a known value, not libcrypto's failure turned random).
        #expect(
            Digest.hex(Digest.hmacSHA256(key: Data(), message: Data()))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }
}
