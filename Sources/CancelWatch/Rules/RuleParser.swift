import Foundation

/// A recursive-descent parser for rule files. It never stops at the first error: after
/// one it skips to the next clause keyword, `}` or `rule` and carries on, so that one
/// run reports every mistake in the file.
struct RuleParser {
    private let path: String
    private let tokens: [RuleToken]
    private var position = 0
    private(set) var diagnostics: [RuleDiagnostic] = []
    /// Set after an error until the parser resynchronises, so one mistake is reported once.
    private var recovering = false
    private var depth = 0
    private static let maximumDepth = 64
    /// The clause keywords of the block being parsed, as written in messages, and as a set.
    private var clauseNames = RuleClauseKind.allCases.map(\.rawValue)
    private var ownClauses = Set(RuleClauseKind.allCases.map(\.rawValue))

    static let blockKeywords: Set<String> = ["rule", "digest"]
    /// Where a clause ends: at any block's clause keyword (one of the other block's is
    /// reported as an unknown clause, not read as a value).
    static let clauseKeywords = Set(RuleClauseKind.allCases.map(\.rawValue) + DigestClauseKind.allCases.map(\.rawValue))
    static let operatorWords: Set<String> = ["and", "or", "not", "in", "contains", "matches"]

    /// Parses one file; the diagnostics include the lexer's.
    static func parse(_ source: RuleSource) -> (RuleFileSyntax, [RuleDiagnostic]) {
        let (tokens, problems) = RuleLexer.tokenize(source.text)
        var parser = RuleParser(path: source.path, tokens: tokens)
        for problem in problems {
            parser.diagnostics.append(
                RuleDiagnostic(
                    severity: .error, path: source.path, line: problem.span.line, column: problem.span.column,
                    length: problem.span.length, message: problem.message, suggestion: problem.suggestion))
        }
        let file = parser.parseFile()
        let sorted = parser.diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        return (file, sorted)
    }

    private init(path: String, tokens: [RuleToken]) {
        self.path = path
        self.tokens = tokens
    }

    // MARK: Tokens

    private var current: RuleToken { tokens[min(position, tokens.count - 1)] }

    private func peek(_ offset: Int) -> RuleToken { tokens[min(position + offset, tokens.count - 1)] }

    private var atEnd: Bool { current.kind == .end }

