import CancelWatchTesting
import Foundation
import HTTPServing
import MarketSim
import Testing

@testable import CancelWatch

/// The clients' answer calls against the simulator on loopback (a manual clock shared by both
/// sides): what the marketplace takes, refuses, and what a later listing shows.
@Suite struct AnswerCallsAgainstSimulatorTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_000))
    let transport = CurlHTTPTransport(threads: 2)

    func ozon(_ sim: MarketSimulator, timeout: TimeInterval = 30) -> OzonClient {
        OzonClient(
            account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k", timeout: timeout),
            transport: transport, clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
    }

    func red(_ sim: MarketSimulator) -> RedClient {
        RedClient(
            account: RedAccount(source: "red-shop", baseURL: sim.baseURL, appKey: "ak", appSecret: "sec", logistics: ["red_auto", "red_box"]),
            transport: transport, clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
    }

    static func approve() throws -> Answer { try Answer(.approve) }
    static func refuse(_ comment: String = "already shipped") throws -> Answer { try Answer(.refuse, comment: comment) }

    /// A request the simulator lists nowhere (or no longer as pending), as the caller would name it.
    func request(_ marketplace: Marketplace, id: String, order: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: marketplace, source: marketplace == .ozon ? "ozon-main" : "red-shop", id: id, order: order, state: .pending,
            rawState: "", deadline: clock.now().addingTimeInterval(60))
    }

    func state(_ sim: MarketSimulator, _ marketplace: SimMarketplace, _ id: String) -> String? {
        sim.requests().last { $0.marketplace == marketplace && $0.id == id && $0.state != "hidden" }?.state
    }

    @Test func ozonTakesAnApprovalAndARefusalAndTheNextListingShowsThemDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = ozon(sim)
            let pending = try await client.fetchPending().requests
            let approved = try #require(pending.first { $0.id == "11" })
            let refused = try #require(pending.first { $0.id == "12" })
            #expect(await client.answer(approved, with: try Self.approve()) == .accepted)
            #expect(await client.answer(refused, with: try Self.refuse()) == .accepted)
            #expect(sim.requestCount(method: "POST", path: OzonClient.approvePath) == 1)
            #expect(sim.requestCount(method: "POST", path: OzonClient.rejectPath) == 1)

            let after = try await client.fetchPending().requests.map(\.id)
            #expect(!after.contains("11") && !after.contains("12"))
            let outcomes = try await client.lookupOutcomes(of: [approved, refused])
            #expect(outcomes[approved.key] == .resolved(.approved, at: clock.now()))
            #expect(outcomes[refused.key] == .resolved(.rejected, at: clock.now()))
        }
    }

    @Test func redTakesAnApprovalAndARefusalAndTheNextListingShowsThemDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = red(sim)
            let pending = try await client.fetchPending().requests
            let approved = try #require(pending.first { $0.order == "P1" })
            let refused = try #require(pending.first { $0.order == "P2" })
            #expect(await client.answer(approved, with: try Self.approve()) == .accepted)
            #expect(await client.answer(refused, with: try Self.refuse("已发货")) == .accepted)
            #expect(sim.requestCount(method: "PUT", path: RedClient.auditPath) == 2)

            let after = try await client.fetchPending().requests.map(\.order)
            #expect(!after.contains("P1") && !after.contains("P2"))
            let outcomes = try await client.lookupOutcomes(of: [approved, refused])
            let now = Date(timeIntervalSince1970: clock.now().timeIntervalSince1970.rounded(.down))
            #expect(outcomes[approved.key] == .resolved(.approved, at: now))
            #expect(outcomes[refused.key] == .resolved(.rejected, at: now))
        }
    }

    @Test func anUnknownRequestIsRefusedAsUnknownAndAnIDThatIsNoCancellationIDIsNeverSent() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(request(.ozon, id: "999", order: "x"), with: try Self.approve())
            else { Issue.record("Ozon took an unknown id"); return }
            #expect(ozonRefusal.kind == .unknownRequest)
            #expect(ozonRefusal.status == 404 && ozonRefusal.code == "5")

            for id in ["abc", "", "-5", "+5", "007", "99999999999999999999", "1 2"] {
                guard case .refused(let refusal) = await ozon(sim).answer(request(.ozon, id: id, order: "x"), with: try Self.approve())
                else { Issue.record("'\(id)' was not refused"); continue }
                #expect(refusal.kind == .unknownRequest, "\(id)")
                #expect(refusal.message.hasPrefix("not sent"), "\(refusal.message)")
            }
            #expect(sim.requestCount(path: OzonClient.approvePath) == 1, "only the numeric id was sent")

            guard case .refused(let redRefusal) = await red(sim).answer(request(.xiaohongshu, id: "P404@1", order: "P404"), with: try Self.approve())
            else { Issue.record("RED took an unknown package"); return }
            #expect(redRefusal.kind == .unknownRequest)
            #expect(redRefusal.code == "-2000101")
        }
    }

    @Test func aRequestDecidedAlreadyIsRefusedAsAlreadyDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(request(.ozon, id: "13", order: "1111-0003-1"), with: try Self.approve())
            else { Issue.record("Ozon took a decided request"); return }
            #expect(ozonRefusal.kind == .alreadyDecided)
            #expect(ozonRefusal.status == 400 && ozonRefusal.code == "9")
            #expect(state(sim, .ozon, "13") == "rejected")

            let client = red(sim)
            let p1 = try #require(try await client.fetchPending().requests.first { $0.order == "P1" })
            #expect(await client.answer(p1, with: try Self.refuse()) == .accepted)
            guard case .refused(let redRefusal) = await client.answer(p1, with: try Self.approve())
            else { Issue.record("RED took a decided package"); return }
            #expect(redRefusal.kind == .alreadyDecided)
            #expect(redRefusal.code == "-2000202")
            #expect(state(sim, .red, "P1") == "rejected")
        }
    }

    @Test func aRequestPastItsDeadlineIsRefusedAsDeadlinePassed() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let ozonRequest = try #require(try await ozon(sim).fetchPending().requests.first { $0.id == "11" })
            let redRequest = try #require(try await red(sim).fetchPending().requests.first { $0.order == "P2" })
            clock.advance(by: 121)
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(ozonRequest, with: try Self.refuse())
            else { Issue.record("Ozon took a request past its deadline"); return }
            #expect(ozonRefusal.kind == .deadlinePassed)
            #expect(ozonRefusal.status == 409)
            guard case .refused(let redRefusal) = await red(sim).answer(redRequest, with: try Self.refuse())
            else { Issue.record("RED took a package past its audit time"); return }
            #expect(redRefusal.kind == .deadlinePassed)
            #expect(redRefusal.code == "-2000202")
        }
    }

    @Test func anAnswerWhoseConnectionDropsAfterItWasAppliedIsUnknownAndSentOnce() async throws {
        // One curl handle: the answer follows a listing on the same transport, whose connection
        // is kept alive. curl resends a request whose reused connection closes unanswered; an
        // answer goes on a connection of its own, so it is not sent again.
        let transport = CurlHTTPTransport(threads: 1)
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = OzonClient(
                account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k"), transport: transport,
                clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
            let request = try #require(try await client.fetchPending().requests.first { $0.id == "11" })
            sim.addFault(SimFault(.dropConnection, marketplace: .ozon, path: OzonClient.approvePath))
            guard case .unknown(let reason) = await client.answer(request, with: try Self.approve())
            else { Issue.record("a dropped answer was taken as known"); return }
            #expect(reason.contains(AnswerOutcome.mayHaveApplied), "\(reason)")
            #expect(sim.requestCount(path: OzonClient.approvePath) == 1)
            #expect(state(sim, .ozon, "11") == "approved")
        }
    }
}

