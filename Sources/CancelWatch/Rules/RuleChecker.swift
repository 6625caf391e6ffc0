import Foundation

/// Checks parsed rule files (names, types, sinks, duplicates, templates, patterns) and
/// compiles the rules that pass.
struct RuleChecker {
    let knownSinks: Set<String>?
    let clock: RuleClock
    private(set) var diagnostics: [RuleDiagnostic] = []
    /// Rule and digest names already seen, across files: which kind of block, and where.
    private var names: [String: (block: String, location: RuleSourceLocation)] = [:]
    private var path = ""

    init(knownSinks: Set<String>?, clock: RuleClock) {
        self.knownSinks = knownSinks
        self.clock = clock
    }

    private mutating func report(
        _ span: RuleSpan, _ message: String, suggestion: String? = nil, notes: [RuleDiagnostic.Note] = [],
        severity: RuleDiagnostic.Severity = .error
    ) {
        diagnostics.append(
            RuleDiagnostic(
                severity: severity, path: path, line: span.line, column: span.column, length: span.length, message: message,
                suggestion: suggestion, notes: notes))
    }

    private func location(_ span: RuleSpan) -> RuleSourceLocation {
        RuleSourceLocation(path: path, line: span.line, column: span.column)
    }

    /// The compiled rules and digests of `file`; those with errors are reported and left out.
    mutating func check(_ file: RuleFileSyntax) -> (rules: [CompiledRule], digests: [CompiledDigest]) {
        path = file.path
        return (file.rules.compactMap { check($0) }, file.digests.compactMap { check($0) })
    }

    /// Reports a name a rule or digest already has (one name, one block, across all files).
    private mutating func register(_ name: String, block: String, nameSpan: RuleSpan, keywordSpan: RuleSpan) {
        guard !name.isEmpty else { return }
        guard let first = names[name] else {
            names[name] = (block, location(keywordSpan))
            return
        }
        let message =
            first.block == block
            ? "duplicate \(block) name \"\(name)\"; \(block) names must be unique across all rule files"
            : "\(block) name \"\(name)\" is already a \(first.block)'s; rules and digests need names of their own"
        report(nameSpan, message, notes: [.init(message: "\"\(name)\" is first defined here", location: first.location)])
    }

    /// Whether the clause `keyword` at `span` came before in the block (`seen`: the first of
    /// each); a repeated clause is reported, and its content still checked, but not used.
    private mutating func repeated(_ keyword: String, at span: RuleSpan, in block: String, seen: inout [String: RuleSpan]) -> Bool {
        guard let first = seen[keyword] else {
            seen[keyword] = span
            return false
        }
        report(
            span, "duplicate '\(keyword)' clause in \(block)",
            notes: [.init(message: "the first '\(keyword)' is here", location: location(first))])
        return true
    }

    /// The sink names `notify` lists, each reported where the config has no such sink, or where listed twice.
    private mutating func checkSinks(_ names: [(name: String, span: RuleSpan)]) -> [String] {
        var sinks: [String] = []
        for (name, span) in names {
            if sinks.contains(name) {
                report(span, "sink '\(name)' is listed twice", severity: .warning)
                continue
            }
            sinks.append(name)
            guard let knownSinks, !knownSinks.contains(name) else { continue }
            if knownSinks.isEmpty {
                report(span, "unknown sink '\(name)'; the config defines no sinks")
            } else if let close = NameSuggester.closest(to: name, among: knownSinks.sorted()) {
                report(span, "unknown sink '\(name)'; did you mean '\(close)'?", suggestion: close)
            } else {
                report(span, "unknown sink '\(name)'; the config's sinks are \(knownSinks.sorted().joined(separator: ", "))")
            }
        }
        return sinks
    }

    // MARK: Rules

