import Foundation

/// What fires, repeats, waits for a quiet window, resolves, expires, and when a source is
/// down or up again: plain functions of (request or source, its states, the rules, now),
/// with no actor, store or clock. The engine applies what they return.
enum Decisions {
    /// One rule's verdict on one request at one instant.
    private struct RuleVerdict: Sendable {
        /// The alert state after it; nil: nothing worth keeping (never fired nor held).
        var state: PackedAlert?
        /// Whether `state` differs from the one given (and should be saved).
        var changed: Bool
        /// `firing` or `repeat`, when one is due now; after a `firing`, the rule's `action`.
        var events: [AlertEvent] = []
        /// The earliest instant after `now` at which this rule's verdict may change.
        var wake: Date?
    }

    /// What the rules decide about one request at one instant.
    struct Evaluation: Sendable {
        var events: [AlertEvent] = []
        /// By the rules' positions: each rule's alert state after it.
        var states: [PackedAlert?] = []
        /// Positions of the rules whose state changed.
        var changed: [Int] = []
        /// When to evaluate the request again: a threshold, a repeat or the end of a quiet
        /// window (not the deadline: expiring is decided apart).
        var wake: Date?
    }

    /// Every rule on a pending `request` at `now`; `states` by the rules' positions. `actions`:
    /// whether the `action` events of acting rules say what is done or what would be.
    static func evaluate(
        _ request: CancellationRequest, states: [PackedAlert?], rules: [AlertRule], now: Date, actions: ActionMode = .dryRun
    ) -> Evaluation {
        var result = Evaluation()
        for (index, rule) in rules.enumerated() {
            let verdict = evaluate(
                request, state: index < states.count ? states[index] : nil, rule: rule, now: now, actions: actions)
            result.states.append(verdict.state)
            if verdict.changed { result.changed.append(index) }
            result.events += verdict.events
            if let wake = verdict.wake { result.wake = min(result.wake ?? wake, wake) }
        }
        return result
    }

    /// One rule on a pending `request` at `now`: `firing` the first time its condition holds,
    /// `repeat` on its cadence while it does, held to the end of a quiet window, quiet
    /// again when it no longer holds. A rule that acts gives its `action` with each `firing`.
    private static func evaluate(
        _ request: CancellationRequest, state before: PackedAlert?, rule: AlertRule, now: Date, actions: ActionMode
    ) -> RuleVerdict {
        var state = before ?? PackedAlert(rule: 0)
        if state.closed { return RuleVerdict(state: before, changed: false) }
        var events: [AlertEvent] = []
        if rule.matches(request, now: now) {
            let kind: AlertEvent.Kind = state.active ? .repeat : .firing
            let due = !state.active || state.nextRepeatAt.map { $0 <= now } == true
            if due {
                let release = rule.quietRelease(at: now, deadline: request.deadline)
                if release > now {
                    state.heldUntil = release
                } else {
                    state.heldUntil = nil
                    let occurrence: Int32
                    if kind == .firing {
                        state.firings += 1
                        state.active = true
                        occurrence = state.firings
                    } else {
                        state.repeats += 1
                        occurrence = state.repeats
                    }
                    state.lastFiredAt = now
                    // After downtime, one repeat now, then the cadence from here.
                    state.nextRepeatAt = rule.repeatEvery.map { now.addingTimeInterval($0) }
                    events.append(
                        AlertEvent(
                            id: AlertEvent.makeID(
                                source: request.source, request: request.id, rule: rule.name, kind: kind, occurrence: Int(occurrence)),
                            kind: kind, rule: rule.name, severity: rule.severity, source: request.source,
                            marketplace: request.marketplace, request: request, occurredAt: now,
                            message: rule.message(for: request, now: now), sinks: rule.notify))
                    if kind == .firing, let answer = rule.action {
                        events.append(
                            action(answer, rule: rule, request: request, occurrence: Int(occurrence), mode: actions, now: now))
                    }
                }
            }
        } else if state.active || state.heldUntil != nil {
            state.active = false
            state.nextRepeatAt = nil
            state.heldUntil = nil
        }
        var wake: Date?
        for candidate in [rule.nextChange(for: request, after: now), state.active ? state.nextRepeatAt : nil, state.heldUntil] {
            if let candidate, candidate > now { wake = min(wake ?? candidate, candidate) }
        }
        let keep = before != nil || state.firings > 0 || state.heldUntil != nil
        return RuleVerdict(state: keep ? state : nil, changed: keep && state != before, events: events, wake: wake)
    }

