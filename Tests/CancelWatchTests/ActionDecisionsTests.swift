import Foundation
import Testing

@testable import CancelWatch

/// A rule that acts gives an `action` event with its firing: what it answers (or, in
/// dry-run, would answer), with an id as stable as the firing's.
@Suite struct ActionDecisionsTests {
    // 2025-11-24 16:00:00 UTC
    let start = Date(timeIntervalSince1970: 1_764_000_000)

    func request(deadlineIn seconds: TimeInterval) -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "shop", id: "77", order: "0123-0001-1", state: .pending, rawState: "ON_APPROVAL",
            deadline: start.addingTimeInterval(seconds))
    }

    func rule(_ clauses: String) throws -> CompiledRule {
        let result = RulesFixture.compile("rule \"auto\" {\n  when remaining <= 1h\n  notify ops, console\n  \(clauses)\n}\n")
        return try #require(result.ruleSet?.rules.first, "\(result.renderDiagnostics())")
    }

    @Test func aFiringOfAnActingRuleComesWithItsActionForTheSameRequest() throws {
        let rule = try rule(#"act refuse "already shipped" severity critical"#)
        let evaluation = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [rule], now: start)
        #expect(evaluation.events.map(\.kind) == [.firing, .action])
        let action = try #require(evaluation.events.last)
        #expect(action.id == AlertEvent.makeID(source: "shop", request: "77", rule: "auto", kind: .action, occurrence: 1))
        #expect(action.id != evaluation.events[0].id)
        #expect(action.outcome == .rejected)
        #expect(action.actor == AnswerActor(.rule, "auto"))
        #expect(action.severity == .critical)
        #expect(action.sinks == ["ops", "console"])
        #expect(action.rule == "auto")
        #expect(action.request?.key == RequestKey(source: "shop", id: "77"))
        #expect(action.occurredAt == start)
        #expect(action.message == #"dry-run: rule auto would refuse ozon shop 0123-0001-1 (comment "already shipped")"#)
    }

    @Test func liveModeSaysWhatTheRuleDoesAndSendsItToTheRuleActionSinkAndAnApprovalMayHaveNoComment() throws {
        let refuse = try rule(#"act refuse "already shipped""#)
        let live = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [refuse], now: start, actions: .live)
        #expect(live.events.last?.message == #"rule auto refuses ozon shop 0123-0001-1 (comment "already shipped")"#)
        #expect(live.events.last?.sinks == ["ops", "console", RuleActionSink.sinkName], "live, the rule-action sink answers it")
        #expect(live.events.first?.sinks == ["ops", "console"])

        let approve = try rule("act approve")
        let dry = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [approve], now: start, actions: .dryRun)
        #expect(dry.events.last?.message == "dry-run: rule auto would approve ozon shop 0123-0001-1")
        #expect(dry.events.last?.outcome == .approved)
        let liveApproval = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [approve], now: start, actions: .live)
        #expect(liveApproval.events.last?.message == "rule auto approves ozon shop 0123-0001-1")
    }

    @Test func theSameDecisionMadeAgainGivesTheSameActionID() throws {
        let rule = try rule("act approve")
        let first = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [rule], now: start)
        let again = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [rule], now: start.addingTimeInterval(5))
        #expect(first.events.map(\.id) == again.events.map(\.id))
    }

    @Test func repeatsDoNotActAgain() throws {
        let rule = try rule("act approve repeat every 15m")
        let fired = Decisions.evaluate(request(deadlineIn: 3000), states: [nil], rules: [rule], now: start)
        #expect(fired.events.map(\.kind) == [.firing, .action])
        let repeated = Decisions.evaluate(request(deadlineIn: 3000), states: fired.states, rules: [rule], now: start.addingTimeInterval(900))
        #expect(repeated.events.map(\.kind) == [.repeat])
    }

    @Test func aRuleThatDoesNotActGivesNoAction() throws {
        let rule = try rule("severity info")
        let evaluation = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [rule], now: start, actions: .live)
        #expect(evaluation.events.map(\.kind) == [.firing])
    }

    @Test func aFiringHeldByAQuietWindowActsWhenItIsReleased() throws {
        // At 17:30 UTC the hour is left, inside 15:00-18:00; the deadline, 18:30, is not.
        let rule = try rule("act approve quiet 15:00-18:00")
        let request = request(deadlineIn: 9000)
        let held = Decisions.evaluate(request, states: [nil], rules: [rule], now: start.addingTimeInterval(5400))
        #expect(held.events.isEmpty)
        let end = start.addingTimeInterval(7200)
        #expect(held.wake == end)
        let released = Decisions.evaluate(request, states: held.states, rules: [rule], now: end)
        #expect(released.events.map(\.kind) == [.firing, .action])
        #expect(released.events.last?.occurredAt == end)
    }

    @Test func aReopenedRequestFiringAgainActsAgainWithTheNextOccurrence() throws {
        let rule = try rule("act approve")
        let fired = Decisions.evaluate(request(deadlineIn: 600), states: [nil], rules: [rule], now: start)
        let closed = Decisions.close(request(deadlineIn: 600), as: .resolved(.rejected), states: fired.states, rules: [rule], now: start)
        let reopened = try #require(closed.states.first ?? nil).reopened
        let again = Decisions.evaluate(request(deadlineIn: 600), states: [reopened], rules: [rule], now: start.addingTimeInterval(60))
        #expect(
            again.events.map(\.id) == [
                AlertEvent.makeID(source: "shop", request: "77", rule: "auto", kind: .firing, occurrence: 2),
                AlertEvent.makeID(source: "shop", request: "77", rule: "auto", kind: .action, occurrence: 2),
            ])
    }
}

extension PackedAlert {
    fileprivate var reopened: PackedAlert { Decisions.reopen(self).state }
}