/// The simulator's "applied, then no reply in time" fault, on the real clock: a `slow` fault
/// delays the reply after the answer was applied.
@Suite struct AnswerAppliedThenTimedOutTests {
    @Test(.timeLimit(.minutes(1))) func anAnswerAppliedWhoseReplyComesTooLateIsUnknownAndTheSimulatorHasItApplied() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: SystemClock())
        try await sim.serving {
            let client = OzonClient(
                account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k", timeout: 1),
                transport: CurlHTTPTransport(threads: 1), clock: SystemClock(),
                retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
            let request = try #require(try await client.fetchPending().requests.first { $0.id == "11" })
            sim.addFault(SimFault(.slow(seconds: 5), marketplace: .ozon, path: OzonClient.approvePath))
            guard case .unknown(let reason) = await client.answer(request, with: try Answer(.approve))
            else { Issue.record("an answer with no reply in time was taken as known"); return }
            #expect(reason.contains("timeout"), "\(reason)")
            #expect(sim.requestCount(path: OzonClient.approvePath) == 1)
            #expect(sim.requests().first { $0.marketplace == .ozon && $0.id == "11" }?.state == "approved")
        }
    }
}

extension AnswerAppliedThenTimedOutTests {
    /// The reply held for ten minutes: a stop that waited for it would hang the test.
    @Test(.timeLimit(.minutes(1)), arguments: [false, true])
    func stoppingTheSimulatorWhileItHoldsAnAppliedAnswersReplyEndsTheCallAtOnce(stopsFromAsyncCode: Bool) async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: SystemClock())
        let client = OzonClient(
            account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k", timeout: 900),
            transport: CurlHTTPTransport(threads: 1), clock: SystemClock())
        let request = try #require(try await client.fetchPending().requests.first { $0.id == "11" })
        sim.addFault(SimFault(.slow(seconds: 600), marketplace: .ozon, path: OzonClient.approvePath))
        let answer = Task { await client.answer(request, with: try Answer(.approve)) }
        try await waitFor { sim.requests().first { $0.marketplace == .ozon && $0.id == "11" }?.state == "approved" }
        if stopsFromAsyncCode { await sim.close() } else { sim.shutdown() }
        guard case .unknown = try await answer.value else {
            Issue.record("an answer whose connection closed unanswered was taken as known")
            return
        }
    }
}

