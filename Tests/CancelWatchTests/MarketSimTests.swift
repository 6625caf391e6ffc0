import CancelWatch
import Foundation
import HTTPServing
import MarketSim
import Testing

extension JSONValue {
    /// The array element at `index`, or nil.
    fileprivate subscript(item index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }
}

/// Drives a simulator in-process (no socket) on a manual clock.
struct SimHarness {
    let clock: ManualClock
    let sim: MarketSimulator

    init(_ scenario: SimScenario = .standard) throws {
        clock = ManualClock()
        sim = try MarketSimulator(scenario: scenario, clock: clock)
    }

    func ozon(
        _ body: JSONValue, clientID: String? = "100001", apiKey: String? = "sim-ozon-key-1",
        path: String = "/v2/conditional-cancellation/list"
    ) -> (status: Int, json: JSONValue?, response: ServerResponse) {
        var headers = HTTPHeaderFields()
        if let clientID { headers["Client-Id"] = clientID }
        if let apiKey { headers["Api-Key"] = apiKey }
        headers["Content-Type"] = "application/json"
        let response = sim.handle(ServerRequest(method: "POST", target: path, headers: headers, body: body.serializedData()))
        return (response.status, try? JSONParser.parse(response.body), response)
    }

    static func redRequest(
        _ query: [(String, String)], appKey: String = "sim-red-key", appSecret: String = "sim-red-secret", timestamp: String = "1764000000",
        path: String = "/ark/open_api/v0/packages/canceling/list", sign: String? = nil
    ) -> ServerRequest {
        let signature = sign ?? RedSigner.sign(path: path, query: query, appKey: appKey, timestamp: timestamp, appSecret: appSecret)
        let encoded = query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.1)" }
        let target = encoded.isEmpty ? path : path + "?" + encoded.joined(separator: "&")
        return ServerRequest(
            method: "GET", target: target, headers: ["app-key": appKey, "timestamp": timestamp, "sign": signature])
    }

    func red(_ query: [(String, String)], appKey: String = "sim-red-key", appSecret: String = "sim-red-secret", sign: String? = nil)
        -> (status: Int, json: JSONValue?, response: ServerResponse)
    {
        let response = sim.handle(Self.redRequest(query, appKey: appKey, appSecret: appSecret, sign: sign))
        return (response.status, try? JSONParser.parse(response.body), response)
    }

    /// Every Ozon item for the filters, following last_id to the end.
    func ozonAll(state: String, clientID: String, apiKey: String, limit: Int64 = 500) -> (items: [JSONValue], pages: Int) {
        var items: [JSONValue] = []
        var lastID: Int64 = 0
        var pages = 0
        while pages < 100 {
            let page = ozon(["filters": ["state": .string(state)], "limit": .integer(limit), "last_id": .integer(lastID)], clientID: clientID, apiKey: apiKey)
            pages += 1
            let result = page.json?["result"]?.arrayValue ?? []
            if result.isEmpty { break }
            items += result
            lastID = page.json?["last_id"]?.lenientInt64 ?? 0
        }
        return (items, pages)
    }
}

/// A small scenario with known ids and times (offsets in seconds from the start).
func smallScenario(unit: SimAuditTimeUnit = .milliseconds) -> SimScenario {
    SimScenario(
        ozonAccounts: [SimOzonAccount(name: "o", clientID: "500", apiKey: "k")],
        redAccounts: [SimRedAccount(name: "r", appKey: "ak", appSecret: "sec", auditTimeUnit: unit)],
        requests: [
            .ozon(account: "500", created: -600, deadline: 120, cancellationID: 11, postingNumber: "1111-0001-1"),
            .ozon(account: "500", created: -600, deadline: 3600, resolve: (at: 30, .approved), cancellationID: 12, postingNumber: "1111-0002-1"),
            .ozon(account: "500", created: -600, deadline: 3600, resolve: (at: -10, .rejected), cancellationID: 13, postingNumber: "1111-0003-1"),
            .ozon(account: "500", created: 60, deadline: 7200, initiator: "OZON", cancellationID: 14, postingNumber: "1111-0004-1"),
            .ozon(account: "500", created: -600, deadline: 7200, vanishAt: 90, cancellationID: 15, postingNumber: "1111-0005-1"),
            .red(account: "ak", created: -60, deadline: 3600, packageID: "P1"),
            .red(account: "ak", logistics: "red_box", created: -60, deadline: 100, packageID: "P2"),
            .red(account: "ak", created: -7200, deadline: -3600, resolve: (at: -5000, .rejected), packageID: "P3"),
            .red(account: "ak", created: -30, deadline: 7200, packageID: "P3"),
        ])
}

