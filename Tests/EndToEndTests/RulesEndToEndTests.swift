import Foundation
import Testing

/// The real binary's `check` and `test` on the shipped rules and on broken input.
@Suite struct RulesEndToEndTests {
    /// The package root (for the shipped `rules/`).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var rules: String { Self.root.appendingPathComponent("rules").path }

    @Test func checkPassesTheShippedRules() async throws {
        let result = try await RunningCommand.run(["check", rules], directory: try temporaryDirectory())
        #expect(result.status == 0, "check failed: \(result.stderr)")
        #expect(result.stdout == "ok: 4 rules in 2 files\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func checkReportsEveryErrorWithItsPlaceAndACaret() async throws {
        let directory = try temporaryDirectory()
        try """
            rule "last-hour" {
              when     remainig <= 1h and state == "pending"
              notify   ops
              severity critcal
            }

            rule "buyer-cancels" {
              when     initiator == "CLIENT" and remaining <= "24h"
              notify   ops
            }
            """.write(to: directory.appendingPathComponent("my.rules"), atomically: true, encoding: .utf8)
        try "rule \"x\" {\n  when age > 1q\n  notify ops\n}\n".write(
            to: directory.appendingPathComponent("other.rules"), atomically: true, encoding: .utf8)
        try "rule \"fine\" {\n  when remaining <= 1h\n  notify ops\n}\n".write(
            to: directory.appendingPathComponent("fine.rules"), atomically: true, encoding: .utf8)
        let result = try await RunningCommand.run(["check", "my.rules", "other.rules", "fine.rules"], directory: directory)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let headlines = lines.filter { $0.contains(": error: ") }
        #expect(headlines.count == 4, "\(result.stderr)")
        #expect(headlines[0] == "my.rules:2:12: error: unknown field 'remainig'; did you mean 'remaining'?")
        #expect(headlines[1].hasPrefix("my.rules:4:12: error: unknown severity 'critcal'"))
        #expect(headlines[2].hasPrefix("my.rules:8:51: error: cannot compare duration with string"))
        #expect(headlines[3].hasPrefix("other.rules:2:14: error: "))
        // Each headline is followed by its line and a caret under the column.
        let first = try #require(lines.firstIndex(of: headlines[0]))
        #expect(lines[first + 1] == "  when     remainig <= 1h and state == \"pending\"")
        #expect(lines[first + 2] == "           ^~~~~~~~")
        // The files with errors among those checked.
        #expect(lines.last(where: { !$0.isEmpty }) == "check failed: 4 errors; errors in 2 of 3 rule files")
        // A file that cannot be read counts among them.
        let missing = try await RunningCommand.run(["check", "fine.rules", "missing.rules"], directory: directory)
        #expect(missing.stderr.hasSuffix("check failed: 1 error; errors in 1 of 2 rule files\n"), "\(missing.stderr)")
    }

