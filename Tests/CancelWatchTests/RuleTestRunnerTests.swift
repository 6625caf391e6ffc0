import Foundation
import Testing

@testable import CancelWatch

/// The test-file parser and the runner of `cancelwatch test`.
@Suite struct RuleTestRunnerTests {
    let directory: URL
    let runner = RuleTestRunner()
    let moscow = TimeZone(identifier: "Europe/Moscow")!

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-ruletest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            rule "final-hour" {
              when     remaining <= 1h
              notify   ops
              repeat   every 20m
              message  "{{id}} in {{remaining}}"
            }
            rule "night" {
              when     remaining <= 12h
              notify   ops
              quiet    22:00-08:00
              resolve  off
            }
            """.write(to: directory.appendingPathComponent("t.rules"), atomically: true, encoding: .utf8)
    }

    func write(_ text: String, name: String = "t.test.yaml") throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func local(_ text: String) -> Date { RuleTestTime.local(text, timeZone: moscow)! }

    // MARK: Times

    @Test func timesAreOffsetsLocalTimesOrRFC3339() {
        let start = local("2025-11-24 10:00")
        #expect(RuleTestTime.parse("+6h", start: start, timeZone: moscow) == start.addingTimeInterval(6 * 3600))
        #expect(RuleTestTime.parse("+1d2h30m", start: start, timeZone: moscow) == start.addingTimeInterval(95400))
        #expect(RuleTestTime.parse("-15m", start: start, timeZone: moscow) == start.addingTimeInterval(-900))
        #expect(RuleTestTime.parse("2025-11-24 16:00:30", start: nil, timeZone: moscow) == start.addingTimeInterval(6 * 3600 + 30))
        #expect(RuleTestTime.parse("2025-11-24T07:00:00Z", start: nil, timeZone: moscow) == start)
        #expect(RuleTestTime.parse("+6h", start: nil, timeZone: moscow) == nil)
        #expect(RuleTestTime.parse("2025-02-30 10:00", start: nil, timeZone: moscow) == nil)
        #expect(RuleTestTime.parse("tomorrow", start: start, timeZone: moscow) == nil)
        #expect(RuleTestTime.offset(95400) == "+1d2h30m")
        #expect(RuleTestTime.offset(0) == "+0s")
        #expect(RuleTestTime.offset(-3600) == "-1h")
        #expect(RuleTestTime.format(start, timeZone: moscow) == "2025-11-24 10:00:00")
    }

    // MARK: Parsing

    @Test func parsesEveryPartOfATestFile() throws {
        let text = """
            rules: [t.rules]
            timezone: Europe/Moscow
            tests:
              - name: all of it
                start: 2025-11-24 10:00
                end: +1d
                only_rules: [final-hour]
                requests:
                  - {id: "1", source: ozon-main, order: O-1, initiator: CLIENT, reason: r, reason_id: "5", logistics: fbs,
                     raw_state: ON_APPROVAL, created: -2h, remaining: 3h, raw: {a: {b: 7}, c: [true, null, "x"]}}
                  - {id: "2", marketplace: xiaohongshu, source: red-shop, at: +1h, deadline: 2025-11-24 20:00}
                changes:
                  - {at: +2h, request: "1", remaining: 5h, reason: later}
                  - {at: +1h30m, request: red-shop/2, resolve: vanished}
                expect:
                  - {at: +4h, event: firing, rule: final-hour, request: "1", message: "1 in"}
                  - {at: +1h30m, event: resolved, rule: night, request: "2", outcome: vanished}
            """
        let (file, diagnostics) = RuleTestParser.parse(text: text, path: "/x/t.test.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let parsed = try #require(file)
        #expect(parsed.ruleFiles == ["/x/t.rules"])
        #expect(parsed.timeZone == moscow)
        let testCase = try #require(parsed.cases.first)
        let start = local("2025-11-24 10:00")
        #expect(testCase.start == start)
        #expect(testCase.end == start.addingTimeInterval(86400))
        #expect(testCase.onlyRules == ["final-hour"])
        let first = testCase.requests[0].request
        #expect(first.key == RequestKey(source: "ozon-main", id: "1"))
        #expect(first.order == "O-1" && first.initiator == "CLIENT" && first.reasonID == "5" && first.logistics == "fbs")
        #expect(first.createdAt == start.addingTimeInterval(-7200))
        #expect(first.deadline == start.addingTimeInterval(3 * 3600))
        #expect(first.raw == .object(["a": .object(["b": .integer(7)]), "c": .array([.bool(true), .null, .string("x")])]))
        let second = testCase.requests[1]
        #expect(second.request.marketplace == .xiaohongshu && second.request.rawState == "unaudited")
        #expect(second.appearsAt == start.addingTimeInterval(3600))
        #expect(second.request.deadline == local("2025-11-24 20:00"))
        // Changes run in time order.
        #expect(testCase.changes.map(\.request.id) == ["2", "1"])
        #expect(testCase.changes[0].action == .resolve(.vanished))
        #expect(testCase.changes[1].action == .update([.remaining(5 * 3600), .detail("reason", "later")]))
        #expect(testCase.expected[0].messageContains == "1 in")
        #expect(testCase.expected[1].outcome == .vanished)
        #expect(testCase.expected[1].request == RequestKey(source: "red-shop", id: "2"))
    }

    @Test func reportsEveryMistakeWithLineAndColumn() {
        let text = """
            rules: t.rules
            timezone: Europe/Moskow
            tests:
              - name: broken
                start: 2025-11-24 10:00
                requsts: []
                requests:
                  - {id: "1", remaining: 3x}
                  - {id: "2"}
                changes:
                  - {at: +1h, request: "3", resolve: approved}
                  - {at: +1h, request: "1", resolve: aproved}
                  - {at: +1h, request: "1"}
                expect:
                  - {at: soon, event: firing, rule: r, request: "1"}
                  - {at: +1h, event: fireing, rule: r, request: "1"}
            """
        let (file, diagnostics) = RuleTestParser.parse(text: text, path: "t.test.yaml")
        #expect(file == nil)
        let rendered = diagnostics.map(\.description)
        let expected = [
            "t.test.yaml:2:11: error: unknown timezone 'Europe/Moskow'; did you mean 'Europe/Moscow'?",
            "t.test.yaml:6:5: error: unknown key 'requsts' in test 'broken'; did you mean 'requests'?",
            "t.test.yaml:8:30: error: invalid duration '3x' for 'remaining' in request '1' in test 'broken': write a number and a unit (ms, s, m, h, d, w), e.g. 60s or 1h30m",
            "t.test.yaml:9:9: error: request '2' in test 'broken' needs 'remaining' (such as 30h) or 'deadline' (a time)",
            "t.test.yaml:11:28: error: unknown request '3' in test 'broken'; did you mean '1'?",
            "t.test.yaml:12:42: error: invalid outcome 'aproved' in a change in test 'broken'; expected one of: approved, rejected, vanished (did you mean 'approved'?)",
            "t.test.yaml:13:9: error: this change in test 'broken' changes nothing: write 'resolve: approved' (or rejected, vanished), or a field to change such as 'remaining: 2h'",
            "t.test.yaml:15:14: error: invalid time 'soon' for 'at': write an offset from the test's start (+6h, +1d2h30m) or a date and time (2025-11-24 16:00)",
            "t.test.yaml:16:26: error: invalid event 'fireing' in an expected event in test 'broken'; expected one of: firing, repeat, resolved, expired, action, digest (did you mean 'firing'?)",
        ]
        #expect(rendered == expected)
        // Rendered like rule diagnostics: the line and a caret under the column.
        let text2 = RuleDiagnosticRenderer(sources: [RuleSource(path: "t.test.yaml", text: text)]).render(diagnostics[0])
        #expect(text2 == "t.test.yaml:2:11: error: unknown timezone 'Europe/Moskow'; did you mean 'Europe/Moscow'?\ntimezone: Europe/Moskow\n          ^~~~~~~~~~~~~\n")
    }

    @Test func yamlSyntaxErrorsAndMissingPartsAreReported() {
        let syntax = RuleTestParser.parse(text: "rules: [a\ntests: {", path: "s.test.yaml").diagnostics
        #expect(syntax.count == 1)
        #expect(syntax.first?.description.hasPrefix("s.test.yaml:") == true)
        #expect(syntax.first?.message.contains("YAML syntax error") == true)
        let empty = RuleTestParser.parse(text: "timezone: UTC\n", path: "e.test.yaml").diagnostics.map(\.message)
        #expect(empty.contains { $0.hasPrefix("missing 'rules'") })
        #expect(empty.contains { $0.hasPrefix("missing 'tests'") })
        let noStart = RuleTestParser.parse(text: "rules: a.rules\ntests:\n  - name: x\n    requests: []\n    expect: []\n", path: "n.test.yaml")
        #expect(noStart.diagnostics.map(\.description) == [
            "n.test.yaml:3:5: error: test 'x' has no 'start': the date and time its clock starts at, such as 2025-11-24 10:00"
        ])
    }

    @Test func changesMustComeAfterTheRequestAppearsAndBeforeItIsResolved() {
        let text = """
            rules: t.rules
            tests:
              - name: order
                start: 2025-11-24 10:00
                requests: [{id: "1", at: +2h, remaining: 3h}]
                changes:
                  - {at: +1h, request: "1", remaining: 1h}
                  - {at: +3h, request: "1", resolve: rejected}
                  - {at: +4h, request: "1", remaining: 1h}
                expect: []
            """
        let messages = RuleTestParser.parse(text: text, path: "o.test.yaml").diagnostics.map(\.description)
        #expect(messages == [
            "o.test.yaml:7:9: error: this change in test 'order' comes before request '1' appears",
            "o.test.yaml:9:9: error: request '1' was already resolved before this change in test 'order'",
        ])
    }

    // MARK: Running

    @Test func passingFileRunsOnTheVirtualClock() async throws {
        let path = try write(
            """
            rules: t.rules
            timezone: Europe/Moscow
            tests:
              - name: cadence and expiry
                start: 2025-11-24 10:00
                requests: [{id: "1", remaining: 1h}]
                expect:
                  - {at: +0s, event: firing, rule: final-hour, request: "1", message: "1 in 1h 00m"}
                  - {at: +0s, event: firing, rule: night, request: "1"}
                  - {at: +20m, event: repeat, rule: final-hour, request: "1"}
                  - {at: +40m, event: repeat, rule: final-hour, request: "1"}
                  - {at: +1h, event: expired, rule: final-hour, request: "1"}
              - name: held by the quiet window until 08:00
                start: 2025-11-24 23:00
                requests: [{id: "2", remaining: 11h}]
                expect:
                  - {at: 2025-11-25 08:00, event: firing, rule: night, request: "2"}
                  - {at: 2025-11-25 09:00, event: firing, rule: final-hour, request: "2"}
                  - {at: 2025-11-25 09:20, event: repeat, rule: final-hour, request: "2"}
                  - {at: 2025-11-25 09:40, event: repeat, rule: final-hour, request: "2"}
                  - {at: 2025-11-25 10:00, event: expired, rule: final-hour, request: "2"}
              - name: a deadline inside the window fires at once; a rejection resolves
                start: 2025-11-24 23:00
                requests: [{id: "3", deadline: 2025-11-25 03:00}]
                changes: [{at: +30m, request: "3", resolve: rejected}]
                only_rules: [night]
                expect:
                  - {at: +0s, event: firing, rule: night, request: "3"}
            """)
        let result = await runner.run(path: path)
        #expect(result.diagnostics.isEmpty, "\(result.renderedDiagnostics)")
        #expect(result.cases.count == 3)
        for testCase in result.cases { #expect(testCase.passed, "\(testCase.report())") }
        #expect(result.passed)
        #expect(result.eventsChecked == 11)
    }

    @Test func aMismatchPrintsExpectedAgainstActual() async throws {
        let path = try write(
            """
            rules: t.rules
            timezone: Europe/Moscow
            tests:
              - name: wrong on purpose
                start: 2025-11-24 10:00
                requests: [{id: "1", remaining: 2h}]
                changes: [{at: +1h30m, request: "1", resolve: approved}]
                only_rules: [final-hour]
                expect:
                  - {at: +1h, event: firing, rule: final-hour, request: "1"}
                  - {at: +1h15m, event: repeat, rule: final-hour, request: "1"}
                  - {at: +1h30m, event: resolved, rule: final-hour, request: "1", outcome: rejected}
            """)
        let result = await runner.run(path: path)
        let testCase = try #require(result.cases.first)
        #expect(!testCase.passed)
        #expect(testCase.missing.map(\.location.line) == [11, 12])
        #expect(testCase.unexpected.map(\.kind) == [.repeat, .resolved])
        #expect(testCase.report() == """
            FAIL \(path):4:5: "wrong on purpose"
              events (times in Europe/Moscow; - expected but not produced, + produced but not expected):
                2025-11-24 11:00:00  +1h     firing               final-hour  ozon/1
              - 2025-11-24 11:15:00  +1h15m  repeat               final-hour  ozon/1  (line 11)
              + 2025-11-24 11:20:00  +1h20m  repeat               final-hour  ozon/1
              - 2025-11-24 11:30:00  +1h30m  resolved (rejected)  final-hour  ozon/1  (line 12)
              + 2025-11-24 11:30:00  +1h30m  resolved (approved)  final-hour  ozon/1  (message: "ozon ozon 1: cancellation request approved (rule final-hour)")
              2 expected events missing, 2 unexpected