@Suite struct MarketSimOzonTests {
    @Test func rejectsMissingCredentialsWith401Code16() throws {
        let h = try SimHarness()
        for (clientID, apiKey) in [(nil, "sim-ozon-key-1"), ("100001", nil), (nil, nil), ("", "")] as [(String?, String?)] {
            let answer = h.ozon(["limit": 10], clientID: clientID, apiKey: apiKey)
            #expect(answer.status == 401)
            #expect(answer.json == ["code": 16, "message": "Client-Id and Api-Key headers are required", "details": []])
        }
    }

    @Test func rejectsAnUnknownClientOrAWrongKeyWith403() throws {
        let h = try SimHarness()
        for (clientID, apiKey) in [("999999", "sim-ozon-key-1"), ("100001", "sim-ozon-key-2")] {
            let answer = h.ozon(["limit": 10], clientID: clientID, apiKey: apiKey)
            #expect(answer.status == 403)
            #expect(answer.json?["code"] == 7)
            #expect(answer.json?["message"]?.stringValue?.isEmpty == false)
        }
    }

    @Test(arguments: [nil, 0, -1, 501, 10_000] as [Int64?])
    func refusesALimitOutside1To500WithCode3(limit: Int64?) throws {
        let h = try SimHarness()
        let body: JSONValue = limit.map { ["limit": .integer($0)] } ?? ["filters": ["state": "ALL"]]
        let answer = h.ozon(body)
        #expect(answer.status == 400)
        #expect(answer.json?["code"] == 3)
        #expect(answer.json?["message"]?.stringValue?.contains("500") == true)
        #expect(h.ozon(["limit": 500]).status == 200)
        #expect(h.ozon(["limit": 1]).status == 200)
    }

    @Test func refusesABodyThatIsNotJSONAndAnUnknownState() throws {
        let h = try SimHarness()
        let response = h.sim.handle(
            ServerRequest(
                method: "POST", target: "/v2/conditional-cancellation/list",
                headers: ["Client-Id": "100001", "Api-Key": "sim-ozon-key-1"], body: Data("{limit:".utf8)))
        #expect(response.status == 400)
        #expect(h.ozon(["limit": 10, "filters": ["state": "PENDING"]]).status == 400)
    }

    @Test func pagesByLastIDThroughEveryPendingRequestExactlyOnce() throws {
        let h = try SimHarness()
        let (items, pages) = h.ozonAll(state: "ON_APPROVAL", clientID: "100002", apiKey: "sim-ozon-key-2")
        let ids = items.compactMap { $0["cancellation_id"]?.lenientInt64 }
        #expect(ids.count == 523)
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(pages == 3, "500, 23, then an empty page")
        let first = h.ozon(["filters": ["state": "ON_APPROVAL"], "limit": 500], clientID: "100002", apiKey: "sim-ozon-key-2").json
        #expect(first?["last_id"]?.lenientInt64 == ids[499])
        let end = h.ozon(["filters": ["state": "ON_APPROVAL"], "limit": 500, "last_id": .integer(ids.last!)], clientID: "100002", apiKey: "sim-ozon-key-2").json
        #expect(end?["result"] == [])
        #expect(end?["last_id"] == 0)
    }

    @Test func counterCountsPendingRequestsOnlyWhenAskedFor() throws {
        let h = try SimHarness(smallScenario())
        let answer = h.ozon(["limit": 1, "with": ["counter": true]], clientID: "500", apiKey: "k")
        #expect(answer.json?["counter"] == 3, "11, 12 and 15 are pending at the start; 14 has not appeared")
        #expect(h.ozon(["limit": 1], clientID: "500", apiKey: "k").json?["counter"] == nil)
    }

    @Test func stateFiltersSelectPendingApprovedAndRejected() throws {
        let h = try SimHarness(smallScenario())
        func ids(_ state: String) -> [Int64] {
            h.ozonAll(state: state, clientID: "500", apiKey: "k").items.compactMap { $0["cancellation_id"]?.lenientInt64 }
        }
        #expect(ids("ALL") == [11, 12, 13, 15])
        #expect(ids("ON_APPROVAL") == [11, 12, 15])
        #expect(ids("REJECTED") == [13])
        #expect(ids("APPROVED") == [])
        h.clock.advance(by: 61)
        #expect(ids("ON_APPROVAL") == [11, 14, 15])
        #expect(ids("APPROVED") == [12])
        h.clock.advance(by: 30)
        #expect(ids("ALL") == [11, 12, 13, 14], "15 vanished at +90s")
    }

    @Test func postingNumberAndInitiatorFiltersFindOneRequest() throws {
        let h = try SimHarness(smallScenario())
        h.clock.advance(by: 60)
        let byPosting = h.ozon(
            ["filters": ["posting_number": ["1111-0002-1"], "state": "ALL"], "limit": 10], clientID: "500", apiKey: "k").json
        let items = try #require(byPosting?["result"]?.arrayValue)
        #expect(items.count == 1)
        #expect(items[0]["state"]?["state"] == "APPROVED")
        #expect(items[0]["approve_comment"]?.stringValue?.isEmpty == false)
        let byInitiator = h.ozon(["filters": ["cancellation_initiator": ["OZON"]], "limit": 10], clientID: "500", apiKey: "k").json
        #expect(byInitiator?["result"]?.arrayValue?.compactMap { $0["cancellation_id"]?.lenientInt64 } == [14])
    }

