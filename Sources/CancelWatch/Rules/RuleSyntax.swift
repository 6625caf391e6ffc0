import Foundation

/// A literal value as written in a rule.
enum RuleLiteralSyntax: Sendable, Equatable {
    case string(String, columns: [Int])
    case number(Double)
    case duration(TimeInterval, text: String)
    case boolean(Bool)

    var typeName: String {
        switch self {
        case .string: return "string"
        case .number: return "number"
        case .duration: return "duration"
        case .boolean: return "boolean"
        }
    }
}

/// One side of a comparison.
enum RuleOperandSyntax: Sendable {
    /// A field name as written (`remaining`, `raw.a.b`).
    case field(String, RuleSpan)
    case literal(RuleLiteralSyntax, RuleSpan)
    case list([(RuleLiteralSyntax, RuleSpan)], RuleSpan)
}

/// The comparison operators, as written.
enum RuleComparisonOperator: String, Sendable, CaseIterable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case `in` = "in"
    case contains = "contains"
    case matches = "matches"

    /// The operator with its operands swapped (`1h > remaining` is `remaining < 1h`).
    var swapped: RuleComparisonOperator {
        switch self {
        case .less: return .greater
        case .lessOrEqual: return .greaterOrEqual
        case .greater: return .less
        case .greaterOrEqual: return .lessOrEqual
        case .in: return .contains
        case .contains: return .in
        default: return self
        }
    }
}

/// A condition as parsed, before names and types are checked.
indirect enum RuleExpressionSyntax: Sendable {
    case and(RuleExpressionSyntax, RuleExpressionSyntax)
    case or(RuleExpressionSyntax, RuleExpressionSyntax)
    case not(RuleExpressionSyntax, RuleSpan)
    /// `lhs op rhs`; `negated` for `not in`, `not contains`, `not matches`.
    case comparison(RuleOperandSyntax, RuleComparisonOperator, RuleOperandSyntax, operatorSpan: RuleSpan, negated: Bool)
    /// A lone operand used as a condition (`true`, `raw.is_express`).
    case operand(RuleOperandSyntax)
    /// Where the parser already reported an error.
    case invalid
}

/// The clause keywords.
enum RuleClauseKind: String, Sendable, CaseIterable {
    case when, notify, severity, `repeat`, message, quiet, resolve, act
}

/// One clause as parsed.
struct RuleClauseSyntax: Sendable {
    enum Value: Sendable {
        case condition(RuleExpressionSyntax)
        case sinks([(name: String, span: RuleSpan)])
        case severity(String, RuleSpan)
        case repeatEvery(TimeInterval, text: String, RuleSpan)
        case message(String, columns: [Int], RuleSpan)
        /// Minutes of the day.
        case quiet(start: Int, end: Int, RuleSpan)
        case resolve(Bool)
        /// `act approve`, `act approve "comment"`, `act refuse "comment"`.
        case act(Decision, RuleSpan, comment: (text: String, span: RuleSpan)?)
        /// The parser already reported what was wrong.
        case invalid
    }

    var kind: RuleClauseKind
    var keywordSpan: RuleSpan
    var value: Value
}

/// One `rule "name" { ... }` or `digest "name" { ... }` block as parsed.
struct BlockSyntax<Clause: Sendable>: Sendable {
    var name: String
    var nameSpan: RuleSpan
    var keywordSpan: RuleSpan
    var clauses: [Clause]
}

typealias RuleBlockSyntax = BlockSyntax<RuleClauseSyntax>

/// The clause keywords of a `digest` block.
enum DigestClauseKind: String, Sendable, CaseIterable {
    case at, on, notify, include, always
}

/// One clause of a digest as parsed.
struct DigestClauseSyntax: Sendable {
    enum Value: Sendable {
        /// `at HH:MM`: minutes of the day.
        case time(minute: Int, RuleSpan)
        /// `on mon-fri`: bit `d - 1` set for weekday `d` (1 = Monday).
        case days(mask: UInt8, RuleSpan)
        case sinks([(name: String, span: RuleSpan)])
        case condition(RuleExpressionSyntax)
        case always
        /// The parser already reported what was wrong.
        case invalid
    }

    var kind: DigestClauseKind
    var keywordSpan: RuleSpan
    var value: Value
}

typealias DigestBlockSyntax = BlockSyntax<DigestClauseSyntax>

/// One parsed rule file: its rules and its digests, each in the order written.
struct RuleFileSyntax: Sendable {
    var path: String
    var rules: [RuleBlockSyntax]
    var digests: [DigestBlockSyntax] = []
}
