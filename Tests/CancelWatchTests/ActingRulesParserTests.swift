import Foundation
import Testing

@testable import CancelWatch

/// The `act` clause: what a rule answers when it fires, and every way of writing it wrong.
@Suite struct ActingRulesParserTests {
    func compile(_ act: String) -> RuleLoadResult {
        RulesFixture.compile("rule \"auto\" {\n  when remaining <= 1h\n  notify ops\n  \(act)\n}\n")
    }

    func errors(_ act: String) -> [String] {
        compile(act).errors.map(\.description)
    }

    @Test func actApproveCompilesToAnApprovalWithoutAComment() throws {
        let result = compile("act approve")
        #expect(result.diagnostics.isEmpty)
        let rule = try #require(result.ruleSet?.rules.first)
        let approval = try Answer(.approve)
        #expect(rule.action == approval)
        #expect(rule.actionLocation == RuleSourceLocation(path: "test.rules", line: 4, column: 3))
    }

    @Test func actApproveAndActRefuseCarryTheirComment() throws {
        let approve = try #require(compile(#"act approve "вернём деньги""#).ruleSet?.rules.first)
        let expected = try Answer(.approve, comment: "вернём деньги")
        #expect(approve.action == expected)
        let refuse = try #require(compile(#"act refuse "already shipped""#).ruleSet?.rules.first)
        #expect(refuse.action?.decision == .refuse)
        #expect(refuse.action?.comment == "already shipped")
    }

    @Test func aRuleWithoutActDoesNotAct() throws {
        let rule = try #require(RulesFixture.rule("remaining <= 1h"))
        #expect(rule.action == nil)
        #expect(rule.actionLocation == nil)
        let fake: any AlertRule = ThresholdRule(name: "fake", threshold: 60)
        #expect(fake.action == nil, "a rule that says nothing of acting does not act")
    }

    @Test func actMayComeBeforeOtherClausesOnOneLine() throws {
        let result = RulesFixture.compile(#"rule "r" { when remaining <= 1h act refuse "late" notify ops severity critical }"#)
        #expect(result.diagnostics.isEmpty)
        let rule = try #require(result.ruleSet?.rules.first)
        #expect(rule.action?.comment == "late")
        #expect(rule.notify == ["ops"])
        #expect(rule.severity == .critical)
    }

    @Test func aRefusalWithoutACommentIsAnErrorAtTheDecision() {
        #expect(
            errors("act refuse") == [
                #"test.rules:4:7: error: a refusal needs a comment, the reason the marketplace passes on to the buyer: act refuse "out of stock""#
            ])
    }

    @Test func anEmptyCommentIsAnErrorAtTheComment() {
        #expect(errors(#"act approve "  ""#) == ["test.rules:4:15: error: the comment is empty: leave it out to approve without one"])
        #expect(
            errors(#"act refuse """#) == [
                "test.rules:4:14: error: a refusal's comment must not be empty: give the reason the marketplace passes on to the buyer"
            ])
    }

    @Test func aCommentLongerThanTheLimitIsAnError() {
        let long = String(repeating: "a", count: Answer.commentLimit + 1)
        let result = compile("act refuse \"\(long)\"")
        #expect(result.ruleSet == nil)
        #expect(
            result.errors.map(\.description) == [
                "test.rules:4:14: error: cannot act refuse with this comment: the comment is \(Answer.commentLimit + 1) characters long; at most \(Answer.commentLimit)"
            ])
        #expect(result.errors.first?.length == long.count + 2, "the caret spans the whole string")
        #expect(compile("act refuse \"\(String(repeating: "a", count: Answer.commentLimit))\"").ruleSet != nil)
    }

    @Test func aCommentWithAControlCharacterIsAnError() {
        #expect(errors(#"act refuse "no\u{1B}[31m""#) == ["test.rules:4:14: error: cannot act refuse with this comment: the comment holds a control character"])
    }

    @Test func aSecondActInOneRuleIsAnError() {
        let result = RulesFixture.compile("rule \"auto\" {\n  when remaining <= 1h\n  notify ops\n  act approve\n  act refuse \"x\"\n}\n")
        #expect(result.ruleSet == nil)
        #expect(result.errors.map(\.description) == [#"test.rules:5:3: error: duplicate 'act' clause in rule "auto""#])
        #expect(result.errors.first?.notes.first?.location == RuleSourceLocation(path: "test.rules", line: 4, column: 3))
    }

    @Test func anUnknownDecisionIsAnErrorWithTheClosestOne() {
        #expect(
            errors("act aprove") == [
                #"test.rules:4:7: error: expected approve or refuse after 'act', as in act refuse "out of stock"; found 'aprove'; did you mean 'approve'?"#
            ])
        #expect(
            errors("act") == [
                #"test.rules:5:1: error: expected approve or refuse after 'act', as in act refuse "out of stock"; found '}'"#
            ])
    }

    @Test func rejectIsReadAsRefuseAndReportedSoTheCommentIsCheckedToo() {
        let result = compile("act reject")
        #expect(
            result.errors.map(\.description) == [
                "test.rules:4:7: error: the decision is written 'refuse'",
                #"test.rules:4:7: error: a refusal needs a comment, the reason the marketplace passes on to the buyer: act refuse "out of stock""#,
            ])
        #expect(result.errors.first?.suggestion == "refuse")
    }

    @Test func somethingOtherThanACommentAfterTheDecisionIsAnError() {
        #expect(
            errors("act approve 5") == [
                "test.rules:4:15: error: expected the comment in double quotes or the next clause after 'act approve', found a number"
            ])
    }

    @Test func aMistakeInActDoesNotHideTheNextRulesMistakes() {
        let result = RulesFixture.compile(
            "rule \"a\" {\n  when remaining <= 1h\n  notify ops\n  act refuse\n}\nrule \"b\" {\n  when remainig <= 1h\n  notify ops\n}\n")
        #expect(result.errors.map(\.line) == [4, 7])
    }
}