    @Test func itemsHaveExactlyTheVendorFieldsAndDatesWithVaryingFractions() throws {
        let h = try SimHarness()
        let items = h.ozonAll(state: "ALL", clientID: "100001", apiKey: "sim-ozon-key-1").items
        let expected: Set<String> = [
            "approve_comment", "approve_date", "auto_approve_date", "cancellation_id", "cancellation_initiator",
            "cancellation_reason", "cancellation_reason_message", "cancelled_at", "order_date", "posting_number", "state",
            "tpl_integration_type", "source_id",
        ]
        var fractionLengths: Set<Int> = []
        for item in items {
            #expect(Set(item.objectValue?.keys.map { $0 } ?? []) == expected)
            #expect(Set(item["state"]?.objectValue?.keys.map { $0 } ?? []) == ["id", "name", "state"])
            #expect(Set(item["cancellation_reason"]?.objectValue?.keys.map { $0 } ?? []) == ["id", "name"])
            let date = try #require(item["auto_approve_date"]?.stringValue)
            #expect(Timestamp.parse(date) != nil)
            #expect(date.hasSuffix("Z"))
            fractionLengths.insert(date.contains(".") ? date.split(separator: ".")[1].count - 1 : 0)
            if item["state"]?["state"] == "ON_APPROVAL" { #expect(item["approve_date"] == .null) }
        }
        #expect(fractionLengths == [0, 3, 6])
        #expect(items.contains { $0["cancellation_reason"]?["name"] == "Покупатель передумал" })
    }

    @Test func autoApprovesAtTheDeadlineWithApproveDateEqualToAutoApproveDate() throws {
        let h = try SimHarness(smallScenario())
        func request11() -> JSONValue? {
            h.ozon(["filters": ["posting_number": ["1111-0001-1"]], "limit": 1], clientID: "500", apiKey: "k").json?["result"]?[item: 0]
        }
        h.clock.advance(by: 119)
        #expect(request11()?["state"]?["state"] == "ON_APPROVAL")
        h.clock.advance(by: 1)
        let item = try #require(request11())
        #expect(item["state"]?["state"] == "APPROVED")
        #expect(item["approve_date"] == item["auto_approve_date"])
        #expect(item["approve_comment"] == "")
    }

    @Test func approveAndRejectEndpointsResolvePendingRequests() throws {
        let h = try SimHarness(smallScenario())
        let approve = h.ozon(["cancellation_id": 11, "comment": "ok"], clientID: "500", apiKey: "k", path: "/v2/conditional-cancellation/approve")
        #expect(approve.status == 200)
        #expect(h.ozon(["cancellation_id": 11, "comment": "x"], clientID: "500", apiKey: "k", path: "/v2/conditional-cancellation/approve").status == 400)
        #expect(h.ozon(["cancellation_id": 12], clientID: "500", apiKey: "k", path: "/v2/conditional-cancellation/reject").status == 400)
        #expect(h.ozon(["cancellation_id": 999], clientID: "500", apiKey: "k", path: "/v2/conditional-cancellation/approve").status == 404)
        let approved = h.ozon(["filters": ["state": "APPROVED"], "limit": 10], clientID: "500", apiKey: "k").json
        #expect(approved?["result"]?[item: 0]?["cancellation_id"] == 11)
    }
}

/// The answer calls refuse as the vendors do: an unknown id, a request already decided, and
/// one whose deadline passed (decided by the marketplace itself) each get their own error.
@Suite struct MarketSimAnswerErrorTests {
    /// A signed RED audit call.
    func audit(_ h: SimHarness, _ body: JSONValue) -> JSONValue? {
        let path = "/ark/open_api/v0/packages/canceling/audit"
        let signature = RedSigner.sign(path: path, query: [], appKey: "ak", timestamp: "1764000000", appSecret: "sec")
        let response = h.sim.handle(
            ServerRequest(
                method: "PUT", target: path, headers: ["app-key": "ak", "timestamp": "1764000000", "sign": signature],
                body: body.serializedData()))
        return try? JSONParser.parse(response.body)
    }

    @Test func ozonSaysWhetherARequestIsUnknownAlreadyDecidedOrPastItsDeadline() throws {
        let h = try SimHarness(smallScenario())
        let approve = "/v2/conditional-cancellation/approve"
        #expect(h.ozon(["cancellation_id": 999], clientID: "500", apiKey: "k", path: approve).json?["code"] == 5)
        let decided = h.ozon(["cancellation_id": 13], clientID: "500", apiKey: "k", path: approve)
        #expect(decided.status == 400 && decided.json?["code"] == 9)
        h.clock.advance(by: 121)
        let late = h.ozon(["cancellation_id": 11], clientID: "500", apiKey: "k", path: approve)
        #expect(late.status == 409, "\(late.json.map { "\($0)" } ?? "")")
        #expect(late.json?["message"]?.stringValue?.contains("approved automatically") == true)
    }

