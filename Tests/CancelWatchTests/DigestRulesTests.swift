import Foundation
import Testing

@testable import CancelWatch

/// The `digest` block of the rule language: what it compiles to, and every mistake reported
/// at its line and column like a rule's.
@Suite struct DigestRulesTests {
    private func digest(_ text: String) throws -> CompiledDigest {
        let result = RulesFixture.compile(text)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
        return try #require(result.ruleSet?.digests.first)
    }

    private func errors(_ text: String) -> [String] {
        RulesFixture.compile(text).diagnostics.map(\.description)
    }

    // MARK: Good forms

    @Test func aDigestWithEveryClauseCompilesToItsSettings() throws {
        let result = RulesFixture.compile(
            """
            rule "r" {
              when remaining <= 1h
              notify ops
            }

            digest "morning" {   # the summary before work
              at      09:00
              on      mon-fri
              notify  owner-mail, ops
              include state == "pending" and remaining <= 48h
              always
            }
            """)
        #expect(result.diagnostics.isEmpty)
        let ruleSet = try #require(result.ruleSet)
        #expect(ruleSet.rules.map(\.name) == ["r"])
        let digest = try #require(ruleSet.digests.first)
        #expect(digest.name == "morning")
        #expect(digest.minuteOfDay == 9 * 60)
        #expect(digest.days == 0b001_1111)
        #expect(digest.notify == ["owner-mail", "ops"])
        #expect(digest.always)
        #expect(digest.includeText == #"state == "pending" and remaining <= 48h"#)
        #expect(digest.location == RuleSourceLocation(path: "test.rules", line: 6, column: 1))
        #expect(ruleSet.sinkNames == ["ops", "owner-mail"])
    }

