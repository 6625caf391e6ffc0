import Foundation

/// An ordering or equality test against a constant.
enum RuleOrder: Sendable, Hashable {
    case equal, less, lessOrEqual, greater, greaterOrEqual

    init?(_ op: RuleComparisonOperator) {
        switch op {
        case .equal: self = .equal
        case .less: self = .less
        case .lessOrEqual: self = .lessOrEqual
        case .greater: self = .greater
        case .greaterOrEqual: self = .greaterOrEqual
        default: return nil
        }
    }

    @inline(__always)
    func test<T: Comparable>(_ value: T, _ constant: T) -> Bool {
        switch self {
        case .equal: return value == constant
        case .less: return value < constant
        case .lessOrEqual: return value <= constant
        case .greater: return value > constant
        case .greaterOrEqual: return value >= constant
        }
    }
}

/// A regular expression compiled once when the rules are checked.
final class RulePattern: @unchecked Sendable {
    // NSRegularExpression is immutable and documented as safe to use from several threads.
    let pattern: String
    private let expression: NSRegularExpression

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.expression = try NSRegularExpression(pattern: pattern, options: [])
    }

    func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, options: [], range: NSRange(location: 0, length: (text as NSString).length)) != nil
    }
}

/// What a string field is tested against.
enum RuleTextTest: Sendable {
    case equals(String)
    /// Equal as numbers (`reason_id == 5`); a value that is not a number is not equal.
    case equalsNumber(Double)
    case order(RuleOrder, String)
    case orderNumber(RuleOrder, Double)
    case oneOf(strings: [String], numbers: [Double])
    case contains(String)
    case matches(RulePattern)

    @inline(__always)
    func test(_ value: String) -> Bool {
        switch self {
        case .equals(let s): return value == s
        case .equalsNumber(let n):
            guard let v = Double(value) else { return false }
            return v == n
        case .order(let op, let s): return op.test(value, s)
        case .orderNumber(let op, let n):
            guard let v = Double(value) else { return false }
            return op.test(v, n)
        case .oneOf(let strings, let numbers):
            for s in strings where s == value { return true }
            if !numbers.isEmpty, let v = Double(value) {
                for n in numbers where n == v { return true }
            }
            return false
        case .contains(let s): return value.contains(s)
        case .matches(let pattern): return pattern.matches(value)
        }
    }
}

/// A literal a raw JSON value is compared with.
enum RuleRawLiteral: Sendable {
    /// The string and, when it reads as one, its number.
    case string(String, number: Double?)
    case number(Double)
    case boolean(Bool)

    init(_ literal: RuleLiteralSyntax) {
        switch literal {
        case .string(let s, _): self = .string(s, number: Double(s))
        case .number(let n): self = .number(n)
        case .boolean(let b): self = .boolean(b)
        case .duration(let d, _): self = .number(d)
        }
    }

    /// Loose equality: strings and numbers compare as numbers when both read as numbers.
    func equals(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string(let s, _), .string(let v)): return s == v
        case (.string(_, let n?), .integer(let i)): return Double(i) == n
        case (.string(_, let n?), .number(let d)): return d == n
        case (.number(let n), .integer(let i)): return Double(i) == n
        case (.number(let n), .number(let d)): return d == n
        case (.number(let n), .string(let v)):
            guard let d = Double(v) else { return false }
            return d == n
        case (.boolean(let b), .bool(let v)): return b == v
        default: return false
        }
    }

    func order(_ op: RuleOrder, _ value: JSONValue) -> Bool {
        switch self {
        case .number(let n):
            guard let v = value.numericValue else { return false }
            return op.test(v, n)
        case .string(let s, let n):
            if let n, let v = value.numericValue { return op.test(v, n) }
            guard case .string(let v) = value else { return false }
            return op.test(v, s)
        case .boolean:
            return false
        }
    }

    var text: String {
        switch self {
        case .string(let s, _): return s
        case .number(let n): return RuleParser.plain(n)
        case .boolean(let b): return b ? "true" : "false"
        }
    }
}

