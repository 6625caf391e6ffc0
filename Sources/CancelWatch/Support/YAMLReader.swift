import Foundation
import Yams

/// A mapping of a YAML file with its keys read, and what to call it in messages.
struct YAMLMapping {
    var mark: Mark?
    var entries: [(key: String, keyMark: Mark?, value: Node)]
    /// `source 'ozon-main'`, `test 'heads-up'`, `the top level`.
    var name: String
    /// `in source 'ozon-main'`, `at the top level`.
    var inName: String { name == "the top level" ? "at the top level" : "in \(name)" }

    func value(_ key: String) -> Node? { entries.first { $0.key == key }?.value }
    func has(_ key: String) -> Bool { value(key) != nil }
}

/// A scalar as a reader hands it on.
struct YAMLScalar {
    /// The value (in a config, after `${VAR}` expansion).
    var text: String
    var mark: Mark?
    /// How a message may show it: quoted, or without the value where it must not be echoed.
    var shown: String
    /// How many columns it takes where it is written.
    var length: Int

    /// `'text'`, cut after 57 characters.
    static func quoted(_ text: String) -> String {
        "'\(text.count > 60 ? String(text.prefix(57)) + "..." : text)'"
    }
}

/// Reads typed values out of a YAML file (the config, rule tests): mappings with known
/// keys, scalars, lists, durations, bounded numbers, choices and time zones. Every problem
/// becomes a ``RuleDiagnostic`` at its line and column, and reading goes on, so one pass
/// reports all of a file's mistakes. A reader of one kind of file subclasses it; the
/// config's overrides ``value(_:key:in:)`` to expand `${VAR}`s.
class YAMLReader {
    let text: String
    let path: String
    private(set) var diagnostics: [RuleDiagnostic] = []
    private(set) lazy var lines = Self.lines(of: text)

    init(text: String, path: String) {
        self.text = text
        self.path = path
    }

    /// The lines of `text`, without their line endings.
    static func lines(of text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
    }

    // MARK: Diagnostics

    func report(
        _ message: String, at mark: Mark?, length: Int = 1, suggestion: String? = nil, severity: RuleDiagnostic.Severity = .error
    ) {
        report(message, line: mark?.line ?? 0, column: mark?.column ?? 0, length: length, suggestion: suggestion, severity: severity)
    }

    func report(
        _ message: String, line: Int, column: Int, length: Int = 1, suggestion: String? = nil,
        severity: RuleDiagnostic.Severity = .error
    ) {
        diagnostics.append(
            RuleDiagnostic(
                severity: severity, path: path, line: line, column: column, length: length, message: message, suggestion: suggestion))
    }

    /// A problem with `value`, underlined whole.
    func report(_ message: String, at value: YAMLScalar, suggestion: String? = nil) {
        report(message, at: value.mark, length: value.length, suggestion: suggestion)
    }

    /// The diagnostics in file order, each once.
    func sortedDiagnostics() -> [RuleDiagnostic] {
        var unique: [RuleDiagnostic] = []
        for diagnostic in diagnostics where !unique.contains(diagnostic) { unique.append(diagnostic) }
        return unique.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
    }

    // MARK: The document

