import Foundation
import HTTPServing
import Testing

@testable import CancelWatch

@Suite struct OzonClientTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_000_000))
    let transport = CurlHTTPTransport(threads: 2)

    func client(_ server: ScriptedServer, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, initialDelay: 0.01, maxDelay: 0.05))
        -> OzonClient
    {
        OzonClient(
            account: OzonAccount(source: "ozon-main", baseURL: server.baseURL, clientID: "100001", apiKey: "key-ozon-secret"),
            transport: transport, clock: SystemClock(), retry: retry)
    }

    static func item(_ id: Int64, deadline: String = "2026-11-23T20:00:00Z", state: String = "ON_APPROVAL") -> JSONValue {
        [
            "cancellation_id": .integer(id), "posting_number": .string("P-\(id)"), "auto_approve_date": .string(deadline),
            "cancellation_initiator": "CLIENT", "cancellation_reason": ["id": 5, "name": "Покупатель передумал"],
            "cancelled_at": "2026-11-23T18:00:00.5Z", "order_date": "2026-11-20T10:00:00Z",
            "state": ["id": 1, "name": "На согласовании", "state": .string(state)], "approve_date": nil,
            "tpl_integration_type": "non_integrated",
        ]
    }

    static func page(_ ids: ClosedRange<Int64>?, lastID: Int64? = nil, counter: JSONValue = 1) -> ServerResponse {
        let items = ids.map { $0.map { item($0) } } ?? []
        let body: JSONValue = ["result": .array(items), "last_id": .integer(lastID ?? ids?.upperBound ?? 0), "counter": counter]
        return .json(body.serializedData())
    }

    @Test func decodesTheVendorsOwnExample() async throws {
        let fixture = try ScriptedServer.fixture("ozon-seed-response.json")
        let server = try ScriptedServer([{ _ in .json(fixture) }])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.count == 1)
        let request = try #require(snapshot.requests.first)
        #expect(request.id == "0")
        #expect(request.order == "string")
        #expect(request.initiator == "OZON")
        #expect(request.deadline == Date(timeIntervalSince1970: 1_732_710_703.621))
        #expect(request.raw["counter"] == nil)
        #expect(request.raw["tpl_integration_type"] == "string")
    }

    @Test func sendsCredentialsAndTheOnApprovalFilter() async throws {
        let server = try ScriptedServer([{ _ in Self.page(1...3) }])
        _ = try await client(server).fetchPending()
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.path == "/v2/conditional-cancellation/list")
        #expect(request.header("Client-Id") == "100001")
        #expect(request.header("Api-Key") == "key-ozon-secret")
        let body = try JSONParser.parse(request.body)
        #expect(body["filters"]?["state"] == "ON_APPROVAL")
        #expect(body["limit"] == 500)
        #expect(body["last_id"] == 0)
    }

    @Test func pagesByLastIDUntilAShortPage() async throws {
        let server = try ScriptedServer([{ _ in Self.page(1...500) }, { _ in Self.page(501...1000) }, { _ in Self.page(1001...1003) }])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.count == 1003)
        #expect(snapshot.pages == 3)
        let sent = try server.requests.map { try JSONParser.parse($0.body)["last_id"] }
        #expect(sent == [0, 500, 1000])
    }

    @Test(arguments: ["empty", "zero", "unchanged"])
    func stopsPagingAtEveryEndCondition(_ end: String) async throws {
        let second: (ServerRequest) -> ServerResponse
        switch end {
        case "empty": second = { _ in Self.page(nil, lastID: 0) }
        case "zero": second = { _ in Self.page(501...1000, lastID: 0) }
        default: second = { _ in Self.page(501...1000, lastID: 500) }
        }
        let server = try ScriptedServer([{ _ in Self.page(1...500) }, second])
        let snapshot = try await client(server).fetchPending()
        #expect(server.requests.count == 2)
        #expect(snapshot.requests.count == (end == "empty" ? 500 : 1000))
        if end == "unchanged" { #expect(snapshot.warnings.contains { $0.contains("did not advance") }) }
    }

    @Test func aPageThatRepeatsItemsStopsInsteadOfLoopingAndKeepsEachOnce() async throws {
        let server = try ScriptedServer(fallback: { _ in Self.page(1...500, lastID: 500) })
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.count == 500)
        #expect(server.requests.count == 2)
    }

    @Test func acceptsCounterAsAStringAndIntegersAsStrings() async throws {
        var item = Self.item(7)
        if case .object(var members) = item {
            members["cancellation_id"] = "7"
            members["unknown_new_field"] = ["nested": true]
            item = .object(members)
        }
        let body: JSONValue = ["result": [item], "last_id": "7", "counter": "1"]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.map(\.id) == ["7"])
        #expect(snapshot.requests.first?.raw["unknown_new_field"]?["nested"] == true)
    }

    @Test(arguments: [
        ("2026-11-23T20:00:00Z", 0.0), ("2026-11-23T20:00:00.5Z", 0.5), ("2026-11-23T20:00:00.123Z", 0.123),
        ("2026-11-23T20:00:00.116114Z", 0.116114), ("2026-11-23T23:00:00+03:00", 0.0),
    ])
    func readsDatesWithAnyNumberOfFractionalDigits(_ text: String, _ fraction: Double) async throws {
        let body: JSONValue = ["result": [Self.item(1, deadline: text)], "last_id": 1]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let request = try #require(try await client(server).fetchPending().requests.first)
        #expect(abs(request.deadline.timeIntervalSince1970 - (1_795_464_000 + fraction)) < 1e-5)
    }

    @Test func anItemWithoutADeadlineIsSkippedWithAWarningNamingIt() async throws {
        var broken = Self.item(2)
        if case .object(var members) = broken {
            members["auto_approve_date"] = nil
            broken = .object(members)
        }
        let body: JSONValue = ["result": [Self.item(1), broken], "last_id": 2]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.map(\.id) == ["1"])
        #expect(snapshot.warnings.contains { $0.contains("request 2") && $0.contains("auto_approve_date") })
        // Still listed: the tracker must not take request 2 for gone.
        #expect(snapshot.skippedIDs == ["2"])
        #expect(snapshot.complete)
    }

    @Test func anItemWithAnIDAsAStringIsSkippedUnderTheIDItsDecodingWouldGive() async throws {
        let broken: JSONValue = ["cancellation_id": " 9 ", "posting_number": "P-9", "auto_approve_date": "tomorrow"]
        let body: JSONValue = ["result": [Self.item(1), broken], "last_id": 9]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let snapshot = try await client(server).fetchPending()
        let decoded = try OzonWire.request(from: Self.item(9), source: "ozon-main")
        #expect(snapshot.skippedIDs == [decoded.id])
        #expect(snapshot.complete)
    }

    @Test(arguments: [["cancellation_id": "nine", "posting_number": "P-9"], ["posting_number": "P-9"], "P-9"] as [JSONValue])
    func anItemWithoutAReadableIDMakesTheListingIncomplete(_ broken: JSONValue) async throws {
        let body: JSONValue = ["result": [Self.item(1), broken], "last_id": 1]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let snapshot = try await client(server).fetchPending()
        #expect(snapshot.requests.map(\.id) == ["1"])
        #expect(snapshot.skippedIDs.isEmpty)
        #expect(!snapshot.complete)
    }

    @Test func aDecidedRequestIsResolvedEvenWithoutAnAutoApproveDate() async throws {
        func decided(_ id: Int64, _ state: String, approved: JSONValue) -> JSONValue {
            guard case .object(var members) = Self.item(id, state: state) else { return nil }
            members["auto_approve_date"] = nil
            members["approve_date"] = approved
            return .object(members)
        }
        let body: JSONValue = [
            "result": [decided(1, "APPROVED", approved: "2026-11-23T19:00:00Z"), decided(2, "REJECTED", approved: nil)],
            "last_id": 2,
        ]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let asked = try [1, 2].map { id in try OzonWire.request(from: Self.item(Int64(id)), source: "ozon-main") }
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        #expect(outcomes[asked[0].key] == .resolved(.approved, at: Timestamp.parse("2026-11-23T19:00:00Z")))
        #expect(outcomes[asked[1].key] == .resolved(.rejected, at: nil))
    }

    @Test func aLookupThatListsAnUnreadableItemCallsNothingInItsBatchVanished() async throws {
        var pendingWithoutDeadline = Self.item(2)
        if case .object(var members) = pendingWithoutDeadline {
            members["auto_approve_date"] = nil
            pendingWithoutDeadline = .object(members)
        }
        let body: JSONValue = ["result": [pendingWithoutDeadline, ["posting_number": "P-3"]], "last_id": 2]
        let server = try ScriptedServer([{ _ in .json(body.serializedData()) }])
        let asked = try [1, 2].map { id in try OzonWire.request(from: Self.item(Int64(id)), source: "ozon-main") }
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        // 1 is not listed, but the item without an id could be it; 2 is listed pending but cannot be decoded.
        #expect(outcomes.isEmpty)
    }

    @Test func credentialsEchoedInAnErrorNeverReachTheMessage() async throws {
        // A proxy that repeats the request's headers in its error, as JSON and as plain text
        // with the key straddling the end of the excerpt.
        let server = try ScriptedServer([
            { request in
                let echo = "Client-Id \(request.header("Client-Id") ?? "") with Api-Key \(request.header("Api-Key") ?? "")"
                return .json(status: 403, text: #"{"code": 7, "message": "\#(echo) is not allowed", "details": "\#(echo)"}"#)
            },
            { request in
                .text(status: 400, String(repeating: "x", count: 155) + (request.header("Api-Key") ?? "").uppercased() + " tail")
            },
        ])
        for _ in 0..<2 {
            let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
            let text = try #require(error).description
            #expect(text.contains("<redacted>"), "\(text)")
            #expect(!text.lowercased().contains("key-o"), "\(text)")
            #expect(!text.contains("100001"), "\(text)")
        }
    }

    @Test(arguments: [
        (#"{"code": 3, "message": "invalid limit", "details": [{"typeUrl": "x", "value": "y"}]}"#, 400),
        (#"{"code": 16, "message": "Client-Id and Api-Key headers are required", "details": "no headers"}"#, 401),
    ])
    func errorBodiesBecomeMessagesNamingSourceStatusCodeAndMessage(_ body: String, _ status: Int) async throws {
        let server = try ScriptedServer(fallback: { _ in .json(status: status, text: body) })
        let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
        let text = try #require(error).description
        #expect(text.contains("ozon-main"))
        #expect(text.contains("HTTP \(status)"))
        #expect(text.contains(status == 400 ? "code 3: invalid limit" : "code 16: Client-Id and Api-Key headers are required"))
        #expect(!text.contains("key-ozon-secret"))
        #expect(server.requests.count == 1)  // neither 400 nor 401 is retried within a poll
        #expect(error?.kind == (status == 401 ? .auth : .api))
    }

    @Test func retriesRateLimitsAndServerErrorsThenSucceeds() async throws {
        let server = try ScriptedServer([
            { _ in .json(status: 429, text: #"{"code": 8, "message": "You have reached request rate limit per second"}"#, headers: ["Retry-After": "0"]) },
            { _ in .json(status: 429, text: #"{"code": 8, "message": "rate limit"}"#) },
            { _ in .text(status: 503, "busy") },
            { _ in Self.page(1...2) },
        ])
        let snapshot = try await client(server, retry: RetryPolicy(maxAttempts: 4, initialDelay: 0.01, maxDelay: 0.05)).fetchPending()
        #expect(snapshot.requests.count == 2)
        #expect(server.requests.count == 4)
    }

    @Test func givesUpAfterTheLastAttemptWithTheLastError() async throws {
        let server = try ScriptedServer(fallback: { _ in .text(status: 502, "bad gateway") })
        let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
        #expect(error?.kind == .server)
        #expect(error?.status == 502)
        #expect(server.requests.count == 3)
    }

    @Test func malformedJSONIsADecodingErrorNamingTheSource() async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: #"{"result": [{"cancellation_id": 1,"#) })
        let error = await #expect(throws: PollError.self) { try await client(server).fetchPending() }
        #expect(error?.kind == .decoding)
        #expect(error?.description.contains("ozon-main") == true)
    }

    @Test func looksUpOutcomesByPostingNumberWithStateAll() async throws {
        let server = try ScriptedServer([
            { _ in
                let body: JSONValue = [
                    "result": [Self.item(1, state: "APPROVED"), Self.item(2, state: "REJECTED"), Self.item(4, state: "ON_APPROVAL")],
                    "last_id": 4,
                ]
                return .json(body.serializedData())
            }
        ])
        let asked = try [1, 2, 3, 4].map { id in try OzonWire.request(from: Self.item(Int64(id)), source: "ozon-main") }
        let outcomes = try await client(server).lookupOutcomes(of: asked)
        #expect(outcomes[asked[0].key] == .resolved(.approved, at: nil))
        #expect(outcomes[asked[1].key] == .resolved(.rejected, at: nil))
        #expect(outcomes[asked[2].key] == .resolved(.vanished, at: nil))
        guard case .stillPending(let still)? = outcomes[asked[3].key] else {
            Issue.record("expected still pending")
            return
        }
        #expect(still.id == "4")
        let body = try JSONParser.parse(try #require(server.requests.first).body)
        #expect(body["filters"]?["state"] == "ALL")
        #expect(body["filters"]?["posting_number"] == ["P-1", "P-2", "P-3", "P-4"])
    }
}
