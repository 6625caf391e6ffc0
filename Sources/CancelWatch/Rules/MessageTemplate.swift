import Foundation

/// A text with `{{field}}` placeholders (`{{remaining}}`, `{{order}}`, `{{raw.a.b}}`),
/// checked when it is compiled and rendered per request. Used for rule messages and
/// usable for anything else built from a request, such as an email subject.
///
/// Fields: every condition field (`marketplace source id order state raw_state initiator
/// reason reason_id logistics reason_message remaining age deadline created hour weekday raw.…`) plus
/// `rule` and `severity`. Durations render as `1h 05m`, times as `2026-11-23 23:00 +03:00`
/// in the time zone given to `render`.
public struct MessageTemplate: Sendable, CustomStringConvertible {
    /// A mistake in a template: where it is (in Unicode scalars from the start of the text) and what it is.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var offset: Int
        public var length: Int
        public var message: String
        /// The closest known field name, for an unknown one.
        public var suggestion: String?
        public var description: String { message }
    }

    /// The names a template may use, `raw.…` aside.
    public static let fieldNames: [String] =
        RuleTextField.allCases.map(\.rawValue) + ["remaining", "age", "deadline", "created", "hour", "weekday", "rule", "severity"]

    /// The message used when a rule has none.
    public static let defaultRuleMessage =
        "{{marketplace}} {{source}} {{order}}: cancellation auto-approves in {{remaining}} ({{reason}})"

    enum Placeholder: Sendable {
        case field(RuleField)
        case rule
        case severity
    }

    enum Segment: Sendable {
        case text(String)
        case placeholder(Placeholder)
    }

    /// The template as written.
    public let source: String
    let segments: [Segment]

    public var description: String { source }

    /// The `{{raw.a.b}}` paths it renders.
    public var rawPaths: RawPaths {
        RawPaths(segments.compactMap { if case .placeholder(.field(.raw(let path))) = $0 { path } else { nil } })
    }

    /// Compiles `text`, or returns every problem in it.
    public static func compile(_ text: String) -> Result<MessageTemplate, TemplateErrors> {
        let (template, problems) = compileReportingAll(text)
        if let template, problems.isEmpty { return .success(template) }
        return .failure(TemplateErrors(problems: problems))
    }

    /// Compiles `text` for a config value at `path:line:column` (where the text's first
    /// character is), giving rule-style diagnostics on failure.
    public static func compile(_ text: String, path: String, line: Int, column: Int) -> (MessageTemplate?, [RuleDiagnostic]) {
        let (template, problems) = compileReportingAll(text)
        let diagnostics = problems.map {
            RuleDiagnostic(
                severity: .error, path: path, line: line, column: column + $0.offset, length: $0.length, message: $0.message,
                suggestion: $0.suggestion)
        }
        return (problems.isEmpty ? template : nil, diagnostics)
    }

    /// Every problem in the template; errors on failure, a template when there are none.
    public struct TemplateErrors: Error, Sendable, CustomStringConvertible {
        public var problems: [Problem]
        public var description: String { problems.map(\.message).joined(separator: "; ") }
    }

    static func compileReportingAll(_ text: String) -> (MessageTemplate?, [Problem]) {
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var problems: [Problem] = []
        var literal = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            guard scalars[i] == "{", i + 1 < scalars.count, scalars[i + 1] == "{" else {
                literal.append(scalars[i])
                i += 1
                continue
            }
            let open = i
            var close = i + 2
            while close + 1 < scalars.count, !(scalars[close] == "}" && scalars[close + 1] == "}") { close += 1 }
            guard close + 1 < scalars.count else {
                problems.append(Problem(offset: open, length: 2, message: "unterminated '{{' in template; close it with '}}'", suggestion: nil))
                break
            }
            if !literal.isEmpty {
                segments.append(.text(String(literal)))
                literal = String.UnicodeScalarView()
            }
            // The name, without surrounding spaces.
            var nameStart = open + 2
            var nameEnd = close
            while nameStart < nameEnd, scalars[nameStart] == " " { nameStart += 1 }
            while nameEnd > nameStart, scalars[nameEnd - 1] == " " { nameEnd -= 1 }
            let name = String(String.UnicodeScalarView(scalars[nameStart..<nameEnd]))
            i = close + 2
            if name.isEmpty {
                problems.append(Problem(offset: open, length: close + 2 - open, message: "empty '{{}}' in template; name a field, such as {{remaining}}", suggestion: nil))
                continue
            }
            if name == "rule" {
                segments.append(.placeholder(.rule))
            } else if name == "severity" {
                segments.append(.placeholder(.severity))
            } else if let field = RuleField.named(name) {
                segments.append(.placeholder(.field(field)))
            } else if name == "raw" || name.hasPrefix("raw.") {
                problems.append(Problem(offset: nameStart, length: nameEnd - nameStart, message: "'{{\(name)}}' needs a path after 'raw.', such as {{raw.status}}", suggestion: nil))
            } else {
                let close = NameSuggester.closest(to: name, among: fieldNames)
                problems.append(
                    Problem(
                        offset: nameStart, length: nameEnd - nameStart,
                        message: "unknown field '\(name)' in template" + (close.map { "; did you mean '\($0)'?" } ?? ""),
                        suggestion: close))
            }
        }
        if !literal.isEmpty { segments.append(.text(String(literal))) }
        return (problems.isEmpty ? MessageTemplate(source: text, segments: segments) : nil, problems)
    }

    private init(source: String, segments: [Segment]) {
        self.source = source
        self.segments = segments
    }

    /// The text for `request` at `now`, with times in `timeZone`.
    public func render(
        request: CancellationRequest, now: Date, ruleName: String = "", severity: RuleSeverity = .warning,
        timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) -> String {
        render(request: request, now: now, ruleName: ruleName, severity: severity, clock: RuleClock(timeZone: timeZone))
    }

    func render(request: CancellationRequest, now: Date, ruleName: String, severity: RuleSeverity, clock: RuleClock) -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .text(let s): out += s
            case .placeholder(.rule): out += ruleName
            case .placeholder(.severity): out += severity.rawValue
            case .placeholder(.field(let field)):
                switch field {
                case .text(let f): out += f.value(of: request)
                case .duration(.remaining): out += DurationText.format(request.remaining(at: now))
                case .duration(.age):
                    out += request.createdAt.map { DurationText.format(now.timeIntervalSince($0)) } ?? "unknown"
                case .time(let f): out += f.value(of: request).map(clock.format) ?? "unknown"
                case .clock(.hour): out += String(clock.hour(at: now))
                case .clock(.weekday): out += RuleClock.weekdayNames[clock.weekday(at: now) - 1].capitalized
                case .raw(let path): out += request.rawObject.value(atPath: path)?.templateText ?? ""
                }
            }
        }
        return out
    }
}