    /// The `action` event of `rule`'s firing number `occurrence`: the answer it gives (or, in
    /// dry-run, would give), with an id as stable as the firing's. It goes to the rule's sinks,
    /// and when live to ``RuleActionSink`` too, which sends the answer from the outbox.
    private static func action(
        _ answer: Answer, rule: AlertRule, request: CancellationRequest, occurrence: Int, mode: ActionMode, now: Date
    ) -> AlertEvent {
        let target = "\(request.marketplace.rawValue) \(request.source) \(request.order)"
            + (answer.comment.isEmpty ? "" : " (comment \"\(answer.comment)\")")
        let decision = answer.decision.rawValue
        let message: String
        switch mode {
        case .dryRun: message = "dry-run: rule \(rule.name) would \(decision) \(target)"
        case .live: message = "rule \(rule.name) \(decision)s \(target)"
        }
        return AlertEvent(
            id: AlertEvent.makeID(source: request.source, request: request.id, rule: rule.name, kind: .action, occurrence: occurrence),
            kind: .action, rule: rule.name, severity: rule.severity, source: request.source, marketplace: request.marketplace,
            request: request, outcome: answer.decision.outcome, actor: AnswerActor(.rule, rule.name), occurredAt: now,
            message: message, sinks: mode == .live ? rule.notify + [RuleActionSink.sinkName] : rule.notify)
    }

    /// How a request stopped being pending.
    enum Closing: Sendable {
        /// Left the pending list: approved, rejected or vanished.
        case resolved(Outcome)
        /// Its deadline passed while pending: the marketplace decided.
        case expired
    }

    /// What closing a request decides: each rule's state closed, and `resolved`/`expired`
    /// for each rule that fired (and notifies resolutions).
    struct CloseDecision: Sendable {
        var events: [AlertEvent] = []
        /// By the rules' positions: the closed states (nil where the rule had none, or it was closed already).
        var states: [PackedAlert?] = []
    }

    /// Closes `request`'s alerts at `now`; `states` by the rules' positions. `actor`: who
    /// answered it through cancelwatch, named by its `resolved` events.
    static func close(
        _ request: CancellationRequest, as closing: Closing, states: [PackedAlert?], rules: [AlertRule], actor: AnswerActor? = nil,
        now: Date
    ) -> CloseDecision {
        var result = CloseDecision()
        for (index, rule) in rules.enumerated() {
            guard index < states.count, var state = states[index], !state.closed else {
                result.states.append(nil)
                continue
            }
            state.closed = true
            state.active = false
            state.nextRepeatAt = nil
            state.heldUntil = nil
            result.states.append(state)
            guard state.firings > 0, state.lastFiredAt != nil, rule.notifiesResolution else { continue }
            let kind: AlertEvent.Kind
            let outcome: Outcome?
            let text: String
            switch closing {
            case .expired:
                kind = .expired
                outcome = nil
                text = "\(request.marketplace.rawValue) \(request.source) \(request.order): the deadline \(Timestamp.format(request.deadline)) passed while pending; the marketplace decided (rule \(rule.name))"
            case .resolved(let how):
                kind = .resolved
                outcome = how
                let by = actor.map { " by \($0)" } ?? ""
                text = "\(request.marketplace.rawValue) \(request.source) \(request.order): cancellation request \(how.rawValue)\(by) (rule \(rule.name))"
            }
            result.events.append(
                AlertEvent(
                    id: AlertEvent.makeID(
                        source: request.source, request: request.id, rule: rule.name, kind: kind, occurrence: Int(state.firings)),
                    kind: kind, rule: rule.name, severity: rule.severity, source: request.source, marketplace: request.marketplace,
                    request: request, outcome: outcome, actor: kind == .resolved ? actor : nil, occurredAt: now, message: text,
                    sinks: rule.notify))
        }
        return result
    }

