import Foundation

/// One problem found in a config file, at a line and column (1-based; 0 when it is
/// about the file as a whole). ``description`` renders it like a compiler:
///
///     cancelwatch.yaml:7:9: error: unknown key 'pol_interval' in source 'ozon-main'; did you mean 'poll_interval'?
///         pol_interval: 60s
///         ^
///
/// Neither the message nor the quoted line ever holds a secret's value.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The config file.
    public var path: String
    public var line: Int
    public var column: Int
    public var message: String
    /// The offending line of the file with secrets masked, when there is one.
    public var sourceLine: String?
    /// Where the caret goes under ``sourceLine`` (1-based, in Unicode scalars of the masked line).
    public var caretColumn: Int?
    /// An error stops the config from loading; a warning is said (by `check`, and by `run`
    /// at start and after each reload) and the config still loads.
    public var severity: Severity

    public typealias Severity = RuleDiagnostic.Severity

    public init(
        path: String, line: Int, column: Int, message: String, sourceLine: String? = nil, caretColumn: Int? = nil,
        severity: Severity = .error
    ) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.sourceLine = sourceLine
        self.caretColumn = caretColumn
        self.severity = severity
    }

    /// `path:line:col: error: message` (`path: error: message` for the file as a whole).
    public var headline: String {
        line > 0 ? "\(path):\(line):\(column): \(severity.rawValue): \(message)" : "\(path): \(severity.rawValue): \(message)"
    }

    /// The headline, then the line of the file and a caret under the column.
    public var rendered: String {
        guard let sourceLine, let caretColumn else { return headline }
        let indent = String(
            String.UnicodeScalarView(sourceLine.unicodeScalars.prefix(max(0, caretColumn - 1)).map { $0 == "\t" ? "\t" : " " }))
        return "\(headline)\n    \(sourceLine)\n    \(indent)^"
    }

    public var description: String { rendered }

    /// Sets ``sourceLine`` to the diagnostic's line of `lines` with its secrets masked, and
    /// ``caretColumn`` to where its column falls in it.
    mutating func quoteLine(of lines: [String], knownSecrets: Set<String>, secretColumns: [Int] = []) {
        guard line >= 1, line <= lines.count else { return }
        let masked = ConfigLineMasking.mask(
            lines: lines, index: line - 1, column: max(1, column), knownSecrets: knownSecrets, secretColumns: secretColumns)
        sourceLine = masked.line
        caretColumn = masked.column
    }
}

/// Everything wrong with a config file, found in one pass. Its ``description`` lists
/// every diagnostic, each rendered with its line and caret.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic about the file as a whole.
    public init(path: String, message: String) {
        self.diagnostics = [ConfigDiagnostic(path: path, line: 0, column: 0, message: message)]
    }

    public var description: String {
        var text = diagnostics.map(\.rendered).joined(separator: "\n")
        if diagnostics.count > 1 { text += "\n\(diagnostics.count) errors in \(diagnostics[0].path)" }
        return text
    }

    /// One `path:line:col: error: message` line per diagnostic, no source lines.
    public var headlines: String { diagnostics.map(\.headline).joined(separator: "\n") }
}

/// Masks secrets in a line of a config file before it is quoted in a diagnostic. It works
/// from the line's shape, so it holds when the YAML did not parse and nothing was read:
/// every value in a `headers:` mapping (flow form, or block form by indentation), the
/// values of `api_key`, `app_secret`, `secret` and `password`, a `url:` after its host,
/// the user info of any URL, and any secret text the loader saw. Values that are only
/// `${VAR}` references are shown.
enum ConfigLineMasking {
    static let secretKeys = ["api_key", "app_secret", "secret", "password"]