    private mutating func check(_ rule: RuleBlockSyntax) -> CompiledRule? {
        let errorsBefore = diagnostics.filter(\.isError).count
        register(rule.name, block: "rule", nameSpan: rule.nameSpan, keywordSpan: rule.keywordSpan)

        var seen: [String: RuleSpan] = [:]
        var condition: RuleCondition?
        var conditionText = ""
        var sawWhen = false
        var sawNotify = false
        var severity = RuleSeverity.warning
        var sinks: [String] = []
        var repeatEvery: TimeInterval?
        var quiet: QuietWindow?
        var resolve = true
        var message: MessageTemplate?
        var action: (answer: Answer, span: RuleSpan)?
        for clause in rule.clauses {
            let isRepeated = repeated(clause.kind.rawValue, at: clause.keywordSpan, in: "rule \"\(rule.name)\"", seen: &seen)
            switch clause.value {
            case .invalid:
                if clause.kind == .when { sawWhen = true }
                if clause.kind == .notify { sawNotify = true }
            case .condition(let expression):
                sawWhen = true
                let compiled = compile(expression)
                if isRepeated { break }
                conditionText = expression.text
                condition = compiled
                if let compiled { warnIfNeverTrue(compiled, rule: rule, at: clause.keywordSpan) }
            case .sinks(let names):
                sawNotify = true
                if isRepeated { break }
                sinks = checkSinks(names)
            case .severity(let word, let span):
                if let value = RuleSeverity(rawValue: word) {
                    if !isRepeated { severity = value }
                } else {
                    let close = NameSuggester.closest(to: word, among: RuleSeverity.allCases.map(\.rawValue))
                    report(
                        span,
                        "unknown severity '\(word)'; " + (close.map { "did you mean '\($0)'?" } ?? "use info, warning or critical"),
                        suggestion: close)
                }
            case .repeatEvery(let seconds, let text, let span):
                if seconds < 1 {
                    report(span, "repeat interval '\(text)' is too short; it must be at least 1s")
                } else if !isRepeated {
                    repeatEvery = seconds
                }
            case .message(let text, let columns, let span):
                let (template, problems) = MessageTemplate.compileReportingAll(text)
                for problem in problems {
                    let column = problem.offset < columns.count ? columns[problem.offset] : span.column
                    report(RuleSpan(line: span.line, column: column, length: problem.length), problem.message, suggestion: problem.suggestion)
                }
                if !isRepeated { message = template }
            case .quiet(let start, let end, _):
                if !isRepeated { quiet = QuietWindow(startMinute: start, endMinute: end) }
            case .resolve(let on):
                if !isRepeated { resolve = on }
            case .act(let decision, let decisionSpan, let comment):
                if let answer = checkAction(decision, decisionSpan, comment: comment), !isRepeated {
                    action = (answer, clause.keywordSpan)
                }
            }
        }
        if !sawWhen {
            report(rule.nameSpan, "rule \"\(rule.name)\" has no 'when' clause; add one, such as: when remaining <= 1h")
        }
        if !sawNotify {
            report(rule.nameSpan, "rule \"\(rule.name)\" has no 'notify' clause; add one naming a sink, such as: notify console")
        }
        guard diagnostics.filter(\.isError).count == errorsBefore, let condition else { return nil }
        let defaultMessage: MessageTemplate
        switch MessageTemplate.compile(MessageTemplate.defaultRuleMessage) {
        case .success(let t): defaultMessage = t
        case .failure: return nil
        }
        return CompiledRule(
            name: rule.name, severity: severity, notify: sinks, repeatEvery: repeatEvery, quiet: quiet,
            resolveNotifications: resolve, message: message ?? defaultMessage, location: location(rule.keywordSpan),
            conditionText: conditionText, condition: condition, action: action?.answer, actionLocation: action.map { location($0.span) },
            clock: clock)
    }

    // MARK: Digests

    private mutating func check(_ digest: DigestBlockSyntax) -> CompiledDigest? {
        let errorsBefore = diagnostics.filter(\.isError).count
        register(digest.name, block: "digest", nameSpan: digest.nameSpan, keywordSpan: digest.keywordSpan)
        var seen: [String: RuleSpan] = [:]
        var minuteOfDay: Int?
        var sawAt = false
        var sawNotify = false
        var days: UInt8 = 0x7F
        var sinks: [String] = []
        var include = CompiledDigest.defaultInclude
        var includeValid = true
        var always = false
        for clause in digest.clauses {
            let isRepeated = repeated(clause.kind.rawValue, at: clause.keywordSpan, in: "digest \"\(digest.name)\"", seen: &seen)
            switch clause.value {
            case .invalid:
                if clause.kind == .at { sawAt = true }
                if clause.kind == .notify { sawNotify = true }
            case .time(let minute, _):
                sawAt = true
                if !isRepeated { minuteOfDay = minute }
            case .days(let mask, _):
                if !isRepeated { days = mask }
            case .sinks(let names):
                sawNotify = true
                if !isRepeated { sinks = checkSinks(names) }
            case .condition(let expression):
                let compiled = compile(expression)
                if isRepeated { break }
                if let compiled {
                    include = (expression.text, compiled)
                } else {
                    includeValid = false
                }
            case .always:
                always = true
            }
        }
        if !sawAt {
            report(digest.nameSpan, "digest \"\(digest.name)\" has no 'at' clause; add the local time it is sent at, such as: at 09:00")
        }
        if !sawNotify {
            report(digest.nameSpan, "digest \"\(digest.name)\" has no 'notify' clause; add one naming a sink, such as: notify console")
        }
        guard diagnostics.filter(\.isError).count == errorsBefore, includeValid, let minuteOfDay else { return nil }
        return CompiledDigest(
            name: digest.name, minuteOfDay: minuteOfDay, days: days, notify: sinks, always: always,
            location: location(digest.keywordSpan), includeText: include.text, include: include.condition, clock: clock)
    }

