import Foundation
import Testing
@testable import CancelWatch

@Suite struct RulesCheckerTests {
    private func messages(when condition: String) -> [String] {
        RulesFixture.diagnostics(when: condition).map(\.description)
    }

    // MARK: Names

    @Test func anUnknownFieldSuggestsTheClosestKnownName() throws {
        let d = try #require(RulesFixture.diagnostics(when: "remainig <= 1h").first)
        #expect(d.description == "test.rules:2:8: error: unknown field 'remainig'; did you mean 'remaining'?")
        #expect(d.suggestion == "remaining")
        #expect(d.length == 8)
        #expect(messages(when: #"intiator == "CLIENT""#) == ["test.rules:2:8: error: unknown field 'intiator'; did you mean 'initiator'?"])
        #expect(messages(when: #"reasonid == 5"#) == ["test.rules:2:8: error: unknown field 'reasonid'; did you mean 'reason_id'?"])
    }

    @Test func anUnknownFieldFarFromAnyNameListsTheFields() throws {
        let d = try #require(RulesFixture.diagnostics(when: "colour == 5").first)
        #expect(d.message.hasPrefix("unknown field 'colour'; the fields are marketplace, source, id, order, state"))
        #expect(d.message.hasSuffix("weekday and raw.<path>"))
    }

    @Test func aBareValueWordIsToldToUseQuotes() {
        #expect(messages(when: "state == pending") == [#"test.rules:2:17: error: unknown field 'pending'; write values in double quotes: "pending""#])
        #expect(messages(when: "initiator == CLIENT") == [#"test.rules:2:21: error: unknown field 'CLIENT'; write values in double quotes: "CLIENT""#])
    }

    @Test func rawNeedsAPath() {
        #expect(messages(when: "raw == 5") == ["test.rules:2:8: error: 'raw' needs a path after 'raw.', such as raw.status or raw.items.0.sku"])
    }