    @discardableResult
    private mutating func advance() -> RuleToken {
        let token = current
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private mutating func error(_ span: RuleSpan, _ message: String, suggestion: String? = nil, notes: [RuleDiagnostic.Note] = [], fatal: Bool = true) {
        if recovering { return }
        diagnostics.append(
            RuleDiagnostic(
                severity: .error, path: path, line: span.line, column: span.column, length: span.length, message: message,
                suggestion: suggestion, notes: notes))
        if fatal { recovering = true }
    }

    /// Whether the current token starts a clause, separates two (`;`), ends the block, or starts another.
    private var atClauseBoundary: Bool {
        switch current.kind {
        case .end: return true
        case .symbol(let s): return s == "}" || s == ";"
        case .word(let w): return Self.blockKeywords.contains(w) || Self.clauseKeywords.contains(w)
        default: return false
        }
    }

    /// Skips to the next clause keyword, `;`, `}`, block keyword or the end, and resumes reporting.
    private mutating func synchronize() {
        while !atClauseBoundary { advance() }
        recovering = false
    }

    // MARK: Structure

    private mutating func parseFile() -> RuleFileSyntax {
        var file = RuleFileSyntax(path: path, rules: [])
        while !atEnd {
            if current.isWord("rule") {
                file.rules.append(parseRule())
                continue
            }
            if current.isWord("digest") {
                file.digests.append(parseDigest())
                continue
            }
            let token = current
            let close = token.word.flatMap { NameSuggester.closest(to: $0, among: ["rule", "digest"]) }
            if case .invalid = token.kind {
                recovering = true
            }
            if let close {
                error(
                    token.span, "expected '\(close)' to start a \(close), found \(token.displayName); did you mean '\(close)'?",
                    suggestion: close)
            } else {
                error(token.span, "expected 'rule' or 'digest' to start a block, found \(token.displayName)")
            }
            advance()
            while !atEnd, !Self.blockKeywords.contains(current.word ?? "") { advance() }
            recovering = false
        }
        return file
    }

    private mutating func parseRule() -> RuleBlockSyntax {
        parseBlock(named: "rule", clauses: RuleClauseKind.allCases.map(\.rawValue)) { parser, word in
            RuleClauseKind(rawValue: word).flatMap { parser.parseClause($0) }
        }
    }

    private mutating func parseDigest() -> DigestBlockSyntax {
        parseBlock(named: "digest", clauses: DigestClauseKind.allCases.map(\.rawValue)) { parser, word in
            DigestClauseKind(rawValue: word).flatMap { parser.parseDigestClause($0) }
        }
    }

    /// `noun "name" { clauses }`: the name, the braces, and each clause read by `parseClause`
    /// at its keyword (one of `names`); a mistake in the frame is reported and the parse goes on.
    private mutating func parseBlock<Clause: Sendable>(
        named noun: String, clauses names: [String], _ parseClause: (inout RuleParser, String) -> Clause?
    ) -> BlockSyntax<Clause> {
        ownClauses = Set(names)
        clauseNames = names
        let keyword = advance()
        var name = ""
        var nameSpan = keyword.span
        switch current.kind {
        case .string(let s, _):
            name = s
            nameSpan = advance().span
            if s.trimmingCharacters(in: .whitespaces).isEmpty {
                error(nameSpan, "a \(noun)'s name must not be empty", fatal: false)
            }
        case .word(let w) where !Self.clauseKeywords.contains(w) && !Self.blockKeywords.contains(w):
            name = w
            nameSpan = advance().span
            error(nameSpan, "a \(noun)'s name is written in double quotes: \(noun) \"\(w)\"", suggestion: "\"\(w)\"", fatal: false)
        default:
            error(current.span, "expected the \(noun)'s name in double quotes after '\(noun)', found \(current.displayName)", fatal: false)
        }
        var clauses: [Clause] = []
        if current.isSymbol("{") {
            advance()
        } else {
            error(current.span, "expected '{' after the \(noun)'s name, found \(current.displayName)", fatal: false)
            if !atClauseBoundary {
                recovering = true
                synchronize()
            }
        }
        let startsHere = RuleDiagnostic.Note(message: "\(noun) \"\(name)\" starts here", location: location(keyword.span))
        while true {
            let token = current
            if token.isSymbol("}") {
                advance()
                break
            }
            if token.isSymbol(";") {
                advance()
                continue
            }
            if token.kind == .end {
                error(
                    token.span, "expected '}' to close \(noun) \"\(name)\" before the end of the file", suggestion: "}",
                    notes: [startsHere], fatal: false)
                break
            }
            if let next = token.word, Self.blockKeywords.contains(next) {
                error(
                    token.span, "expected '}' to close \(noun) \"\(name)\" before the next \(next)", suggestion: "}",
                    notes: [startsHere], fatal: false)
                break
            }
            if let word = token.word, ownClauses.contains(word) {
                if let clause = parseClause(&self, word) { clauses.append(clause) }
                if recovering { synchronize() }
                continue
            }
            var message = "expected a clause (\(names.joined(separator: ", "))), found \(token.displayName)"
            if let word = token.word, let close = closestClause(to: word) {
                // Read it as the clause it was surely meant to be, so its content is checked too.
                error(token.span, "unknown clause '\(word)'; did you mean '\(close)'?", suggestion: close, fatal: false)
                if let clause = parseClause(&self, close) { clauses.append(clause) }
                if recovering { synchronize() }
                continue
            } else if let word = token.word {
                message = "unknown clause '\(word)'; a \(noun) has \(names.dropLast().joined(separator: ", ")) and \(names.last ?? "") clauses"
            }
            if case .invalid = token.kind { recovering = true }
            error(token.span, message)
            advance()
            synchronize()
        }
        return BlockSyntax(name: name, nameSpan: nameSpan, keywordSpan: keyword.span, clauses: clauses)
    }

    private func closestClause(to word: String) -> String? {
        NameSuggester.closest(to: word, among: clauseNames)
    }

    /// Whether the current token is a word one typo away from a clause keyword (`notfy`).
    private var looksLikeMisspeltClause: Bool {
        guard let word = current.word, !Self.operatorWords.contains(word) else { return false }
        return closestClause(to: word) != nil
    }

    private func location(_ span: RuleSpan) -> RuleSourceLocation {
        RuleSourceLocation(path: path, line: span.line, column: span.column)
    }

    private mutating func parseClause(_ kind: RuleClauseKind) -> RuleClauseSyntax? {
        let keyword = advance()
        func clause(_ value: RuleClauseSyntax.Value) -> RuleClauseSyntax {
            RuleClauseSyntax(kind: kind, keywordSpan: keyword.span, value: value)
        }
        switch kind {
        case .when:
            return clause(parseCondition(after: "when").map { .condition($0) } ?? .invalid)

        case .notify:
            return clause(parseSinkNames().map { .sinks($0) } ?? .invalid)

        case .severity:
            guard let word = current.word, !atClauseBoundary else {
                error(current.span, "expected info, warning or critical after 'severity', found \(current.displayName)")
                return clause(.invalid)
            }
            let span = advance().span
            return clause(.severity(word, span))

        case .repeat:
            if current.isWord("every") {
                advance()
            } else if case .duration(_, let text) = current.kind {
                error(current.span, "expected 'every' after 'repeat': write 'repeat every \(text)'", suggestion: "every ", fatal: false)
            } else {
                error(current.span, "expected 'every' after 'repeat', as in 'repeat every 15m'; found \(current.displayName)")
                return clause(.invalid)
            }
            switch current.kind {
            case .duration(let seconds, let text):
                let span = advance().span
                return clause(.repeatEvery(seconds, text: text, span))
            case .number(let n):
                error(
                    current.span, "expected a duration after 'repeat every'; add a unit, such as \(Self.plain(n))m",
                    suggestion: "\(Self.plain(n))m")
                return clause(.invalid)
            case .invalid:
                recovering = true
                return clause(.invalid)
            default:
                error(current.span, "expected a duration such as 15m after 'repeat every', found \(current.displayName)")
                return clause(.invalid)
            }

        case .message:
            guard case .string(let text, let columns) = current.kind else {
                if case .invalid = current.kind { recovering = true }
                error(current.span, "expected the message in double quotes after 'message', found \(current.displayName)")
                return clause(.invalid)
            }
            let span = advance().span
            if !atClauseBoundary {
                error(current.span, "expected the next clause after the message, found \(current.displayName)")
                return clause(.invalid)
            }
            return clause(.message(text, columns: columns, span))

        case .quiet:
            guard case .clockTime(let h1, let m1, let t1) = current.kind else {
                if case .invalid = current.kind { recovering = true }
                error(current.span, "expected a window such as 22:00-08:00 after 'quiet', found \(current.displayName)")
                return clause(.invalid)
            }
            let first = advance().span
            guard current.isSymbol("-") else {
                error(current.span, "expected '-' and the end of the quiet window, as in \(t1)-08:00")
                return clause(.invalid)
            }
            advance()
            guard case .clockTime(let h2, let m2, let t2) = current.kind else {
                if case .invalid = current.kind { recovering = true }
                error(current.span, "expected the end of the quiet window (HH:MM) after '-', found \(current.displayName)")
                return clause(.invalid)
            }
            let second = advance().span
            let whole = first.through(second)
            var ok = true
            for (h, m, t, span, isEnd) in [(h1, m1, t1, first, false), (h2, m2, t2, second, true)] {
                let endOfDay = isEnd && h == 24 && m == 0
                if !endOfDay && (h > 23 || m > 59) {
                    error(span, "invalid quiet window: '\(t)' is not a time of day (00:00 to 23:59)", fatal: false)
                    ok = false
                }
            }
            guard ok else { return clause(.invalid) }
            let start = h1 * 60 + m1
            let end = (h2 * 60 + m2) % 1440
            if start == end {
                error(whole, "invalid quiet window: '\(t1)-\(t2)' starts and ends at the same time", fatal: false)
                return clause(.invalid)
            }
            return clause(.quiet(start: start, end: end, whole))

        case .resolve:
            if current.isWord("off") {
                advance()
                return clause(.resolve(false))
            }
            if current.isWord("on") {
                advance()
                return clause(.resolve(true))
            }
            error(current.span, "expected 'off' (or 'on') after 'resolve', found \(current.displayName)")
            return clause(.invalid)

        case .act:
            guard let word = current.word, !atClauseBoundary, let decision = Self.decision(word) else {
                let close = current.word.flatMap { NameSuggester.closest(to: $0, among: Decision.allCases.map(\.rawValue)) }
                if case .invalid = current.kind { recovering = true }
                error(
                    current.span,
                    "expected approve or refuse after 'act', as in act refuse \"out of stock\"; found \(current.displayName)"
                        + (close.map { "; did you mean '\($0)'?" } ?? ""),
                    suggestion: close)
                return clause(.invalid)
            }
            let decisionSpan = advance().span
            if word != decision.rawValue {
                error(decisionSpan, "the decision is written '\(decision.rawValue)'", suggestion: decision.rawValue, fatal: false)
            }
            var comment: (text: String, span: RuleSpan)?
            if case .string(let text, _) = current.kind {
                comment = (text, advance().span)
            }
            if !atClauseBoundary {
                if case .invalid = current.kind { recovering = true }
                error(current.span, "expected the comment in double quotes or the next clause after 'act \(word)', found \(current.displayName)")
                return clause(.invalid)
            }
            return clause(.act(decision, decisionSpan, comment: comment))
        }
    }

    private mutating func parseDigestClause(_ kind: DigestClauseKind) -> DigestClauseSyntax? {
        let keyword = advance()
        func clause(_ value: DigestClauseSyntax.Value) -> DigestClauseSyntax {
            DigestClauseSyntax(kind: kind, keywordSpan: keyword.span, value: value)
        }
        switch kind {
        case .at:
            guard case .clockTime(let hour, let minute, let text) = current.kind else {
                if case .invalid = current.kind { recovering = true }
                error(current.span, "expected a time of day such as 09:00 after 'at', found \(current.displayName)")
                return clause(.invalid)
            }
            let span = advance().span
            guard hour <= 23, minute <= 59 else {
                error(span, "invalid time '\(text)': a digest's time is a time of day, 00:00 to 23:59", fatal: false)
                return clause(.invalid)
            }
            if !atClauseBoundary, !looksLikeMisspeltClause {
                error(current.span, "expected the next clause after the time, found \(current.displayName)")
                return clause(.invalid)
            }
            return clause(.time(minute: hour * 60 + minute, span))

        case .on:
            return clause(parseDays())

        case .notify:
            return clause(parseSinkNames().map { .sinks($0) } ?? .invalid)

        case .include:
            return clause(parseCondition(after: "include").map { .condition($0) } ?? .invalid)

        case .always:
            if !atClauseBoundary, !looksLikeMisspeltClause {
                error(current.span, "'always' takes nothing after it; expected the next clause, found \(current.displayName)")
                return clause(.invalid)
            }
            return clause(.always)
        }
    }

    /// `on`'s days: `daily`, or days and ranges separated by commas (`mon-fri`, `sat,sun`,
    /// `mon, wed-fri`; a range may wrap, `fri-mon`). Days are written as `weekday` compares them:
    /// `mon` or `monday`.
    private mutating func parseDays() -> DigestClauseSyntax.Value {
        var mask: UInt8 = 0
        var valid = true
        var whole: RuleSpan?
        repeat {
            if whole != nil { advance() }  // the comma
            guard let word = current.word, !atClauseBoundary else {
                if case .invalid = current.kind { recovering = true }
                error(
                    current.span,
                    "expected days after \(whole == nil ? "'on'" : "','"), such as mon-fri, sat,sun or daily; found \(current.displayName)")
                return .invalid
            }
            let first = advance().span
            // `mon-fri` is one word; `mon - fri` is three tokens.
            var parts: [(text: String, span: RuleSpan)] = []
            var column = first.column
            for part in word.split(separator: "-", omittingEmptySubsequences: false) {
                parts.append((String(part), RuleSpan(line: first.line, column: column, length: part.unicodeScalars.count)))
                column += part.unicodeScalars.count + 1
            }
            var span = first
            if current.isSymbol("-"), let next = peek(1).word {
                advance()
                let end = advance().span
                parts.append((next, end))
                span = span.through(end)
            }
            if let days = dayMask(parts, span) { mask |= days } else { valid = false }
            whole = whole.map { $0.through(span) } ?? span
        } while current.isSymbol(",")
        if !atClauseBoundary, !looksLikeMisspeltClause {
            error(current.span, "expected ',' and a day, or the next clause, found \(current.displayName)")
            return .invalid
        }
        return valid ? .days(mask: mask, whole ?? current.span) : .invalid
    }

    /// The days one item of `on` names: bit `d - 1` for weekday `d`; nil after reporting a mistake.
    private mutating func dayMask(_ parts: [(text: String, span: RuleSpan)], _ span: RuleSpan) -> UInt8? {
        if parts.count == 1, parts[0].text == "daily" { return 0x7F }
        guard parts.count <= 2 else {
            error(span, "a range of days is two days joined by '-', such as mon-fri", fatal: false)
            return nil
        }
        var numbers: [Int] = []
        for (text, place) in parts {
            if let day = RuleClock.weekdayNumber(text) {
                numbers.append(day)
                continue
            }
            let names = RuleClock.weekdayNames.map { String($0.prefix(3)) }
            let close = NameSuggester.closest(to: text.lowercased(), among: names + RuleClock.weekdayNames)
            error(
                place,
                (text.isEmpty ? "a day is missing in '\(parts.map(\.text).joined(separator: "-"))'" : "unknown day '\(text)'")
                    + (close.map { "; did you mean '\($0)'?" } ?? "; write mon, tue, wed, thu, fri, sat or sun, a range such as mon-fri, or daily"),
                suggestion: close, fatal: false)
            return nil
        }
        guard numbers.count == 2 else { return UInt8(1) << UInt8(numbers[0] - 1) }
        var mask: UInt8 = 0
        var day = numbers[0]
        while true {
            mask |= UInt8(1) << UInt8(day - 1)
            if day == numbers[1] { break }
            day = day % 7 + 1
        }
        return mask
    }

    /// The condition after `keyword` (`when`, `include`), up to the next clause; nil after reporting a mistake.
    private mutating func parseCondition(after keyword: String) -> RuleExpressionSyntax? {
        if atClauseBoundary {
            error(current.span, "expected a condition after '\(keyword)', found \(current.displayName)")
            return nil
        }
        let expression = parseOr()
        if recovering { return nil }
        if !atClauseBoundary, !looksLikeMisspeltClause {
            error(current.span, "expected 'and', 'or' or the next clause after the condition, found \(current.displayName)")
            return nil
        }
        return expression
    }

    /// `notify`'s sink names, separated by commas; nil after reporting a mistake.
    private mutating func parseSinkNames() -> [(name: String, span: RuleSpan)]? {
        var names: [(name: String, span: RuleSpan)] = []
        func takeName(_ parser: inout RuleParser) -> Bool {
            switch parser.current.kind {
            case .word(let w):
                names.append((w, parser.advance().span))
                return true
            case .string(let s, _):
                names.append((s, parser.advance().span))
                return true
            default:
                return false
            }
        }
        guard takeName(&self) else {
            error(current.span, "expected a sink name after 'notify', found \(current.displayName)")
            return nil
        }
        while true {
            if current.isSymbol(",") {
                advance()
                guard takeName(&self) else {
                    error(current.span, "expected a sink name after ',', found \(current.displayName)")
                    return nil
                }
            } else if !atClauseBoundary, current.word != nil {
                error(current.span, "expected ',' between sink names", suggestion: ", ", fatal: false)
                _ = takeName(&self)
            } else {
                break
            }
        }
        if !atClauseBoundary {
            error(current.span, "expected ',' and a sink name or the next clause, found \(current.displayName)")
            return nil
        }
        return names
    }

    /// The decision `act` names; `reject` and `approved`-like spellings read as what they surely mean.
    private static func decision(_ word: String) -> Decision? {
        switch word {
        case "approve", "approved", "accept": return .approve
        case "refuse", "refused", "reject", "rejected", "decline": return .refuse
        default: return nil
        }
    }

    static func plain(_ n: Double) -> String {
        n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }

    // MARK: Expressions

    private mutating func parseOr() -> RuleExpressionSyntax {
        var lhs = parseAnd()
        while current.isWord("or"), !recovering {
            advance()
            let rhs = parseAnd()
            lhs = .or(lhs, rhs)
        }
        return lhs
    }

    private mutating func parseAnd() -> RuleExpressionSyntax {
        var lhs = parseNot()
        while current.isWord("and"), !recovering {
            advance()
            let rhs = parseNot()
            lhs = .and(lhs, rhs)
        }
        return lhs
    }

    private mutating func parseNot() -> RuleExpressionSyntax {
        if current.isWord("not") {
            guard depth < Self.maximumDepth else {
                error(current.span, "condition is nested too deeply")
                return .invalid
            }
            let keyword = advance()
            depth += 1
            defer { depth -= 1 }
            let inner = parseNot()
            return .not(inner, keyword.span)
        }
        return parseComparison()
    }

    private func comparisonOperator() -> (RuleComparisonOperator, negated: Bool, tokens: Int)? {
        switch current.kind {
        case .symbol(let s):
            if let op = RuleComparisonOperator(rawValue: s) { return (op, false, 1) }
        case .word(let w):
            if w == "in" || w == "contains" || w == "matches" { return (RuleComparisonOperator(rawValue: w)!, false, 1) }
            if w == "not", let next = peek(1).word, next == "in" || next == "contains" || next == "matches" {
                return (RuleComparisonOperator(rawValue: next)!, true, 2)
            }
        default:
            break
        }
        return nil
    }

    private mutating func parseComparison() -> RuleExpressionSyntax {
        if current.isSymbol("(") {
            guard depth < Self.maximumDepth else {
                error(current.span, "condition is nested too deeply")
                return .invalid
            }
            let open = advance()
            depth += 1
            defer { depth -= 1 }
            let inner = parseOr()
            if recovering { return .invalid }
            guard current.isSymbol(")") else {
                error(
                    current.span, "expected ')' to close the '(', found \(current.displayName)", suggestion: ")",
                    notes: [.init(message: "'(' is here", location: location(open.span))])
                return .invalid
            }
            advance()
            return inner
        }
        guard let lhs = parseOperand() else { return .invalid }
        guard let (op, negated, count) = comparisonOperator() else { return .operand(lhs) }
        var operatorSpan = current.span
        for i in 1..<max(count, 1) { operatorSpan = operatorSpan.through(peek(i).span) }
        for _ in 0..<count { advance() }
        guard let rhs = parseOperand() else { return .invalid }
        if let (next, _, _) = comparisonOperator() {
            error(
                current.span,
                "comparisons cannot be chained; join them with 'and' (for example 'remaining > 1h and remaining <= 2h')",
                notes: [.init(message: "'\(next.rawValue)' follows a complete comparison", location: nil)])
            return .invalid
        }
        return .comparison(lhs, op, rhs, operatorSpan: operatorSpan, negated: negated)
    }

    private mutating func parseLiteral() -> (RuleLiteralSyntax, RuleSpan)? {
        switch current.kind {
        case .string(let s, let columns):
            return (.string(s, columns: columns), advance().span)
        case .number(let n):
            return (.number(n), advance().span)
        case .duration(let d, let text):
            return (.duration(d, text: text), advance().span)
        case .word("true"):
            return (.boolean(true), advance().span)
        case .word("false"):
            return (.boolean(false), advance().span)
        case .symbol("-"):
            let minus = current.span
            switch peek(1).kind {
            case .number(let n):
                advance()
                return (.number(-n), minus.through(advance().span))
            case .duration(let d, let text):
                advance()
                return (.duration(-d, text: "-" + text), minus.through(advance().span))
            default:
                return nil
            }
        default:
            return nil
        }
    }

    private mutating func parseOperand() -> RuleOperandSyntax? {
        if let (literal, span) = parseLiteral() { return .literal(literal, span) }
        let token = current
        switch token.kind {
        case .word(let w):
            if Self.clauseKeywords.contains(w) || Self.operatorWords.contains(w) || Self.blockKeywords.contains(w) {
                error(token.span, "expected a value (a field, string, number or duration), found '\(w)'")
                return nil
            }
            advance()
            return .field(w, token.span)
        case .symbol("["):
            let open = advance()
            var items: [(RuleLiteralSyntax, RuleSpan)] = []
            while true {
                if current.isSymbol("]") { break }
                guard let item = parseLiteral() else {
                    if case .invalid = current.kind {
                        recovering = true
                    } else if current.isSymbol("[") {
                        error(current.span, "a list holds strings, numbers, durations or booleans, not lists")
                    } else if case .word(let w) = current.kind, !Self.clauseKeywords.contains(w), !Self.blockKeywords.contains(w) {
                        error(current.span, "a list holds literal values; '\(w)' is a name (write \"\(w)\" for a string)", suggestion: "\"\(w)\"")
                    } else {
                        error(current.span, "expected a value or ']' in the list, found \(current.displayName)", notes: [.init(message: "the list starts here", location: location(open.span))])
                    }
                    return nil
                }
                items.append(item)
                if current.isSymbol(",") {
                    advance()
                    continue
                }
                if current.isSymbol("]") { break }
                error(current.span, "expected ',' or ']' in the list, found \(current.displayName)", notes: [.init(message: "the list starts here", location: location(open.span))])
                return nil
            }
            let close = advance()
            return .list(items, open.span.through(close.span))
        case .invalid:
            recovering = true
            advance()
            return nil
        default:
            error(token.span, "expected a value (a field, string, number or duration), found \(token.displayName)")
            return nil
        }
    }
}
