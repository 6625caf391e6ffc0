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
///           - {at: 2025-11-25 09:00, event: digest, rule: morning, requests: ["1001"]}
public enum RuleTestParser {
    /// Keys of each part of the file.
    static let topKeys = ["rules", "timezone", "sinks", "start", "tests"]
    static let caseKeys = ["name", "start", "end", "requests", "changes", "expect", "only_rules"]
    static let fieldKeys = ["order"] + CancellationRequest.Details.textNames + ["created", "deadline", "remaining", "raw"]
    static let requestKeys = ["id", "source", "marketplace", "at"] + fieldKeys
    static let changeKeys = ["at", "request", "resolve"] + fieldKeys
    static let expectKeys = ["at", "event", "rule", "request", "requests", "outcome", "message"]

    /// Parses `text` as the test file at `path` (rule files resolve against its directory).
    /// The file is nil when there is any error.
    public static func parse(text: String, path: String) -> (file: RuleTestFile?, diagnostics: [RuleDiagnostic]) {
        let reader = RuleTestReader(text: text, path: path)
        let file = reader.read()
        let diagnostics = reader.sortedDiagnostics()
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
final class RuleTestReader: YAMLReader {
    private var zone = TimeZone(identifier: "UTC")!

    func location(_ mark: Mark?) -> RuleSourceLocation {
        RuleSourceLocation(path: path, line: mark?.line ?? 0, column: mark?.column ?? 0)
    }

    // MARK: The file

    func read() -> RuleTestFile? {
        guard let root = compose(ifEmpty: "the test file is empty: it needs 'rules:' and 'tests:' (see rules/README.md, \"Testing rules\")"),
            let top = mapping(root, name: "the top level", expected: "a mapping (rules:, timezone:, tests:)")
        else { return nil }
        checkKeys(top, allowed: RuleTestParser.topKeys)

        var ruleFiles: [String] = []
        if let node = top.value("rules") {
            let items = scalars(top, "rules", expected: "a rule file, or a list of rule files") ?? []
            if items.isEmpty, case .sequence = node { report("'rules' is empty: name the rule files to test", at: node.mark) }
            ruleFiles = items.map { resolve($0.text) }
        } else {
            report("missing 'rules' at the top level: name the rule files to test (relative to this file)", at: top.mark)
        }
        if let zone = timeZone(top, "timezone") { self.zone = zone }
        let sinks = scalars(top, "sinks", expected: "a list of sink names").map { Set($0.map(\.text)) }
        let defaultStart = scalar(top, "start", expected: "a date and time such as 2025-11-24 10:00").flatMap {
            absoluteTime($0, key: "start")
        }
        var cases: [RuleTestCase] = []
        if let items = items(top, "tests", expected: "a list of tests (each starting with '- name:')") {
            if items.isEmpty { report("'tests' is empty: add at least one test", at: top.value("tests")?.mark) }
            var names: [String: Int] = [:]
            for (index, item) in items.enumerated() {
                guard let testCase = readCase(item, index: index, defaultStart: defaultStart) else { continue }
                if let line = names[testCase.name] {
                    report("duplicate test name '\(testCase.name)' (first used on line \(line))", at: item.mark)
                }
                names[testCase.name] = testCase.location.line
                cases.append(testCase)
            }
        } else if top.value("tests").map(isNull) ?? true {
            report("missing 'tests' at the top level: list the tests, each with name:, start:, requests: and expect:", at: top.mark)
        }
        return RuleTestFile(path: path, ruleFiles: ruleFiles, timeZone: zone, sinks: sinks, cases: cases)
    }

    private func resolve(_ file: String) -> String {
        if file.hasPrefix("/") { return file }
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? file : directory + "/" + file
    }

    // MARK: Test cases

    private func readCase(_ node: Node, index: Int, defaultStart: Date?) -> RuleTestCase? {
        guard var m = mapping(node, name: "test #\(index + 1)", expected: "a mapping (name:, start:, requests:, expect:)") else {
            return nil
        }
        var name = m.name
        if let value = scalar(m, "name", expected: "the test's name") {
            name = value.text
        } else if !m.has("name") {
            report("\(name) has no 'name': say what it checks", at: m.mark)
        }
        m.name = "test '\(name)'"
        let where_ = m.inName
        checkKeys(m, allowed: RuleTestParser.caseKeys)
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
        if let items = items(m, "requests", expected: "a list of requests (each item starting with '- ')") {
            for item in items {
                guard let request = readRequest(item, start: start, where_: where_) else { continue }
                if requests.contains(where: { $0.request.key == request.request.key }) {
                    report("request '\(request.request.id)' of source '\(request.request.source)' is listed twice \(where_)", at: item.mark)
                } else {
                    requests.append(request)
                }
            }
        } else if m.value("requests").map(isNull) ?? true {
            report("test '\(name)' has no 'requests': list the cancellation requests it starts with", at: m.mark)
        }

        var changes: [RuleTestChange] = []
        var closedAt: [RequestKey: Date] = [:]
        for item in items(m, "changes", expected: "a list of changes (each item starting with '- ')") ?? [] {
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

        var expected: [RuleTestExpectation] = []
        if let items = items(m, "expect", expected: "a list of expected events (each item starting with '- ')") {
            for item in items {
                if let expectation = readExpectation(item, start: start, requests: requests, where_: where_) { expected.append(expectation) }
            }
        } else if !m.has("expect") {
            report("test '\(name)' has no 'expect': list the events it expects (write 'expect: []' for none)", at: m.mark)
        }

        let onlyRules = scalars(m, "only_rules", expected: "a list of rule names")
        return RuleTestCase(
            name: name, location: location(m.mark), start: start, end: end, requests: requests,
            changes: changes.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element),
            expected: expected, onlyRules: onlyRules?.map(\.text), onlyRuleLocations: onlyRules?.map { location($0.mark) } ?? [])
    }

    private func readRequest(_ node: Node, start: Date, where_: String) -> RuleTestRequest? {
        guard var m = mapping(node, name: "a request \(where_)", expected: "a mapping (id:, remaining: or deadline:, …)") else {
            return nil
        }
        checkKeys(m, allowed: RuleTestParser.requestKeys)
        let id = scalar(m, "id", expected: "the request's id")?.text
        if id == nil, !m.has("id") { report("a request \(where_) has no 'id'", at: m.mark) }
        m.name = "request '\(id ?? "?")' \(where_)"
        let marketplace = choice(m, "marketplace", Marketplace.self, aliases: ["red": .xiaohongshu]) ?? .ozon
        let source = scalar(m, "source", expected: "a source name such as ozon-main")?.text ?? marketplace.rawValue
        var appearsAt = start
        if let value = scalar(m, "at", expected: "when it appears, such as +2h"), let at = time(value, key: "at", start: start) {
            if at < start {
                report("a request cannot appear before the test starts", at: value.mark)
            } else {
                appearsAt = at
            }
        }
        let fields = readFields(m, start: start)
        let hasDeadline = fields.contains { if case .deadline = $0 { return true } else { return false } }
        let hasRemaining = fields.contains { if case .remaining = $0 { return true } else { return false } }
        if !hasDeadline && !hasRemaining, !m.has("deadline"), !m.has("remaining") {
            report("\(m.name) needs 'remaining' (such as 30h) or 'deadline' (a time)", at: m.mark)
        } else if m.has("deadline") && m.has("remaining") {
            report("\(m.name) has both 'deadline' and 'remaining': keep one", at: m.value("remaining")?.mark)
        }
        guard let id else { return nil }
        var request = CancellationRequest(
            marketplace: marketplace, source: source, id: id, order: id, state: .pending,
            rawState: marketplace == .ozon ? "ON_APPROVAL" : "unaudited", deadline: appearsAt)
        for field in fields { field.apply(to: &request, now: appearsAt) }
        return RuleTestRequest(appearsAt: appearsAt, request: request, location: location(m.mark))
    }

    private func readChange(_ node: Node, start: Date, requests: [RuleTestRequest], where_: String) -> RuleTestChange? {
        guard let m = mapping(node, name: "a change \(where_)", expected: "a mapping (at:, request:, resolve: or fields)") else {
            return nil
        }
        checkKeys(m, allowed: RuleTestParser.changeKeys)
        var at: Date?
        if let value = scalar(m, "at", expected: "a time such as +20h") {
            at = time(value, key: "at", start: start)
        } else if !m.has("at") {
            report("a change \(where_) has no 'at': when it happens, such as +20h", at: m.mark)
        }
        let key = requestReference(m, requests: requests, where_: where_)
        let fields = readFields(m, start: start)
        let changesFields = m.entries.contains { RuleTestParser.fieldKeys.contains($0.key) }
        var action: RuleTestChange.Action?
        if let value = scalar(m, "resolve", expected: "approved, rejected or vanished") {
            if let outcome = outcome(value, key: "resolve", in: m) {
                action = .resolve(outcome)
                if changesFields {
                    report("a change that resolves a request cannot also change its fields; write two changes", at: value.mark)
                }
            }
        } else if !m.has("resolve") {
            if m.has("deadline") && m.has("remaining") {
                report("a change \(where_) has both 'deadline' and 'remaining': keep one", at: m.value("remaining")?.mark)
            }
            if !fields.isEmpty {
                action = .update(fields)
            } else if !changesFields {
                report(
                    "this change \(where_) changes nothing: write 'resolve: approved' (or rejected, vanished), "
                        + "or a field to change such as 'remaining: 2h'", at: m.mark)
            }
        }
        guard let at, let key, let action else { return nil }
        return RuleTestChange(at: at, request: key, action: action, location: location(m.mark))
    }

    private func readExpectation(_ node: Node, start: Date, requests: [RuleTestRequest], where_: String) -> RuleTestExpectation? {
        guard let m = mapping(node, name: "an expected event \(where_)", expected: "a mapping (at:, event:, rule:, request:)") else {
            return nil
        }
        checkKeys(m, allowed: RuleTestParser.expectKeys)
        var at: Date?
        if let value = scalar(m, "at", expected: "a time such as +6h") {
            at = time(value, key: "at", start: start)
            if let a = at, a < start { report("an event cannot be expected before the test starts", at: value.mark) }
        } else if !m.has("at") {
            report("\(m.name) has no 'at': when it should happen, such as +6h", at: m.mark)
        }
        let kinds = ["firing", "repeat", "resolved", "expired", "action", "digest"]
        var kind: AlertEvent.Kind?
        if let value = scalar(m, "event", expected: kinds.joined(separator: ", ")) {
            if value.text == "source_down" || value.text == "source_up" {
                report(
                    "'\(value.text)' is about polling, which rule tests do not simulate; expect firing, repeat, resolved, expired, action or digest",
                    at: value)
            } else {
                kind = oneOf(value, key: "event", in: m, allowed: kinds).flatMap(AlertEvent.Kind.init(rawValue:))
            }
        } else if !m.has("event") {
            report("\(m.name) has no 'event': firing, repeat, resolved, expired, action or digest", at: m.mark)
        }
        let rule = scalar(m, "rule", expected: kind == .digest ? "a digest name" : "a rule name")
        if rule == nil, !m.has("rule") { report("\(m.name) has no 'rule'" + (kind == .digest ? ": the digest's name" : ""), at: m.mark) }
        // A digest is about no one request: it lists some (`requests`, in its order).
        var key: RequestKey?
        var listed: [RequestKey]?
        if kind == .digest {
            if let value = m.value("request") {
                report("a digest is about no one request: list the requests it lists under 'requests'", at: value.mark)
            }
            if let references = scalars(m, "requests", expected: "a list of request ids, in the digest's order") {
                let keys = references.map { requestReference($0, requests: requests, where_: where_) }
                if keys.allSatisfy({ $0 != nil }) { listed = keys.compactMap { $0 } }
            } else if !m.has("requests") {
                report(
                    "\(m.name) has no 'requests': the requests the digest lists, in its order (write 'requests: []' for none)",
                    at: m.mark)
            } else if let value = m.value("requests"), isNull(value) {
                listed = []
            }
        } else {
            if let value = m.value("requests"), kind != nil {
                report("'requests' only goes with event: digest; name one request with 'request'", at: value.mark)
            }
            key = requestReference(m, requests: requests, where_: where_)
        }
        var outcome: Outcome?
        if let value = scalar(m, "outcome", expected: "approved, rejected or vanished") {
            outcome = self.outcome(value, key: "outcome", in: m)
            if outcome != nil, let kind, kind != .resolved, kind != .action {
                report("'outcome' only goes with event: resolved or action", at: value.mark)
            } else if outcome == .vanished, kind == .action {
                report("an action's outcome is approved or rejected: what the answer asks for", at: value.mark)
            }
        }
        let message = scalar(m, "message", expected: "text the message contains")?.text
        guard let at, let kind, let rule else { return nil }
        let request: RequestKey
        if kind == .digest {
            guard listed != nil else { return nil }
            request = RequestKey(source: "", id: "")
        } else {
            guard let key else { return nil }
            request = key
        }
        return RuleTestExpectation(
            at: at, kind: kind, rule: rule.text, request: request, listed: listed, outcome: outcome, messageContains: message,
            location: location(m.mark), ruleLocation: location(rule.mark))
    }

    private func outcome(_ value: YAMLScalar, key: String, in m: YAMLMapping) -> Outcome? {
        oneOf(value, key: key, in: m, allowed: ["approved", "rejected", "vanished"], what: "outcome").flatMap(Outcome.init(rawValue:))
    }

    /// `request: "1001"` (an id) or `request: ozon-main/1001` (source/id) among the test's requests.
    private func requestReference(_ m: YAMLMapping, requests: [RuleTestRequest], where_: String) -> RequestKey? {
        guard let value = scalar(m, "request", expected: "a request id") else {
            if !m.has("request") { report("no 'request' \(where_): name the request's id", at: m.mark) }
            return nil
        }
        return requestReference(value, requests: requests, where_: where_)
    }

    /// A request id (or source/id) among the test's requests; nil when none or several match (reported).
    private func requestReference(_ value: YAMLScalar, requests: [RuleTestRequest], where_: String) -> RequestKey? {
        let reference = value.text
        let matches = requests.filter { $0.request.id == reference || "\($0.request.source)/\($0.request.id)" == reference }
        if matches.count == 1 { return matches[0].request.key }
        if matches.count > 1 {
            report(
                "request '\(reference)' is ambiguous \(where_): write source/id (\(matches.map { "\($0.request.source)/\($0.request.id)" }.joined(separator: " or ")))",
                at: value)
            return nil
        }
        let ids = requests.map(\.request.id)
        let hint = NameSuggester.closest(to: reference, among: ids)
        let known = ids.isEmpty ? " (the test has no requests)" : " (requests: \(ids.joined(separator: ", ")))"
        report("unknown request '\(reference)' \(where_)" + (hint.map { "; did you mean '\($0)'?" } ?? known), at: value, suggestion: hint)
        return nil
    }

    /// The request fields written in `m`. Offsets in `created` and `deadline` count from the
    /// test's `start`; `remaining` counts from the instant the fields apply.
    private func readFields(_ m: YAMLMapping, start: Date) -> [RuleTestField] {
        var fields: [RuleTestField] = []
        for entry in m.entries {
            let key = entry.key
            switch key {
            case "order":
                if let s = scalar(m, key, expected: "text")?.text { fields.append(.order(s)) }
            case _ where CancellationRequest.Details.textNames.contains(key):
                if let s = scalar(m, key, expected: "text")?.text { fields.append(.detail(key, s)) }
            case "created", "deadline":
                guard let value = scalar(m, key, expected: "a time such as +30h or 2025-11-25 16:00"),
                    let date = time(value, key: key, start: start)
                else { continue }
                fields.append(key == "created" ? .created(date) : .deadline(date))
            case "remaining":
                if let seconds = duration(m, key, range: -DurationText.longest...DurationText.longest) {
                    fields.append(.remaining(seconds))
                }
            case "raw":
                fields.append(.raw(json(entry.value)))
            default:
                continue
            }
        }
        return fields
    }

    // MARK: Values

    /// A time that may be an offset from `start` (`+6h`) or absolute.
    private func time(_ value: YAMLScalar, key: String, start: Date) -> Date? {
        if let date = RuleTestTime.parse(value.text, start: start, timeZone: zone) { return date }
        report(
            "invalid time \(value.shown) for '\(key)': write an offset from the test's start (+6h, +1d2h30m) "
                + "or a date and time (2025-11-24 16:00)", at: value)
        return nil
    }

    private func absoluteTime(_ value: YAMLScalar, key: String) -> Date? {
        if let date = RuleTestTime.parse(value.text, start: nil, timeZone: zone) { return date }
        report(
            "invalid time \(value.shown) for '\(key)': write a date and time such as 2025-11-24 10:00 (in the file's timezone)",
            at: value)
        return nil
    }

    /// YAML as JSON: plain scalars that look like numbers, booleans or null are those; the rest are strings.
    func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let s):
            guard s.style == .plain || s.style == .any else { return .string(s.string) }
            if isNull(node) { return .null }
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
}
