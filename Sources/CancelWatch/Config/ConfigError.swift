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

    public enum Severity: String, Sendable, Hashable {
        case error
        case warning
    }

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

/// Masks secrets in a line of a config file before it is quoted in a diagnostic: the
/// values of secret keys (`api_key`, `app_secret`, `secret`, `password`, credential
/// headers such as `Authorization`) unless they are only `${VAR}` references, everything
/// after the host of `url:` values, the user info of `base_url:`, and any secret text the
/// loader saw. Works even when the YAML did not parse.
enum ConfigLineMasking {
    static let secretKeys = [
        "api_key", "app_secret", "secret", "password", "token", "authorization", "proxy-authorization", "x-api-key",
        "api-key", "x-auth-token", "private-token", "cookie",
    ]

    /// The masked line and where `column` (1-based, in Unicode scalars) falls in it.
    /// `secretColumns` are where secret values start on this line (1-based): each is masked
    /// whole, however it is written (quotes, escapes).
    static func mask(line: String, column: Int, knownSecrets: Set<String>, secretColumns: [Int] = []) -> (
        line: String, column: Int
    ) {
        let scalars = Array(line.unicodeScalars)
        var replacements: [(range: Range<Int>, with: String)] = []
        for start in secretColumns where start >= 1 && start <= scalars.count {
            let range = valueRange(startingAt: start - 1, in: scalars)
            if !range.isEmpty, !isOnlyEnvironmentReferences(String(String.UnicodeScalarView(scalars[range]))) {
                replacements.append((range, Secret.placeholder))
            }
        }

        for key in secretKeys + ["url", "base_url"] {
            for valueRange in valueRanges(ofKey: key, in: scalars) {
                let value = String(String.UnicodeScalarView(scalars[valueRange]))
                if isOnlyEnvironmentReferences(value) { continue }
                if key == "base_url" {
                    if value.contains("@") { replacements.append((valueRange, Secret.redactedURL(value))) }
                } else if key == "url" {
                    let shown = Secret.redactedURL(value)
                    if shown != value, shown.hasSuffix(Secret.placeholder) || shown == Secret.placeholder {
                        replacements.append((valueRange, shown))
                    }
                } else if !value.isEmpty {
                    replacements.append((valueRange, Secret.placeholder))
                }
            }
        }
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
    /// excluded), a plain one up to `,`, `}`, `]`, ` #` or the end of the line.
    static func valueRange(startingAt start: Int, in s: [Unicode.Scalar]) -> Range<Int> {
        if s[start] == "\"" || s[start] == "'" {
            let quote = s[start]
            var end = start + 1
            while end < s.count, s[end] != quote || (quote == "\"" && s[end - 1] == "\\") { end += 1 }
            return start + 1..<end
        }
        var end = start
        while end < s.count, s[end] != ",", s[end] != "}", s[end] != "]", !(s[end] == "#" && end > start && s[end - 1] == " ") {
            end += 1
        }
        while end > start, s[end - 1] == " " || s[end - 1] == "\t" { end -= 1 }
        return start..<end
    }

    /// The ranges of the values written after `key:` on the line (quotes excluded); the
    /// key is matched ignoring ASCII case (`Authorization`, `authorization`).
    static func valueRanges(ofKey key: String, in s: [Unicode.Scalar]) -> [Range<Int>] {
        let k = Array(key.lowercased().unicodeScalars)
        var result: [Range<Int>] = []
        var i = 0
        func isWord(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar { ("A"..."Z").contains(c) ? Unicode.Scalar(c.value | 0x20)! : c }
        while i + k.count <= s.count {
            guard s[i..<i + k.count].map(lower) == k, i == 0 || !isWord(s[i - 1]) else {
                i += 1
                continue
            }
            var j = i + k.count
            if j < s.count, s[j] == "\"" || s[j] == "'" { j += 1 }  // a quoted key
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            guard j < s.count, s[j] == ":" else {
                i += 1
                continue
            }
            j += 1
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            guard j < s.count else { break }
            if s[j] == "\"" || s[j] == "'" {
                let quote = s[j]
                var end = j + 1
                while end < s.count, s[end] != quote || (quote == "\"" && s[end - 1] == "\\") { end += 1 }
                result.append(j + 1..<end)
                i = end
            } else {
                var end = j
                while end < s.count, s[end] != ",", s[end] != "}", s[end] != "]",
                    !(s[end] == "#" && end > j && s[end - 1] == " ")
                {
                    end += 1
                }
                while end > j, s[end - 1] == " " || s[end - 1] == "\t" { end -= 1 }
                result.append(j..<end)
                i = end
            }
        }
        return result
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