/// The answer calls against scripted loopback servers: a path gone, a 5xx, no connection, a 429.
@Suite struct AnswerCallsAgainstLoopbackServersTests {
    static let fast = RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001)

    /// Counts the tries handed to curl.
    final class CountingTransport: HTTPTransport, @unchecked Sendable {
        let inner = CurlHTTPTransport(threads: 1)
        private let lock = NSLock()
        private var count = 0
        var sent: Int { lock.withLock { count } }
        func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
            lock.withLock { count += 1 }
            return try await inner.send(request)
        }
    }

    func ozon(_ baseURL: String, transport: HTTPTransport = CurlHTTPTransport(threads: 1), clock: WatchClock = SystemClock(), retry: RetryPolicy = fast)
        -> OzonClient
    {
        OzonClient(
            account: OzonAccount(source: "ozon-main", baseURL: baseURL, clientID: "100001", apiKey: "key-ozon-secret"),
            transport: transport, clock: clock, retry: retry)
    }

    func red(_ baseURL: String, transport: HTTPTransport = CurlHTTPTransport(threads: 1), clock: WatchClock = SystemClock(), retry: RetryPolicy = fast)
        -> RedClient
    {
        RedClient(
            account: RedAccount(source: "red-shop", baseURL: baseURL, appKey: "red-app-key", appSecret: "red-app-secret"),
            transport: transport, clock: clock, retry: retry)
    }

    static let ozonRequest = CancellationRequest(
        marketplace: .ozon, source: "ozon-main", id: "283784001", order: "0123-0001-1", state: .pending, rawState: "ON_APPROVAL",
        deadline: Date(timeIntervalSince1970: 1_795_000_000))
    static let redRequest = CancellationRequest(
        marketplace: .xiaohongshu, source: "red-shop", id: "P7001@1794990000", order: "P7001", state: .pending, rawState: "unaudited",
        deadline: Date(timeIntervalSince1970: 1_795_000_000))

    func refusal(_ outcome: AnswerOutcome) -> AnswerRefusal? {
        if case .refused(let refusal) = outcome { return refusal }
        Issue.record("not refused: \(outcome)")
        return nil
    }

    @Test func ozonSendsTheCancellationIDAsAnIntegerWithItsCommentAndCredentials() async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: "{}") })
        #expect(await ozon(server.baseURL).answer(Self.ozonRequest, with: try Answer(.refuse, comment: "Заказ уже отправлен")) == .accepted)
        #expect(await ozon(server.baseURL).answer(Self.ozonRequest, with: try Answer(.approve)) == .accepted)
        let sent = server.requests
        #expect(sent.map(\.path) == [OzonClient.rejectPath, OzonClient.approvePath])
        #expect(sent.allSatisfy { $0.method == "POST" && $0.header("Client-Id") == "100001" && $0.header("Api-Key") == "key-ozon-secret" })
        #expect(try JSONParser.parse(sent[0].body) == ["cancellation_id": 283_784_001, "comment": "Заказ уже отправлен"])
        #expect(try JSONParser.parse(sent[1].body) == ["cancellation_id": 283_784_001], "an approval without a comment sends none")
    }

    @Test func redSendsASignedAuditWithThePackageAndItsReason() async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: #"{"success": true, "error_code": 0, "error_msg": "", "data": null}"#) })
        let outcome = await red(server.baseURL).answer(Self.redRequest, with: try Answer(.refuse, comment: "已发货"))
        #expect(outcome == .accepted)
        let sent = try #require(server.requests.first)
        #expect(sent.method == "PUT" && sent.path == RedClient.auditPath && sent.query.isEmpty)
        #expect(try JSONParser.parse(sent.body) == ["package_id": "P7001", "audit_result": "refused", "audit_reason": "已发货"])
        let timestamp = try #require(sent.header("timestamp"))
        #expect(sent.header("app-key") == "red-app-key")
        #expect(
            sent.header("sign")
                == RedSigner.sign(path: RedClient.auditPath, query: [], appKey: "red-app-key", timestamp: timestamp, appSecret: "red-app-secret"))
    }

    @Test(arguments: ["", "{}", #"{"result": true}"#, " \n"])
    func anOzon200WithAnEmptyBodyOrAnyObjectIsAccepted(_ body: String) async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: body) })
        #expect(await ozon(server.baseURL).answer(Self.ozonRequest, with: try Answer(.approve)) == .accepted)
    }

    @Test func anOzon404WithoutItsErrorBodyIsTheEndpointGoneAndWithItTheRequestUnknown() async throws {
        let gone = try ScriptedServer(fallback: { _ in .text(status: 404, "404 page not found") })
        let refused = try #require(refusal(await ozon(gone.baseURL).answer(Self.ozonRequest, with: try Answer(.approve))))
        #expect(refused.kind == .endpointGone)
        #expect(refused.message.contains(OzonClient.approvePath) && refused.message.contains("404 page not found"), "\(refused.message)")
        let gateway = try ScriptedServer(fallback: { _ in .json(status: 404, text: #"{"message": "no Route matched with those values"}"#) })
        let unrouted = try #require(refusal(await ozon(gateway.baseURL).answer(Self.ozonRequest, with: try Answer(.approve))))
        #expect(unrouted.kind == .endpointGone, "a gateway's JSON without Ozon's code: \(unrouted)")

        let unknown = try ScriptedServer(fallback: { _ in
            .json(status: 404, text: #"{"code": 5, "message": "cancellation not found", "details": []}"#)
        })
        let notFound = try #require(refusal(await ozon(unknown.baseURL).answer(Self.ozonRequest, with: try Answer(.approve))))
        #expect(notFound.kind == .unknownRequest && notFound.code == "5" && notFound.message == "cancellation not found")
    }

    @Test(arguments: [
        (400, #"{"code": 9, "message": "not in state ON_APPROVAL"}"#, AnswerRefusal.Kind.alreadyDecided),
        (400, #"{"code": 3, "message": "request already processed"}"#, .alreadyDecided),
        (400, #"{"code": 3, "message": "comment is required"}"#, .other),
        (409, #"{"code": 9, "message": "approved automatically"}"#, .deadlinePassed),
        (403, #"{"code": 7, "message": "Offer not signed"}"#, .noPermission),
        (403, #"{"code": 7, "message": "Invalid Api-Key, please contact support"}"#, .auth),
        (401, #"{"code": 16, "message": "Client-Id and Api-Key headers are required"}"#, .auth),
        (429, #"{"code": 8, "message": "You have reached request rate limit per second"}"#, .rateLimited),
        (422, "unprocessable", .other),
    ])
    func ozonRefusalsAreReadByStatusAndCode(_ status: Int, _ body: String, _ kind: AnswerRefusal.Kind) async throws {
        let server = try ScriptedServer(fallback: { _ in .json(status: status, text: body) })
        let refused = try #require(refusal(await ozon(server.baseURL).answer(Self.ozonRequest, with: try Answer(.approve))))
        #expect(refused.kind == kind, "\(refused)")
        #expect(refused.status == status)
        if kind == .noPermission { #expect(refused.message == "Offer not signed") }
    }

    @Test(arguments: [
        (-2000101, "package unknown", AnswerRefusal.Kind.unknownRequest),
        (-2000202, "wrong status: already audited", .alreadyDecided),
        (-2000202, "包裹 P7001 审核时间已过 (wrong status: the audit time is over)", .deadlinePassed),
        (-2000401, "no permission", .noPermission),
        (-2000203, "fulfilment stopped", .other),
        (10003, "签名错误 (signature mismatch)", .auth),
        (90001, "method offline", .endpointGone),
        (90002, "接口已下线", .endpointGone),
    ])
    func redEnvelopeCodesAreReadAsRefusals(_ code: Int, _ message: String, _ kind: AnswerRefusal.Kind) async throws {
        let envelope: JSONValue = ["success": false, "error_code": .integer(Int64(code)), "error_msg": .string(message), "data": nil]
        let server = try ScriptedServer(fallback: { _ in .json(envelope.serializedData()) })
        let refused = try #require(refusal(await red(server.baseURL).answer(Self.redRequest, with: try Answer(.approve))))
        #expect(refused.kind == kind, "\(refused)")
        #expect(refused.code == String(code))
        #expect(refused.message.contains(message.prefix(8)), "\(refused.message)")
        #expect(server.requests.count == 1)
    }

    @Test func aRed404IsTheEndpointGone() async throws {
        let server = try ScriptedServer(fallback: { _ in .text(status: 404, "<html>Not Found</html>") })
        let refused = try #require(refusal(await red(server.baseURL).answer(Self.redRequest, with: try Answer(.approve))))
        #expect(refused.kind == .endpointGone && refused.status == 404)
    }

    @Test func a5xxIsUnknownAndNeverSentAgain() async throws {
        let ozonServer = try ScriptedServer(fallback: { _ in .json(status: 500, text: #"{"code": 13, "message": "internal error"}"#) })
        guard case .unknown(let reason) = await ozon(ozonServer.baseURL).answer(Self.ozonRequest, with: try Answer(.approve)) else {
            Issue.record("an Ozon 500 was taken as known")
            return
        }
        #expect(reason.contains("HTTP 500") && reason.contains(AnswerOutcome.mayHaveApplied), "\(reason)")
        #expect(ozonServer.requests.count == 1)

        let redServer = try ScriptedServer(fallback: { _ in .text(status: 503, "<html>busy</html>") })
        guard case .unknown = await red(redServer.baseURL).answer(Self.redRequest, with: try Answer(.approve)) else {
            Issue.record("a RED 503 was taken as known")
            return
        }
        #expect(redServer.requests.count == 1)
    }

    @Test func anUnreadable200IsUnknown() async throws {
        let ozonServer = try ScriptedServer(fallback: { _ in .text("<html>ok</html>") })
        guard case .unknown = await ozon(ozonServer.baseURL).answer(Self.ozonRequest, with: try Answer(.approve)) else {
            Issue.record("an unreadable Ozon 200 was taken as known")
            return
        }
        let redServer = try ScriptedServer(fallback: { _ in .json(text: #"{"success": tr"#) })
        guard case .unknown = await red(redServer.baseURL).answer(Self.redRequest, with: try Answer(.approve)) else {
            Issue.record("an unreadable RED 200 was taken as known")
            return
        }
        #expect(ozonServer.requests.count == 1 && redServer.requests.count == 1)
    }

    @Test func aConnectionRefusedIsTriedAgainAndThenSaidNotSentNotUnknown() async throws {
        let (port, hold) = try #require(PostgresStores.refusedPort())
        defer { withExtendedLifetime(hold) {} }
        for marketplace in [Marketplace.ozon, .xiaohongshu] {
            let transport = CountingTransport()
            let baseURL = "http://127.0.0.1:\(port)"
            let outcome =
                marketplace == .ozon
                ? await ozon(baseURL, transport: transport).answer(Self.ozonRequest, with: try Answer(.approve))
                : await red(baseURL, transport: transport).answer(Self.redRequest, with: try Answer(.approve))
            let refused = try #require(refusal(outcome))
            #expect(refused.kind == .notSent && refused.message.hasPrefix("not sent:"), "\(refused)")
            #expect(transport.sent == 3, "\(marketplace): every try of the policy")
        }
    }

    @Test func a429IsTriedAgainAfterItsRetryAfterClampedToThePolicy() async throws {
        let clock = ManualClock()
        let server = try ScriptedServer([
            { _ in .json(status: 429, text: #"{"code": 8, "message": "rate limit"}"#, headers: ["Retry-After": "2"]) },
            { _ in .json(status: 429, text: #"{"code": 8, "message": "rate limit"}"#, headers: ["Retry-After": "3600"]) },
        ], fallback: { _ in .json(text: "{}") })
        let client = ozon(server.baseURL, clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 5))
        let answer = Task { await client.answer(Self.ozonRequest, with: try Answer(.approve)) }
        try await waitFor { clock.sleeperCount == 1 }
        clock.advance(by: 1.999)
        #expect(clock.sleeperCount == 1 && server.requests.count == 1, "it waits the 2 s the marketplace asked for")
        clock.advance(by: 0.001)
        try await waitFor { server.requests.count == 2 && clock.sleeperCount == 1 }
        clock.advance(by: 4.999)
        #expect(clock.sleeperCount == 1 && server.requests.count == 2, "an hour asked for is cut to the policy's 5 s")
        clock.advance(by: 0.001)
        #expect(try await answer.value == .accepted)
        #expect(server.requests.count == 3)
    }

    @Test func a429OnEveryTryEndsRateLimitedAfterThePolicysTries() async throws {
        let server = try ScriptedServer(fallback: { _ in
            .json(status: 429, text: #"{"success": false, "error_code": 429, "error_msg": "rate limited", "data": null}"#)
        })
        let refused = try #require(refusal(await red(server.baseURL).answer(Self.redRequest, with: try Answer(.approve))))
        #expect(refused.kind == .rateLimited)
        #expect(server.requests.count == 3)
    }

    @Test func messagesAreOneLineAndNameNoCredential() async throws {
        let echo = "bad request\nClient-Id: 100001\nApi-Key: key-ozon-secret\r\n\u{1B}[31m"
        let server = try ScriptedServer(fallback: { _ in
            .json(status: 400, (["code": 3, "message": .string(echo), "details": []] as JSONValue).serializedData())
        })
        let refused = try #require(refusal(await ozon(server.baseURL).answer(Self.ozonRequest, with: try Answer(.approve))))
        #expect(!refused.message.contains("key-ozon-secret"), "\(refused.message)")
        #expect(!refused.message.unicodeScalars.contains { TerminalText.isControl($0) }, "\(refused.message)")

        let redServer = try ScriptedServer(fallback: { request in
            .text(status: 502, "upstream said: app-key=\(request.header("app-key") ?? "") sign=\(request.header("sign") ?? "")\nsecret red-app-secret")
        })
        guard case .unknown(let reason) = await red(redServer.baseURL).answer(Self.redRequest, with: try Answer(.approve)) else {
            Issue.record("a RED 502 was taken as known")
            return
        }
        let sign = try #require(redServer.requests.first?.header("sign"))
        #expect(!reason.contains("red-app-key") && !reason.contains("red-app-secret") && !reason.contains(sign), "\(reason)")
        #expect(!reason.contains("\n"))
    }
}