extension JSONValue {
    /// A number, or a string that reads as one.
    fileprivate var numericValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        case .string(let s): return Double(s)
        default: return nil
        }
    }

    /// The value as a template shows it: strings bare, everything else as compact JSON.
    var templateText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .number(let d): return RuleParser.plain(d)
        case .string(let s): return s
        case .array, .object: return compactJSON
        }
    }

    var compactJSON: String {
        switch self {
        case .string(let s):
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        out += String(format: "\\u%04x", scalar.value)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        case .array(let items): return "[" + items.map(\.compactJSON).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { JSONValue.string($0).compactJSON + ":" + members[$0]!.compactJSON }.joined(separator: ",") + "}"
        default: return templateText
        }
    }
}

/// What a raw JSON value is tested against. A missing path fails every test.
enum RuleRawTest: Sendable {
    case equals(RuleRawLiteral)
    case order(RuleOrder, RuleRawLiteral)
    case oneOf([RuleRawLiteral])
    /// A string containing the text, an array holding an equal element, or an object with that key.
    case contains(RuleRawLiteral)
    case matches(RulePattern)
    /// A lone `raw.x` as a condition: true when it is JSON `true`.
    case isTrue

    func test(_ value: JSONValue) -> Bool {
        switch self {
        case .equals(let literal): return literal.equals(value)
        case .order(let op, let literal): return literal.order(op, value)
        case .oneOf(let literals): return literals.contains { $0.equals(value) }
        case .contains(let literal):
            switch value {
            case .string(let s): return s.contains(literal.text)
            case .array(let items): return items.contains { literal.equals($0) }
            case .object(let members): return members[literal.text] != nil
            default: return false
            }
        case .matches(let pattern):
            switch value {
            case .string(let s): return pattern.matches(s)
            case .integer, .number, .bool: return pattern.matches(value.templateText)
            default: return false
            }
        case .isTrue:
            return value == .bool(true)
        }
    }
}

