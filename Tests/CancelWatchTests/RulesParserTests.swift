import Foundation
import MarketSim
import Testing
@testable import CancelWatch

@Suite struct RulesParserTests {
    // MARK: Constructs

    @Test func aRuleWithEveryClauseCompilesToItsSettings() throws {
        let result = RulesFixture.compile(
            """
            # A comment on its own line.
            rule "final-hour" {   # and after code
              when     remaining <= 1h and state == "pending"
              severity critical
              notify   ops, owner-mail
              repeat   every 15m
              message  "{{marketplace}} {{id}} auto-approves in {{remaining}}: {{reason}}"
              quiet    22:00-08:00
              resolve  off
            }
            """)
        #expect(result.diagnostics.isEmpty)
        let rule = try #require(result.ruleSet?.rules.first)
        #expect(rule.name == "final-hour")
        #expect(rule.severity == .critical)
        #expect(rule.notify == ["ops", "owner-mail"])
        #expect(rule.repeatEvery == 900)
        #expect(rule.quiet == QuietWindow(startMinute: 22 * 60, endMinute: 8 * 60))
        #expect(rule.resolveNotifications == false)
        #expect(rule.message.source == "{{marketplace}} {{id}} auto-approves in {{remaining}}: {{reason}}")
        #expect(rule.conditionText == #"remaining <= 1h and state == "pending""#)
        #expect(rule.location == RuleSourceLocation(path: "test.rules", line: 2, column: 1))
    }

    @Test func omittedClausesTakeTheirDefaults() throws {
        let rule = try #require(RulesFixture.rule("remaining <= 1h"))
        #expect(rule.severity == .warning)
        #expect(rule.repeatEvery == nil)
        #expect(rule.quiet == nil)
        #expect(rule.resolveNotifications)
        #expect(rule.message.source == MessageTemplate.defaultRuleMessage)
    }

    @Test func severalRulesPerFileKeepTheirOrder() throws {
        let result = RulesFixture.compile(
            """
            rule "a" { when remaining <= 1h notify ops }
            rule "b" { when remaining <= 2h notify ops }
            rule "c" {
              when remaining <= 3h
              notify ops
            }
            """)
        #expect(result.diagnostics.isEmpty)
        #expect(result.ruleSet?.rules.map(\.name) == ["a", "b", "c"])
    }

