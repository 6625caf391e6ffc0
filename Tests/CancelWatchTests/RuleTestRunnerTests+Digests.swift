import Foundation
import Testing

@testable import CancelWatch

/// `cancelwatch test` with digests: a test expects a digest at a virtual time, with its name
/// and the requests it lists in order; mistakes in such an expectation have a line and column.
extension RuleTestRunnerTests {
    /// A rule and a weekday digest, in `d.rules`.
    func writeDigestRules() throws {
        try """
            rule "final-hour" {
              when     remaining <= 1h
              notify   ops
            }
            digest "morning" { at 09:00 on mon-fri; notify ops; include state == "pending" and remaining <= 48h }
            """.write(to: directory.appendingPathComponent("d.rules"), atomically: true, encoding: .utf8)
    }

    func report(_ result: RuleTestFileResult) -> String {
        result.renderedDiagnostics + result.cases.map { $0.report() }.joined()
    }

    @Test func aDigestIsExpectedAtItsVirtualTimeWithTheRequestsItLists() async throws {
        // 2025-11-24 is a Monday.
        try writeDigestRules()
        let path = try write(
            """
            rules: d.rules
            timezone: Europe/Moscow
            tests:
              - name: the morning digest lists what is due within two days, by deadline
                start: 2025-11-24 08:00
                end: 2025-11-25 09:00
                only_rules: [morning]
                requests:
                  - {id: "late", remaining: 45h}
                  - {id: "soon", remaining: 20h}
                  - {id: "far", remaining: 5d}
                  - {id: "red", source: red-shop, marketplace: xiaohongshu, remaining: 30h}
                changes:
                  - {at: 2025-11-24 20:00, request: "red", resolve: approved}
                expect:
                  - {at: 2025-11-24 09:00, event: digest, rule: morning, requests: [soon, red, late], message: "3 requests (ozon 2, red-shop 1)"}
                  - {at: 2025-11-25 09:00, event: digest, rule: morning, requests: [late]}
            """)
        let result = await runner.run(path: path)
        #expect(result.passed, "\(report(result))")
        #expect(result.eventsChecked == 2)
    }

    @Test func aDigestListingOtherRequestsFailsAndShowsWhatItListed() async throws {
        try writeDigestRules()
        let path = try write(
            """
            rules: d.rules
            timezone: Europe/Moscow
            tests:
              - name: wrong order on purpose
                start: 2025-11-24 08:00
                end: +1h
                only_rules: [morning]
                requests:
                  - {id: "a", remaining: 10h}
                  - {id: "b", remaining: 5h}
                expect:
                  - {at: +1h, event: digest, rule: morning, requests: [a, b]}
            """)
        let testCase = try #require(await runner.run(path: path).cases.first)
        #expect(!testCase.passed)
        #expect(testCase.report().contains("- 2025-11-24 09:00:00  +1h  digest  morning  [ozon/a, ozon/b]  (line 12)"))
        #expect(testCase.report().contains("+ 2025-11-24 09:00:00  +1h  digest  morning  [ozon/b, ozon/a]"))
    }

    @Test func withoutAnEndTheTestStopsAfterTheLastExpectedEventOnceNothingIsPending() async throws {
        try writeDigestRules()
        let path = try write(
            """
            rules: d.rules
            timezone: Europe/Moscow
            tests:
              - name: the digest while the request waits, then nothing
                start: 2025-11-24 08:00
                requests:
                  - {id: "1", remaining: 26h}
                expect:
                  - {at: 2025-11-24 09:00, event: digest, rule: morning, requests: ["1"]}
                  - {at: 2025-11-25 09:00, event: digest, rule: morning, requests: ["1"]}
                  - {at: 2025-11-25 09:00, event: firing, rule: final-hour, request: "1"}
                  - {at: 2025-11-25 10:00, event: expired, rule: final-hour, request: "1"}
            """)
        let result = await runner.run(path: path)
        #expect(result.passed, "\(report(result))")
    }

    @Test func digestExpectationMistakesHaveALineAndColumn() async throws {
        let text = """
            rules: d.rules
            tests:
              - name: broken
                start: 2025-11-24 10:00
                requests: [{id: "1", remaining: 3h}]
                expect:
                  - {at: +1h, event: digest, rule: morning}
                  - {at: +1h, event: digest, rule: morning, request: "1", requests: ["2"]}
                  - {at: +1h, event: firing, rule: final-hour, request: "1", requests: ["1"]}
            """
        let (file, diagnostics) = RuleTestParser.parse(text: text, path: "t.test.yaml")
        #expect(file == nil)
        #expect(diagnostics.map(\.description) == [
            "t.test.yaml:7:9: error: an expected event in test 'broken' has no 'requests': the requests the digest lists, in its order (write 'requests: []' for none)",
            "t.test.yaml:8:58: error: a digest is about no one request: list the requests it lists under 'requests'",
            "t.test.yaml:8:74: error: unknown request '2' in test 'broken'; did you mean '1'?",
            "t.test.yaml:9:76: error: 'requests' only goes with event: digest; name one request with 'request'",
        ])

        try writeDigestRules()
        let unknown = try write(
            """
            rules: d.rules
            tests:
              - name: typo
                start: 2025-11-24 08:00
                end: +1h
                requests: []
                expect:
                  - {at: +1h, event: digest, rule: mornin, requests: []}
            """, name: "u.test.yaml")
        let result = await runner.run(path: unknown)
        #expect(result.hasErrors)
        #expect(result.renderedDiagnostics.hasPrefix("\(unknown):8:40: error: no digest named 'mornin' in the rule files; did you mean 'morning'?\n"))
    }
}