    @Test func redAnswersWithItsErrorCodesForAnUnknownPackageADecidedOneAndOnePastItsDeadline() throws {
        let h = try SimHarness(smallScenario())
        #expect(audit(h, ["package_id": "P404", "audit_result": "canceled"])?["error_code"] == -2000101)
        #expect(audit(h, ["package_id": "P1", "audit_result": "refused", "audit_reason": "shipped"])?["success"] == true)
        #expect(audit(h, ["package_id": "P1", "audit_result": "canceled"])?["error_code"] == -2000202)
        h.clock.advance(by: 101)
        let late = audit(h, ["package_id": "P2", "audit_result": "refused", "audit_reason": "shipped"])
        #expect(late?["error_code"] == -2000202)
        #expect(late?["error_msg"]?.stringValue?.contains("audit time is over") == true, "\(late.map { "\($0)" } ?? "")")
    }
}

@Suite struct MarketSimRedTests {
    @Test func acceptsASignedRequestOverHTTP() async throws {
        let clock = ManualClock()
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        defer { sim.shutdown() }
        let query = [("logistics", "red_auto"), ("status", "unaudited"), ("page_no", "1"), ("page_size", "50")]
        let request = SimHarness.redRequest(query, appKey: "ak", appSecret: "sec")
        let response = try await CurlHTTPTransport(threads: 1).send(
            HTTPRequest(
                method: "GET", url: sim.baseURL + request.target,
                headers: request.headers.map { HTTPHeader($0.name, $0.value) }))
        #expect(response.status == 200)
        let json = try JSONParser.parse(response.body)
        #expect(json["success"] == true)
        #expect(json["error_code"] == 0)
        #expect(json["data"]?["package_list"]?.arrayValue?.compactMap { $0["package_id"]?.stringValue } == ["P1", "P3"])
    }

    @Test func refusesAWrongSignatureAnUnknownKeyOrMissingHeadersWithAnEnvelopeOnHTTP200() throws {
        let h = try SimHarness()
        let wrongSign = h.red([("status", "unaudited")], sign: "0123456789abcdef0123456789abcdef")
        #expect(wrongSign.status == 200)
        #expect(wrongSign.json?["success"] == false)
        #expect(wrongSign.json?["error_code"] == 10003)
        #expect(wrongSign.json?["data"] == .null)
        let wrongSecret = h.red([("status", "unaudited")], appSecret: "not-the-secret")
        #expect(wrongSecret.json?["error_code"] == 10003)
        #expect(h.red([], appKey: "nobody").json?["error_code"] == 10002)
        let bare = h.sim.handle(ServerRequest(method: "GET", target: "/ark/open_api/v0/packages/canceling/list"))
        #expect(bare.status == 200)
        #expect((try? JSONParser.parse(bare.body))?["error_code"] == 10001)
        #expect(h.red([("status", "unaudited")]).json?["success"] == true)
    }

    @Test func signsOverDecodedQueryValues() throws {
        let h = try SimHarness()
        // A value that needs percent-encoding on the wire; the signature covers the decoded text.
        let answer = h.red([("status", "unaudited"), ("start_time", "0"), ("end_time", "9999999999")])
        #expect(answer.json?["success"] == true)
    }

    @Test func refusesInvalidParametersWithCode10005() throws {
        let h = try SimHarness()
        for query in [[("page_size", "101")], [("page_no", "0")], [("logistics", "red_air")], [("status", "pending")]] {
            #expect(h.red(query).json?["error_code"] == 10005)
        }
    }

    @Test func pagesByPageNoUpToTotalPage() throws {
        let h = try SimHarness()
        var seen: [String] = []
        var page = 1
        var totalPages = 1
        var total = 0
        repeat {
            let data = try #require(
                h.red([("logistics", "red_auto"), ("status", "unaudited"), ("page_no", String(page))]).json?["data"])
            totalPages = Int(data["total_page"]?.lenientInt64 ?? 0)
            total = Int(data["total_number"]?.lenientInt64 ?? 0)
            #expect(data["current_page"]?.lenientInt64 == Int64(page))
            #expect(data["page_size"] == 50)
            seen += data["package_list"]?.arrayValue?.map { "\($0["package_id"]!.stringValue!)@\($0["cancel_time"]!.lenientInt64!)" } ?? []
            page += 1
        } while page <= totalPages
        #expect(total > 50)
        #expect(totalPages == (total + 49) / 50)
        #expect(seen.count == total)
        #expect(Set(seen).count == total)
    }

