import Foundation

/// Durations as people write them in configs and rules (`45s`, `15m`, `2h`, `1d`,
/// `1h30m`, `500ms`) and as alerts show them (`1h 05m`).
public enum DurationText {
    /// The longest duration anything accepts (520w, about ten years): every duration from
    /// a config, a rule or a test file is at most this before it meets date arithmetic.
    public static let longest: TimeInterval = 520 * 604800

    /// Seconds for `text`, or nil when it is not a duration or is longer than ``longest``.
    /// Units: ms, s, m, h, d, w; several may follow each other, largest first (`1d2h`, `1h30m`).
    public static func parse(_ text: String) -> TimeInterval? {
        guard let total = sum(text), total <= longest else { return nil }
        return total
    }

    /// True when `text` is written as a duration but is longer than ``longest`` (or overflows).
    public static func isTooLong(_ text: String) -> Bool {
        guard let total = sum(text) else { return false }
        return total > longest
    }

    /// The seconds `text` spells (infinity when they overflow), nil when it is not a duration.
    private static func sum(_ text: String) -> TimeInterval? {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        var i = 0
        var total = 0.0
        var lastUnitSize = Double.infinity
        while i < scalars.count {
            let start = i
            while i < scalars.count, ("0"..."9").contains(scalars[i]) || scalars[i] == "." { i += 1 }
            guard i > start, let number = Double(String(String.UnicodeScalarView(scalars[start..<i]))) else { return nil }
            let unitStart = i
            while i < scalars.count, ("a"..."z").contains(scalars[i]) { i += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<i]))
            let size: Double
            switch unit {
            case "ms": size = 0.001
            case "s": size = 1
            case "m": size = 60
            case "h": size = 3600
            case "d": size = 86400
            case "w": size = 604800
            default: return nil
            }
            guard size < lastUnitSize else { return nil }
            lastUnitSize = size
            total += number * size
        }
        return total.isNaN ? nil : total
    }

    /// `2d 03h`, `1h 05m`, `4m 10s`, `45s`; a leading `-` once the instant has passed.
    public static func format(_ seconds: TimeInterval) -> String {
        let negative = seconds < 0
        var s = Int(Int64(clampingFloor: abs(seconds)))
        let days = s / 86400
        s %= 86400
        let hours = s / 3600
        s %= 3600
        let minutes = s / 60
        let secs = s % 60
        let text: String
        if days > 0 {
            text = String(format: "%dd %02dh", days, hours)
        } else if hours > 0 {
            text = String(format: "%dh %02dm", hours, minutes)
        } else if minutes > 0 {
            text = String(format: "%dm %02ds", minutes, secs)
        } else {
            text = "\(secs)s"
        }
        return negative ? "-" + text : text
    }

    /// The shortest exact spelling in the config language (`90m` → `1h30m`).
    public static func spell(_ seconds: TimeInterval) -> String {
        var s = Int(Int64(clampingFloor: seconds.rounded()))
        if s == 0 { return "0s" }
        var out = s < 0 ? "-" : ""
        s = abs(s)
        for (size, unit) in [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")] where s >= size {
            out += "\(s / size)\(unit)"
            s %= size
        }
        return out
    }
}

extension Int64 {
    /// `value` rounded down and clamped to ±9e18 (NaN → 0): seconds computed from what a
    /// marketplace sent can be anything, and must never trap.
    public init(clampingFloor value: Double) {
        guard !value.isNaN else {
            self = 0
            return
        }
        self = Int64(Swift.max(-9e18, Swift.min(9e18, value.rounded(.down))))
    }
}
