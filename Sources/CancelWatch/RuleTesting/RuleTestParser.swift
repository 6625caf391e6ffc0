import Foundation
import Yams

/// Reads a rule test file (YAML) into a ``RuleTestFile``, reporting every mistake at once
/// with its line and column, in the same form as rule diagnostics.
///
/// The format is documented in `rules/README.md` ("Testing rules"). In short:
///
///     rules: [../deadlines.rules]
///     timezone: Europe/Moscow
///     tests:
///       - name: heads-up a day ahead
///         start: 2025-11-24 10:00
///         requests:
///           - {id: "1001", initiator: CLIENT, remaining: 30h}
///         changes:
///           - {at: +20h, request: "1001", resolve: rejected}
///         expect:
///           - {at: +6h, event: firing, rule: heads-up, request: "1001"}
///           - {at: +20h, event: resolved, rule: heads-up, request: "1001", outcome: rejected}
public enum RuleTestParser {
    /// Keys of each part of the file.
    static let topKeys = ["rules", "timezone", "sinks", "start", "tests"]
    static let caseKeys = ["name", "start", "end", "requests", "changes", "expect", "only_rules"]
    static let fieldKeys = ["order", "raw_state", "initiator", "reason", "reason_id", "logistics", "created", "deadline", "remaining", "raw"]
    static let requestKeys = ["id", "source", "marketplace", "at"] + fieldKeys
    static let changeKeys = ["at", "request", "resolve"] + fieldKeys
    static let expectKeys = ["at", "event", "rule", "request", "outcome", "message"]

    /// Parses `text` as the test file at `path` (rule files resolve against its directory).
    /// The file is nil when there is any error.
    public static func parse(text: String, path: String) -> (file: RuleTestFile?, diagnostics: [RuleDiagnostic]) {
        let reader = RuleTestReader(text: text, path: path)
        let file = reader.read()
        let diagnostics = reader.diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        return (diagnostics.isEmpty ? file : nil, diagnostics)
    }

    /// Reads and parses the test file at `path`.
    public static func load(path: String) -> (file: RuleTestFile?, diagnostics: [RuleDiagnostic], source: RuleSource?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let data = FileManager.default.contents(atPath: path)
        else {
            let message = isDirectory.boolValue ? "is a directory, not a test file" : "cannot read test file"
            return (nil, [RuleDiagnostic(severity: .error, path: path, line: 0, column: 0, message: message)], nil)
        }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let (file, diagnostics) = parse(text: text, path: path)
        return (file, diagnostics, RuleSource(path: path, text: text))
    }
}

/// Times as a test writes them.
enum RuleTestTime {
    /// `+6h`, `+1d2h30m`, `-15m`: an offset from the test's start; or a local date-time
    /// `2025-11-24 16:00[:SS]` in `timeZone`; or RFC 3339 with a zone.
    static func parse(_ text: String, start: Date?, timeZone: TimeZone) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let first = trimmed.first, first == "+" || first == "-" {
            guard let start, let seconds = DurationText.parse(String(trimmed.dropFirst())) else { return nil }
            return start.addingTimeInterval(first == "-" ? -seconds : seconds)
        }
        if let date = Timestamp.parse(trimmed) { return date }
        return local(trimmed, timeZone: timeZone)
    }

    /// `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` (or with `T`) in `timeZone`.
    static func local(_ text: String, timeZone: TimeZone) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 16 || b.count == 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let year = number(0..<4), b[4] == UInt8(ascii: "-"), let month = number(5..<7), b[7] == UInt8(ascii: "-"),
            let day = number(8..<10), b[10] == UInt8(ascii: " ") || b[10] == UInt8(ascii: "T"), let hour = number(11..<13),
            b[13] == UInt8(ascii: ":"), let minute = number(14..<16)
        else { return nil }
        var second = 0
        if b.count == 19 {
            guard b[16] == UInt8(ascii: ":"), let s = number(17..<19) else { return nil }
            second = s
        }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = calendar.date(from: components) else { return nil }
        // Reject dates that do not exist (2025-02-30 rolls over).
        let back = calendar.dateComponents([.year, .month, .day], from: date)
        guard back.year == year, back.month == month, back.day == day else { return nil }
        return date
    }

    /// `2025-11-24 16:00:00` in `timeZone`.
    static func format(_ date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }

    /// `+1d6h`, `+30m`, `+0s`, `-1h30m`: the offset as a test writes it.
    static func offset(_ seconds: TimeInterval) -> String {
        var s = Int(abs(seconds).rounded())
        let sign = seconds < 0 && s > 0 ? "-" : "+"
        guard s > 0 else { return "+0s" }
        var text = ""
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where s >= size {
            text += "\(s / size)\(unit)"
            s %= size
        }
        return sign + text
    }
}