    /// A closed request is pending again (listed again, or its deadline was extended): its
    /// rules may fire again, with the next occurrence numbers (new ids). Returns the state
    /// to keep (nil stays nil) and whether it changed.
    static func reopen(_ state: PackedAlert) -> (state: PackedAlert, changed: Bool) {
        guard state.closed else { return (state, false) }
        var open = state
        open.closed = false
        open.active = false
        open.nextRepeatAt = nil
        open.heldUntil = nil
        // Not fired since it reopened: closing again sends no second `resolved`.
        open.lastFiredAt = nil
        return (open, true)
    }

    // MARK: - Source health

    /// A source's health after a decision, and the event it raised.
    struct HealthDecision: Sendable {
        var health: SourceHealth
        /// `source_down` or `source_up`, when the health changed and `notify` names sinks.
        var event: AlertEvent?
        /// The health change in words, for the log (also when no sink is told).
        var notice: String?
    }

    /// After one poll of a source: `failure` nil when it succeeded at `now`. `source_down`
    /// after `downAfter` failures in a row, `source_up` on the first success after.
    /// `risk`: the source's pending request with the earliest deadline.
    static func afterPoll(
        _ health: SourceHealth, startedAt: Date, failure: String?, downAfter: Int, risk: CancellationRequest?, notify: [String],
        now: Date
    ) -> HealthDecision {
        var health = health
        health.lastPollAt = startedAt
        guard let failure else {
            health.lastSuccessAt = now
            health.consecutiveFailures = 0
            health.lastError = nil
            guard health.down else { return HealthDecision(health: health) }
            health.down = false
            return healthChange(
                health, kind: .sourceUp, severity: .info, message: "source \(health.source) is up again: polls succeed",
                notify: notify, now: now)
        }
        health.consecutiveFailures += 1
        health.lastError = failure
        guard !health.down, health.consecutiveFailures >= downAfter else { return HealthDecision(health: health) }
        return wentDown(
            health, why: "\(health.consecutiveFailures) polls failed in a row (\(failure))", risk: risk, notify: notify, now: now)
    }

    /// The deadman: `source_down` when a source not down yet has had no successful poll
    /// since `since` for `window`; otherwise nil.
    static func silence(
        _ health: SourceHealth, since: Date, window: TimeInterval, risk: CancellationRequest?, notify: [String], now: Date
    ) -> HealthDecision? {
        guard !health.down, since.addingTimeInterval(window) <= now else { return nil }
        var why = "no successful poll for \(DurationText.format(now.timeIntervalSince(since)))"
        if let lastError = health.lastError { why += " (last error: \(lastError))" }
        return wentDown(health, why: why, risk: risk, notify: notify, now: now)
    }

    /// Marks `health` down and says why, naming the earliest pending deadline at risk.
    private static func wentDown(
        _ health: SourceHealth, why: String, risk: CancellationRequest?, notify: [String], now: Date
    ) -> HealthDecision {
        var health = health
        health.down = true
        health.downCount += 1
        var text = "source \(health.source) is down: \(why)"
        if let risk {
            text += "; earliest pending deadline at risk: \(risk.order) at \(Timestamp.format(risk.deadline)) (in \(DurationText.format(risk.remaining(at: now))))"
        } else {
            text += "; no pending request is known for it"
        }
        return healthChange(health, kind: .sourceDown, severity: .critical, message: text, notify: notify, now: now)
    }

    private static func healthChange(
        _ health: SourceHealth, kind: AlertEvent.Kind, severity: Severity, message: String, notify: [String], now: Date
    ) -> HealthDecision {
        guard !notify.isEmpty else { return HealthDecision(health: health, notice: message) }
        let event = AlertEvent(
            id: AlertEvent.makeID(source: health.source, request: "", rule: "health", kind: kind, occurrence: health.downCount),
            kind: kind, rule: "", severity: severity, source: health.source, marketplace: health.marketplace, request: nil,
            occurredAt: now, message: message, sinks: notify)
        return HealthDecision(health: health, event: event, notice: message)
    }
}
