import Foundation
import Testing

@testable import CancelWatch

/// `reason_message`: Ozon's `cancellation_reason_message`, the initiator's own words beside
/// the reason picked from Ozon's list, as rules, templates and rule tests read it.
@Suite struct ReasonMessageFieldTests {
    static let words = "Нашёл дешевле в другом магазине"

    static func ozonItem(_ id: Int64, message: JSONValue?) -> JSONValue {
        var members: [String: JSONValue] = [
            "cancellation_id": .integer(id), "posting_number": .string("P-\(id)"), "auto_approve_date": "2026-11-23T20:00:00Z",
            "cancellation_initiator": "CLIENT", "cancellation_reason": ["id": 5, "name": "Покупатель передумал"],
            "state": ["id": 1, "name": "На согласовании", "state": "ON_APPROVAL"],
        ]
        members["cancellation_reason_message"] = message
        return .object(members)
    }

    /// Requests as the Ozon client reads them from a list page.
    static func ozonRequests(_ items: [JSONValue]) throws -> [CancellationRequest] {
        let body: JSONValue = ["result": .array(items), "last_id": 3, "counter": .integer(Int64(items.count))]
        return try OzonWire.decodePage(body.serializedData()).items.map { item in try OzonWire.request(from: item, source: "ozon-main") }
    }

    static func redRequest() throws -> CancellationRequest {
        let item: JSONValue = [
            "package_id": "P124394374937984", "cancel_time": 1_763_999_900, "status": "unaudited", "logistics": "red_auto",
            "max_audit_time": 3_600_000, "cancel_reason": "用户不想要了",
        ]
        return try RedWire.pendingRequest(
            from: item, source: "red-shop", sentAt: Date(timeIntervalSince1970: 1_764_000_000), unit: .milliseconds, logistics: "red_auto")
    }

    // MARK: The wire reader

    @Test func ozonsReasonMessageIsReadBesideTheReasonsName() throws {
        let requests = try Self.ozonRequests([
            Self.ozonItem(1, message: .string(Self.words)), Self.ozonItem(2, message: .null), Self.ozonItem(3, message: nil),
        ])
        #expect(requests.map(\.reasonMessage) == [Self.words, "", ""])
        #expect(requests.map(\.reason) == Array(repeating: "Покупатель передумал", count: 3))
    }

    @Test func theVendorsOwnExampleGivesItsReasonMessage() throws {
        let page = try OzonWire.decodePage(try ScriptedServer.fixture("ozon-seed-response.json"))
        let request = try OzonWire.request(from: try #require(page.items.first), source: "ozon-main")
        #expect(request.reasonMessage == "string")
    }

    @Test func aXiaohongshuRequestHasNoReasonMessage() throws {
        let request = try Self.redRequest()
        #expect(request.reasonMessage == "")
        #expect(request.reason == "用户不想要了")
    }

    // MARK: Rules

    @Test func aRuleOnTheReasonMessageMatchesOnlyTheRequestThatSaysIt() throws {
        let ozon = try Self.ozonRequests([Self.ozonItem(1, message: .string(Self.words)), Self.ozonItem(2, message: "")])
        let red = try Self.redRequest()
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        let cheaper = try #require(RulesFixture.rule(#"reason_message contains "дешевле""#))
        #expect([ozon[0], ozon[1], red].map { cheaper.matches($0, now: now) } == [true, false, false])
        let silent = try #require(RulesFixture.rule(#"reason_message == """#))
        #expect([ozon[0], ozon[1], red].map { silent.matches($0, now: now) } == [false, true, true])
    }

    @Test func checkSuggestsReasonMessageForAMisspelling() throws {
        let found = RulesFixture.diagnostics(when: #"reason_mesage contains "x""#)
        #expect(found.map(\.description) == ["test.rules:2:8: error: unknown field 'reason_mesage'; did you mean 'reason_message'?"])
        #expect(found.first?.suggestion == "reason_message")
    }

    @Test func aMessageTemplateRendersTheReasonMessage() throws {
        let request = try #require(try Self.ozonRequests([Self.ozonItem(1, message: .string(Self.words))]).first)
        let template = try MessageTemplate.compile("{{reason}}: {{reason_message}}").get()
        #expect(template.render(request: request, now: request.deadline) == "Покупатель передумал: \(Self.words)")
    }

    // MARK: Rule tests

    @Test func aRuleTestSetsTheReasonMessageOfItsRequests() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-reason-message-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            rule "cheaper-elsewhere" {
              when     reason_message contains "дешевле"
              notify   ops
            }
            """.write(to: directory.appendingPathComponent("m.rules"), atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("m.test.yaml").path
        try """
            rules: [m.rules]
            timezone: UTC
            tests:
              - name: only the request whose buyer found it cheaper
                start: 2026-11-23 10:00
                end: +1h
                requests:
                  - {id: "1", reason_message: "\(Self.words)", remaining: 30h}
                  - {id: "2", reason_message: "Ошибся адресом", remaining: 30h}
                  - {id: "3", remaining: 30h}
                changes:
                  - {at: +30m, request: "2", reason_message: "Нашёл дешевле"}
                expect:
                  - {at: +0s, event: firing, rule: cheaper-elsewhere, request: "1"}
                  - {at: +30m, event: firing, rule: cheaper-elsewhere, request: "2"}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = await RuleTestRunner().run(path: path)
        #expect(result.diagnostics.isEmpty, "\(result.renderedDiagnostics)")
        for testCase in result.cases { #expect(testCase.passed, "\(testCase.report())") }
        #expect(result.passed)
        #expect(result.eventsChecked == 2)
    }

    // MARK: The state file

    @Test func aRequestKeepsItsReasonMessageInTheStateFile() throws {
        let request = try #require(try Self.ozonRequests([Self.ozonItem(1, message: .string(Self.words))]).first)
        let read = try CancellationRequest(storedFields: try request.storedFields(), raw: request.rawObject)
        #expect(read == request)
        #expect(read.reasonMessage == Self.words)
    }

    @Test func rowsWrittenBeforeTheReasonMessageExistedReadItAsEmpty() throws {
        let request = try #require(try Self.ozonRequests([Self.ozonItem(1, message: .string(Self.words))]).first)
        guard case .object(var fields) = try JSONParser.parse(try request.storedFields()) else { Issue.record("not an object"); return }
        #expect(fields.removeValue(forKey: "reason_message") != nil)
        let read = try CancellationRequest(storedFields: JSONValue.object(fields).serialized(), raw: request.rawObject)
        #expect(read.reasonMessage == "")
        #expect(read.reason == request.reason)

        let event = AlertEvent(
            id: "e1", kind: .firing, rule: "r", severity: .warning, source: "ozon-main", marketplace: .ozon, request: request,
            occurredAt: request.deadline.addingTimeInterval(-3600), message: "m", sinks: ["ops"])
        guard case .object(var row) = try JSONParser.parse(try event.outboxText()), case .object(var stored)? = row["request"] else {
            Issue.record("not an object")
            return
        }
        #expect(stored.removeValue(forKey: "reason_message") != nil)
        row["request"] = .object(stored)
        let outboxed = try AlertEvent(outboxText: JSONValue.object(row).serialized(), sinks: nil)
        #expect(outboxed.request?.reasonMessage == "")
        #expect(outboxed.request?.reason == request.reason)
    }
}