    /// Line `index` (0-based) of `lines` masked, and where `column` (1-based, in Unicode
    /// scalars) falls in it. `secretColumns` are where secret values start on this line
    /// (1-based): each is masked whole, however it is written (quotes, escapes).
    static func mask(
        lines: [String], index: Int, column: Int, knownSecrets: Set<String>, secretColumns: [Int] = []
    ) -> (line: String, column: Int) {
        let line = lines[index]
        let scalars = Array(line.unicodeScalars)
        var replacements: [(range: Range<Int>, with: String)] = []
        func hide(_ range: Range<Int>) {
            let value = String(String.UnicodeScalarView(scalars[range]))
            if !range.isEmpty, !isOnlyEnvironmentReferences(value) { replacements.append((range, Secret.placeholder)) }
        }
        for start in secretColumns where start >= 1 && start <= scalars.count {
            hide(valueRange(startingAt: start - 1, in: scalars))
        }
        for key in secretKeys {
            for range in valueRanges(ofKey: key, in: scalars) { hide(range) }
        }
        for range in valueRanges(ofKey: "url", in: scalars) {
            let value = String(String.UnicodeScalarView(scalars[range]))
            if isOnlyEnvironmentReferences(value) { continue }
            let shown = Secret.redactedURL(value)
            if shown != value, shown.hasSuffix(Secret.placeholder) { replacements.append((range, shown)) }
        }
        for range in headerValueRanges(in: scalars, insideHeadersBlock: isInsideHeadersBlock(lines: lines, index: index)) {
            hide(range)
        }
        for range in userInfoRanges(in: scalars) { replacements.append((range, Secret.placeholder)) }
        for secret in knownSecrets where secret.unicodeScalars.count >= 3 && !isOnlyEnvironmentReferences(secret) {
            let needle = Array(secret.unicodeScalars)
            var i = 0
            while i + needle.count <= scalars.count {
                if Array(scalars[i..<i + needle.count]) == needle {
                    replacements.append((i..<i + needle.count, Secret.placeholder))
                    i += needle.count
                } else {
                    i += 1
                }
            }
        }
        guard !replacements.isEmpty else { return (line, column) }

        // Merge overlapping ranges (the widest wins), then rebuild and move the caret.
        replacements.sort { $0.range.lowerBound < $1.range.lowerBound }
        var merged: [(range: Range<Int>, with: String)] = []
        for r in replacements {
            if let last = merged.last, r.range.lowerBound < last.range.upperBound {
                let upper = max(last.range.upperBound, r.range.upperBound)
                merged[merged.count - 1] = (last.range.lowerBound..<upper, Secret.placeholder)
            } else {
                merged.append(r)
            }
        }
        var out = String.UnicodeScalarView()
        let caret = column - 1
        var maskedCaret: Int?
        var shift = 0
        var position = 0
        for r in merged {
            out.append(contentsOf: scalars[position..<r.range.lowerBound])
            out.append(contentsOf: r.with.unicodeScalars)
            if maskedCaret == nil {
                if r.range.upperBound <= caret {
                    shift += r.with.unicodeScalars.count - r.range.count
                } else {
                    // The caret sits in the masked value (it moves to its start) or before it.
                    maskedCaret = min(caret, r.range.lowerBound) + shift
                }
            }
            position = r.range.upperBound
        }
        out.append(contentsOf: scalars[position...])
        return (String(out), (maskedCaret ?? caret + shift) + 1)
    }

    /// The value that starts at `start`: a quoted one up to its closing quote (quotes
    /// excluded; an unclosed one to the end of the line), a plain one up to ` #` or the end
    /// of the line, and also up to `,`, `}` or `]` inside a flow collection.
    static func valueRange(startingAt start: Int, in s: [Unicode.Scalar]) -> Range<Int> {
        if s[start] == "\"" || s[start] == "'" {
            let end = closingQuote(openedAt: start, in: s)
            return start + 1..<end
        }
        let inFlow = flowDepth(before: start, in: s) > 0
        var end = start
        while end < s.count, !(inFlow && (s[end] == "," || s[end] == "}" || s[end] == "]")),
            !(s[end] == "#" && end > start && (s[end - 1] == " " || s[end - 1] == "\t"))
        {
            end += 1
        }
        while end > start, s[end - 1] == " " || s[end - 1] == "\t" { end -= 1 }
        return start..<end
    }

    /// Where the quote opened at `start` closes (`\"` and `''` escapes skipped), or the line's end.
    private static func closingQuote(openedAt start: Int, in s: [Unicode.Scalar]) -> Int {
        let quote = s[start]
        var end = start + 1
        while end < s.count {
            if quote == "\"", s[end] == "\\" {
                end += 2
                continue
            }
            if s[end] == quote {
                guard quote == "'", end + 1 < s.count, s[end + 1] == "'" else { return end }
                end += 2
                continue
            }
            end += 1
        }
        return s.count
    }

    /// How many flow collections (`{`, `[`) are open before `position` on the line.
    private static func flowDepth(before position: Int, in s: [Unicode.Scalar]) -> Int {
        var depth = 0
        var i = 0
        while i < min(position, s.count) {
            let c = s[i]
            if c == "\"" || c == "'", i == 0 || [" ", "\t", "{", "[", ",", ":"].contains(s[i - 1]) {
                i = closingQuote(openedAt: i, in: s) + 1
                continue
            }
            if c == "{" || c == "[" { depth += 1 }
            if c == "}" || c == "]" { depth = max(0, depth - 1) }
            if c == "#", i > 0, s[i - 1] == " " { break }
            i += 1
        }
        return depth
    }

    /// Where the values written after `key:` on the line start; the key is matched
    /// ignoring ASCII case (`Password`, `password`) and may be quoted.
    static func valueStarts(ofKey key: String, in s: [Unicode.Scalar]) -> [Int] {
        var starts: [Int] = []
        var i = 0
        while let colon = keyEnd(ofKey: key, in: s, from: i) {
            var j = colon
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            guard j < s.count else { break }
            starts.append(j)
            i = max(j, valueRange(startingAt: j, in: s).upperBound)
        }
        return starts
    }