/// A checked condition, ready to evaluate: constants parsed, patterns compiled, hour
/// and weekday tests reduced to bit masks.
indirect enum RuleCondition: Sendable {
    case constant(Bool)
    case all([RuleCondition])
    case any([RuleCondition])
    case not(RuleCondition)
    case text(RuleTextField, RuleTextTest)
    /// `remaining`/`age` against seconds. A missing `created` fails every `age` test.
    case duration(RuleDurationField, RuleOrder, TimeInterval)
    /// `deadline`/`created` against an instant.
    case time(RuleTimeField, RuleOrder, Date)
    /// Bit `h` set: true at local hour `h`.
    case hour(mask: UInt32)
    /// Bit `d - 1` set: true on weekday `d` (1 = Monday).
    case weekday(mask: UInt8)
    case raw([String], RuleRawTest)

    /// The `raw.a.b` paths it reads.
    var rawPaths: [[String]] {
        switch self {
        case .raw(let path, _): return [path]
        case .not(let inner): return inner.rawPaths
        case .all(let items), .any(let items): return items.flatMap(\.rawPaths)
        case .constant, .text, .duration, .time, .hour, .weekday: return []
        }
    }

    /// Whether the passing of time alone can change the value.
    var dependsOnTime: Bool {
        switch self {
        case .constant, .text, .time, .raw: return false
        case .duration, .hour, .weekday: return true
        case .not(let inner): return inner.dependsOnTime
        case .all(let items), .any(let items): return items.contains { $0.dependsOnTime }
        }
    }

    func evaluate(_ request: CancellationRequest, now: Date, clock: RuleClock) -> Bool {
        switch self {
        case .constant(let b):
            return b
        case .all(let items):
            for item in items where !item.evaluate(request, now: now, clock: clock) { return false }
            return true
        case .any(let items):
            for item in items where item.evaluate(request, now: now, clock: clock) { return true }
            return false
        case .not(let inner):
            return !inner.evaluate(request, now: now, clock: clock)
        case .text(let field, let test):
            return test.test(field.value(of: request))
        case .duration(.remaining, let op, let seconds):
            return Self.remaining(request, op, seconds, now: now.timeIntervalSinceReferenceDate)
        case .duration(.age, let op, let seconds):
            return Self.age(request, op, seconds, now: now.timeIntervalSinceReferenceDate)
        case .time(let field, let op, let instant):
            return Self.time(request, field, op, instant.timeIntervalSinceReferenceDate)
        case .hour(let mask):
            return Self.hour(mask, now: now, clock: clock)
        case .weekday(let mask):
            return Self.weekday(mask, now: now, clock: clock)
        case .raw(let path, let test):
            return Self.raw(request, path, test)
        }
    }

    // The leaves' tests, one copy for the tree and for `RuleProgram` (instants as seconds
    // since the reference date).

    @inline(__always)
    static func remaining(_ request: CancellationRequest, _ op: RuleOrder, _ seconds: TimeInterval, now: TimeInterval) -> Bool {
        op.test(request.deadline.timeIntervalSinceReferenceDate - now, seconds)
    }

    @inline(__always)
    static func age(_ request: CancellationRequest, _ op: RuleOrder, _ seconds: TimeInterval, now: TimeInterval) -> Bool {
        guard let created = request.createdAt else { return false }
        return op.test(now - created.timeIntervalSinceReferenceDate, seconds)
    }

    @inline(__always)
    static func time(_ request: CancellationRequest, _ field: RuleTimeField, _ op: RuleOrder, _ instant: TimeInterval) -> Bool {
        guard let value = field.value(of: request) else { return false }
        return op.test(value.timeIntervalSinceReferenceDate, instant)
    }

    @inline(__always)
    static func hour(_ mask: UInt32, now: Date, clock: RuleClock) -> Bool {
        mask & (1 << UInt32(clock.hour(at: now))) != 0
    }

    @inline(__always)
    static func weekday(_ mask: UInt8, now: Date, clock: RuleClock) -> Bool {
        mask & (1 << UInt8(clock.weekday(at: now) - 1)) != 0
    }

    @inline(__always)
    static func raw(_ request: CancellationRequest, _ path: [String], _ test: RuleRawTest) -> Bool {
        guard let value = request.rawObject.value(atPath: path) else { return false }
        return test.test(value)
    }

    /// The earliest instant after `now` at which the value may differ from its value at
    /// `now` through the passing of time alone; nil when time cannot change it. It may name
    /// an instant where nothing changes, never one later than a real change.
    func nextChange(_ request: CancellationRequest, after now: Date, clock: RuleClock) -> Date? {
        switch self {
        case .constant, .text, .time, .raw:
            return nil
        case .not(let inner):
            return inner.nextChange(request, after: now, clock: clock)
        case .all(let items), .any(let items):
            let isAll: Bool
            if case .all = self { isAll = true } else { isAll = false }
            var earliest: Date?
            for item in items {
                let change = item.nextChange(request, after: now, clock: clock)
                if change == nil, item.evaluate(request, now: now, clock: clock) != isAll {
                    // A part that settles the whole (false in `and`, true in `or`) for good.
                    return nil
                }
                if let change, earliest == nil || change < earliest! { earliest = change }
            }
            return earliest
        case .duration(let field, _, let seconds):
            // remaining = deadline − t falls, age = t − created rises; each crosses
            // `seconds` at one instant b. A test's value can change only at b or just after it.
            let boundary: Date
            switch field {
            case .remaining: boundary = request.deadline.addingTimeInterval(-seconds)
            case .age:
                guard let created = request.createdAt else { return nil }
                boundary = created.addingTimeInterval(seconds)
            }
            if boundary > now { return boundary }
            // At or just past the boundary: only a strict test still has a change to come.
            let justAfter = boundary.addingTimeInterval(Self.justAfter)
            guard justAfter > now, evaluate(request, now: now, clock: clock) != evaluate(request, now: justAfter, clock: clock) else {
                return nil
            }
            return justAfter
        case .hour(let mask):
            if mask == 0 || mask == 0xFF_FFFF { return nil }
            let value = mask & (1 << UInt32(clock.hour(at: now))) != 0
            var t = now
            for _ in 0..<27 {
                t = clock.nextBoundary(after: t, unit: 3600)
                if (mask & (1 << UInt32(clock.hour(at: t))) != 0) != value { return t }
            }
            return nil
        case .weekday(let mask):
            if mask == 0 || mask == 0x7F { return nil }
            let value = mask & (1 << UInt8(clock.weekday(at: now) - 1)) != 0
            var t = now
            for _ in 0..<10 {
                t = clock.nextBoundary(after: t, unit: 86400)
                if (mask & (1 << UInt8(clock.weekday(at: t) - 1)) != 0) != value { return t }
            }
            return nil
        }
    }

    /// How long after a strict threshold (`remaining < 1h` at exactly D − 1h is still false)
    /// its new value is reported.
    static let justAfter: TimeInterval = 0.001
}
