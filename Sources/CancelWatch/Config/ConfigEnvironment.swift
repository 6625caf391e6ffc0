import Foundation

/// `${VAR}` expansion inside config values (never in keys or comments).
///
/// - `${NAME}`: the variable's value; an error when it is not set.
/// - `${NAME:-fallback}`: the fallback when the variable is unset or empty.
/// - `$${`: a literal `${`. Any other `$` is itself.
enum ConfigEnvironment {
    struct Expansion: Equatable {
        var text: String
        /// The variables referenced, in order.
        var variables: [String]
        var problems: [Problem]
    }

    enum Problem: Equatable {
        /// `${NAME}` with NAME unset; `offset` counts Unicode scalars from the start of the value.
        case missing(name: String, offset: Int)
        /// `${` not followed by a name and `}`.
        case malformed(offset: Int)
    }

    static func expand(_ text: String, environment: [String: String]) -> Expansion {
        let s = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var variables: [String] = []
        var problems: [Problem] = []
        var i = 0
        while i < s.count {
            if s[i] == "$", i + 2 < s.count, s[i + 1] == "$", s[i + 2] == "{" {
                out.append(contentsOf: "${".unicodeScalars)
                i += 3
                continue
            }
            guard s[i] == "$", i + 1 < s.count, s[i + 1] == "{" else {
                out.append(s[i])
                i += 1
                continue
            }
            let start = i
            var j = i + 2
            var name = String.UnicodeScalarView()
            while j < s.count, isNameScalar(s[j], first: name.isEmpty) {
                name.append(s[j])
                j += 1
            }
            var fallback: String?
            if j + 1 < s.count, s[j] == ":", s[j + 1] == "-" {
                var k = j + 2
                var value = String.UnicodeScalarView()
                while k < s.count, s[k] != "}" {
                    value.append(s[k])
                    k += 1
                }
                fallback = String(value)
                j = k
            }
            guard !name.isEmpty, j < s.count, s[j] == "}" else {
                problems.append(.malformed(offset: start))
                out.append(contentsOf: s[start..<min(j + 1, s.count)])
                i = j + 1
                continue
            }
            let variable = String(name)
            variables.append(variable)
            if let value = environment[variable], !(value.isEmpty && fallback != nil) {
                out.append(contentsOf: value.unicodeScalars)
            } else if let fallback {
                out.append(contentsOf: fallback.unicodeScalars)
            } else {
                problems.append(.missing(name: variable, offset: start))
            }
            i = j + 1
        }
        return Expansion(text: String(out), variables: variables, problems: problems)
    }

    private static func isNameScalar(_ c: Unicode.Scalar, first: Bool) -> Bool {
        if c == "_" || ("A"..."Z").contains(c) || ("a"..."z").contains(c) { return true }
        return !first && ("0"..."9").contains(c)
    }
}