            """)
    }

    @Test func aMessageMismatchShowsTheActualMessage() async throws {
        let path = try write(
            """
            rules: t.rules
            tests:
              - name: message
                start: 2025-11-24 10:00
                end: +0s
                requests: [{id: "1", remaining: 30m}]
                only_rules: [final-hour]
                expect:
                  - {at: +0s, event: firing, rule: final-hour, request: "1", message: "in 2h"}
            """)
        let report = try #require(await runner.run(path: path).cases.first).report()
        #expect(report.contains("(line 9, message containing \"in 2h\")"))
        #expect(report.contains("(message: \"1 in 30m 00s\")"))
    }

    @Test func unknownRuleNamesAndBrokenRulesStopTheFile() async throws {
        let path = try write(
            """
            rules: t.rules
            tests:
              - name: typo
                start: 2025-11-24 10:00
                requests: [{id: "1", remaining: 30m}]
                expect:
                  - {at: +0s, event: firing, rule: final-hours, request: "1"}
            """)
        let result = await runner.run(path: path)
        #expect(result.hasErrors && result.cases.isEmpty)
        #expect(result.renderedDiagnostics.hasPrefix("\(path):7:40: error: no rule named 'final-hours' in the rule files; did you mean 'final-hour'?\n"))

        try "rule \"x\" {\n  when remainig <= 1h\n  notify ops\n}\n".write(
            to: directory.appendingPathComponent("bad.rules"), atomically: true, encoding: .utf8)
        let broken = try write(
            "rules: bad.rules\ntests:\n  - {name: x, start: 2025-11-24 10:00, requests: [], expect: []}\n", name: "b.test.yaml")
        let brokenResult = await runner.run(path: broken)
        #expect(brokenResult.hasErrors)
        #expect(brokenResult.renderedDiagnostics.contains("bad.rules:2:8: error: unknown field 'remainig'; did you mean 'remaining'?\n"))
    }

    @Test func aDeadlineChangeReschedulesAndANewRequestFiresWhenItAppears() async throws {
        let path = try write(
            """
            rules: t.rules
            tests:
              - name: moves
                start: 2025-11-24 10:00
                end: +5h
                only_rules: [final-hour]
                requests:
                  - {id: "1", remaining: 2h}
                  - {id: "2", at: +3h, remaining: 10m}
                changes:
                  - {at: +30m, request: "1", deadline: +4h}
                expect:
                  - {at: +3h, event: firing, rule: final-hour, request: "1"}
                  - {at: +3h, event: firing, rule: final-hour, request: "2"}
                  - {at: +3h10m, event: expired, rule: final-hour, request: "2"}
                  - {at: +3h20m, event: repeat, rule: final-hour, request: "1"}
                  - {at: +3h40m, event: repeat, rule: final-hour, request: "1"}
                  - {at: +4h, event: expired, rule: final-hour, request: "1"}
            """)
        let result = await runner.run(path: path)
        #expect(result.passed, "\(result.renderedDiagnostics)\(result.cases.map { $0.report() }.joined())")
    }

    @Test func theShippedRuleTestsPass() async throws {
        let root = RulesFixture.packageRoot.appendingPathComponent("rules/tests")
        let files = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".test.yaml") }
        #expect(files.count >= 2)
        for name in files {
            let result = await runner.run(path: root.appendingPathComponent(name).path)
            #expect(result.passed, "\(name): \(result.renderedDiagnostics)\(result.cases.map { $0.report() }.joined())")
        }
    }
}