/// The reading of one test file: a YAML tree walked with every problem collected.
final class RuleTestReader {
    let text: String
    let path: String
    private(set) var diagnostics: [RuleDiagnostic] = []
    private var timeZone = TimeZone(identifier: "UTC")!

    init(text: String, path: String) {
        self.text = text
        self.path = path
    }

    // MARK: Diagnostics

    func report(_ message: String, at mark: Mark?, length: Int = 1, suggestion: String? = nil) {
        diagnostics.append(
            RuleDiagnostic(
                severity: .error, path: path, line: mark?.line ?? 0, column: mark?.column ?? 0, length: length, message: message,
                suggestion: suggestion))
    }

    func location(_ mark: Mark?) -> RuleSourceLocation {
        RuleSourceLocation(path: path, line: mark?.line ?? 0, column: mark?.column ?? 0)
    }

    // MARK: The file

    func read() -> RuleTestFile? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            reportSyntax(error)
            return nil
        } catch {
            report("the test file is not valid YAML", at: nil)
            return nil
        }
        guard let root, !isNull(root) else {
            report("the test file is empty: it needs 'rules:' and 'tests:' (see rules/README.md, \"Testing rules\")", at: nil)
            return nil
        }
        guard let top = mapping(root, what: "the top level", expected: "a mapping (rules:, timezone:, tests:)") else { return nil }
        checkKeys(top, allowed: RuleTestParser.topKeys, in: "at the top level")

        var ruleFiles: [String] = []
        if let node = top.value("rules") {
            let items = scalarList(node, key: "rules", expected: "a rule file, or a list of rule files")
            if items.isEmpty, !isNull(node) { report("'rules' is empty: name the rule files to test", at: node.mark) }
            ruleFiles = items.map { resolve($0.string) }
        } else {
            report("missing 'rules' at the top level: name the rule files to test (relative to this file)", at: top.mark)
        }
        if let zone = scalar(top, "timezone", expected: "an IANA time zone name such as Europe/Moscow") {
            if let tz = TimeZone(identifier: zone.string) {
                timeZone = tz
            } else {
                let hint = NameSuggester.closest(to: zone.string, among: TimeZone.knownTimeZoneIdentifiers)
                report(
                    "unknown timezone '\(zone.string)'" + (hint.map { "; did you mean '\($0)'?" } ?? " (write an IANA name such as Europe/Moscow or UTC)"),
                    at: zone.mark, length: zone.string.unicodeScalars.count, suggestion: hint)
            }
        }
        var sinks: Set<String>?
        if let node = top.value("sinks"), !isNull(node) {
            sinks = Set(scalarList(node, key: "sinks", expected: "a list of sink names").map(\.string))
        }
        var defaultStart: Date?
        if let value = scalar(top, "start", expected: "a date and time such as 2025-11-24 10:00") {
            defaultStart = absoluteTime(value, key: "start")
        }
        var cases: [RuleTestCase] = []
        if let node = top.value("tests"), !isNull(node) {
            if case .sequence(let sequence) = node {
                if Array(sequence).isEmpty { report("'tests' is empty: add at least one test", at: node.mark) }
                var names: [String: Int] = [:]
                for (index, item) in Array(sequence).enumerated() {
                    if let testCase = readCase(item, index: index, defaultStart: defaultStart) {
                        if let line = names[testCase.name] {
                            report("duplicate test name '\(testCase.name)' (first used on line \(line))", at: item.mark)
                        }
                        names[testCase.name] = testCase.location.line
                        cases.append(testCase)
                    }
                }
            } else {
                report("'tests' must be a list of tests (each starting with '- name:')", at: node.mark)
            }
        } else {
            report("missing 'tests' at the top level: list the tests, each with name:, start:, requests: and expect:", at: top.mark)
        }
        return RuleTestFile(path: path, ruleFiles: ruleFiles, timeZone: timeZone, sinks: sinks, cases: cases)
    }

    private func resolve(_ file: String) -> String {
        if file.hasPrefix("/") { return file }
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? file : directory + "/" + file
    }

    // MARK: Test cases

    private func readCase(_ node: Node, index: Int, defaultStart: Date?) -> RuleTestCase? {
        guard let m = mapping(node, what: "test #\(index + 1)", expected: "a mapping (name:, start:, requests:, expect:)") else {
            return nil
        }
        var name = "test #\(index + 1)"
        if let value = scalar(m, "name", expected: "the test's name") {
            name = value.string
        } else if !m.has("name") {
            report("test #\(index + 1) has no 'name': say what it checks", at: m.mark)
        }
        let where_ = "in test '\(name)'"
        checkKeys(m, allowed: RuleTestParser.caseKeys, in: where_)
        var start = defaultStart
        if let value = scalar(m, "start", expected: "a date and time such as 2025-11-24 10:00") {
            start = absoluteTime(value, key: "start")
        } else if defaultStart == nil, !m.has("start") {
            report("test '\(name)' has no 'start': the date and time its clock starts at, such as 2025-11-24 10:00", at: m.mark)
        }
        guard let start else { return nil }
        var end: Date?
        if let value = scalar(m, "end", expected: "a time such as +2d or 2025-11-26 10:00") {
            end = time(value, key: "end", start: start)
            if let e = end, e < start { report("'end' \(where_) is before its start", at: value.mark) }
        }

        var requests: [RuleTestRequest] = []
        if let node = m.value("requests"), !isNull(node) {
            for item in sequenceItems(node, key: "requests", expected: "a list of requests") {
                if let request = readRequest(item, start: start, where_: where_) {
                    if requests.contains(where: { $0.request.key == request.request.key }) {
                        report("request '\(request.request.id)' of source '\(request.request.source)' is listed twice \(where_)", at: item.mark)
                    } else {
                        requests.append(request)
                    }
                }
            }
        } else {
            report("test '\(name)' has no 'requests': list the cancellation requests it starts with", at: m.mark)
        }

        var changes: [RuleTestChange] = []
        var closedAt: [RequestKey: Date] = [:]
        if let node = m.value("changes"), !isNull(node) {
            for item in sequenceItems(node, key: "changes", expected: "a list of changes") {
                guard let change = readChange(item, start: start, requests: requests, where_: where_) else { continue }
                if let appears = requests.first(where: { $0.request.key == change.request })?.appearsAt, change.at < appears {
                    report("this change \(where_) comes before request '\(change.request.id)' appears", at: item.mark)
                    continue
                }
                if let closed = closedAt[change.request], change.at >= closed {
                    report("request '\(change.request.id)' was already resolved before this change \(where_)", at: item.mark)
                    continue
                }
                if case .resolve = change.action { closedAt[change.request] = change.at }
                changes.append(change)
            }
        }

        var expected: [RuleTestExpectation] = []
        if let node = m.value("expect"), !isNull(node) {
            for item in sequenceItems(node, key: "expect", expected: "a list of expected events") {
                if let expectation = readExpectation(item, start: start, requests: requests, where_: where_) { expected.append(expectation) }
            }
        } else if !m.has("expect") {
            report("test '\(name)' has no 'expect': list the events it expects (write 'expect: []' for none)", at: m.mark)
        }

        var onlyRules: [String]?
        var onlyRuleLocations: [RuleSourceLocation] = []
        if let node = m.value("only_rules"), !isNull(node) {
            let items = scalarList(node, key: "only_rules", expected: "a list of rule names")
            onlyRules = items.map(\.string)
            onlyRuleLocations = items.map { location($0.mark) }
        }
        return RuleTestCase(
            name: name, location: location(m.mark), start: start, end: end, requests: requests,
            changes: changes.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element),
            expected: expected, onlyRules: onlyRules, onlyRuleLocations: onlyRuleLocations)
    }

    private func readRequest(_ node: Node, start: Date, where_: String) -> RuleTestRequest? {
        guard let m = mapping(node, what: "request", expected: "a mapping (id:, remaining: or deadline:, …)") else { return nil }
        checkKeys(m, allowed: RuleTestParser.requestKeys, in: "in a request \(where_)")
        let id = scalar(m, "id", expected: "the request's id")?.string
        if id == nil, !m.has("id") { report("a request \(where_) has no 'id'", at: m.mark) }
        var marketplace = Marketplace.ozon
        if let value = scalar(m, "marketplace", expected: "ozon or xiaohongshu") {
            switch value.string.lowercased() {
            case "ozon": marketplace = .ozon
            case "xiaohongshu", "red": marketplace = .xiaohongshu
            default:
                let hint = NameSuggester.closest(to: value.string, among: ["ozon", "xiaohongshu", "red"])
                report(
                    "unknown marketplace '\(value.string)'; expected ozon or xiaohongshu" + (hint.map { " (did you mean '\($0)'?)" } ?? ""),
                    at: value.mark, length: value.string.unicodeScalars.count, suggestion: hint)
            }
        }
        let source = scalar(m, "source", expected: "a source name such as ozon-main")?.string ?? marketplace.rawValue
        var appearsAt = start
        if let value = scalar(m, "at", expected: "when it appears, such as +2h") {
            if let at = time(value, key: "at", start: start) {
                if at < start {
                    report("a request cannot appear before the test starts", at: value.mark)
                } else {
                    appearsAt = at
                }
            }
        }
        let fields = readFields(m, start: start, now: appearsAt, where_: "in request '\(id ?? "?")' \(where_)")
        let hasDeadline = fields.contains { if case .deadline = $0 { return true } else { return false } }
        let hasRemaining = fields.contains { if case .remaining = $0 { return true } else { return false } }
        if !hasDeadline && !hasRemaining, !m.has("deadline"), !m.has("remaining") {
            report("request '\(id ?? "?")' \(where_) needs 'remaining' (such as 30h) or 'deadline' (a time)", at: m.mark)
        } else if m.has("deadline") && m.has("remaining") {
            report("request '\(id ?? "?")' \(where_) has both 'deadline' and 'remaining': keep one", at: m.value("remaining")?.mark)
        }
        guard let id else { return nil }
        var request = CancellationRequest(
            marketplace: marketplace, source: source, id: id, order: id, state: .pending,
            rawState: marketplace == .ozon ? "ON_APPROVAL" : "unaudited", deadline: appearsAt)
        for field in fields { field.apply(to: &request, now: appearsAt) }
        return RuleTestRequest(appearsAt: appearsAt, request: request, location: location(m.mark))
    }

    private func readChange(_ node: Node, start: Date, requests: [RuleTestRequest], where_: String) -> RuleTestChange? {
        guard let m = mapping(node, what: "change", expected: "a mapping (at:, request:, resolve: or fields)") else { return nil }
        checkKeys(m, allowed: RuleTestParser.changeKeys, in: "in a change \(where_)")
        var at: Date?
        if let value = scalar(m, "at", expected: "a time such as +20h") {
            at = time(value, key: "at", start: start)
        } else if !m.has("at") {
            report("a change \(where_) has no 'at': when it happens, such as +20h", at: m.mark)
        }
        let key = requestReference(m, requests: requests, where_: where_)
        let fields = readFields(m, start: start, now: at ?? start, where_: "in a change \(where_)")
        var action: RuleTestChange.Action?
        if let value = scalar(m, "resolve", expected: "approved, rejected or vanished") {
            if let outcome = Outcome(rawValue: value.string) {
                action = .resolve(outcome)
                if m.entries.contains(where: { RuleTestParser.fieldKeys.contains($0.key) }) {
                    report("a change that resolves a request cannot also change its fields; write two changes", at: value.mark)
                }
            } else {
                let hint = NameSuggester.closest(to: value.string, among: ["approved", "rejected", "vanished"])
                report(
                    "unknown outcome '\(value.string)'; expected approved, rejected or vanished" + (hint.map { " (did you mean '\($0)'?)" } ?? ""),
                    at: value.mark, length: value.string.unicodeScalars.count, suggestion: hint)
            }
        } else if !m.has("resolve") {
            if m.has("deadline") && m.has("remaining") {
                report("a change \(where_) has both 'deadline' and 'remaining': keep one", at: m.value("remaining")?.mark)
            }
            if fields.isEmpty {
                if !m.entries.contains(where: { RuleTestParser.fieldKeys.contains($0.key) }) {
                    report(
                        "this change \(where_) changes nothing: write 'resolve: approved' (or rejected, vanished), "
                            + "or a field to change such as 'remaining: 2h'", at: m.mark)
                }
            } else {
                action = .update(fields)
            }
        }
        guard let at, let key, let action else { return nil }
        return RuleTestChange(at: at, request: key, action: action, location: location(m.mark))
    }

    private func readExpectation(_ node: Node, start: Date, requests: [RuleTestRequest], where_: String) -> RuleTestExpectation? {
        guard let m = mapping(node, what: "expected event", expected: "a mapping (at:, event:, rule:, request:)") else { return nil }
        checkKeys(m, allowed: RuleTestParser.expectKeys, in: "in an expected event \(where_)")
        var at: Date?
        if let value = scalar(m, "at", expected: "a time such as +6h") {
            at = time(value, key: "at", start: start)
            if let a = at, a < start { report("an event cannot be expected before the test starts", at: value.mark) }
        } else if !m.has("at") {
            report("an expected event \(where_) has no 'at': when it should happen, such as +6h", at: m.mark)
        }
        let kinds = ["firing", "repeat", "resolved", "expired"]
        var kind: AlertEvent.Kind?
        if let value = scalar(m, "event", expected: kinds.joined(separator: ", ")) {
            if kinds.contains(value.string) {
                kind = AlertEvent.Kind(rawValue: value.string)
            } else if value.string == "source_down" || value.string == "source_up" {
                report("'\(value.string)' is about polling, which rule tests do not simulate; expect firing, repeat, resolved or expired", at: value.mark)
            } else {
                let hint = NameSuggester.closest(to: value.string, among: kinds)
                report(
                    "unknown event '\(value.string)'; expected one of \(kinds.joined(separator: ", "))" + (hint.map { " (did you mean '\($0)'?)" } ?? ""),
                    at: value.mark, length: value.string.unicodeScalars.count, suggestion: hint)
            }
        } else if !m.has("event") {
            report("an expected event \(where_) has no 'event': firing, repeat, resolved or expired", at: m.mark)
        }
        let rule = scalar(m, "rule", expected: "a rule name")
        if rule == nil, !m.has("rule") { report("an expected event \(where_) has no 'rule'", at: m.mark) }
        let key = requestReference(m, requests: requests, where_: where_)
        var outcome: Outcome?
        if let value = scalar(m, "outcome", expected: "approved, rejected or vanished") {
            if let o = Outcome(rawValue: value.string) {
                outcome = o
                if let kind, kind != .resolved { report("'outcome' only goes with event: resolved", at: value.mark) }
            } else {
                let hint = NameSuggester.closest(to: value.string, among: ["approved", "rejected", "vanished"])
                report(
                    "unknown outcome '\(value.string)'; expected approved, rejected or vanished" + (hint.map { " (did you mean '\($0)'?)" } ?? ""),
                    at: value.mark, length: value.string.unicodeScalars.count, suggestion: hint)
            }
        }
        let message = scalar(m, "message", expected: "text the message contains")?.string
        guard let at, let kind, let rule, let key else { return nil }
        return RuleTestExpectation(
            at: at, kind: kind, rule: rule.string, request: key, outcome: outcome, messageContains: message, location: location(m.mark),
            ruleLocation: location(rule.mark))
    }

    /// `request: "1001"` (an id) or `request: ozon-main/1001` (source/id) among the test's requests.
    private func requestReference(_ m: MappingView, requests: [RuleTestRequest], where_: String) -> RequestKey? {
        guard let value = scalar(m, "request", expected: "a request id") else {
            if !m.has("request") { report("no 'request' \(where_): name the request's id", at: m.mark) }
            return nil
        }
        let reference = value.string
        let matches = requests.filter { $0.request.id == reference || "\($0.request.source)/\($0.request.id)" == reference }
        if matches.count == 1 { return matches[0].request.key }
        if matches.count > 1 {
            report(
                "request '\(reference)' is ambiguous \(where_): write source/id (\(matches.map { "\($0.request.source)/\($0.request.id)" }.joined(separator: " or ")))",
                at: value.mark, length: reference.unicodeScalars.count)
            return nil
        }
        let ids = requests.map(\.request.id)
        let hint = NameSuggester.closest(to: reference, among: ids)
        let known = ids.isEmpty ? " (the test has no requests)" : " (requests: \(ids.joined(separator: ", ")))"
        report(
            "unknown request '\(reference)' \(where_)" + (hint.map { "; did you mean '\($0)'?" } ?? known), at: value.mark,
            length: reference.unicodeScalars.count, suggestion: hint)
        return nil
    }

    /// The request fields written in `m`. Offsets in `created` and `deadline` count from the
    /// test's `start`; `remaining` counts from `now`, when the fields apply.
    private func readFields(_ m: MappingView, start: Date, now: Date, where_: String) -> [RuleTestField] {
        var fields: [RuleTestField] = []
        for entry in m.entries {
            let key = entry.key
            switch key {
            case "order", "raw_state", "initiator", "reason", "reason_id", "logistics":
                guard let value = scalar(m, key, expected: "text") else { continue }
                let s = value.string
                switch key {
                case "order": fields.append(.order(s))
                case "raw_state": fields.append(.rawState(s))
                case "initiator": fields.append(.initiator(s))
                case "reason": fields.append(.reason(s))
                case "reason_id": fields.append(.reasonID(s))
                default: fields.append(.logistics(s))
                }
            case "created", "deadline":
                guard let value = scalar(m, key, expected: "a time such as +30h or 2025-11-25 16:00") else { continue }
                guard let date = time(value, key: key, start: start) else { continue }
                fields.append(key == "created" ? .created(date) : .deadline(date))
            case "remaining":
                guard let value = scalar(m, key, expected: "a duration such as 30h or 1h30m") else { continue }
                var text = value.string.trimmingCharacters(in: .whitespaces)
                let negative = text.hasPrefix("-")
                if negative || text.hasPrefix("+") { text.removeFirst() }
                if let seconds = DurationText.parse(text) {
                    fields.append(.remaining(negative ? -seconds : seconds))
                } else if DurationText.isTooLong(text) {
                    report(
                        "duration '\(value.string)' for 'remaining' \(where_) is too long; durations are at most "
                            + DurationText.spell(DurationText.longest), at: value.mark, length: value.string.unicodeScalars.count)
                } else {
                    report(
                        "invalid duration '\(value.string)' for 'remaining' \(where_): write 45s, 15m, 2h, 1d or 1h30m", at: value.mark,
                        length: value.string.unicodeScalars.count)
                }
            case "raw":
                if let node = m.value("raw") { fields.append(.raw(json(node))) }
            default:
                continue
            }
        }
        return fields
    }

    // MARK: Values

    /// A time that may be an offset from `start` (`+6h`) or absolute.
    private func time(_ value: Node.Scalar, key: String, start: Date) -> Date? {
        if let date = RuleTestTime.parse(value.string, start: start, timeZone: timeZone) { return date }
        report(
            "invalid time '\(value.string)' for '\(key)': write an offset from the test's start (+6h, +1d2h30m) "
                + "or a date and time (2025-11-24 16:00)", at: value.mark, length: value.string.unicodeScalars.count)
        return nil
    }

    private func absoluteTime(_ value: Node.Scalar, key: String) -> Date? {
        if let date = RuleTestTime.parse(value.string, start: nil, timeZone: timeZone) { return date }
        report(
            "invalid time '\(value.string)' for '\(key)': write a date and time such as 2025-11-24 10:00 (in the file's timezone)",
            at: value.mark, length: value.string.unicodeScalars.count)
        return nil
    }

    /// YAML as JSON: plain scalars that look like numbers, booleans or null are those; the rest are strings.
    func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let s):
            guard s.style == .plain || s.style == .any else { return .string(s.string) }
            if ["", "~", "null", "Null", "NULL"].contains(s.string) { return .null }
            if ["true", "True", "TRUE"].contains(s.string) { return .bool(true) }
            if ["false", "False", "FALSE"].contains(s.string) { return .bool(false) }
            if let i = Int64(s.string) { return .integer(i) }
            if let d = Double(s.string), d.isFinite, s.string.contains(where: \.isNumber) { return .number(d) }
            return .string(s.string)
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                if case .scalar(let k) = key { members[k.string] = json(value) }
            }
            return .object(members)
        case .alias:
            return .null
        }
    }

    // MARK: YAML helpers

    struct MappingView {
        var mark: Mark?
        var entries: [(key: String, keyMark: Mark?, value: Node)]
        func value(_ key: String) -> Node? { entries.first { $0.key == key }?.value }
        func has(_ key: String) -> Bool { value(key) != nil }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    private func mapping(_ node: Node, what: String, expected: String) -> MappingView? {
        guard case .mapping(let mapping) = node else {
            report("\(what) must be \(expected)", at: node.mark)
            return nil
        }
        var entries: [(key: String, keyMark: Mark?, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let k) = key else {
                report("keys in \(what) must be plain words", at: key.mark)
                continue
            }
            entries.append((k.string, k.mark, value))
        }
        return MappingView(mark: mapping.mark, entries: entries)
    }

    private func checkKeys(_ m: MappingView, allowed: [String], in place: String) {
        for entry in m.entries where !allowed.contains(entry.key) {
            let hint = NameSuggester.closest(to: entry.key, among: allowed)
            report(
                "unknown key '\(entry.key)' \(place)" + (hint.map { "; did you mean '\($0)'?" } ?? " (known: \(allowed.joined(separator: ", ")))"),
                at: entry.keyMark, length: entry.key.unicodeScalars.count, suggestion: hint)
        }
    }

    private func scalar(_ m: MappingView, _ key: String, expected: String) -> Node.Scalar? {
        guard let node = m.value(key), !isNull(node) else { return nil }
        guard case .scalar(let s) = node else {
            report("'\(key)' must be \(expected)", at: node.mark)
            return nil
        }
        return s
    }

    private func scalarList(_ node: Node, key: String, expected: String) -> [Node.Scalar] {
        switch node {
        case .scalar(let s): return isNull(node) ? [] : [s]
        case .sequence(let sequence):
            var result: [Node.Scalar] = []
            for item in sequence {
                if case .scalar(let s) = item, !isNull(item) {
                    result.append(s)
                } else {
                    report("'\(key)' must be \(expected)", at: item.mark)
                }
            }
            return result
        default:
            report("'\(key)' must be \(expected)", at: node.mark)
            return []
        }
    }

    private func sequenceItems(_ node: Node, key: String, expected: String) -> [Node] {
        guard case .sequence(let sequence) = node else {
            report("'\(key)' must be \(expected) (each item starting with '- ')", at: node.mark)
            return []
        }
        return Array(sequence)
    }

    private func reportSyntax(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            report(message, at: mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            report("duplicate key \(keys) in the same mapping: each key may appear once", at: context.mark)
        default:
            report("the test file is not valid YAML: \(error)", at: nil)
        }
    }
}
