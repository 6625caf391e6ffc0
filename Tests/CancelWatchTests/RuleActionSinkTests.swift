import Foundation
import Logging
import Testing

@testable import CancelWatch

/// Live rule actions: an `action` event is answered as its rule says, within the hourly budget.
@Suite struct RuleActionSinkTests {
    let base = AnswererTests()

    func event(_ id: String, rule: String = "auto-approve", outcome: Outcome = .approved, kind: AlertEvent.Kind = .action) -> AlertEvent {
        let request = base.tracked(id).request
        return AlertEvent(
            id: "e-\(id)", kind: kind, rule: rule, severity: .info, source: request.source, marketplace: .ozon, request: request,
            outcome: outcome, actor: AnswerActor(.rule, rule), occurredAt: base.clock.now(), message: "", sinks: [RuleActionSink.sinkName])
    }

    func sink(_ store: any StateStore, maxPerHour: Int = 20, action: @escaping @Sendable (String) -> Answer?) -> RuleActionSink {
        RuleActionSink(
            answerer: base.answerer(store), journal: store, maxPerHour: maxPerHour, clock: base.clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), action: action)
    }

    @Test func anActionEventIsAnsweredAsItsRuleSaysByTheRule() async throws {
        let store = try base.store(tracking: ["1", "2"])
        let refuse = try Answer(.refuse, comment: "made to order")
        let sink = sink(store) { $0 == "keep" ? refuse : nil }
        try await sink.deliver(event("1", rule: "keep", outcome: .rejected))
        #expect(base.market.answers.map(\.id) == ["1"])
        #expect(base.market.answers.first?.answer == refuse)
        let record = try #require(try store.answers(for: [RequestKey(source: "ozon-main", id: "1")]).first?.value)
        #expect(record.actor == AnswerActor(.rule, "keep") && record.state == .accepted)
        // Another kind of event, a rule that no longer acts, or acts otherwise now: nothing is sent.
        try await sink.deliver(event("2", rule: "keep", kind: .firing))
        try await sink.deliver(event("2", rule: "gone"))
        try await sink.deliver(event("2", rule: "keep", outcome: .approved))
        #expect(base.market.answers.count == 1)
    }

    @Test func answersPastTheHourlyBudgetAreNotSentAndTheBudgetIsAnHour() async throws {
        let store = try base.store(tracking: ["1", "2", "3"])
        let approve = try Answer(.approve)
        let sink = sink(store, maxPerHour: 2) { _ in approve }
        for id in ["1", "2", "3"] { try await sink.deliver(event(id)) }
        #expect(base.market.answers.map(\.id) == ["1", "2"])
        base.clock.advance(by: 3601)
        try store.save([base.tracked("3")], health: nil)
        try await sink.deliver(event("3"))
        #expect(base.market.answers.map(\.id) == ["1", "2", "3"])
    }

    @Test func aMarketplaceThatCannotBeAskedIsRetriedLater() async throws {
        let store = try base.store()
        base.market.answerLookups { _ in nil }
        let approve = try Answer(.approve)
        let sink = sink(store) { _ in approve }
        await #expect(throws: DeliveryError.self) { try await sink.deliver(event("1")) }
        do {
            try await sink.deliver(event("1"))
        } catch {
            #expect(error.retryable)
        }
        #expect(base.market.answers.isEmpty)
    }
}