    /// The answer `act` gives, or nil after reporting why it cannot be sent: a refusal
    /// without a comment, an empty comment, one too long or holding a control character.
    private mutating func checkAction(_ decision: Decision, _ decisionSpan: RuleSpan, comment: (text: String, span: RuleSpan)?)
        -> Answer?
    {
        guard let comment else {
            if decision == .refuse {
                report(
                    decisionSpan,
                    "a refusal needs a comment, the reason the marketplace passes on to the buyer: act refuse \"out of stock\"")
                return nil
            }
            return try? Answer(.approve)
        }
        if comment.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            report(
                comment.span,
                decision == .refuse
                    ? "a refusal's comment must not be empty: give the reason the marketplace passes on to the buyer"
                    : "the comment is empty: leave it out to approve without one")
            return nil
        }
        do {
            return try Answer(decision, comment: comment.text)
        } catch {
            report(comment.span, "cannot act \(decision.rawValue) with this comment: \(error.description)")
            return nil
        }
    }

    // MARK: Never-true conditions

    /// Warns when the top-level conjunction obviously cannot hold: contradictory bounds on
    /// `remaining` or `age`, or hour/weekday tests that share no value.
    private mutating func warnIfNeverTrue(_ condition: RuleCondition, rule: RuleBlockSyntax, at span: RuleSpan) {
        var parts: [RuleCondition] = []
        func flatten(_ c: RuleCondition) {
            if case .all(let items) = c { items.forEach(flatten) } else { parts.append(c) }
        }
        flatten(condition)
        var reason: String?
        struct Bounds {
            var low = -Double.infinity, lowInclusive = false
            var high = Double.infinity, highInclusive = false
            mutating func apply(_ op: RuleOrder, _ v: Double) {
                switch op {
                case .equal:
                    apply(.greaterOrEqual, v)
                    apply(.lessOrEqual, v)
                case .greater, .greaterOrEqual:
                    let inclusive = op == .greaterOrEqual
                    if v > low || (v == low && !inclusive) { (low, lowInclusive) = (v, inclusive) }
                case .less, .lessOrEqual:
                    let inclusive = op == .lessOrEqual
                    if v < high || (v == high && !inclusive) { (high, highInclusive) = (v, inclusive) }
                }
            }
            var isEmpty: Bool { low > high || (low == high && !(lowInclusive && highInclusive)) }
        }
        var remaining = Bounds()
        var age = Bounds()
        var hours: UInt32 = 0xFF_FFFF
        var days: UInt8 = 0x7F
        for part in parts {
            switch part {
            case .constant(false): reason = "its condition is always false"
            case .duration(.remaining, let op, let v): remaining.apply(op, v)
            case .duration(.age, let op, let v): age.apply(op, v)
            case .hour(let mask): hours &= mask
            case .weekday(let mask): days &= mask
            default: break
            }
        }
        if reason == nil {
            if remaining.isEmpty {
                reason = "its bounds on 'remaining' contradict each other"
            } else if age.isEmpty {
                reason = "its bounds on 'age' contradict each other"
            } else if hours == 0 {
                reason = "no hour satisfies its tests on 'hour'"
            } else if days == 0 {
                reason = "no day satisfies its tests on 'weekday'"
            }
        }
        if let reason {
            report(span, "rule \"\(rule.name)\" can never fire: \(reason)", severity: .warning)
        }
    }

    // MARK: Conditions

    private mutating func compile(_ expression: RuleExpressionSyntax) -> RuleCondition? {
        switch expression {
        case .invalid:
            return nil
        case .and(let a, let b):
            let (x, y) = (compile(a), compile(b))
            guard let x, let y else { return nil }
            return Self.mergingClockTests(Self.items(of: x, and: true) + Self.items(of: y, and: true), and: true)
        case .or(let a, let b):
            let (x, y) = (compile(a), compile(b))
            guard let x, let y else { return nil }
            return Self.mergingClockTests(Self.items(of: x, and: false) + Self.items(of: y, and: false), and: false)
        case .not(let inner, _):
            guard let c = compile(inner) else { return nil }
            if case .not(let doubled) = c { return doubled }
            return .not(c)
        case .operand(let operand):
            return compileLone(operand)
        case .comparison(let lhs, let op, let rhs, let operatorSpan, let negated):
            guard let c = compileComparison(lhs, op, rhs, operatorSpan: operatorSpan) else { return nil }
            return negated ? .not(c) : c
        }
    }

    private static func items(of c: RuleCondition, and: Bool) -> [RuleCondition] {
        switch c {
        case .all(let items) where and: return items
        case .any(let items) where !and: return items
        default: return [c]
        }
    }

    /// Joins the hour tests (and the weekday tests) of one `and` or `or` into a single mask,
    /// so that `hour >= 22 or hour < 8` changes only where the whole changes.
    private static func mergingClockTests(_ items: [RuleCondition], and: Bool) -> RuleCondition {
        var hours: UInt32?
        var days: UInt8?
        var rest: [RuleCondition] = []
        for item in items {
            switch item {
            case .hour(let mask): hours = hours.map { and ? $0 & mask : $0 | mask } ?? mask
            case .weekday(let mask): days = days.map { and ? $0 & mask : $0 | mask } ?? mask
            default: rest.append(item)
            }
        }
        if let hours { rest.append(.hour(mask: hours)) }
        if let days { rest.append(.weekday(mask: days)) }
        if rest.count == 1 { return rest[0] }
        return and ? .all(rest) : .any(rest)
    }

    private enum Resolved {
        case field(RuleField, String, RuleSpan)
        case literal(RuleLiteralSyntax, RuleSpan)
        case list([(RuleLiteralSyntax, RuleSpan)], RuleSpan)

        var span: RuleSpan {
            switch self {
            case .field(_, _, let s), .literal(_, let s), .list(_, let s): return s
            }
        }
    }

    private mutating func resolve(_ operand: RuleOperandSyntax) -> Resolved? {
        switch operand {
        case .literal(let l, let s): return .literal(l, s)
        case .list(let items, let s): return .list(items, s)
        case .field(let name, let span):
            if let field = RuleField.named(name) { return .field(field, name, span) }
            if name == "raw" || name.hasPrefix("raw.") {
                report(span, "'\(name)' needs a path after 'raw.', such as raw.status or raw.items.0.sku")
                return nil
            }
            if let weekday = RuleClock.weekdayNumber(name) {
                _ = weekday
                report(span, "unknown field '\(name)'; write weekday names in quotes: weekday == \"\(name)\"", suggestion: "\"\(name)\"")
                return nil
            }
            let close = NameSuggester.closest(to: name, among: RuleField.conditionNames.filter { $0 != "raw" })
            if let close {
                report(span, "unknown field '\(name)'; did you mean '\(close)'?", suggestion: close)
            } else if ["pending", "approved", "rejected", "ozon", "xiaohongshu"].contains(name) || name.uppercased() == name {
                report(span, "unknown field '\(name)'; write values in double quotes: \"\(name)\"", suggestion: "\"\(name)\"")
            } else {
                report(span, "unknown field '\(name)'; the fields are \(RuleField.conditionNames.filter { $0 != "raw" }.joined(separator: ", ")) and raw.<path>")
            }
            return nil
        }
    }

    private mutating func compileLone(_ operand: RuleOperandSyntax) -> RuleCondition? {
        guard let resolved = resolve(operand) else { return nil }
        switch resolved {
        case .literal(.boolean(let b), _): return .constant(b)
        case .field(.raw(let path), _, _): return .raw(path, .isTrue)
        case .field(let field, let name, let span):
            report(span, "'\(name)' is a \(field.typeName), not a condition; compare it with a value, as in \(Self.example(for: field, name: name))")
            return nil
        case .literal(let l, let span):
            report(span, "a \(l.typeName) is not a condition; compare a field with it, as in remaining <= 1h")
            return nil
        case .list(_, let span):
            report(span, "a list is not a condition; use it with 'in', as in initiator in [\"CLIENT\"]")
            return nil
        }
    }

    /// `a`, `a or b`, `a, b or c`.
    static func alternatives(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
    }

    private static func example(for field: RuleField, name: String) -> String {
        switch field {
        case .text: return "\(name) == \"...\""
        case .duration: return "\(name) <= 1h"
        case .time: return "\(name) < \"2026-11-23T20:00:00Z\""
        case .clock: return name == "hour" ? "hour >= 9" : "weekday <= 5"
        case .raw: return "\(name) == \"...\""
        }
    }

    private mutating func compileComparison(
        _ lhsSyntax: RuleOperandSyntax, _ writtenOp: RuleComparisonOperator, _ rhsSyntax: RuleOperandSyntax, operatorSpan: RuleSpan
    ) -> RuleCondition? {
        let (l, r) = (resolve(lhsSyntax), resolve(rhsSyntax))
        guard var lhs = l, var rhs = r else { return nil }
        var op = writtenOp
        switch (lhs, rhs) {
        case (.field(_, let a, _), .field(_, let b, _)):
            report(operatorSpan, "cannot compare two fields ('\(a)' and '\(b)'); compare a field with a value")
            return nil
        case (.field, _):
            break
        case (_, .field):
            if op == .matches {
                report(lhs.span, "the pattern goes on the right of 'matches', as in reason matches \"(?i)size\"")
                return nil
            }
            swap(&lhs, &rhs)
            op = op.swapped
        default:
            report(operatorSpan, "'\(op.rawValue)' compares a field with a value; neither side is a field")
            return nil
        }
        guard case .field(let field, let name, let fieldSpan) = lhs else { return nil }

        // The right-hand side's shape for the operator.
        switch op {
        case .in:
            guard case .list(let items, _) = rhs else {
                report(rhs.span, "'in' takes a list, as in \(name) in [...]; to look for text inside a field use 'contains'")
                return nil
            }
            var alternatives: [RuleCondition] = []
            var ok = true
            for (item, span) in items {
                if let c = compileTest(field, name: name, fieldSpan: fieldSpan, op: .equal, item, span) {
                    alternatives.append(c)
                } else {
                    ok = false
                }
            }
            guard ok else { return nil }
            return Self.mergeAlternatives(alternatives)
        case .contains:
            switch field {
            case .text, .raw: break
            default:
                report(operatorSpan, "'contains' looks for text in a string or a raw value; '\(name)' is a \(field.typeName)")
                return nil
            }
            if case .list(_, let span) = rhs {
                report(span, "'contains' takes one value; to test several use 'or', or 'in' with the field on the left")
                return nil
            }
        case .matches:
            switch field {
            case .text, .raw: break
            default:
                report(operatorSpan, "'matches' tests a string or a raw value against a regular expression; '\(name)' is a \(field.typeName)")
                return nil
            }
            guard case .literal(.string(let pattern, _), let span) = rhs else {
                report(rhs.span, "'matches' takes a regular expression in double quotes, as in \(name) matches \"^size\"")
                return nil
            }
            let compiled: RulePattern
            do {
                compiled = try RulePattern(pattern)
            } catch {
                report(span, "invalid regular expression \"\(pattern)\"")
                return nil
            }
            if case .raw(let path) = field { return .raw(path, .matches(compiled)) }
            if case .text(let f) = field { return .text(f, .matches(compiled)) }
            return nil
        default:
            if case .list(_, let span) = rhs {
                report(span, "'\(op.rawValue)' compares with one value; to test a list use 'in', as in \(name) in [...]")
                return nil
            }
        }
        guard case .literal(let literal, let literalSpan) = rhs else { return nil }
        if op == .notEqual {
            guard let c = compileTest(field, name: name, fieldSpan: fieldSpan, op: .equal, literal, literalSpan) else { return nil }
            return .not(c)
        }
        return compileTest(field, name: name, fieldSpan: fieldSpan, op: op, literal, literalSpan)
    }

    /// Joins the alternatives of an `in` list into one test where the field allows it.
    private static func mergeAlternatives(_ alternatives: [RuleCondition]) -> RuleCondition {
        guard !alternatives.isEmpty else { return .constant(false) }
        var strings: [String] = []
        var numbers: [Double] = []
        var textField: RuleTextField?
        var rawPath: [String]?
        var rawLiterals: [RuleRawLiteral] = []
        var hours: UInt32 = 0
        var days: UInt8 = 0
        var kind = 0  // 1 text, 2 raw, 3 hour, 4 weekday, 5 other
        for alternative in alternatives {
            switch alternative {
            case .text(let f, .equals(let s)):
                kind = kind == 0 || kind == 1 ? 1 : 5
                textField = f
                strings.append(s)
            case .text(let f, .equalsNumber(let n)):
                kind = kind == 0 || kind == 1 ? 1 : 5
                textField = f
                numbers.append(n)
            case .raw(let path, .equals(let literal)):
                kind = kind == 0 || kind == 2 ? 2 : 5
                rawPath = path
                rawLiterals.append(literal)
            case .hour(let mask):
                kind = kind == 0 || kind == 3 ? 3 : 5
                hours |= mask
            case .weekday(let mask):
                kind = kind == 0 || kind == 4 ? 4 : 5
                days |= mask
            default:
                kind = 5
            }
        }
        switch kind {
        case 1: return .text(textField!, .oneOf(strings: strings, numbers: numbers))
        case 2: return .raw(rawPath!, .oneOf(rawLiterals))
        case 3: return .hour(mask: hours)
        case 4: return .weekday(mask: days)
        default: return alternatives.count == 1 ? alternatives[0] : .any(alternatives)
        }
    }

    private mutating func typeMismatch(_ field: RuleField, _ literal: RuleLiteralSyntax, _ span: RuleSpan, hint: String? = nil, suggestion: String? = nil) {
        report(span, "cannot compare \(field.typeName) with \(literal.typeName)" + (hint.map { "; \($0)" } ?? ""), suggestion: suggestion)
    }

    /// `field op literal` for one literal (`op` is never `!=`, `in` or `matches` here).
    private mutating func compileTest(
        _ field: RuleField, name: String, fieldSpan: RuleSpan, op: RuleComparisonOperator, _ literal: RuleLiteralSyntax, _ span: RuleSpan
    ) -> RuleCondition? {
        switch field {
        case .text(let f):
            switch literal {
            case .string(let s, _):
                if op == .contains { return .text(f, .contains(s)) }
                if op == .equal, let values = f.closedValues, !values.contains(s) {
                    let close = NameSuggester.closest(to: s, among: values)
                    report(
                        span,
                        "'\(name)' is never \"\(s)\"; it is " + Self.alternatives(values.map { "\"\($0)\"" })
                            + (close.map { "; did you mean \"\($0)\"?" } ?? ""),
                        suggestion: close.map { "\"\($0)\"" })
                    return nil
                }
                guard let order = RuleOrder(op) else { return nil }
                return order == .equal ? .text(f, .equals(s)) : .text(f, .order(order, s))
            case .number(let n):
                if op == .contains {
                    report(span, "'contains' looks for text; write it in double quotes: \"\(RuleParser.plain(n))\"", suggestion: "\"\(RuleParser.plain(n))\"")
                    return nil
                }
                guard let order = RuleOrder(op) else { return nil }
                return order == .equal ? .text(f, .equalsNumber(n)) : .text(f, .orderNumber(order, n))
            case .duration(_, let text):
                typeMismatch(field, literal, span, hint: "write the value in double quotes: \"\(text)\"", suggestion: "\"\(text)\"")
                return nil
            case .boolean:
                typeMismatch(field, literal, span)
                return nil
            }

        case .duration(let f):
            switch literal {
            case .duration(let seconds, _):
                guard let order = RuleOrder(op) else { return nil }
                if order == .equal {
                    report(span, "'\(name)' equals an exact duration only for an instant; use <=, <, >= or >", severity: .warning)
                }
                return .duration(f, order, seconds)
            case .number(let n):
                let fix = n == 0 ? "0s" : "\(RuleParser.plain(n))m"
                typeMismatch(field, literal, span, hint: "add a unit, such as \(fix)", suggestion: fix)
                return nil
            case .string(let s, _):
                if DurationText.parse(s) != nil {
                    typeMismatch(field, literal, span, hint: "write the duration without quotes: \(s)", suggestion: s)
                } else {
                    typeMismatch(field, literal, span)
                }
                return nil
            case .boolean:
                typeMismatch(field, literal, span)
                return nil
            }

        case .time(let f):
            switch literal {
            case .string(let s, _):
                guard let instant = Timestamp.parse(s) else {
                    report(span, "\"\(s)\" is not a time; write an RFC 3339 time, such as \"2026-11-23T20:00:00Z\" or \"2026-11-23T23:00:00+03:00\"")
                    return nil
                }
                guard let order = RuleOrder(op) else { return nil }
                return .time(f, order, instant)
            case .duration:
                typeMismatch(
                    field, literal, span, hint: name == "deadline" ? "to compare time left, use 'remaining'" : "to compare time since, use 'age'",
                    suggestion: name == "deadline" ? "remaining" : "age")
                return nil
            default:
                typeMismatch(field, literal, span)
                return nil
            }

        case .clock(let f):
            let value: Int
            switch literal {
            case .number(let n):
                guard n == n.rounded(), abs(n) < 1e6 else {
                    report(span, "'\(name)' is a whole number")
                    return nil
                }
                value = Int(n)
            case .string(let s, _) where f == .weekday:
                guard let day = RuleClock.weekdayNumber(s) else {
                    let names = RuleClock.weekdayNames
                    let close = NameSuggester.closest(to: s, among: names)
                    report(
                        span,
                        "\"\(s)\" is not a weekday; " + (close.map { "did you mean \"\($0)\"?" } ?? "use monday … sunday, mon … sun, or 1 … 7"),
                        suggestion: close.map { "\"\($0)\"" })
                    return nil
                }
                value = day
            default:
                typeMismatch(field, literal, span, hint: f == .weekday ? "weekday is 1 (Monday) to 7 (Sunday) or a name such as \"monday\"" : nil)
                return nil
            }
            let range = f == .hour ? 0...23 : 1...7
            if op == .equal, !range.contains(value) {
                report(span, f == .hour ? "'hour' is 0 to 23; it is never \(value)" : "'weekday' is 1 (Monday) to 7 (Sunday); it is never \(value)")
                return nil
            }
            guard let order = RuleOrder(op) else {
                report(span, "'contains' looks for text; '\(name)' is a number")
                return nil
            }
            var mask: UInt32 = 0
            for v in range where order.test(v, value) { mask |= 1 << UInt32(v - range.lowerBound) }
            return f == .hour ? .hour(mask: mask) : .weekday(mask: UInt8(mask))

        case .raw(let path):
            if case .duration = literal {
                typeMismatch(field, literal, span, hint: "raw values are strings, numbers or booleans")
                return nil
            }
            let value = RuleRawLiteral(literal)
            if op == .contains { return .raw(path, .contains(value)) }
            guard let order = RuleOrder(op) else { return nil }
            if order == .equal { return .raw(path, .equals(value)) }
            if case .boolean = literal {
                report(span, "booleans cannot be ordered; use == or !=")
                return nil
            }
            return .raw(path, .order(order, value))
        }
    }
}