    @Test func maxAuditTimeCountsDownInMilliseconds() throws {
        let h = try SimHarness(smallScenario(unit: .milliseconds))
        func left() -> Int64? {
            h.red([("status", "unaudited")], appKey: "ak", appSecret: "sec").json?["data"]?["package_list"]?.arrayValue?
                .first { $0["package_id"] == "P1" }?["max_audit_time"]?.lenientInt64
        }
        #expect(left() == 3_600_000)
        h.clock.advance(by: 1.5)
        #expect(left() == 3_598_500)
        h.clock.advance(by: 3598.5)
        #expect(left() == nil, "P1 auto-approved at its deadline")
    }

    @Test func maxAuditTimeCountsDownInSecondsForAnAccountSetToSeconds() throws {
        let h = try SimHarness(smallScenario(unit: .seconds))
        func left() -> Int64? {
            h.red([("status", "unaudited")], appKey: "ak", appSecret: "sec").json?["data"]?["package_list"]?[item: 0]?["max_audit_time"]?
                .lenientInt64
        }
        #expect(left() == 3600)
        h.clock.advance(by: 100.4)
        #expect(left() == 3499)
    }

    @Test func auditedItemsCarryResultTimeAndReasonAndAutoCancelAtTheDeadline() throws {
        let h = try SimHarness(smallScenario())
        h.clock.advance(by: 100)
        let list = try #require(
            h.red([("logistics", "red_box"), ("status", "audited")], appKey: "ak", appSecret: "sec").json?["data"]?["package_list"]?
                .arrayValue)
        #expect(list.count == 1)
        let item = list[0]
        #expect(item["package_id"] == "P2")
        #expect(item["status"] == "audited")
        #expect(item["audit_result"] == "canceled")
        #expect(item["audit_time"]?.lenientInt64 == Int64(floor(h.sim.startedAt.timeIntervalSince1970 + 100)))
        #expect(item["audit_reason"]?.stringValue?.isEmpty == false)
        #expect(item["max_audit_time"] == nil)
    }

    @Test func listsTheSamePackageTwiceWhenItWasAskedToCancelTwice() throws {
        let h = try SimHarness(smallScenario())
        let list = try #require(h.red([("logistics", "red_auto")], appKey: "ak", appSecret: "sec").json?["data"]?["package_list"]?.arrayValue)
        let p3 = list.filter { $0["package_id"] == "P3" }
        #expect(p3.count == 2)
        #expect(Set(p3.compactMap { $0["status"]?.stringValue }) == ["audited", "unaudited"])
        #expect(Set(p3.compactMap { $0["cancel_time"]?.lenientInt64 }).count == 2)
        #expect(p3.first { $0["status"] == "audited" }?["audit_result"] == "refused")
    }

    @Test func auditEndpointRecordsTheSellersDecision() throws {
        let h = try SimHarness(smallScenario())
        let path = "/ark/open_api/v0/packages/canceling/audit"
        var request = SimHarness.redRequest([], appKey: "ak", appSecret: "sec", path: path)
        request.method = "PUT"
        request.body = Data(#"{"package_id":"P1","audit_result":"refused","audit_reason":"已发货"}"#.utf8)
        let response = h.sim.handle(request)
        #expect((try? JSONParser.parse(response.body))?["success"] == true)
        let item = h.red([("status", "audited")], appKey: "ak", appSecret: "sec").json?["data"]?["package_list"]?.arrayValue?.first {
            $0["package_id"] == "P1"
        }
        #expect(item?["audit_result"] == "refused")
        #expect(item?["audit_reason"] == "已发货")
    }
}

@Suite struct MarketSimTimelineTests {
    @Test func requestsAppearAndVanishOnSchedule() throws {
        let h = try SimHarness(smallScenario())
        func pendingIDs() -> [String] {
            h.sim.requests().filter { $0.marketplace == .ozon && $0.state == "pending" }.map(\.id).sorted()
        }
        #expect(pendingIDs() == ["11", "12", "15"])
        h.clock.advance(by: 60)
        #expect(pendingIDs() == ["11", "14", "15"])
        h.clock.advance(by: 30)
        #expect(pendingIDs() == ["11", "14"])
        #expect(h.sim.requests().first { $0.id == "15" }?.state == "hidden")
    }

    @Test func addedAndResolvedRequestsShowUpInTheListing() throws {
        let h = try SimHarness(smallScenario())
        let added = try h.sim.addRequest(.ozon(account: "500", created: 0, deadline: 300, cancellationID: 99))
        #expect(added.state == "pending")
        #expect(added.deadline == h.clock.now().addingTimeInterval(300))
        #expect(h.sim.resolve(.ozon, id: "99", outcome: .rejected, comment: "нет"))
        let item = h.ozon(["filters": ["state": "REJECTED"], "limit": 10], clientID: "500", apiKey: "k").json?["result"]?.arrayValue?.first {
            $0["cancellation_id"] == 99
        }
        #expect(item?["approve_comment"] == "нет")
        #expect(h.sim.resolve(.red, id: "P1", outcome: nil))
        #expect(h.sim.requests().first { $0.id == "P1" }?.state == "hidden")
        #expect(throws: SimScenarioError.self) { try h.sim.addRequest(.ozon(account: "nobody", created: 0, deadline: 1)) }
    }

