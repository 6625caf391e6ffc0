import Foundation

/// A place in the text being parsed: 1-based line and column, and a length in columns on that line.
struct RuleSpan: Sendable, Hashable {
    var line: Int
    var column: Int
    var length: Int

    init(line: Int, column: Int, length: Int = 1) {
        self.line = line
        self.column = column
        self.length = max(1, length)
    }

    /// From the start of `self` to the end of `other` when both are on one line; otherwise `self`.
    func through(_ other: RuleSpan) -> RuleSpan {
        guard other.line == line, other.column + other.length > column else { return self }
        return RuleSpan(line: line, column: column, length: other.column + other.length - column)
    }
}

/// One token of the rule language.
struct RuleToken: Sendable {
    enum Kind: Sendable, Equatable {
        /// A name: keyword, field (`raw.a.b` included, dots and all), sink, severity.
        case word(String)
        /// A decoded string literal; `columns[i]` is the source column of its `i`th scalar.
        case string(String, columns: [Int])
        case number(Double)
        /// Seconds; `text` as written.
        case duration(TimeInterval, text: String)
        /// `HH:MM` as in quiet windows, not yet range-checked.
        case clockTime(hour: Int, minute: Int, text: String)
        case symbol(String)
        /// Something the lexer already reported; the parser skips it quietly.
        case invalid
        case end
    }

    var kind: Kind
    var span: RuleSpan

    var word: String? {
        if case .word(let w) = kind { return w }
        return nil
    }

    func isSymbol(_ s: String) -> Bool {
        if case .symbol(let t) = kind { return t == s }
        return false
    }

    func isWord(_ w: String) -> Bool { word == w }

    /// How the token reads in a message: `'notify'`, `'=='`, `a string`, `end of file`.
    var displayName: String {
        switch kind {
        case .word(let w): return "'\(w)'"
        case .string: return "a string"
        case .number: return "a number"
        case .duration(_, let text): return "duration '\(text)'"
        case .clockTime(_, _, let text): return "'\(text)'"
        case .symbol(let s): return "'\(s)'"
        case .invalid: return "an invalid token"
        case .end: return "end of file"
        }
    }
}

