import Foundation

/// The string fields of a request (rules/README.md, "Fields": compared with a number
/// literal they are read as numbers).
enum RuleTextField: String, Sendable, CaseIterable {
    case marketplace, source, id, order, state
    case rawState = "raw_state"
    case initiator, reason
    case reasonID = "reason_id"
    case logistics
    case reasonMessage = "reason_message"

    @inline(__always)
    func value(of request: CancellationRequest) -> String {
        switch self {
        case .marketplace: return request.marketplace.rawValue
        case .source: return request.source
        case .id: return request.id
        case .order: return request.order
        case .state: return request.state.rawValue
        case .rawState: return request.rawState
        case .initiator: return request.initiator
        case .reason: return request.reason
        case .reasonID: return request.reasonID
        case .logistics: return request.logistics
        case .reasonMessage: return request.reasonMessage
        }
    }

    /// The only values the field can take, where that is a closed set.
    var closedValues: [String]? {
        switch self {
        case .marketplace: return Marketplace.allCases.map(\.rawValue)
        case .state: return RequestState.allCases.map(\.rawValue)
        default: return nil
        }
    }
}

/// `remaining` (deadline − now) and `age` (now − created).
enum RuleDurationField: String, Sendable {
    case remaining, age
}

/// `deadline` and `created`.
enum RuleTimeField: String, Sendable {
    case deadline, created

    @inline(__always)
    func value(of request: CancellationRequest) -> Date? {
        switch self {
        case .deadline: return request.deadline
        case .created: return request.createdAt
        }
    }
}

/// `hour` (0–23) and `weekday` (1 = Monday … 7 = Sunday), of now in the configured time zone.
enum RuleClockField: String, Sendable {
    case hour, weekday
}

/// A field a rule or template names.
enum RuleField: Sendable, Hashable {
    case text(RuleTextField)
    case duration(RuleDurationField)
    case time(RuleTimeField)
    case clock(RuleClockField)
    /// `raw.a.b`: the path after `raw`.
    case raw([String])

    /// The names a condition may use (`raw.…` aside).
    static let conditionNames: [String] =
        RuleTextField.allCases.map(\.rawValue) + ["remaining", "age", "deadline", "created", "hour", "weekday", "raw"]

    /// The field called `name`, or nil.
    static func named(_ name: String) -> RuleField? {
        if let text = RuleTextField(rawValue: name) { return .text(text) }
        switch name {
        case "remaining": return .duration(.remaining)
        case "age": return .duration(.age)
        case "deadline": return .time(.deadline)
        case "created": return .time(.created)
        case "hour": return .clock(.hour)
        case "weekday": return .clock(.weekday)
        default: break
        }
        if name.hasPrefix("raw.") {
            let path = name.dropFirst(4).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if !path.contains(where: \.isEmpty) { return .raw(path) }
        }
        return nil
    }

    /// The type's name in messages.
    var typeName: String {
        switch self {
        case .text: return "string"
        case .duration: return "duration"
        case .time: return "time"
        case .clock: return "number"
        case .raw: return "raw value"
        }
    }
}

/// The configured time zone, with the arithmetic rules need: local hour and weekday,
/// the next local hour or day boundary, and times as people read them.
struct RuleClock: Sendable {
    let timeZone: TimeZone
    /// Set for zones that never change offset (UTC and fixed offsets), to skip the lookup.
    private let fixedOffset: Int?

    init(timeZone: TimeZone) {
        self.timeZone = timeZone
        let id = timeZone.identifier
        if id == "UTC" || id == "GMT" || id == "Etc/UTC" || id == "Etc/GMT" || id.hasPrefix("GMT+") || id.hasPrefix("GMT-") {
            fixedOffset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: 0))
        } else {
            fixedOffset = nil
        }
    }

    @inline(__always)
    func offset(at date: Date) -> Int {
        fixedOffset ?? timeZone.secondsFromGMT(for: date)
    }

    /// `value` rounded down, clamped to Int64 (0 for NaN), so no instant can trap.
    @inline(__always)
    static func floor(_ value: Double) -> Int64 {
        guard value.isFinite else { return value.isNaN ? 0 : (value < 0 ? Int64.min / 2 : Int64.max / 2) }
        return Int64(Swift.max(-9e18, Swift.min(9e18, value.rounded(.down))))
    }

    /// Seconds since 1970-01-01T00:00 local time.
    @inline(__always)
    func localSeconds(at date: Date) -> Double {
        date.timeIntervalSince1970 + Double(offset(at: date))
    }

    @inline(__always)
    func hour(at date: Date) -> Int {
        let hours = Self.floor(localSeconds(at: date) / 3600)
        return Int(((hours % 24) + 24) % 24)
    }

    /// 1 = Monday … 7 = Sunday.
    @inline(__always)
    func weekday(at date: Date) -> Int {
        let days = Self.floor(localSeconds(at: date) / 86400)
        return Int((((days + 3) % 7) + 7) % 7) + 1  // 1970-01-01 was a Thursday.
    }

    func minuteOfDay(at date: Date) -> Int {
        let minutes = Self.floor(localSeconds(at: date) / 60)
        return Int(((minutes % 1440) + 1440) % 1440)
    }

    /// The first instant after `date` at which the local clock reads a whole multiple of
    /// `unit` seconds (an hour, a day), or an offset change comes first.
    func nextBoundary(after date: Date, unit: Double) -> Date {
        let offset = Double(offset(at: date))
        let local = date.timeIntervalSince1970 + offset
        let nextLocal = ((local / unit).rounded(.down) + 1) * unit
        var next = Date(timeIntervalSince1970: nextLocal - offset)
        if fixedOffset == nil, let transition = timeZone.nextDaylightSavingTimeTransition(after: date), transition < next {
            next = transition
        }
        return next
    }

    /// `2026-11-23 23:00 +03:00` (`UTC` when the offset is zero).
    func format(_ date: Date) -> String {
        // Far outside any real deadline (or not a number at all): say so rather than trap.
        guard date.timeIntervalSince1970.isFinite, abs(date.timeIntervalSince1970) < 1e12 else {
            return "(an instant out of range: \(date.timeIntervalSince1970) s from 1970)"
        }
        let offset = offset(at: date)
        let local = Int64((date.timeIntervalSince1970 + Double(offset)).rounded(.down))
        let days = Int((local - ((local % 86400) + 86400) % 86400) / 86400)
        let seconds = Int(((local % 86400) + 86400) % 86400)
        let (y, m, d) = Timestamp.civilFromDays(days)
        let zone: String
        if offset == 0 {
            zone = "UTC"
        } else {
            let a = abs(offset)
            zone = (offset < 0 ? "-" : "+") + String(format: "%02d:%02d", a / 3600, (a % 3600) / 60)
        }
        return String(format: "%04d-%02d-%02d %02d:%02d ", y, m, d, seconds / 3600, (seconds % 3600) / 60) + zone
    }

    static let weekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

    /// 1 … 7 for `monday`/`mon` … `sunday`/`sun`, any case.
    static func weekdayNumber(_ name: String) -> Int? {
        let lowered = name.lowercased()
        for (i, full) in weekdayNames.enumerated() where lowered == full || lowered == String(full.prefix(3)) {
            return i + 1
        }
        return nil
    }
}