    @Test func theDefaultScenarioIsDeterministicAndHasAlertsDueSoon() throws {
        let a = try SimHarness()
        let b = try SimHarness()
        #expect(a.sim.requests().map(\.id) == b.sim.requests().map(\.id))
        let start = a.clock.now()
        let dueWithinThreeMinutes = a.sim.requests().filter {
            $0.state == "pending" && $0.deadline.timeIntervalSince(start) <= 180
        }
        #expect(dueWithinThreeMinutes.count >= 5)
        #expect(Set(dueWithinThreeMinutes.map(\.marketplace)) == [.ozon, .red])
        a.clock.advance(by: 60)
        let decidedBySeller = a.sim.requests().filter { $0.decidedAt.map { $0 > start } == true && !$0.automatic }
        #expect(decidedBySeller.count >= 4)
        a.clock.advance(by: 120)
        #expect(a.sim.requests().contains { $0.automatic && $0.decidedAt.map { $0 > start } == true })
    }

    @Test func theConfigSnippetListsEveryAccountWithTheBaseURL() throws {
        let snippet = SimScenario.standard.configSourcesYAML(baseURL: "http://127.0.0.1:4321")
        #expect(snippet.hasPrefix("sources:\n"))
        for text in ["client_id: \"100001\"", "api_key: \"sim-ozon-key-1\"", "client_id: \"100002\"", "api_key: \"sim-ozon-key-2\"",
            "app_key: \"sim-red-key\"", "app_secret: \"sim-red-secret\"", "logistics: [red_auto, red_box]",
            "max_audit_time_unit: milliseconds", "base_url: \"http://127.0.0.1:4321\""]
        {
            #expect(snippet.contains(text), "\(text)")
        }
    }
}

