import Foundation
import Testing

@testable import CancelWatch

/// A request answered through cancelwatch is resolved as the marketplace lists it, and its
/// `resolved` events name who answered: only when the outcome is the answer's.
extension LedgerAlertTests {
    @Test(arguments: [
        (Decision.approve, Outcome.approved, AnswerRecord.State.accepted, true),
        (.refuse, .rejected, .unknown, true),
        (.refuse, .rejected, .sending, true),
        (.approve, .rejected, .accepted, false),
        (.refuse, .rejected, .refused, false),
    ])
    func aResolvedEventNamesWhoAnsweredWhenTheOutcomeIsTheirAnswer(
        _ decision: Decision, _ outcome: Outcome, _ state: AnswerRecord.State, _ named: Bool
    ) async throws {
        let watched = try ledger([ThresholdRule(name: "final-hour", threshold: 3600)])
        let request = request("1", deadlineIn: 600)
        await watched.poll([request])
        let actor = AnswerActor(.telegram, "42 (Bob)")
        #expect(
            try store.beginAnswer(
                AnswerRecord(
                    request: request.key, order: request.order, decision: decision, comment: decision == .refuse ? "no" : "", actor: actor,
                    startedAt: clock.now())) == nil)
        if state != .sending { try store.finishAnswer(request.key, state: state, message: "", at: clock.now()) }
        clock.advance(by: 30)
        await watched.poll([], outcomes: resolved(request, outcome))
        #expect(watched.events.kinds == ["firing/final-hour", "resolved/final-hour"])
        let event = try #require(watched.events.events.last)
        #expect(event.outcome == outcome)
        #expect(event.actor == (named ? actor : nil))
        #expect(event.message.contains("\(outcome.rawValue) by telegram:42 (Bob)") == named, "\(event.message)")
        #expect(event.webhookBody["actor"] == (named ? .string("telegram:42 (Bob)") : .null))
    }
}