    @Test func aConditionMayContinueOverSeveralLines() throws {
        let rule = try #require(
            RulesFixture.rule(
                """
                marketplace == "ozon"
                    and initiator in ["CLIENT", "OZON",]
                    and remaining <= 24h
                """))
        #expect(rule.conditionText == #"marketplace == "ozon" and initiator in ["CLIENT", "OZON"] and remaining <= 24h"#)
    }

    @Test func everyOperatorAndLiteralKindParses() {
        let conditions = [
            #"state == "pending""#, #"state != "pending""#, "remaining < 1h", "remaining <= 1h30m", "remaining > -1h",
            "remaining >= 45s", "age > 1d", "age < 500ms", #"initiator in ["CLIENT", "OZON"]"#, #"initiator not in ["SELLER"]"#,
            #"reason contains "size""#, #"reason not contains "size""#, #"reason matches "(?i)^wrong""#,
            #"reason not matches "x""#, "reason_id == 5", "reason_id >= 2.5", "hour in [9, 10, 11]", "weekday <= 5",
            #"weekday == "sat""#, #"deadline < "2026-11-23T20:00:00Z""#, #"created >= "2026-11-01T00:00:00+03:00""#,
            "raw.is_express", "raw.is_express == true", "raw.counter > 3", #"raw.items.0.sku == "A-1""#, #"raw.tags contains "vip""#,
            "true", "not false", "not not true", #"(state == "pending")"#, #"1h >= remaining"#, #""CLIENT" in initiator"#,
            #"state == "pending" or remaining <= 1h and not (hour >= 22 or hour < 8)"#, "\"\\u{4E2D}\\\"\\\\\\n\\t\" in reason",
        ]
        for condition in conditions {
            let result = RulesFixture.compile("rule \"r\" { when \(condition) notify ops }")
            #expect(result.errors.isEmpty, "\(condition): \(result.renderDiagnostics())")
        }
    }

    @Test func notBindsTighterThanAndWhichBindsTighterThanOr() throws {
        let rule = try #require(RulesFixture.rule(#"not state == "pending" or remaining <= 1h and hour >= 9"#))
        #expect(rule.conditionText == #"not state == "pending" or remaining <= 1h and hour >= 9"#)
        let grouped = try #require(RulesFixture.rule(#"not (state == "pending" or remaining <= 1h) and hour >= 9"#))
        #expect(grouped.conditionText == #"not (state == "pending" or remaining <= 1h) and hour >= 9"#)
    }

    @Test func quietWindowsMayWrapMidnightOrEndAt2400() throws {
        let wrapping = try #require(RulesFixture.rule("remaining <= 1h", extra: "quiet 22:30-07:15\n"))
        #expect(wrapping.quiet == QuietWindow(startMinute: 1350, endMinute: 435))
        let evening = try #require(RulesFixture.rule("remaining <= 1h", extra: "quiet 18:00-24:00\n"))
        #expect(evening.quiet == QuietWindow(startMinute: 1080, endMinute: 0))
        #expect(evening.quiet?.contains(minuteOfDay: 1439) == true)
        #expect(evening.quiet?.contains(minuteOfDay: 0) == false)
    }

    @Test func sinkNamesMayBeQuotedAndRuleNamesMayHoldAnyText() throws {
        let result = RulesFixture.compile(#"rule "на складе: 仓库" { when remaining <= 1h notify "ops", owner-mail }"#)
        #expect(result.diagnostics.isEmpty)
        #expect(result.ruleSet?.rules.first?.name == "на складе: 仓库")
        #expect(result.ruleSet?.rules.first?.notify == ["ops", "owner-mail"])
    }

    @Test func resolveOnIsAcceptedAsTheExplicitDefault() throws {
        let rule = try #require(RulesFixture.rule("remaining <= 1h", extra: "resolve on\n"))
        #expect(rule.resolveNotifications)
    }

    @Test func windowsLineEndingsAndAByteOrderMarkAreAccepted() {
        let result = RulesFixture.compile("\u{FEFF}rule \"r\" {\r\n  when remaining <= 1h\r\n  notify ops\r\n}\r\n")
        #expect(result.diagnostics.isEmpty)
    }

    // MARK: Syntax errors, with exact positions

    private func only(_ text: String) -> RuleDiagnostic? {
        let diagnostics = RulesFixture.compile(text).diagnostics
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        return diagnostics.first
    }

    @Test func anUnterminatedStringPointsAtItsOpeningQuote() throws {
        let d = try #require(only("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  message \"no end\n}\n"))
        #expect(d.description == "test.rules:4:11: error: unterminated string; add a closing '\"' on the same line")
    }

    @Test func aBadDurationNamesTheTextAndTheUnits() throws {
        let d = try #require(only("rule \"r\" {\n  when remaining <= 1x\n  notify ops\n}\n"))
        #expect(d.line == 2 && d.column == 21 && d.length == 2)
        #expect(d.message == "invalid duration '1x'; write a number and a unit (s, m, h, d), such as 45s, 15m, 2h, 1d or 1h30m")
        let unitsOutOfOrder = try #require(only("rule \"r\" { when remaining <= 30m1h notify ops }"))
        #expect(unitsOutOfOrder.message.hasPrefix("invalid duration '30m1h'"))
    }

    @Test func aBadQuietWindowIsReportedAtTheBadTime() throws {
        let d = try #require(only("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  quiet 22:00-25:30\n}\n"))
        #expect(d.description == "test.rules:4:15: error: invalid quiet window: '25:30' is not a time of day (00:00 to 23:59)")
        let empty = try #require(only("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  quiet 08:00-08:00\n}\n"))
        #expect(empty.description == "test.rules:4:9: error: invalid quiet window: '08:00-08:00' starts and ends at the same time")
        #expect(empty.length == 11)
        let malformed = try #require(only("rule \"r\" {\n  when remaining <= 1h\n  notify ops\n  quiet 22-08\n}\n"))
        #expect(malformed.description == "test.rules:4:9: error: expected a window such as 22:00-08:00 after 'quiet', found a number")
    }

    @Test func aMissingClosingBraceIsReportedAtTheNextRuleAndBothRulesAreRead() throws {
        let result = RulesFixture.compile(
            """
            rule "a" {
              when remaining <= 1h
              notify ops
            rule "b" {
              when remaining <= 2h
              notify ops
            }
            """)
        #expect(result.diagnostics.map(\.description) == [#"test.rules:4:1: error: expected '}' to close rule "a" before the next rule"#])
        #expect(result.diagnostics.first?.notes.first?.location == RuleSourceLocation(path: "test.rules", line: 1, column: 1))
    }

    @Test func aMissingClosingBraceAtTheEndOfTheFileIsReported() throws {
        let d = try #require(only("rule \"a\" {\n  when remaining <= 1h\n  notify ops\n"))
        #expect(d.description == #"test.rules:4:1: error: expected '}' to close rule "a" before the end of the file"#)
    }

    @Test func anUnknownClauseSuggestsTheClosestKeyword() throws {
        let d = try #require(only("rule \"r\" {\n  when remaining <= 1h\n  notfy ops\n}\n"))
        #expect(d.description == "test.rules:3:3: error: unknown clause 'notfy'; did you mean 'notify'?")
        #expect(d.suggestion == "notify")
    }

    @Test func aSingleEqualsSignIsReportedWithTheFix() throws {
        let d = try #require(only("rule \"r\" { when state = \"pending\" notify ops }"))
        #expect(d.description == "test.rules:1:23: error: use '==' to compare")
        #expect(d.suggestion == "==")
    }

    @Test func cStyleOperatorsAndSingleQuotesAreExplained() {
        let d = RulesFixture.compile("rule \"r\" { when remaining <= 1h && !state == 'x' notify ops }").diagnostics
        #expect(d.map(\.message) == [
            "use 'and' to combine conditions", "use 'not' to negate a condition",
            "strings are written in straight double quotes: \"x\"",
        ])
    }

    @Test func chainedComparisonsAreAnError() throws {
        let d = try #require(only("rule \"r\" { when 0s < remaining < 1h notify ops }"))
        #expect(d.line == 1 && d.column == 32)
        #expect(d.message.hasPrefix("comparisons cannot be chained; join them with 'and'"))
    }

    @Test func aMissingOperandIsReportedAtWhatCameInstead() throws {
        let d = try #require(only("rule \"r\" {\n  when remaining <=\n  notify ops\n}\n"))
        #expect(d.description == "test.rules:3:3: error: expected a value (a field, string, number or duration), found 'notify'")
    }

    @Test func aMissingConditionIsReported() throws {
        let d = try #require(only("rule \"r\" {\n  when\n  notify ops\n}\n"))
        #expect(d.description == "test.rules:3:3: error: expected a condition after 'when', found 'notify'")
    }

    @Test func anUnclosedParenthesisPointsAtWhatFollowsWithANoteAtTheParenthesis() throws {
        let d = try #require(only("rule \"r\" { when (remaining < 1h notify ops }"))
        #expect(d.description == "test.rules:1:33: error: expected ')' to close the '(', found 'notify'")
        #expect(d.notes.first?.location?.column == 17)
    }

    @Test func aMissingAndBetweenComparisonsIsReported() throws {
        let d = try #require(only("rule \"r\" { when remaining < 1h state == \"pending\" notify ops }"))
        #expect(d.description == "test.rules:1:32: error: expected 'and', 'or' or the next clause after the condition, found 'state'")
    }

    @Test func aRuleNameWithoutQuotesIsReportedAndTheRuleStillRead() throws {
        let result = RulesFixture.compile("rule final { when remaining <= 1h notify ops }")
        #expect(result.diagnostics.map(\.description) == [#"test.rules:1:6: error: a rule's name is written in double quotes: rule "final""#])
    }

    @Test func textOutsideARuleIsReported() throws {
        let d = try #require(only("rules \"r\" { when remaining <= 1h notify ops }"))
        #expect(d.description == "test.rules:1:1: error: expected 'rule' to start a rule, found 'rules'; did you mean 'rule'?")
    }

    @Test func repeatNeedsEveryAndADuration() {
        #expect(RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops repeat 15m }").diagnostics.map(\.description) == [
            "test.rules:1:51: error: expected 'every' after 'repeat': write 'repeat every 15m'"
        ])
        #expect(RulesFixture.compile("rule \"r\" { when remaining <= 1h notify ops repeat every 15 }").diagnostics.map(\.description) == [
            "test.rules:1:57: error: expected a duration after 'repeat every'; add a unit, such as 15m"
        ])
    }

    @Test func sinkNamesNeedCommasBetweenThem() throws {
        let d = try #require(only("rule \"r\" { when remaining <= 1h notify ops owner-mail }"))
        #expect(d.description == "test.rules:1:44: error: expected ',' between sink names")
    }

    @Test func deeplyNestedConditionsAreRefusedNotOverflowed() {
        let deep = String(repeating: "(", count: 5000) + "true" + String(repeating: ")", count: 5000)
        let d = RulesFixture.compile("rule \"r\" { when \(deep) notify ops }").diagnostics
        #expect(d.map(\.message) == ["condition is nested too deeply"])
        let nots = String(repeating: "not ", count: 5000) + "true"
        #expect(RulesFixture.compile("rule \"r\" { when \(nots) notify ops }").diagnostics.map(\.message) == ["condition is nested too deeply"])
    }

    // MARK: Recovery

    @Test func oneRunReportsEveryErrorInEveryRule() {
        let result = RulesFixture.compile(
            """
            rule "one" {
              when remaining <= 1x
              notify ops
              severity critcal
            }
            rule "two" {
              when (remaining < 1h
              notify opz
              message "in {{remainig}}"
            }
            rule "three" {
              when reason matches "(unclosed"
              notify ops
              quiet 25:00-08:00
              repeat every 0s
            }
            """)
        #expect(
            result.diagnostics.map(\.description) == [
                "test.rules:2:21: error: invalid duration '1x'; write a number and a unit (s, m, h, d), such as 45s, 15m, 2h, 1d or 1h30m",
                "test.rules:4:12: error: unknown severity 'critcal'; did you mean 'critical'?",
                "test.rules:8:3: error: expected ')' to close the '(', found 'notify'",
                "test.rules:8:10: error: unknown sink 'opz'; did you mean 'ops'?",
                "test.rules:9:17: error: unknown field 'remainig' in template; did you mean 'remaining'?",
                #"test.rules:12:23: error: invalid regular expression "(unclosed""#,
                "test.rules:14:9: error: invalid quiet window: '25:00' is not a time of day (00:00 to 23:59)",
                "test.rules:15:16: error: repeat interval '0s' is too short; it must be at least 1s",
            ])
        #expect(result.ruleSet == nil)
    }

    @Test func errorsInSeveralFilesAreAllReportedInFileOrder() {
        let result = RuleLoader(knownSinks: RulesFixture.sinks).compile([
            RuleSource(path: "a.rules", text: "rule \"a\" { when remainig <= 1h notify ops }"),
            RuleSource(path: "b.rules", text: "rule \"b\" { when remaining <= 1h notify opps }"),
        ])
        #expect(result.diagnostics.map(\.description) == [
            "a.rules:1:17: error: unknown field 'remainig'; did you mean 'remaining'?",
            "b.rules:1:40: error: unknown sink 'opps'; did you mean 'ops'?",
        ])
    }

    // MARK: Fuzzing

    @Test func randomBytesAndMutatedRuleFilesNeverCrashTheChecker() async throws {
        var rng = SeededGenerator(seed: 20_261_123)
        let root = RulesFixture.packageRoot.appendingPathComponent("rules")
        var seeds = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".rules") }.sorted().map {
            try String(contentsOf: root.appendingPathComponent($0), encoding: .utf8)
        }
        seeds.append(
            """
            rule "x" { when raw.a.0.b == 5 or (weekday in ["mon", 7] and not hour < 9) notify ops
              message "{{raw.a}} {{deadline}} {{ remaining }}" quiet 23:59-00:01 repeat every 1h30m resolve off }
            """)
        let pieces = [
            "rule", "\"", "{", "}", "(", ")", "[", "]", ",", "-", "==", "!=", "<", "<=", "in", "not", "and", "or", "when", "notify",
            "severity", "repeat", "every", "message", "quiet", "resolve", "off", "{{", "}}", "1h", "22:00", "99:99", "raw.", ".",
            "\\", "\\u{", "#", "\n", "\"{{remaining", "matches \"[\"", "仓库", "\u{0}", "\u{FFFD}", "0.", "1e999", "9999999999999999999999d",
            "remaining", "weekday == \"\"", "hour == 1.5", "deadline < \"x\"",
        ]
        var inputs = 0
        for round in 0..<4000 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            var text: String
            if round % 4 == 0 {
                // Random bytes, decoded leniently as the loader does.
                let count = Int.random(in: 0..<200, using: &rng)
                let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                text = String(decoding: bytes, as: UTF8.self)
            } else {
                var scalars = Array(seeds.randomElement(using: &rng)!.unicodeScalars)
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    let at = scalars.isEmpty ? 0 : Int.random(in: 0..<scalars.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: if !scalars.isEmpty { scalars.remove(at: at) }
                    case 1: scalars.insert(contentsOf: pieces.randomElement(using: &rng)!.unicodeScalars, at: at)
                    case 2:
                        let end = min(scalars.count, at + Int.random(in: 1...30, using: &rng))
                        scalars.removeSubrange(at..<end)
                    default:
                        scalars.insert(Unicode.Scalar(UInt8.random(in: 0...127, using: &rng)), at: at)
                    }
                }
                text = String(String.UnicodeScalarView(scalars))
            }
            let result = RulesFixture.compile(text, timeZone: RulesFixture.moscow)
            // Rendering must cope with whatever positions came out.
            _ = result.renderDiagnostics()
            for d in result.diagnostics {
                #expect(d.line >= 1 && d.column >= 1, "\(d) for input \(text.debugDescription)")
            }
            if let rules = result.ruleSet?.rules {
                let request = RulesFixture.request(raw: ["a": [["b": 5]]])
                for rule in rules {
                    _ = rule.matches(request, now: RulesFixture.deadline)
                    _ = rule.nextChange(for: request, after: RulesFixture.deadline)
                    _ = rule.renderMessage(request: request, now: RulesFixture.deadline)
                }
            }
            inputs += 1
        }
        #expect(inputs == 4000)
    }
}