    @Test func anUnknownSinkSuggestsTheClosestConfiguredSink() throws {
        let result = RulesFixture.compile("rule \"r\" {\n  when remaining <= 1h\n  notify ops, owner-mial, pager\n}\n")
        #expect(result.diagnostics.map(\.description) == [
            "test.rules:3:15: error: unknown sink 'owner-mial'; did you mean 'owner-mail'?",
            "test.rules:3:27: error: unknown sink 'pager'; the config's sinks are console, ops, owner-mail",
        ])
        #expect(result.diagnostics.first?.suggestion == "owner-mail")
    }

    @Test func sinkNamesAreNotCheckedWithoutAConfig() {
        let result = RulesFixture.compile("rule \"r\" { when remaining <= 1h notify anything }", sinks: nil)
        #expect(result.diagnostics.isEmpty)
        #expect(result.ruleSet?.rules.first?.notify == ["anything"])
    }

    @Test func aConfigWithoutSinksRejectsEverySinkName() {
        let result = RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops }", sinks: [])
        #expect(result.diagnostics.map(\.message) == ["unknown sink 'ops'; the config defines no sinks"])
    }

    @Test func aSinkListedTwiceIsAWarning() {
        let result = RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops, ops }")
        #expect(result.diagnostics.map(\.description) == ["test.rules:1:45: warning: sink 'ops' is listed twice"])
        #expect(result.ruleSet?.rules.first?.notify == ["ops"])
    }

    @Test func anUnknownSeveritySuggestsTheClosest() {
        let result = RulesFixture.compile("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  severity critcal\n}\n")
        #expect(result.diagnostics.map(\.description) == ["test.rules:4:12: error: unknown severity 'critcal'; did you mean 'critical'?"])
        let far = RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops severity loud }")
        #expect(far.diagnostics.map(\.message) == ["unknown severity 'loud'; use info, warning or critical"])
    }

    @Test func aValueAFieldNeverHasIsAnErrorWithTheClosestValue() {
        #expect(messages(when: #"state == "pendng""#) == [
            #"test.rules:2:17: error: 'state' is never "pendng"; it is "pending", "approved" or "rejected"; did you mean "pending"?"#
        ])
        #expect(RulesFixture.diagnostics(when: #"marketplace in ["ozon", "red"]"#).map(\.message) == [
            #"'marketplace' is never "red"; it is "ozon" or "xiaohongshu""#
        ])
    }

    // MARK: Types

    @Test func typeErrorsNameBothTypes() {
        #expect(messages(when: #"remaining <= "soon""#) == [#"test.rules:2:21: error: cannot compare duration with string"#])
        #expect(messages(when: #"remaining <= "1h""#) == [
            "test.rules:2:21: error: cannot compare duration with string; write the duration without quotes: 1h"
        ])
        #expect(messages(when: "remaining <= 60") == ["test.rules:2:21: error: cannot compare duration with number; add a unit, such as 60m"])
        #expect(messages(when: "remaining < 0") == ["test.rules:2:20: error: cannot compare duration with number; add a unit, such as 0s"])
        #expect(messages(when: "remaining == true") == ["test.rules:2:21: error: cannot compare duration with boolean"])
        #expect(messages(when: "deadline > 5") == ["test.rules:2:19: error: cannot compare time with number"])
        #expect(messages(when: "deadline < 1h") == [
            "test.rules:2:19: error: cannot compare time with duration; to compare time left, use 'remaining'"
        ])
        #expect(messages(when: "reason == 1h") == [#"test.rules:2:18: error: cannot compare string with duration; write the value in double quotes: "1h""#])
        #expect(messages(when: "state == false") == ["test.rules:2:17: error: cannot compare string with boolean"])
        #expect(messages(when: #"hour >= "nine""#) == ["test.rules:2:16: error: cannot compare number with string"])
        #expect(messages(when: "raw.x > 1h") == [
            "test.rules:2:16: error: cannot compare raw value with duration; raw values are strings, numbers or booleans"
        ])
    }

    @Test func typeErrorsInsideListsPointAtTheElement() {
        #expect(messages(when: #"initiator in ["CLIENT", 2h]"#) == [
            #"test.rules:2:32: error: cannot compare string with duration; write the value in double quotes: "2h""#
        ])
    }

    @Test func operatorsCheckTheirOperands() {
        #expect(RulesFixture.diagnostics(when: "remaining contains 1h").map(\.message) == [
            "'contains' looks for text in a string or a raw value; 'remaining' is a duration"
        ])
        #expect(RulesFixture.diagnostics(when: #"hour matches "1""#).map(\.message) == [
            "'matches' tests a string or a raw value against a regular expression; 'hour' is a number"
        ])
        #expect(RulesFixture.diagnostics(when: "reason matches 5").map(\.message) == [
            #"'matches' takes a regular expression in double quotes, as in reason matches "^size""#
        ])
        #expect(RulesFixture.diagnostics(when: #"state in "pending""#).map(\.message) == [
            "'in' takes a list, as in state in [...]; to look for text inside a field use 'contains'"
        ])
        #expect(RulesFixture.diagnostics(when: #"state == ["pending"]"#).map(\.message) == [
            "'==' compares with one value; to test a list use 'in', as in state in [...]"
        ])
        #expect(RulesFixture.diagnostics(when: "remaining < age").map(\.message) == [
            "cannot compare two fields ('remaining' and 'age'); compare a field with a value"
        ])
        #expect(RulesFixture.diagnostics(when: "1 == 1").map(\.message) == ["'==' compares a field with a value; neither side is a field"])
        #expect(RulesFixture.diagnostics(when: "reason").map(\.message) == [
            #"'reason' is a string, not a condition; compare it with a value, as in reason == "...""#
        ])
        #expect(RulesFixture.diagnostics(when: #""x""#).map(\.message) == ["a string is not a condition; compare a field with it, as in remaining <= 1h"])
        #expect(RulesFixture.diagnostics(when: "raw.flag > true").map(\.message) == ["booleans cannot be ordered; use == or !="])
    }

    @Test func timesAndWeekdaysAndHoursAreCheckedAgainstTheirRanges() {
        #expect(messages(when: #"deadline < "tomorrow""#) == [
            #"test.rules:2:19: error: "tomorrow" is not a time; write an RFC 3339 time, such as "2026-11-23T20:00:00Z" or "2026-11-23T23:00:00+03:00""#
        ])
        #expect(RulesFixture.diagnostics(when: #"weekday == "fryday""#).map(\.message) == [#""fryday" is not a weekday; did you mean "friday"?"#])
        #expect(RulesFixture.diagnostics(when: "hour == 24").map(\.message) == ["'hour' is 0 to 23; it is never 24"])
        #expect(RulesFixture.diagnostics(when: "weekday == 0").map(\.message) == ["'weekday' is 1 (Monday) to 7 (Sunday); it is never 0"])
        #expect(RulesFixture.diagnostics(when: "hour == 9.5").map(\.message) == ["'hour' is a whole number"])
    }

    @Test func anInvalidRegularExpressionIsReportedAtThePattern() {
        #expect(messages(when: #"reason matches "([a-z""#) == [#"test.rules:2:23: error: invalid regular expression "([a-z""#])
        #expect(messages(when: #"raw.note matches "*""#) == [#"test.rules:2:25: error: invalid regular expression "*""#])
    }

    // MARK: Structure

    @Test func aRuleWithoutWhenOrNotifyIsReportedAtItsName() {
        let result = RulesFixture.compile("rule \"lonely\" {\n  severity info\n}\n")
        #expect(result.diagnostics.map(\.description) == [
            #"test.rules:1:6: error: rule "lonely" has no 'when' clause; add one, such as: when remaining <= 1h"#,
            #"test.rules:1:6: error: rule "lonely" has no 'notify' clause; add one naming a sink, such as: notify console"#,
        ])
    }

    @Test func aRepeatedClauseIsReportedWithANoteAtTheFirst() throws {
        let result = RulesFixture.compile("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  severity info\n  severity critical\n}\n")
        let d = try #require(result.diagnostics.first)
        #expect(result.diagnostics.count == 1)
        #expect(d.description == #"test.rules:5:3: error: duplicate 'severity' clause in rule "r""#)
        #expect(d.notes == [.init(message: "the first 'severity' is here", location: RuleSourceLocation(path: "test.rules", line: 4, column: 3))])
    }

    @Test func aRuleNameUsedTwiceAcrossFilesIsReportedAtTheSecond() throws {
        let result = RuleLoader(knownSinks: RulesFixture.sinks).compile([
            RuleSource(path: "a.rules", text: "rule \"dup\" { when remaining <= 1h notify ops }"),
            RuleSource(path: "b.rules", text: "\n\nrule \"dup\" { when remaining <= 2h notify ops }"),
        ])
        let d = try #require(result.diagnostics.first)
        #expect(result.diagnostics.count == 1)
        #expect(d.description == #"b.rules:3:6: error: duplicate rule name "dup"; rule names must be unique across all rule files"#)
        #expect(d.notes.first?.location == RuleSourceLocation(path: "a.rules", line: 1, column: 1))
    }

    @Test func anUnknownTemplateFieldIsReportedAtItsColumnInTheMessage() {
        let result = RulesFixture.compile("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  message \"\\\"{{order}}\\\" in {{ remainig }}\"\n}\n")
        #expect(result.diagnostics.map(\.description) == ["test.rules:4:32: error: unknown field 'remainig' in template; did you mean 'remaining'?"])
        let unterminated = RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops message \"left: {{remaining\" }")
        #expect(unterminated.diagnostics.map(\.description) == ["test.rules:1:59: error: unterminated '{{' in template; close it with '}}'"])
    }

    // MARK: Warnings

    @Test func contradictoryBoundsOnRemainingAreAWarningAndTheRuleStillLoads() throws {
        let result = RulesFixture.compile("rule \"never\" {\n  when remaining < 0s and remaining > 1h\n  notify ops\n}\n")
        #expect(result.diagnostics.map(\.description) == [
            #"test.rules:2:3: warning: rule "never" can never fire: its bounds on 'remaining' contradict each other"#
        ])
        #expect(result.ruleSet?.rules.count == 1)
        #expect(!result.hasErrors)
    }

    @Test func otherConditionsThatCanNeverHoldAreWarnings() {
        func warning(_ condition: String) -> [String] { RulesFixture.diagnostics(when: condition).filter { !$0.isError }.map(\.message) }
        #expect(warning("age > 2h and age <= 1h") == [#"rule "r" can never fire: its bounds on 'age' contradict each other"#])
        #expect(warning("remaining <= 1h and remaining > 1h") == [#"rule "r" can never fire: its bounds on 'remaining' contradict each other"#])
        #expect(warning("hour >= 22 and hour < 6") == [#"rule "r" can never fire: no hour satisfies its tests on 'hour'"#])
        #expect(warning(#"weekday == "sat" and weekday <= 5"#) == [#"rule "r" can never fire: no day satisfies its tests on 'weekday'"#])
        #expect(warning("false") == [#"rule "r" can never fire: its condition is always false"#])
        #expect(warning("remaining <= 1h and remaining >= 1h").isEmpty)  // true for the instant it is exactly 1h
        #expect(warning("remaining > 0s and remaining <= 1h").isEmpty)
        #expect(warning("(hour >= 22 or hour < 6) and remaining <= 1h").isEmpty)
    }

    // MARK: Rendering

    @Test func theRendererPrintsTheLineAndACaretWithTildesUnderTheRange() {
        let result = RulesFixture.compile("rule \"r\" {\n\twhen remainig <= 1h\n  notify ops\n}\n")
        #expect(result.renderDiagnostics() == """
            test.rules:2:7: error: unknown field 'remainig'; did you mean 'remaining'?
            \twhen remainig <= 1h
            \t     ^~~~~~~~

            """)
    }

    @Test func theRendererAlignsTheCaretAfterWideCharactersAndPrintsNotes() {
        let result = RulesFixture.compile("rule \"仓库\" { when remaining <= 1h notify ops }\nrule \"仓库\" { when remaining <= 1h notify ops }")
        #expect(result.renderDiagnostics() == """
            test.rules:2:6: error: duplicate rule name "仓库"; rule names must be unique across all rule files
            rule "仓库" { when remaining <= 1h notify ops }
                 ^~~~~~
            test.rules:1:1: note: "仓库" is first defined here
            rule "仓库" { when remaining <= 1h notify ops }
            ^

            """)
    }

    @Test func fileLevelProblemsRenderWithoutALine() {
        let result = RuleLoader(knownSinks: nil).load(paths: ["/nonexistent/cancelwatch.rules"])
        #expect(result.renderDiagnostics() == "/nonexistent/cancelwatch.rules: error: no such rule file or directory\n")
        #expect(result.ruleSet == nil)
    }

    // MARK: Loading

    @Test func theShippedRulesCheckCleanAgainstTheDemoSink() throws {
        let root = RulesFixture.packageRoot.appendingPathComponent("rules").path
        let result = RuleLoader(knownSinks: ["console"], timeZone: RulesFixture.moscow).load(paths: [root])
        #expect(result.diagnostics.isEmpty, "\(result.renderDiagnostics())")
        let rules = try #require(result.ruleSet?.rules)
        #expect(rules.map(\.name) == ["heads-up", "escalation", "final-warning", "ozon-client-cancels"])
        #expect(rules.allSatisfy { $0.notify == ["console"] })
        #expect(result.sources.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["deadlines.rules", "ozon.rules"])
    }

    @Test func aDirectoryContributesItsRulesFilesInNameOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "rule \"b\" { when remaining <= 1h notify ops }".write(to: dir.appendingPathComponent("b.rules"), atomically: true, encoding: .utf8)
        try "rule \"a\" { when remaining <= 1h notify ops }".write(to: dir.appendingPathComponent("a.rules"), atomically: true, encoding: .utf8)
        try "not rules".write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let result = RuleLoader(knownSinks: ["ops"]).load(paths: [dir.path])
        #expect(result.diagnostics.isEmpty)
        #expect(result.ruleSet?.rules.map(\.name) == ["a", "b"])
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let none = RuleLoader(knownSinks: ["ops"]).load(paths: [empty.path])
        #expect(none.diagnostics.map(\.description) == ["\(empty.path): warning: directory has no *.rules files"])
        #expect(none.ruleSet?.rules.isEmpty == true)
    }
}