extension RuleExpressionSyntax {
    /// The condition written back out on one line.
    var text: String {
        func wrap(_ e: RuleExpressionSyntax, under parent: Int) -> String {
            e.precedence < parent ? "(\(e.text))" : e.text
        }
        switch self {
        case .and(let a, let b): return wrap(a, under: 2) + " and " + wrap(b, under: 2)
        case .or(let a, let b): return wrap(a, under: 1) + " or " + wrap(b, under: 1)
        case .not(let inner, _): return "not " + wrap(inner, under: 3)
        case .comparison(let a, let op, let b, _, let negated):
            return a.text + (negated ? " not " : " ") + op.rawValue + " " + b.text
        case .operand(let o): return o.text
        case .invalid: return "<invalid>"
        }
    }

    private var precedence: Int {
        switch self {
        case .or: return 1
        case .and: return 2
        case .not: return 3
        default: return 4
        }
    }
}

extension RuleOperandSyntax {
    var text: String {
        switch self {
        case .field(let name, _): return name
        case .literal(let l, _): return l.text
        case .list(let items, _): return "[" + items.map(\.0.text).joined(separator: ", ") + "]"
        }
    }
}

extension RuleLiteralSyntax {
    var text: String {
        switch self {
        case .string(let s, _): return JSONValue.string(s).compactJSON
        case .number(let n): return RuleParser.plain(n)
        case .duration(_, let t): return t
        case .boolean(let b): return b ? "true" : "false"
        }
    }
}