extension RulesParserTests {
    @Test func aMisspeltClauseIsReadAsTheClauseItResembles() {
        // 'notfy ops' counts as the notify clause: no second error about a missing notify, and its sink is checked.
        let result = RulesFixture.compile("rule \"r\" {\n  when remaining <= 1h\n  notfy opz\n}\n")
        #expect(result.diagnostics.map(\.description) == [
            "test.rules:3:3: error: unknown clause 'notfy'; did you mean 'notify'?",
            "test.rules:3:9: error: unknown sink 'opz'; did you mean 'ops'?",
        ])
    }

    @Test func singleQuotedStringsAreReportedOnceAndReadAsStrings() {
        let result = RulesFixture.compile("rule \"r\" { when state == 'pendng' notify ops }")
        #expect(result.diagnostics.map(\.description) == [
            #"test.rules:1:26: error: strings are written in straight double quotes: "pendng""#,
            #"test.rules:1:26: error: 'state' is never "pendng"; it is "pending", "approved" or "rejected"; did you mean "pending"?"#,
        ])
    }

    @Test func aBackslashBeforeAnOrdinaryCharacterIsKeptForRegularExpressions() throws {
        let rule = try #require(RulesFixture.rule(#"reason matches "^\d+ \w+$""#))
        #expect(rule.matches(RulesFixture.request(reason: "42 items"), now: RulesFixture.deadline))
        #expect(!rule.matches(RulesFixture.request(reason: "d items"), now: RulesFixture.deadline))
    }
}
