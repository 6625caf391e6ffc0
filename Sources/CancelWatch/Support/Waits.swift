import Foundation

/// A wait that comes from outside: HTTP `Retry-After` (seconds or an HTTP date), a chat
/// tool's `retry_after`, any such field. Read leniently; a value that is negative, not a
/// number, infinite or absurd (beyond a day) counts as absent, and the rest is clamped to
/// ``cap``, the backoff's own ceiling: no answer can stop a loop for longer than that.
public enum OutsideDelay {
    /// The longest wait an answer can impose: the same cap as the backoff (15 minutes).
    public static let cap: TimeInterval = 900
    /// Past this a wait is not advice but garbage, and is ignored.
    static let absurd: TimeInterval = 86_400

    /// `seconds` clamped to `0...cap`, or nil when it is absent, negative, NaN, infinite or absurd.
    public static func clamped(_ seconds: TimeInterval?) -> TimeInterval? {
        guard let seconds, seconds.isFinite, seconds >= 0, seconds <= absurd else { return nil }
        return min(seconds, cap)
    }

    /// A header's or a field's text: seconds (`120`, ` 1.5 `, `"30"`) or an HTTP date
    /// (IMF-fixdate, RFC 850 or asctime, as RFC 9110 asks a recipient to accept).
    public static func parse(_ text: String?, now: Date) -> TimeInterval? {
        guard var text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty, text.utf8.count <= 64 else {
            return nil
        }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") {
            text = String(text.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        }
        if text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || $0 == "." }) {
            return clamped(Double(text))
        }
        if text.hasPrefix("-") { return nil }
        for format in httpDateFormats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return clamped(max(0, date.timeIntervalSince(now))) }
        }
        return nil
    }

    /// A JSON field: a number, or a string holding seconds or a date.
    static func parse(_ value: JSONValue?, now: Date) -> TimeInterval? {
        switch value {
        case .integer(let seconds)?: return clamped(Double(seconds))
        case .number(let seconds)?: return clamped(seconds)
        case .string(let text)?: return parse(text, now: now)
        default: return nil
        }
    }

    private static let httpDateFormats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
}

/// A wait from outside held by a value (an error's `retryAfter`): clamped by
/// ``OutsideDelay/clamped(_:)`` whenever it is set, so whatever reads it reads a sane wait.
@propertyWrapper
public struct ClampedOutsideDelay: Sendable, Hashable {
    private var seconds: TimeInterval?

    public init(wrappedValue: TimeInterval?) {
        seconds = OutsideDelay.clamped(wrappedValue)
    }

    public var wrappedValue: TimeInterval? {
        get { seconds }
        set { seconds = OutsideDelay.clamped(newValue) }
    }
}

/// The instants loops wake at (a delivery's next attempt, the next poll, a timer): always
/// finite and at least ``floor`` after now, whatever arithmetic produced them, so that a
/// NaN, a negative or an overflowing wait never means "at once, again and again" (a hot
/// loop) nor "never" (a silent loop).
public enum WakeTime {
    /// The shortest wait before a loop runs again.
    public static let floor: TimeInterval = 0.1
    /// The longest single wait (a loop then looks again).
    public static let longest: TimeInterval = 366 * 86_400

    /// `seconds` made a wait: NaN and anything below the floor become the floor, anything
    /// above `longest` (infinity included) becomes `longest`.
    public static func delay(_ seconds: TimeInterval) -> TimeInterval {
        guard !seconds.isNaN else { return floor }
        return min(max(seconds, floor), longest)
    }

    /// The instant `seconds` after `now`, as a wait.
    public static func after(_ seconds: TimeInterval, from now: Date) -> Date {
        now.addingTimeInterval(delay(seconds))
    }

    /// `instant`, or the nearest instant a loop may wake at from `now`.
    public static func bounded(_ instant: Date, now: Date) -> Date {
        after(instant.timeIntervalSince(now), from: now)
    }
}
