import Foundation

/// How urgent a rule's alerts are: the events' `Severity`.
public typealias RuleSeverity = Severity

/// `quiet HH:MM-HH:MM`: local minutes of the day in which firings are held. The window
/// may wrap midnight (`22:00-08:00`); `end` is exclusive.
public struct QuietWindow: Sendable, Hashable, CustomStringConvertible {
    /// Minutes after local midnight, 0..<1440.
    public var startMinute: Int
    public var endMinute: Int

    public init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    /// Whether `minute` (0..<1440) falls inside the window.
    public func contains(minuteOfDay minute: Int) -> Bool {
        startMinute < endMinute ? (minute >= startMinute && minute < endMinute) : (minute >= startMinute || minute < endMinute)
    }

    public var description: String {
        String(format: "%02d:%02d-%02d:%02d", startMinute / 60, startMinute % 60, endMinute / 60, endMinute % 60)
    }
}

/// One rule, checked and compiled: what the ledger evaluates per request. Immutable;
/// a class, so that handing it around (per request, per evaluation) costs one reference
/// count instead of one per field.
public final class CompiledRule: Sendable, CustomStringConvertible {
    public let name: String
    public let severity: RuleSeverity
    /// Sink names, in the order written.
    public let notify: [String]
    /// `repeat every D`; nil: fire once.
    public let repeatEvery: TimeInterval?
    public let quiet: QuietWindow?
    /// False after `resolve off`: resolved and expired events are not sent.
    public let resolveNotifications: Bool
    /// The rule's `message`, or `MessageTemplate.defaultRuleMessage`.
    public let message: MessageTemplate
    /// Where the rule starts (its `rule` keyword).
    public let location: RuleSourceLocation
    /// The `when` clause as written, for logs.
    public let conditionText: String
    /// `act approve` / `act refuse "comment"`: the answer the rule gives when it fires; nil when it only alerts.
    public let action: Answer?
    /// Where the `act` clause is.
    public let actionLocation: RuleSourceLocation?
    let condition: RuleCondition
    /// `condition`, flattened for `matches`.
    let program: RuleProgram
    let clock: RuleClock

    init(
        name: String, severity: RuleSeverity, notify: [String], repeatEvery: TimeInterval?, quiet: QuietWindow?,
        resolveNotifications: Bool, message: MessageTemplate, location: RuleSourceLocation, conditionText: String,
        condition: RuleCondition, action: Answer? = nil, actionLocation: RuleSourceLocation? = nil, clock: RuleClock
    ) {
        self.name = name
        self.severity = severity
        self.notify = notify
        self.repeatEvery = repeatEvery
        self.quiet = quiet
        self.resolveNotifications = resolveNotifications
        self.message = message
        self.location = location
        self.conditionText = conditionText
        self.action = action
        self.actionLocation = actionLocation
        self.condition = condition
        self.program = RuleProgram(condition)
        self.clock = clock
    }

    public var description: String { "rule \"\(name)\" (\(location))" }

    /// The time zone `hour`, `weekday`, `quiet` and templates use.
    public var timeZone: TimeZone { clock.timeZone }

    /// Whether the `when` condition holds for `request` at `now`.
    @inline(__always)
    public func matches(_ request: CancellationRequest, now: Date) -> Bool {
        program.evaluate(request, now: now, clock: clock)
    }

    /// The earliest instant after `now` at which `matches` may give a different answer
    /// because time passed (a `remaining`/`age` threshold crossed, a local hour or day
    /// boundary for `hour`/`weekday`); nil when time alone cannot change it. Never later
    /// than a real change; it may be an instant where nothing changes. A threshold with
    /// `<=`/`>=` is reported at the exact instant (`remaining <= 1h`: deadline − 3600 s);
    /// one with `<`/`>`, which turns only after that instant, 1 ms after it.
    public func nextChange(for request: CancellationRequest, after now: Date) -> Date? {
        condition.nextChange(request, after: now, clock: clock)
    }

    /// Whether the condition can change with time at all (it uses `remaining`, `age`, `hour` or `weekday`).
    public var dependsOnTime: Bool { condition.dependsOnTime }

    /// The parts of a request's raw object the condition and the message read.
    public var rawPaths: RawPaths { RawPaths(condition.rawPaths).union(message.rawPaths) }