@Suite struct MarketSimScenarioFileTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("scenario-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func loadsAScenarioFileWithRelativeTimesAndGeneratedRequests() throws {
        let path = try write(
            """
            {
              "seed": 5,
              "ozon_accounts": [{"name": "o", "client_id": "1", "api_key": "k"}],
              "red_accounts": [{"app_key": "ak", "app_secret": "s", "max_audit_time_unit": "seconds"}],
              "requests": [
                {"account": "1", "created": "-30m", "deadline": "+2m", "resolve": {"at": "+90s", "outcome": "approved"}},
                {"marketplace": "red", "logistics": "red_box", "created": -600, "deadline": "1h", "reason": "用户不想要了"},
              ],
              "generate": [{"marketplace": "ozon", "account": "1", "count": 3, "deadline_from": "+1h", "deadline_to": "+2h"}]
            }
            """)
        let scenario = try SimScenario.load(path: path)
        #expect(scenario.requests.count == 5)
        #expect(scenario.requests[0].deadline == .relative(120))
        #expect(scenario.requests[0].created == .relative(-1800))
        #expect(scenario.requests[0].resolution == SimResolution(at: .relative(90), outcome: .approved))
        #expect(scenario.requests[1].marketplace == .red)
        #expect(scenario.redAccounts[0].auditTimeUnit == .seconds)
        let h = try SimHarness(scenario)
        #expect(h.sim.requests().count == 5)
    }

    @Test(arguments: [
        (#"{"ozon_accounts": [{"client_id": "1"}]}"#, "ozon_accounts[0].api_key"),
        (#"{"ozon_accounts": [{"client_id": "1", "api_key": "k"}], "requests": [{"deadline": "soon"}]}"#, "requests[0].deadline"),
        (#"{"ozon_accounts": [{"client_id": "1", "api_key": "k"}], "requests": [{"account": "2", "deadline": "1m"}]}"#, "requests[0].account"),
        (#"{"ozon_accounts": [{"client_id": "1", "api_key": "k"}], "requests": [{"deadline": "1m", "colour": "red"}]}"#, "requests[0].colour"),
        (#"{"red_accounts": [{"app_key": "a", "app_secret": "s", "max_audit_time_unit": "minutes"}]}"#, "red_accounts[0].max_audit_time_unit"),
    ])
    func namesTheFileAndTheFieldInErrors(json: String, field: String) throws {
        let path = try write(json)
        do {
            _ = try SimScenario.load(path: path)
            Issue.record("expected an error for \(field)")
        } catch {
            #expect(error.source == path)
            #expect(error.field == field)
            #expect(error.description.hasPrefix("\(path): \(field): "))
        }
    }

    @Test func reportsInvalidJSONWithTheFileName() throws {
        let path = try write("{ nope")
        #expect(throws: SimScenarioError.self) { try SimScenario.load(path: path) }
        do { _ = try SimScenario.load(path: path) } catch { #expect(error.description.hasPrefix(path + ": invalid JSON")) }
    }
}

@Suite struct MarketSimFaultTests {
    @Test func rateLimitWithRetryAfterAppliesToTheNextNRequestsOnly() throws {
        let h = try SimHarness()
        h.sim.addFault(SimFault(.rateLimited(retryAfter: 7), marketplace: .ozon, times: 2))
        for _ in 0..<2 {
            let answer = h.ozon(["limit": 1])
            #expect(answer.status == 429)
            #expect(answer.response.headers["Retry-After"] == "7")
            #expect(answer.json?["code"] == 8)
        }
        #expect(h.ozon(["limit": 1]).status == 200)
        #expect(h.sim.activeFaults.isEmpty)
    }

    @Test func rateLimitWithoutRetryAfterOnRED() throws {
        let h = try SimHarness()
        h.sim.addFault(SimFault(.rateLimited(retryAfter: nil), marketplace: .red))
        #expect(h.ozon(["limit": 1]).status == 200, "an Ozon request does not use up a RED fault")
        let answer = h.red([])
        #expect(answer.status == 429)
        #expect(answer.response.headers["Retry-After"] == nil)
        #expect(answer.json?["success"] == false)
        #expect(h.red([]).status == 200)
    }

    @Test(arguments: [500, 502, 503])
    func serverErrorsAnswerWithTheirStatus(status: Int) throws {
        let h = try SimHarness()
        h.sim.addFault(SimFault(.serverError(status: status)))
        #expect(h.ozon(["limit": 1]).status == status)
        #expect(h.ozon(["limit": 1]).status == 200)
    }

    @Test func aFaultScopedToAnAccountOrPathLeavesOthersAlone() throws {
        let h = try SimHarness()
        h.sim.addFault(SimFault(.serverError(status: 503), account: "100002", times: nil))
        h.sim.addFault(SimFault(.serverError(status: 500), path: "/v2/conditional-cancellation/approve", times: nil))
        #expect(h.ozon(["limit": 1]).status == 200)
        #expect(h.ozon(["limit": 1], clientID: "100002", apiKey: "sim-ozon-key-2").status == 503)
        #expect(h.ozon(["limit": 1], clientID: "100002", apiKey: "sim-ozon-key-2").status == 503, "always until cleared")
        #expect(h.ozon(["cancellation_id": 1], path: "/v2/conditional-cancellation/approve").status == 500)
        h.sim.clearFaults()
        #expect(h.ozon(["limit": 1], clientID: "100002", apiKey: "sim-ozon-key-2").status == 200)
    }

    @Test func slowAnswersCarryTheDelay() async throws {
        let clock = ManualClock()
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        defer { sim.shutdown() }
        sim.addFault(SimFault(.slow(seconds: 0.3), marketplace: .ozon))
        let transport = CurlHTTPTransport(threads: 1)
        let request = HTTPRequest(
            method: "POST", url: sim.baseURL + "/v2/conditional-cancellation/list", headers: [HTTPHeader("Client-Id", "500"), HTTPHeader("Api-Key", "k")],
            body: Data(#"{"limit": 5}"#.utf8))
        let started = Date()
        let slow = try await transport.send(request)
        #expect(slow.status == 200)
        #expect(Date().timeIntervalSince(started) >= 0.3)
        let timedOut = HTTPRequest(method: request.method, url: request.url, headers: request.headers, body: request.body, timeout: 0.2)
        sim.addFault(SimFault(.slow(seconds: 2), marketplace: .ozon))
        await #expect(throws: TransportError.self) { _ = try await transport.send(timedOut) }
    }

    @Test func malformedJSONDoesNotParse() throws {
        let h = try SimHarness()
        h.sim.addFault(SimFault(.malformedJSON))
        let answer = h.ozon(["limit": 5])
        #expect(answer.status == 200)
        #expect(answer.json == nil)
        h.sim.addFault(SimFault(.malformedJSON, marketplace: .red))
        #expect(h.red([]).json == nil)
    }

    @Test func truncatedBodyAndDroppedConnectionFailTheTransfer() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: ManualClock())
        defer { sim.shutdown() }
        let transport = CurlHTTPTransport(threads: 1)
        let request = HTTPRequest(
            method: "POST", url: sim.baseURL + "/v2/conditional-cancellation/list", headers: [HTTPHeader("Client-Id", "500"), HTTPHeader("Api-Key", "k")],
            body: Data(#"{"limit": 5}"#.utf8), timeout: 5)
        sim.addFault(SimFault(.truncatedBody))
        await #expect(throws: TransportError.self) { _ = try await transport.send(request) }
        sim.addFault(SimFault(.dropConnection))
        await #expect(throws: TransportError.self) { _ = try await transport.send(request) }
        let fine = try await transport.send(request)
        #expect(fine.status == 200)
        #expect(sim.requestCount(method: "POST", path: "/v2/conditional-cancellation/list") == 3)
        #expect(sim.requestCount(path: "/v2/conditional-cancellation/list", account: "500") == 3)
    }

    @Test func counterAsStringAndUnknownFields() throws {
        let h = try SimHarness(smallScenario())
        h.sim.addFault(SimFault(.counterAsString))
        let stringCounter = h.ozon(["limit": 5, "with": ["counter": true]], clientID: "500", apiKey: "k").json
        #expect(stringCounter?["counter"] == "3")
        h.sim.addFault(SimFault(.unknownFields, times: 2))
        let ozon = h.ozon(["limit": 5], clientID: "500", apiKey: "k").json
        #expect(ozon?["sim_unknown_top_level"] != nil)
        #expect(ozon?["result"]?[item: 0]?["sim_unknown_field"] != nil)
        let red = h.red([], appKey: "ak", appSecret: "sec").json
        #expect(red?["data"]?["sim_unknown_data_field"] != nil)
        #expect(red?["data"]?["package_list"]?[item: 0]?["sim_unknown_field"] != nil)
    }

    @Test func stuckLastIDEchoesTheRequestsCursor() throws {
        let h = try SimHarness(smallScenario())
        h.sim.addFault(SimFault(.stuckLastID, times: nil))
        let first = h.ozon(["limit": 2, "last_id": 0], clientID: "500", apiKey: "k").json
        #expect(first?["last_id"] == 0)
        #expect(first?["result"]?.arrayValue?.count == 2)
        let second = h.ozon(["limit": 2, "last_id": 11], clientID: "500", apiKey: "k").json
        #expect(second?["last_id"] == 11)
    }

    @Test func repeatedPageServesTheFirstPageWhateverTheCursor() throws {
        let h = try SimHarness()
        let first = h.ozon(["limit": 3]).json?["result"]
        h.sim.addFault(SimFault(.repeatedPage, times: nil))
        let lastID = first?[item: 2]?["cancellation_id"] ?? 0
        #expect(h.ozon(["limit": 3, "last_id": lastID]).json?["result"] == first)
        let page1 = h.red([("page_no", "1"), ("status", "unaudited")]).json?["data"]?["package_list"]
        let page2 = h.red([("page_no", "2"), ("status", "unaudited")]).json?["data"]?["package_list"]
        #expect(page1 == page2)
    }
}

@Suite struct MarketSimControlTests {
    func send(_ sim: MarketSimulator, _ method: String, _ path: String, _ body: String? = nil) async throws -> (Int, JSONValue?) {
        let response = try await CurlHTTPTransport(threads: 1).send(
            HTTPRequest(method: method, url: sim.baseURL + path, body: body.map { Data($0.utf8) }))
        return (response.status, try? JSONParser.parse(response.body))
    }

    @Test func faultsRequestsAndStateCanBeDrivenOverHTTP() async throws {
        let clock = ManualClock()
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        defer { sim.shutdown() }
        let (faultStatus, faults) = try await send(
            sim, "POST", "/_sim/faults", #"{"kind": "rate_limit", "retry_after": 2, "times": 3, "marketplace": "ozon"}"#)
        #expect(faultStatus == 200)
        #expect(faults?["faults"]?[item: 0]?["remaining"] == 3)
        #expect(sim.activeFaults == [SimFault(.rateLimited(retryAfter: 2), marketplace: .ozon, times: 3)])
        #expect(try await send(sim, "POST", "/_sim/faults", #"{"kind": "teleport"}"#).0 == 400)
        #expect(try await send(sim, "POST", "/_sim/faults", #"{"faults": [{"kind": "slow", "delay": "1s", "always": true}]}"#).0 == 200)
        #expect(sim.activeFaults.count == 2)
        #expect(try await send(sim, "DELETE", "/_sim/faults").0 == 200)
        #expect(sim.activeFaults.isEmpty)

        let (addStatus, added) = try await send(
            sim, "POST", "/_sim/requests", #"{"marketplace": "ozon", "account": "500", "created": "now", "deadline": "+2m", "cancellation_id": 77}"#)
        #expect(addStatus == 201)
        #expect(added?["requests"]?[item: 0]?["id"] == "77")
        #expect(try await send(sim, "POST", "/_sim/requests", #"{"marketplace": "ozon", "deadline": "never"}"#).0 == 400)

        #expect(try await send(sim, "POST", "/_sim/resolve", #"{"marketplace": "ozon", "id": "77", "outcome": "rejected"}"#).0 == 200)
        #expect(try await send(sim, "POST", "/_sim/resolve", #"{"marketplace": "ozon", "id": "77", "outcome": "rejected"}"#).0 == 404)

        let (_, state) = try await send(sim, "GET", "/_sim/state?marketplace=ozon&state=rejected")
        let ids = state?["requests"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        #expect(ids?.sorted() == ["13", "77"])
        #expect(state?["accounts"]?["ozon"]?[item: 0]?["client_id"] == "500")
        #expect(state?["request_counts"]?["by_endpoint"] == [:], "control requests are not counted")
    }
}