    /// The file's root node; nil (reported) when it is not YAML or is empty.
    func compose(ifEmpty: String) -> Node? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            reportSyntax(error)
            return nil
        } catch {
            report("the file is not valid YAML", line: 0, column: 0)
            return nil
        }
        guard let root, !isNull(root) else {
            report(ifEmpty, line: 0, column: 0)
            return nil
        }
        return root
    }

    private func reportSyntax(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            report(message, at: mark)
        case .reader(let problem, let offset, _, _):
            var line = 0
            var column = 0
            if let offset {
                let prefix = text.prefix(offset)
                line = prefix.filter { $0 == "\n" }.count + 1
                column = (prefix.split(separator: "\n", omittingEmptySubsequences: false).last?.unicodeScalars.count ?? 0) + 1
            }
            report("the file cannot be read as YAML: \(problem)", line: line, column: column)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            report("duplicate key \(keys) in the same mapping: each key may appear once", at: context.mark)
        default:
            report("the file is not valid YAML", line: 0, column: 0)
        }
    }

    // MARK: Nodes

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// `a mapping`, `a list`, `empty`, `a number`, `text`: what a node is, for messages.
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            if isNull(node) { return "empty" }
            if node.bool != nil { return "true/false" }
            if node.int != nil || node.float != nil { return "a number" }
            return "text"
        }
    }

    func typeError(_ key: String, in m: YAMLMapping, expected: String, got node: Node) {
        report("'\(key)' \(m.inName) must be \(expected), not \(describe(node))", at: node.mark)
    }

    func missing(_ key: String, in m: YAMLMapping) {
        report("missing required key '\(key)' \(m.inName)", at: m.mark)
    }

    /// `node` as a mapping called `name` in messages; nil (reported) when it is something else.
    func mapping(_ node: Node, name: String, expected: String) -> YAMLMapping? {
        guard case .mapping(let mapping) = node else {
            report("\(name) must be \(expected), not \(describe(node))", at: node.mark)
            return nil
        }
        var entries: [(key: String, keyMark: Mark?, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let k) = key else {
                report("keys in \(name) must be plain names, not \(describe(key))", at: key.mark)
                continue
            }
            entries.append((k.string, key.mark, value))
        }
        return YAMLMapping(mark: node.mark, entries: entries, name: name)
    }

    /// Reports keys not in `allowed`, with the closest known key, or the kind of item
    /// (a key of `elsewhere`) they belong to.
    func checkKeys(_ m: YAMLMapping, allowed: [String], elsewhere: [String: [String]] = [:]) {
        for entry in m.entries where !allowed.contains(entry.key) {
            let length = entry.key.unicodeScalars.count
            if let owner = elsewhere.sorted(by: { $0.key < $1.key }).first(where: { $0.value.contains(entry.key) })?.key {
                report("'\(entry.key)' is not a setting of \(m.name): it belongs to \(owner)", at: entry.keyMark, length: length)
            } else if let suggestion = NameSuggester.closest(to: entry.key, among: allowed) {
                report(
                    "unknown key '\(entry.key)' \(m.inName); did you mean '\(suggestion)'?", at: entry.keyMark, length: length,
                    suggestion: suggestion)
            } else {
                report(
                    "unknown key '\(entry.key)' \(m.inName) (known keys: \(allowed.joined(separator: ", ")))", at: entry.keyMark,
                    length: length)
            }
        }
    }

    /// The list at `key`; nil when absent or empty, or (reported) not a list.
    func items(_ m: YAMLMapping, _ key: String, expected: String) -> [Node]? {
        guard let node = m.value(key), !isNull(node) else { return nil }
        guard case .sequence(let items) = node else {
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
        return Array(items)
    }

    // MARK: Values

    /// What a scalar at `key` in `m` reads as; nil when it is refused (reported).
    func value(_ scalar: Node.Scalar, key: String, in m: YAMLMapping) -> YAMLScalar? {
        YAMLScalar(text: scalar.string, mark: scalar.mark, shown: YAMLScalar.quoted(scalar.string), length: scalar.string.unicodeScalars.count)
    }

    /// The scalar node at `key`; nil when absent or empty, or (reported) not a scalar.
    func scalarNode(_ m: YAMLMapping, _ key: String, expected: String) -> Node.Scalar? {
        guard let node = m.value(key), !isNull(node) else { return nil }
        guard case .scalar(let s) = node else {
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
        return s
    }

    /// The scalar at `key`; nil when absent, empty or refused (reported).
    func scalar(_ m: YAMLMapping, _ key: String, expected: String) -> YAMLScalar? {
        scalarNode(m, key, expected: expected).flatMap { value($0, key: key, in: m) }
    }

    /// A list of scalars; a single scalar counts as a list of one. Nil when absent or empty.
    func scalars(_ m: YAMLMapping, _ key: String, expected: String) -> [YAMLScalar]? {
        guard let node = m.value(key), !isNull(node) else { return nil }
        switch node {
        case .scalar(let s):
            return value(s, key: key, in: m).map { [$0] } ?? []
        case .sequence(let items):
            var result: [YAMLScalar] = []
            for item in items {
                guard case .scalar(let s) = item, !isNull(item) else {
                    report("items of '\(key)' \(m.inName) must be text, not \(describe(item))", at: item.mark)
                    continue
                }
                if let value = value(s, key: key, in: m) { result.append(value) }
            }
            return result
        default:
            typeError(key, in: m, expected: expected, got: node)
            return nil
        }
    }

    /// A duration within `range`; when `range` reaches below zero, a leading `-` or `+` is its sign.
    func duration(_ m: YAMLMapping, _ key: String, range: ClosedRange<TimeInterval>) -> TimeInterval? {
        guard let value = scalar(m, key, expected: "a duration such as 60s or 1h30m") else { return nil }
        var text = value.text.trimmingCharacters(in: .whitespaces)
        var sign = 1.0
        if range.lowerBound < 0, let first = text.first, first == "-" || first == "+" {
            sign = first == "-" ? -1 : 1
            text.removeFirst()
        }
        let outOfRange = "'\(key)' \(m.inName) must be from \(Self.spellBound(range.lowerBound)) to \(Self.spellBound(range.upperBound)), not \(value.shown)"
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || $0 == "." }), Double(text) != nil {
            report("'\(key)' \(m.inName) needs a unit: write \(text)s for seconds (units: ms, s, m, h, d, w)", at: value)
            return nil
        }
        guard let seconds = DurationText.parse(text).map({ sign * $0 }) else {
            if DurationText.isTooLong(text) {
                report(outOfRange, at: value)
            } else {
                report(
                    "invalid duration \(value.shown) for '\(key)' \(m.inName): write a number and a unit (ms, s, m, h, d, w), e.g. 60s or 1h30m",
                    at: value)
            }
            return nil
        }
        guard range.contains(seconds) else {
            report(outOfRange, at: value)
            return nil
        }
        return seconds
    }

    /// `1ms`, `1s`, `10m`, `1d`, `-3640d`: a bound as a file writes it.
    static func spellBound(_ seconds: TimeInterval) -> String {
        abs(seconds) < 1 ? "\(Int((seconds * 1000).rounded()))ms" : DurationText.spell(seconds)
    }

    func integer(_ m: YAMLMapping, _ key: String, range: ClosedRange<Int>) -> Int? {
        guard let value = scalar(m, key, expected: "a whole number") else { return nil }
        let text = value.text.trimmingCharacters(in: .whitespaces)
        let bounds = "from \(range.lowerBound) to \(range.upperBound)"
        guard let number = Int(text) else {
            let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
            if !digits.isEmpty, digits.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
                report("'\(key)' \(m.inName) must be \(bounds), not \(value.shown)", at: value)
            } else {
                report("'\(key)' \(m.inName) must be a whole number, not \(value.shown)", at: value)
            }
            return nil
        }
        guard range.contains(number) else {
            report("'\(key)' \(m.inName) must be \(bounds), not \(number)", at: value)
            return nil
        }
        return number
    }

    func boolean(_ m: YAMLMapping, _ key: String) -> Bool? {
        guard let value = scalar(m, key, expected: "true or false") else { return nil }
        switch value.text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report("'\(key)' \(m.inName) must be true or false, not \(value.shown)", at: value)
            return nil
        }
    }

    /// `value` as one of `allowed` (as written, lowercased, or by an alias); otherwise
    /// reported as an invalid `what` (the key by default) with the closest allowed name.
    func oneOf(
        _ value: YAMLScalar, key: String, in m: YAMLMapping, allowed: [String], aliases: [String: String] = [:], what: String? = nil
    ) -> String? {
        let text = value.text.trimmingCharacters(in: .whitespaces)
        if allowed.contains(text) { return text }
        if allowed.contains(text.lowercased()) { return text.lowercased() }
        if let alias = aliases[text.lowercased()] { return alias }
        let hint = NameSuggester.closest(to: value.text, among: allowed)
        report(
            "invalid \(what ?? key) \(value.shown) \(m.inName); expected one of: \(allowed.joined(separator: ", "))"
                + (hint.map { " (did you mean '\($0)'?)" } ?? ""), at: value, suggestion: hint)
        return nil
    }

    /// The scalar at `key` as one of `allowed` (see ``oneOf(_:key:in:allowed:aliases:what:)``).
    func choice(
        _ m: YAMLMapping, _ key: String, among allowed: [String], aliases: [String: String] = [:], what: String? = nil,
        required: Bool = false
    ) -> String? {
        guard let value = scalar(m, key, expected: "one of: \(allowed.joined(separator: ", "))") else {
            if required, m.value(key).map(isNull) ?? true { missing(key, in: m) }
            return nil
        }
        return oneOf(value, key: key, in: m, allowed: allowed, aliases: aliases, what: what)
    }

    func choice<Choice: RawRepresentable & CaseIterable>(
        _ m: YAMLMapping, _ key: String, _ type: Choice.Type, aliases: [String: Choice] = [:], what: String? = nil,
        required: Bool = false
    ) -> Choice? where Choice.RawValue == String {
        choice(
            m, key, among: Choice.allCases.map(\.rawValue), aliases: aliases.mapValues(\.rawValue), what: what, required: required
        ).flatMap(Choice.init(rawValue:))
    }

    /// An IANA time zone name, with the closest known name when it is not one.
    func timeZone(_ m: YAMLMapping, _ key: String) -> TimeZone? {
        guard let value = scalar(m, key, expected: "an IANA time zone name such as Europe/Moscow") else { return nil }
        if let zone = TimeZone(identifier: value.text) { return zone }
        let hint = NameSuggester.closest(to: value.text, among: TimeZone.knownTimeZoneIdentifiers)
        report(
            "unknown timezone \(value.shown)"
                + (hint.map { "; did you mean '\($0)'?" } ?? " (write an IANA name such as Europe/Moscow, Asia/Shanghai or UTC)"),
            at: value, suggestion: hint)
        return nil
    }

    /// Where `needle` is written in `lines`, at or after `mark` (the mark itself if not
    /// found); a `needle` right after a `$` does not count (`$${` is a literal `${`).
    static func locate(_ needle: String, from mark: Mark?, lines: [String]) -> (line: Int, column: Int) {
        guard let mark else { return (0, 0) }
        let needleScalars = Array(needle.unicodeScalars)
        for lineIndex in max(0, mark.line - 1)..<min(lines.count, mark.line + 20) {
            let scalars = Array(lines[lineIndex].unicodeScalars)
            var i = lineIndex == mark.line - 1 ? max(0, mark.column - 1) : 0
            while i + needleScalars.count <= scalars.count {
                if Array(scalars[i..<i + needleScalars.count]) == needleScalars, i == 0 || scalars[i - 1] != "$" {
                    return (lineIndex + 1, i + 1)
                }
                i += 1
            }
        }
        return (mark.line, mark.column)
    }
}