    @Test func checkWithAConfigSuggestsTheClosestSinkEvenWithoutItsSecrets() async throws {
        let directory = try temporaryDirectory()
        try """
            rules: [./alerts.rules]
            timezone: Europe/Moscow
            sources:
              - {name: ozon-main, kind: ozon, client_id: "100001", api_key: "${CW_E2E_UNSET_OZON_KEY}"}
            sinks:
              - {name: console, kind: stdout}
              - {name: ops, kind: webhook, url: "${CW_E2E_UNSET_HOOK}"}
            """.write(to: directory.appendingPathComponent("cancelwatch.yaml"), atomically: true, encoding: .utf8)
        try "rule \"r\" {\n  when remaining <= 1h\n  notify console, opz\n}\n".write(
            to: directory.appendingPathComponent("alerts.rules"), atomically: true, encoding: .utf8)
        let result = try await RunningCommand.run(["check"], directory: directory)
        #expect(result.status == 1)
        // Unset variables are warnings; the rules are still checked against the sinks.
        #expect(result.stderr.contains("cancelwatch.yaml:4:66: warning: environment variable 'CW_E2E_UNSET_OZON_KEY' is not set"))
        #expect(result.stderr.contains("cancelwatch.yaml:7:38: warning: environment variable 'CW_E2E_UNSET_HOOK' is not set"))
        #expect(result.stderr.contains("alerts.rules:3:19: error: unknown sink 'opz'; did you mean 'ops'?\n  notify console, opz\n                  ^~~\n"))
        #expect(result.stderr.contains("check failed: 1 error, 2 warnings; errors in 1 of 1 rule file"))

        // Fixed, it passes with the warnings counted; `once` still refuses the unset variables.
        try "rule \"r\" {\n  when remaining <= 1h\n  notify console, ops\n}\n".write(
            to: directory.appendingPathComponent("alerts.rules"), atomically: true, encoding: .utf8)
        let fixed = try await RunningCommand.run(["check"], directory: directory)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.stdout == "ok: 1 rule in 1 file (2 warnings)\n")
        let once = try await RunningCommand.run(["once", "--config", "cancelwatch.yaml"], directory: directory)
        #expect(once.status != 0)
        #expect(once.stderr.contains("environment variable 'CW_E2E_UNSET_OZON_KEY' is not set"))
    }

    @Test func testPassesTheShippedRuleTests() async throws {
        let directory = Self.root.appendingPathComponent("rules/tests")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".test.yaml") }.sorted()
        #expect(!files.isEmpty)
        let result = try await RunningCommand.run(["test"] + files.map { directory.appendingPathComponent($0).path })
        #expect(result.status == 0, "test failed: \(result.stderr)")
        #expect(result.stdout.hasPrefix("ok: "))
        #expect(result.stdout.contains("tests in \(files.count) files"))
    }

    @Test func aFailingTestPrintsExpectedAgainstActual() async throws {
        let directory = try temporaryDirectory()
        try """
            rules: \(rules)/deadlines.rules
            timezone: Europe/Moscow
            tests:
              - name: the heads-up is expected an hour early
                start: 2025-11-24 10:00
                requests: [{id: "1001", remaining: 30h}]
                changes: [{at: +7h, request: "1001", resolve: rejected}]
                expect:
                  - {at: +5h, event: firing, rule: heads-up, request: "1001"}
                  - {at: +7h, event: resolved, rule: heads-up, request: "1001", outcome: rejected}
            """.write(to: directory.appendingPathComponent("wrong.test.yaml"), atomically: true, encoding: .utf8)
        let result = try await RunningCommand.run(["test", "wrong.test.yaml"], directory: directory)
        #expect(result.status == 1)
        #expect(result.stderr.contains("FAIL wrong.test.yaml:4:5: \"the heads-up is expected an hour early\""))
        // Columns are aligned with spaces; compare with runs of spaces collapsed.
        let collapsed = result.stderr.replacingOccurrences(of: " +", with: " ", options: .regularExpression)
        #expect(collapsed.contains("\n - 2025-11-24 15:00:00 +5h firing heads-up ozon/1001 (line 9)\n"), "\(result.stderr)")
        #expect(collapsed.contains("\n + 2025-11-24 16:00:00 +6h firing heads-up ozon/1001\n"))
        #expect(collapsed.contains("\n 2025-11-24 17:00:00 +7h resolved (rejected) heads-up ozon/1001\n"))
        #expect(collapsed.contains("1 expected event missing, 1 unexpected"))
        #expect(result.stderr.contains("test failed: 1 of 1 test failed in 1 file"))

        // A mistake in the test file itself names the file, line and column.
        try "rules: \(rules)/deadlines.rules\ntests:\n  - name: x\n    start: 2025-11-24 10:00\n    requests: [{id: \"1\", remaning: 1h}]\n    expect: []\n"
            .write(to: directory.appendingPathComponent("typo.test.yaml"), atomically: true, encoding: .utf8)
        let typo = try await RunningCommand.run(["test", "typo.test.yaml"], directory: directory)
        #expect(typo.status == 1)
        #expect(typo.stderr.contains("typo.test.yaml:5:26: error: unknown key 'remaning' in a request in test 'x'; did you mean 'remaining'?"))
    }
}