    /// Just after the colon of the first `key:` at or after `from`.
    private static func keyEnd(ofKey key: String, in s: [Unicode.Scalar], from: Int) -> Int? {
        let k = Array(key.lowercased().unicodeScalars)
        func isWord(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar { ("A"..."Z").contains(c) ? Unicode.Scalar(c.value | 0x20)! : c }
        var i = from
        while i + k.count <= s.count {
            defer { i += 1 }
            guard s[i..<i + k.count].map(lower) == k, i == 0 || !isWord(s[i - 1]) else { continue }
            var j = i + k.count
            if j < s.count, s[j] == "\"" || s[j] == "'" { j += 1 }  // a quoted key
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            if j < s.count, s[j] == ":" { return j + 1 }
        }
        return nil
    }

    /// The ranges of the values written after `key:` on the line (quotes excluded).
    static func valueRanges(ofKey key: String, in s: [Unicode.Scalar]) -> [Range<Int>] {
        valueStarts(ofKey: key, in: s).map { valueRange(startingAt: $0, in: s) }
    }

    /// The values of header mappings on the line: each entry of a `headers: {…}` flow
    /// mapping, and, on a line of a block `headers:` mapping, the text after the name (or
    /// the whole line when it has no name: the continuation of a value).
    static func headerValueRanges(in s: [Unicode.Scalar], insideHeadersBlock: Bool) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        for start in valueStarts(ofKey: "headers", in: s) where s[start] == "{" {
            var i = start + 1
            while i < s.count, s[i] != "}" {
                if s[i] == " " || s[i] == "\t" || s[i] == "," {
                    i += 1
                    continue
                }
                if s[i] == "\"" || s[i] == "'" { i = closingQuote(openedAt: i, in: s) + 1 }  // a quoted name
                while i < s.count, s[i] != ":", s[i] != ",", s[i] != "}" { i += 1 }
                guard i < s.count, s[i] == ":" else { continue }
                i += 1
                while i < s.count, s[i] == " " || s[i] == "\t" { i += 1 }
                guard i < s.count else { break }
                let range = valueRange(startingAt: i, in: s)
                ranges.append(range)
                i = range.upperBound + (s[i] == "\"" || s[i] == "'" ? 1 : 0)
            }
        }
        guard insideHeadersBlock, let first = s.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return ranges }
        var i = first
        if s[i] == "\"" || s[i] == "'" { i = closingQuote(openedAt: i, in: s) + 1 }
        while i < s.count, !(s[i] == ":" && (i + 1 == s.count || s[i + 1] == " " || s[i + 1] == "\t")) { i += 1 }
        if i >= s.count {
            ranges.append(valueRange(startingAt: first, in: s))
        } else {
            var j = i + 1
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            if j < s.count { ranges.append(valueRange(startingAt: j, in: s)) }
        }
        return ranges
    }

    /// True when line `index` sits, by its indentation, inside a block `headers:` mapping.
    static func isInsideHeadersBlock(lines: [String], index: Int) -> Bool {
        func indentation(_ line: String) -> Int? {
            let scalars = line.unicodeScalars
            guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }), scalars[first] != "#" else { return nil }
            return scalars.distance(from: scalars.startIndex, to: first)
        }
        guard index < lines.count, var indent = indentation(lines[index]) else { return false }
        var j = index - 1
        while j >= 0, indent > 0 {
            if let parent = indentation(lines[j]), parent < indent {
                if keyEnd(ofKey: "headers", in: Array(lines[j].unicodeScalars), from: 0) != nil { return true }
                indent = parent
            }
            j -= 1
        }
        return false
    }

    /// The user info (`user:password`) of every `scheme://user:password@host` on the line.
    static func userInfoRanges(in s: [Unicode.Scalar]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var i = 0
        while i + 3 <= s.count {
            guard s[i] == ":", s[i + 1] == "/", s[i + 2] == "/" else {
                i += 1
                continue
            }
            let start = i + 3
            var end = start
            while end < s.count, !["/", "?", "#", " ", "\t", "\"", "'"].contains(s[end]) { end += 1 }
            if let at = s[start..<end].lastIndex(of: "@"), at > start { ranges.append(start..<at) }
            i = end
        }
        return ranges
    }

    /// True for `${A}`, `${A}${B}`, `"${A}"`: nothing but references, so safe to show.
    static func isOnlyEnvironmentReferences(_ text: String) -> Bool {
        var rest = Substring(text)
        guard !rest.isEmpty else { return false }
        while !rest.isEmpty {
            guard rest.hasPrefix("${"), let close = rest.firstIndex(of: "}") else { return false }
            rest = rest[rest.index(after: close)...]
        }
        return true
    }
}