/// Splits rule text into tokens, reporting malformed ones (unterminated strings, bad
/// durations, stray characters) and carrying on.
struct RuleLexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var column = 1
    private(set) var problems: [(span: RuleSpan, message: String, suggestion: String?)] = []

    init(text: String) {
        scalars = Array(text.unicodeScalars)
    }

    static func tokenize(_ text: String) -> (tokens: [RuleToken], problems: [(span: RuleSpan, message: String, suggestion: String?)]) {
        var lexer = RuleLexer(text: text)
        var tokens: [RuleToken] = []
        while true {
            let token = lexer.next()
            tokens.append(token)
            if token.kind == .end { break }
        }
        return (tokens, lexer.problems)
    }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private func peek(_ offset: Int) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    private mutating func advance() {
        if scalars[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private mutating func report(_ span: RuleSpan, _ message: String, suggestion: String? = nil) {
        problems.append((span, message, suggestion))
    }

    static func isWordStart(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_"
    }

    static func isWordPart(_ s: Unicode.Scalar) -> Bool {
        isWordStart(s) || isDigit(s) || s == "-"
    }

    static func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }

    mutating func next() -> RuleToken {
        // Whitespace and comments.
        while let c = current {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{FEFF}" || c == "\u{0B}" || c == "\u{0C}" {
                advance()
            } else if c == "#" {
                while let d = current, d != "\n" { advance() }
            } else {
                break
            }
        }
        let startLine = line
        let startColumn = column
        let start = index
        guard let c = current else { return RuleToken(kind: .end, span: RuleSpan(line: line, column: column)) }
        func spanned() -> RuleSpan { RuleSpan(line: startLine, column: startColumn, length: index - start) }

        if Self.isWordStart(c) {
            while let d = current, Self.isWordPart(d) { advance() }
            // A dotted path (`raw.a.0.b`) is one word.
            while current == ".", let d = peek(1), Self.isWordPart(d) {
                advance()
                while let e = current, Self.isWordPart(e) { advance() }
            }
            return RuleToken(kind: .word(String(String.UnicodeScalarView(scalars[start..<index]))), span: spanned())
        }

        if Self.isDigit(c) {
            return number(startLine: startLine, startColumn: startColumn)
        }

        if c == "\"" {
            return string(startLine: startLine, startColumn: startColumn)
        }

        advance()
        switch c {
        case "(", ")", "[", "]", "{", "}", ",", "-", ";":
            return RuleToken(kind: .symbol(String(c)), span: spanned())
        case "<", ">":
            if current == "=" {
                advance()
                return RuleToken(kind: .symbol(String(c) + "="), span: spanned())
            }
            return RuleToken(kind: .symbol(String(c)), span: spanned())
        case "=":
            if current == "=" {
                advance()
                return RuleToken(kind: .symbol("=="), span: spanned())
            }
            report(spanned(), "use '==' to compare", suggestion: "==")
            return RuleToken(kind: .symbol("=="), span: spanned())
        case "!":
            if current == "=" {
                advance()
                return RuleToken(kind: .symbol("!="), span: spanned())
            }
            report(spanned(), "use 'not' to negate a condition", suggestion: "not")
            return RuleToken(kind: .invalid, span: spanned())
        case "&", "|":
            let doubled = current == c
            if doubled { advance() }
            let word = c == "&" ? "and" : "or"
            report(spanned(), "use '\(word)' to combine conditions", suggestion: word)
            return RuleToken(kind: .word(word), span: spanned())
        case "'", "\u{201C}", "\u{201D}", "\u{2018}", "\u{2019}":
            // Read it as the string it was meant to be, so the rest of the line parses.
            let closers: [Unicode.Scalar] = c == "'" ? ["'"] : ["\u{201D}", "\u{2019}", "\u{201C}", "\u{2018}"]
            var value = String.UnicodeScalarView()
            var columns: [Int] = []
            while let d = current, d != "\n", d != "\r", !closers.contains(d) {
                value.append(d)
                columns.append(column)
                advance()
            }
            if let d = current, closers.contains(d) { advance() }
            report(
                RuleSpan(line: startLine, column: startColumn), "strings are written in straight double quotes: \"\(String(value))\"",
                suggestion: "\"\(String(value))\"")
            return RuleToken(kind: .string(String(value), columns: columns), span: spanned())
        default:
            let shown = c.properties.isWhitespace || c.value < 0x20 || c.value == 0x7F
                ? String(format: "U+%04X", c.value) : String(c)
            report(spanned(), "unexpected character '\(shown)'")
            return RuleToken(kind: .invalid, span: spanned())
        }
    }

    private mutating func number(startLine: Int, startColumn: Int) -> RuleToken {
        let start = index
        func spanned() -> RuleSpan { RuleSpan(line: startLine, column: startColumn, length: index - start) }
        func text() -> String { String(String.UnicodeScalarView(scalars[start..<index])) }
        while let d = current, Self.isDigit(d) { advance() }
        // A clock time: `22:00`.
        if current == ":", let d = peek(1), Self.isDigit(d) {
            let hourText = text()
            advance()
            let minuteStart = index
            while let e = current, Self.isDigit(e) { advance() }
            let minuteText = String(String.UnicodeScalarView(scalars[minuteStart..<index]))
            if let h = Int(hourText.prefix(6)), let m = Int(minuteText.prefix(6)), hourText.count <= 2, minuteText.count == 2 {
                return RuleToken(kind: .clockTime(hour: h, minute: m, text: text()), span: spanned())
            }
            report(spanned(), "invalid time of day '\(text())'; write HH:MM, such as 22:00")
            return RuleToken(kind: .invalid, span: spanned())
        }
        if current == ".", let d = peek(1), Self.isDigit(d) {
            advance()
            while let e = current, Self.isDigit(e) { advance() }
        }
        guard let c = current, Self.isWordStart(c) || c == "." else {
            guard let value = Double(text()), value.isFinite else {
                report(spanned(), "number '\(text())' is too large")
                return RuleToken(kind: .invalid, span: spanned())
            }
            return RuleToken(kind: .number(value), span: spanned())
        }
        // A duration: digits and units, possibly several (`1h30m`).
        while let e = current, Self.isWordStart(e) || Self.isDigit(e) || e == "." { advance() }
        let written = text()
        if let seconds = DurationText.parse(written) {
            return RuleToken(kind: .duration(seconds, text: written), span: spanned())
        }
        if DurationText.isTooLong(written) {
            report(spanned(), "duration '\(written)' is too long; durations are at most \(DurationText.spell(DurationText.longest))")
            return RuleToken(kind: .invalid, span: spanned())
        }
        report(spanned(), "invalid duration '\(written)'; write a number and a unit (s, m, h, d), such as 45s, 15m, 2h, 1d or 1h30m")
        return RuleToken(kind: .invalid, span: spanned())
    }

    private mutating func string(startLine: Int, startColumn: Int) -> RuleToken {
        let start = index
        advance()  // opening quote
        var value = String.UnicodeScalarView()
        var columns: [Int] = []
        while true {
            guard let c = current, c != "\n", c != "\r" else {
                report(RuleSpan(line: startLine, column: startColumn), "unterminated string; add a closing '\"' on the same line")
                return RuleToken(kind: .string(String(value), columns: columns), span: RuleSpan(line: startLine, column: startColumn, length: index - start))
            }
            if c == "\"" {
                advance()
                return RuleToken(kind: .string(String(value), columns: columns), span: RuleSpan(line: startLine, column: startColumn, length: index - start))
            }
            let here = column
            if c == "\\" {
                advance()
                guard let e = current, e != "\n", e != "\r" else { continue }
                advance()
                switch e {
                case "\"": value.append("\""); columns.append(here)
                case "\\": value.append("\\"); columns.append(here)
                case "n": value.append("\n"); columns.append(here)
                case "t": value.append("\t"); columns.append(here)
                case "r": value.append("\r"); columns.append(here)
                case "u":
                    // \u{XXXX}
                    var ok = false
                    if current == "{" {
                        advance()
                        var hex = ""
                        while let h = current, h.properties.isASCIIHexDigit, hex.count < 8 {
                            hex.unicodeScalars.append(h)
                            advance()
                        }
                        if current == "}", let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) {
                            advance()
                            value.append(scalar)
                            columns.append(here)
                            ok = true
                        }
                    }
                    if !ok {
                        report(RuleSpan(line: line, column: here, length: column - here), "invalid unicode escape; write \\u{hex digits}, such as \\u{4E2D}")
                    }
                default:
                    // Any other escaped character stays as written, backslash and all, so that
                    // regular expressions read naturally: "^\d+$".
                    value.append("\\")
                    columns.append(here)
                    value.append(e)
                    columns.append(here + 1)
                }
                continue
            }
            value.append(c)
            columns.append(here)
            advance()
        }
    }
}