    /// The rule's message for `request` at `now`.
    public func renderMessage(request: CancellationRequest, now: Date) -> String {
        message.render(request: request, now: now, ruleName: name, severity: severity, clock: clock)
    }

    /// Renders another template (an email subject, say) with this rule's name, severity and time zone.
    public func render(_ template: MessageTemplate, request: CancellationRequest, now: Date) -> String {
        template.render(request: request, now: now, ruleName: name, severity: severity, clock: clock)
    }

    /// Whether `date` falls inside the rule's quiet window.
    public func isQuiet(at date: Date) -> Bool {
        guard let quiet else { return false }
        return quiet.contains(minuteOfDay: clock.minuteOfDay(at: date))
    }

    /// When the quiet window containing `date` ends, or nil when `date` is not in one.
    /// (A firing is held until then, unless the deadline falls inside the window, which
    /// the ledger checks by comparing the deadline with this instant: rules/README.md, "Clauses".)
    public func quietEnd(containing date: Date) -> Date? {
        guard let quiet, isQuiet(at: date) else { return nil }
        let minute = clock.minuteOfDay(at: date)
        var minutesLeft = quiet.endMinute - minute
        if minutesLeft <= 0 { minutesLeft += 1440 }
        let local = clock.localSeconds(at: date)
        let secondsIntoMinute = local - (local / 60).rounded(.down) * 60
        var end = date.addingTimeInterval(Double(minutesLeft * 60) - secondsIntoMinute)
        // Across an offset change the wall clock moves; correct once by the difference.
        let drift = clock.offset(at: end) - clock.offset(at: date)
        if drift != 0 { end = end.addingTimeInterval(-Double(drift)) }
        return end
    }
}

/// Every rule of every loaded file, compiled once.
public struct RuleSet: Sendable {
    /// In file order, then in order within each file.
    public let rules: [CompiledRule]
    /// The `digest` blocks, in the same order.
    public let digests: [CompiledDigest]
    /// The rule files, in the order loaded.
    public let files: [String]
    public let timeZone: TimeZone

    init(rules: [CompiledRule], digests: [CompiledDigest] = [], files: [String], timeZone: TimeZone) {
        self.rules = rules
        self.digests = digests
        self.files = files
        self.timeZone = timeZone
    }

    /// The rule called `name`.
    public subscript(name: String) -> CompiledRule? { rules.first { $0.name == name } }

    /// The rules whose condition holds for `request` at `now`.
    public func matching(_ request: CancellationRequest, now: Date) -> [CompiledRule] {
        rules.filter { $0.matches(request, now: now) }
    }

    /// The earliest `nextChange` over all rules.
    public func nextChange(for request: CancellationRequest, after now: Date) -> Date? {
        var earliest: Date?
        for rule in rules {
            if let t = rule.nextChange(for: request, after: now), earliest == nil || t < earliest! { earliest = t }
        }
        return earliest
    }

    /// Every sink name the rules and digests notify.
    public var sinkNames: Set<String> { Set(rules.flatMap(\.notify) + digests.flatMap(\.notify)) }

    /// The parts of a request's raw object any rule reads.
    public var rawPaths: RawPaths { rules.reduce(RawPaths.none) { $0.union($1.rawPaths) } }
}

extension RuleSet {
    /// One warning per rule that acts, at its `act` clause: the rule, its answer, and what
    /// `actions` makes of it (`cancelwatch check` prints them).
    public func actionWarnings(_ actions: ActionsConfig) -> [RuleDiagnostic] {
        let mode: String
        switch actions.mode {
        case .dryRun: mode = "actions are dry-run: nothing is sent (set actions: {mode: live} to send)"
        case .live:
            mode = "actions are LIVE: the answer is sent to the marketplace, at most \(actions.maxPerHour) an hour from all rules"
        }
        return rules.compactMap { rule in
            guard let answer = rule.action else { return nil }
            let place = rule.actionLocation ?? rule.location
            let comment = answer.comment.isEmpty ? "" : " \"\(answer.comment)\""
            return RuleDiagnostic(
                severity: .warning, path: place.path, line: place.line, column: place.column, length: 3,
                message: "rule \"\(rule.name)\" answers the request when it fires: \(answer.decision.rawValue)\(comment); \(mode)")
        }
    }
}
