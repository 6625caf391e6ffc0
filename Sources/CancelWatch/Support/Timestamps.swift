import Foundation

/// RFC 3339 date-times as the marketplaces write them: `Z` or an offset, and
/// any number of fractional digits (Ozon sends 0 to 6).
public enum Timestamp {
    /// Parses `2021-09-03T07:17:12.116114Z`, `2024-11-27T12:31:43Z`, `…+03:00`.
    public static func parse(_ text: String) -> Date? {
        // A native string's UTF-8 is read in place: no copy per date (a list page has thousands).
        var text = text
        return text.withUTF8 { parse(utf8: $0) }
    }

    /// The same, over the UTF-8 bytes of the text. (Straight-line code: a list page has a
    /// few dates per item, and this runs for every one.)
    static func parse(utf8 b: UnsafeBufferPointer<UInt8>) -> Date? {
        // The shortest form: `YYYY-MM-DDTHH:MM:SSZ`.
        guard b.count >= 20 else { return nil }
        // A byte's digit value; anything else reads as 10 or more.
        @inline(__always) func d(_ i: Int) -> Int { Int(b[i] &- 48) }
        let separators = b[4] == UInt8(ascii: "-") && b[7] == UInt8(ascii: "-") && b[13] == UInt8(ascii: ":")
            && b[16] == UInt8(ascii: ":") && (b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "))
        guard separators,
            d(0) < 10, d(1) < 10, d(2) < 10, d(3) < 10, d(5) < 10, d(6) < 10, d(8) < 10, d(9) < 10,
            d(11) < 10, d(12) < 10, d(14) < 10, d(15) < 10, d(17) < 10, d(18) < 10
        else { return nil }
        let year = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3)
        let month = d(5) * 10 + d(6)
        let day = d(8) * 10 + d(9)
        let hour = d(11) * 10 + d(12)
        let minute = d(14) * 10 + d(15)
        let second = d(17) * 10 + d(18)
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, d(i) < 10 {
                fraction += Double(d(i)) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offset = 0
        if i < b.count, b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if i + 6 <= b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard d(i + 1) < 10, d(i + 2) < 10, b[i + 3] == UInt8(ascii: ":"), d(i + 4) < 10, d(i + 5) < 10 else { return nil }
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            offset = sign * ((d(i + 1) * 10 + d(i + 2)) * 3600 + (d(i + 4) * 10 + d(i + 5)) * 60)
            i += 6
        } else {
            return nil  // RFC 3339 requires a zone; the APIs work in UTC and always say so.
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + second - offset) + fraction
        return Date(timeIntervalSince1970: seconds)
    }

    /// `2026-11-23T20:00:00Z`: RFC 3339 UTC, whole seconds.
    public static func format(_ date: Date) -> String {
        // Far outside any real instant (or not a number): say so rather than trap.
        guard date.timeIntervalSince1970.isFinite, abs(date.timeIntervalSince1970) < 1e12 else {
            return "(an instant out of range: \(date.timeIntervalSince1970) s from 1970)"
        }
        let total = Int64(floor(date.timeIntervalSince1970))
        let days = Int(floorDiv(total, 86400))
        let secs = Int(total - Int64(days) * 86400)
        let (y, m, d) = civilFromDays(days)
        // By hand: String(format:) is most of the cost of writing a state file row.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        if y < 0 || y > 9999 {
            bytes.append(contentsOf: String(y).utf8)
        } else {
            appendDigits(y, count: 4, to: &bytes)
        }
        bytes.append(UInt8(ascii: "-"))
        appendDigits(m, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(d, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(secs / 3600, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits((secs % 3600) / 60, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secs % 60, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendDigits(_ value: Int, count: Int, to bytes: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    // Howard Hinnant's civil calendar algorithms.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