    @Test func aDigestOnOneLineSeparatesItsClausesWithSemicolons() throws {
        let digest = try digest(
            #"digest "morning" { at 09:00 on mon-fri; notify owner-mail; include state == "pending" and remaining <= 48h; always }"#)
        #expect(digest.minuteOfDay == 540)
        #expect(digest.days == 0b001_1111)
        #expect(digest.notify == ["owner-mail"])
        #expect(digest.includeText == #"state == "pending" and remaining <= 48h"#)
        #expect(digest.always)
    }

    @Test func omittedClausesTakeTheirDefaults() throws {
        let digest = try digest(#"digest "d" { at 18:30; notify ops }"#)
        #expect(digest.days == 0x7F)
        #expect(digest.includeText == #"state == "pending""#)
        #expect(!digest.always)
        let pending = RulesFixture.request()
        #expect(digest.matches(pending, now: RulesFixture.deadline))
        #expect(!digest.matches(RulesFixture.request(state: .approved), now: RulesFixture.deadline))
    }

    @Test func daysAreNamedListedRangedAndMayWrap() throws {
        #expect(try digest(#"digest "d" { at 09:00; on sat,sun; notify ops }"#).days == 0b110_0000)
        #expect(try digest(#"digest "d" { at 09:00; on daily; notify ops }"#).days == 0x7F)
        #expect(try digest(#"digest "d" { at 09:00; on fri-mon; notify ops }"#).days == 0b111_0001)
        #expect(try digest(#"digest "d" { at 09:00; on monday, wed - fri; notify ops }"#).days == 0b001_1101)
    }

    @Test func aRuleMayUseSemicolonsToo() throws {
        let result = RulesFixture.compile(#"rule "r" { when remaining <= 1h; notify ops; severity critical }"#)
        #expect(result.diagnostics.isEmpty)
        #expect(result.ruleSet?.rules.first?.severity == .critical)
    }

    // MARK: Mistakes

    @Test func aTimeOfDayOutOfRangeIsReportedAtIt() {
        #expect(errors("digest \"d\" {\n  at 25:00\n  notify ops\n}\n") == [
            "test.rules:2:6: error: invalid time '25:00': a digest's time is a time of day, 00:00 to 23:59"
        ])
        #expect(errors("digest \"d\" {\n  at 9\n  notify ops\n}\n") == [
            "test.rules:2:6: error: expected a time of day such as 09:00 after 'at', found a number"
        ])
    }

    @Test func anUnknownDayIsReportedAtItWithTheClosestName() {
        let result = RulesFixture.compile("digest \"d\" {\n  at 09:00 on mon-fry\n  notify ops\n}\n")
        #expect(result.diagnostics.map(\.description) == ["test.rules:2:19: error: unknown day 'fry'; did you mean 'fri'?"])
        #expect(result.diagnostics.first?.length == 3)
        #expect(result.diagnostics.first?.suggestion == "fri")
        #expect(errors("digest \"d\" {\n  at 09:00\n  on weekdays\n  notify ops\n}\n") == [
            "test.rules:3:6: error: unknown day 'weekdays'; write mon, tue, wed, thu, fri, sat or sun, a range such as mon-fri, or daily"
        ])
    }

    @Test func aDigestWithoutNotifyOrAtSaysWhatToAdd() {
        #expect(errors("digest \"d\" {\n  at 09:00\n}\n") == [
            "test.rules:1:8: error: digest \"d\" has no 'notify' clause; add one naming a sink, such as: notify console"
        ])
        #expect(errors("digest \"d\" {\n  notify ops\n}\n") == [
            "test.rules:1:8: error: digest \"d\" has no 'at' clause; add the local time it is sent at, such as: at 09:00"
        ])
    }

    @Test func digestNamesAreUniqueAndDistinctFromRuleNamesAcrossFiles() {
        let loader = RuleLoader(knownSinks: RulesFixture.sinks)
        let result = loader.compile([
            RuleSource(path: "a.rules", text: "rule \"morning\" {\n  when remaining <= 1h\n  notify ops\n}\ndigest \"evening\" { at 18:00; notify ops }\n"),
            RuleSource(path: "b.rules", text: "digest \"evening\" { at 19:00; notify ops }\ndigest \"morning\" { at 09:00; notify ops }\n"),
        ])
        #expect(result.diagnostics.map(\.description) == [
            "b.rules:1:8: error: duplicate digest name \"evening\"; digest names must be unique across all rule files",
            "b.rules:2:8: error: digest name \"morning\" is already a rule's; rules and digests need names of their own",
        ])
        #expect(result.diagnostics.first?.notes.first?.location == RuleSourceLocation(path: "a.rules", line: 5, column: 1))
    }

    @Test func anIncludeConditionIsCheckedLikeAWhen() {
        #expect(errors("digest \"d\" {\n  at 09:00\n  notify ops\n  include remainig <= 48h\n}\n") == [
            "test.rules:4:11: error: unknown field 'remainig'; did you mean 'remaining'?"
        ])
        #expect(errors("digest \"d\" {\n  at 09:00\n  notify ops\n  include remaining <= 48\n}\n") == [
            "test.rules:4:24: error: cannot compare duration with number; add a unit, such as 48m"
        ])
    }

    @Test func anUnknownSinkIsReportedLikeARulesUnknownSink() {
        #expect(errors("digest \"d\" {\n  at 09:00\n  notify owner-mial\n}\n") == [
            "test.rules:3:10: error: unknown sink 'owner-mial'; did you mean 'owner-mail'?"
        ])
    }

    @Test func aRepeatedOrUnknownClauseIsReported() {
        #expect(errors("digest \"d\" {\n  at 09:00\n  at 10:00\n  notify ops\n}\n") == [
            "test.rules:3:3: error: duplicate 'at' clause in digest \"d\""
        ])
        #expect(errors("digest \"d\" {\n  at 09:00\n  notify ops\n  when remaining <= 1h\n}\n") == [
            "test.rules:4:3: error: unknown clause 'when'; a digest has at, on, notify, include and always clauses"
        ])
        #expect(errors("digest \"d\" {\n  at 09:00\n  notfy ops\n}\n") == [
            "test.rules:3:3: error: unknown clause 'notfy'; did you mean 'notify'?"
        ])
    }

    @Test func aMisspeltDigestKeywordIsReported() {
        #expect(errors("digets \"d\" { at 09:00; notify ops }\n").first
            == "test.rules:1:1: error: expected 'digest' to start a digest, found 'digets'; did you mean 'digest'?")
    }

    @Test func everyMistakeOfOneFileIsReportedInOneRun() {
        let diagnostics = errors(
            """
            digest "a" {
              at 24:10 on mon-fry
              include remainig <= 48h
            }
            """)
        #expect(diagnostics == [
            "test.rules:1:8: error: digest \"a\" has no 'notify' clause; add one naming a sink, such as: notify console",
            "test.rules:2:6: error: invalid time '24:10': a digest's time is a time of day, 00:00 to 23:59",
            "test.rules:2:19: error: unknown day 'fry'; did you mean 'fri'?",
            "test.rules:3:11: error: unknown field 'remainig'; did you mean 'remaining'?",
        ])
    }
}
