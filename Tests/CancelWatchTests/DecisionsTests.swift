import Foundation
import Testing

@testable import CancelWatch

/// The decisions alone: values in, values out, no actor, store or clock.
@Suite struct DecisionsTests {
    // 2025-11-24 16:00:00 UTC
    let start = Date(timeIntervalSince1970: 1_764_000_000)

    func request(deadlineIn seconds: TimeInterval, id: String = "1") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: start.addingTimeInterval(seconds))
    }

    @Test func aThresholdFiresAtItsInstantAndNotASecondBefore() {
        let rule = ThresholdRule(name: "final-hour", threshold: 3600)
        let request = request(deadlineIn: 3 * 3600)
        let crossing = request.deadline.addingTimeInterval(-3600)

        let before = Decisions.evaluate(request, states: [nil], rules: [rule], now: crossing.addingTimeInterval(-1))
        #expect(before.events.isEmpty)
        #expect(before.states == [nil])
        #expect(before.wake == crossing)

        let at = Decisions.evaluate(request, states: [nil], rules: [rule], now: crossing)
        #expect(at.events.map(\.kind) == [.firing])
        #expect(at.events.first?.id == AlertEvent.makeID(source: "ozon-main", request: "1", rule: "final-hour", kind: .firing, occurrence: 1))
        #expect(at.events.first?.message == "order-1 in \(DurationText.format(3600))")
        #expect(at.events.first?.occurredAt == crossing)
        #expect(at.changed == [0])
        #expect(at.states.first??.active == true)
        #expect(at.wake == nil, "nothing changes by time alone any more")
    }

    @Test func aRepeatComesOnItsCadenceAndNotBefore() {
        let rule = ThresholdRule(name: "r", threshold: 3600, repeatEvery: 900)
        let request = request(deadlineIn: 3000)
        let fired = Decisions.evaluate(request, states: [nil], rules: [rule], now: start)
        #expect(fired.wake == start.addingTimeInterval(900))

        let early = Decisions.evaluate(request, states: fired.states, rules: [rule], now: start.addingTimeInterval(899))
        #expect(early.events.isEmpty)
        #expect(early.changed.isEmpty)

        let due = Decisions.evaluate(request, states: fired.states, rules: [rule], now: start.addingTimeInterval(900))
        #expect(due.events.map(\.kind) == [.repeat])
        #expect(due.events.first?.id == AlertEvent.makeID(source: "ozon-main", request: "1", rule: "r", kind: .repeat, occurrence: 1))
        #expect(due.wake == start.addingTimeInterval(1800))
    }

    @Test func aFiringInsideTheQuietWindowIsHeldToItsEndThenReleased() {
        // 16:00 UTC falls in a quiet window from 15:00 to 18:00.
        let rule = ThresholdRule(name: "quiet", threshold: 86400, quietHours: (15, 18))
        let request = request(deadlineIn: 12 * 3600)
        let end = start.addingTimeInterval(2 * 3600)

        let held = Decisions.evaluate(request, states: [nil], rules: [rule], now: start)
        #expect(held.events.isEmpty)
        #expect(held.states.first??.heldUntil == end)
        #expect(held.changed == [0], "the hold is kept, so a restart still releases it")
        #expect(held.wake == end)

        let released = Decisions.evaluate(request, states: held.states, rules: [rule], now: end)
        #expect(released.events.map(\.kind) == [.firing])
        #expect(released.states.first??.heldUntil == nil)
    }

    @Test func resolvedGoesOutOnlyForARuleThatFired() {
        let fired = ThresholdRule(name: "fired", threshold: 3600)
        let notYet = ThresholdRule(name: "not-yet", threshold: 60)
        let request = request(deadlineIn: 600)
        let evaluated = Decisions.evaluate(request, states: [nil, nil], rules: [fired, notYet], now: start)
        #expect(evaluated.events.map(\.rule) == ["fired"])

        let closed = Decisions.close(request, as: .resolved(.approved), states: evaluated.states, rules: [fired, notYet], now: start)
        #expect(closed.events.map(\.kind) == [.resolved])
        #expect(closed.events.first?.outcome == .approved)
        #expect(closed.events.first?.message == "ozon ozon-main order-1: cancellation request approved (rule fired)")
        #expect(closed.states.first??.closed == true)
        #expect(closed.states.last == .some(nil), "a rule that never fired has nothing to close")

        let again = Decisions.close(request, as: .resolved(.approved), states: closed.states, rules: [fired, notYet], now: start)
        #expect(again.events.isEmpty, "closed once")
    }

    @Test func expiredNamesTheDeadlineThatPassed() {
        let rule = ThresholdRule(name: "final-hour", threshold: 3600)
        let request = request(deadlineIn: 600)
        let fired = Decisions.evaluate(request, states: [nil], rules: [rule], now: start)
        let closed = Decisions.close(request, as: .expired, states: fired.states, rules: [rule], now: request.deadline)
        #expect(closed.events.map(\.kind) == [.expired])
        #expect(closed.events.first?.outcome == nil)
        #expect(
            closed.events.first?.message
                == "ozon ozon-main order-1: the deadline \(Timestamp.format(request.deadline)) passed while pending; the marketplace decided (rule final-hour)")
    }

    @Test func aReopenedRequestFiresAgainWithNewOccurrenceIDs() {
        let rule = ThresholdRule(name: "final-hour", threshold: 3600)
        let request = request(deadlineIn: 600)
        let first = Decisions.evaluate(request, states: [nil], rules: [rule], now: start)
        let closed = Decisions.close(request, as: .expired, states: first.states, rules: [rule], now: start)
        let reopened = Decisions.reopen(closed.states[0]!)
        #expect(reopened.changed)
        #expect(!reopened.state.closed && !reopened.state.active && reopened.state.lastFiredAt == nil)

        let again = Decisions.evaluate(request, states: [reopened.state], rules: [rule], now: start.addingTimeInterval(60))
        #expect(again.events.map(\.kind) == [.firing])
        #expect(again.events.first?.id != first.events.first?.id)
        #expect(again.events.first?.id == AlertEvent.makeID(source: "ozon-main", request: "1", rule: "final-hour", kind: .firing, occurrence: 2))
        #expect(Decisions.reopen(reopened.state).changed == false, "an open state stays as it is")
    }

    @Test func aSourceIsDownAfterDownAfterFailuresInARowAndUpOnTheNextSuccess() {
        var health = SourceHealth(source: "ozon-main", marketplace: .ozon)
        var downs: [AlertEvent] = []
        for attempt in 1...4 {
            let decision = Decisions.afterPoll(
                health, startedAt: start, failure: "HTTP 503", downAfter: 3, risk: request(deadlineIn: 5400), notify: ["ops"],
                now: start)
            health = decision.health
            #expect(health.consecutiveFailures == attempt)
            if let event = decision.event { downs.append(event) }
        }
        #expect(downs.map(\.kind) == [.sourceDown], "once, at the third failure")
        #expect(downs.first?.id == AlertEvent.makeID(source: "ozon-main", request: "", rule: "health", kind: .sourceDown, occurrence: 1))
        #expect(
            downs.first?.message
                == "source ozon-main is down: 3 polls failed in a row (HTTP 503); earliest pending deadline at risk: order-1 at \(Timestamp.format(start.addingTimeInterval(5400))) (in \(DurationText.format(5400)))")
        #expect(health.down && health.downCount == 1)

        let up = Decisions.afterPoll(health, startedAt: start, failure: nil, downAfter: 3, risk: nil, notify: ["ops"], now: start)
        #expect(up.event?.kind == .sourceUp)
        #expect(up.event?.message == "source ozon-main is up again: polls succeed")
        #expect(up.health.down == false && up.health.consecutiveFailures == 0 && up.health.lastError == nil)
        #expect(up.health.lastSuccessAt == start)
        let steady = Decisions.afterPoll(up.health, startedAt: start, failure: nil, downAfter: 3, risk: nil, notify: ["ops"], now: start)
        #expect(steady.event == nil && steady.notice == nil)
    }

    @Test func aSilentSourceIsDownOnceItsWindowHasPassed() {
        let health = SourceHealth(source: "ozon-main", marketplace: .ozon, lastError: "timed out")
        #expect(Decisions.silence(health, since: start, window: 600, risk: nil, notify: ["ops"], now: start.addingTimeInterval(599)) == nil)
        let down = Decisions.silence(health, since: start, window: 600, risk: nil, notify: ["ops"], now: start.addingTimeInterval(600))
        #expect(down?.event?.kind == .sourceDown)
        #expect(
            down?.event?.message
                == "source ozon-main is down: no successful poll for \(DurationText.format(600)) (last error: timed out); no pending request is known for it")
        #expect(Decisions.silence(down!.health, since: start, window: 600, risk: nil, notify: ["ops"], now: start.addingTimeInterval(9999)) == nil)
    }

    @Test func aHealthChangeWithNoSinkNamedIsLoggedButRaisesNoEvent() {
        let health = SourceHealth(source: "ozon-main", marketplace: .ozon, consecutiveFailures: 2)
        let decision = Decisions.afterPoll(health, startedAt: start, failure: "HTTP 503", downAfter: 3, risk: nil, notify: [], now: start)
        #expect(decision.health.down)
        #expect(decision.event == nil)
        #expect(decision.notice?.hasPrefix("source ozon-main is down") == true)
    }
}
