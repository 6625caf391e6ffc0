import Foundation

/// One `digest` block, checked and compiled: when it is due (its `at` time on its `on` days,
/// local time in the configured zone), which requests it lists (`include`) and where it goes.
/// Immutable; a class, like ``CompiledRule``.
public final class CompiledDigest: Sendable, CustomStringConvertible {
    public let name: String
    /// `at`: minutes after local midnight.
    public let minuteOfDay: Int
    /// `on`: bit `d - 1` set when it is due on weekday `d` (1 = Monday); every day by default.
    public let days: UInt8
    /// Sink names, in the order written.
    public let notify: [String]
    /// `always`: sent even when no request matches.
    public let always: Bool
    /// Where the digest starts (its `digest` keyword).
    public let location: RuleSourceLocation
    /// The `include` condition as written (`state == "pending"` when left out).
    public let includeText: String
    let include: RuleCondition
    private let program: RuleProgram
    private let clock: RuleClock

    /// What `include` says when it is left out.
    static let defaultInclude = (text: #"state == "pending""#, condition: RuleCondition.text(.state, .equals("pending")))

    init(
        name: String, minuteOfDay: Int, days: UInt8, notify: [String], always: Bool, location: RuleSourceLocation,
        includeText: String, include: RuleCondition, clock: RuleClock
    ) {
        self.name = name
        self.minuteOfDay = minuteOfDay
        self.days = days
        self.notify = notify
        self.always = always
        self.location = location
        self.includeText = includeText
        self.include = include
        self.program = RuleProgram(include)
        self.clock = clock
    }

    public var description: String { "digest \"\(name)\" (\(location))" }

    /// The zone its `at` time is read in.
    public var timeZone: TimeZone { clock.timeZone }

    /// Whether `include` holds for `request` at `now`.
    public func matches(_ request: CancellationRequest, now: Date) -> Bool {
        program.evaluate(request, now: now, clock: clock)
    }

    /// The parts of a request's raw object `include` reads.
    public var rawPaths: RawPaths { RawPaths(include.rawPaths) }

    /// The first instant after `date` at which the digest is due: its local time on one of its
    /// days. Where the clock skips that time (a change to summer time) it is due at the first
    /// instant after the skip; where the time comes twice (the clock goes back), at the first.
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = clock.timeZone
        let time = DateComponents(hour: minuteOfDay / 60, minute: minuteOfDay % 60, second: 0)
        var from = date
        // At most a week of days that are not its own, and the odd day the time is skipped.
        for _ in 0..<9 {
            guard
                let candidate = calendar.nextDate(
                    after: from, matching: time, matchingPolicy: .nextTime, repeatedTimePolicy: .first, direction: .forward)
            else { return nil }
            // The second of a time the clock repeats (autumn) is not the day's: its first was.
            let dayStart = calendar.startOfDay(for: candidate).addingTimeInterval(-1)
            let first = calendar.nextDate(
                after: dayStart, matching: time, matchingPolicy: .nextTime, repeatedTimePolicy: .first, direction: .forward)
            if let first, first < candidate {
                from = candidate
                continue
            }
            if days & (1 << UInt8(clock.weekday(at: candidate) - 1)) != 0 { return candidate }
            from = candidate
        }
        return nil
    }
}
