import Foundation

/// One problem found in a rule file (or a message template), as data: where it is,
/// what is wrong, and what to write instead. `RuleDiagnosticRenderer` turns it into
/// compiler-style text.
public struct RuleDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Errors stop the rules from loading; warnings are reported and the rules still load.
    public enum Severity: String, Sendable, Hashable {
        case error
        case warning
    }

    /// A secondary message attached to a diagnostic, such as where a duplicate was first defined.
    public struct Note: Sendable, Hashable {
        public var message: String
        /// Where the note points, or nil for a note without a place.
        public var location: RuleSourceLocation?
        public init(message: String, location: RuleSourceLocation? = nil) {
            self.message = message
            self.location = location
        }
    }

    public var severity: Severity
    /// The rule file's path as given to the loader.
    public var path: String
    /// 1-based line; 0 when the problem concerns the whole file (for example, it cannot be read).
    public var line: Int
    /// 1-based column, counted in Unicode scalars; 0 with `line` 0.
    public var column: Int
    /// How many columns the problem spans on its line (at least 1): the `~~~` under the caret.
    public var length: Int
    public var message: String
    /// The replacement text that would fix it (for example the closest known field name).
    public var suggestion: String?
    public var notes: [Note]

    public init(
        severity: Severity, path: String, line: Int, column: Int, length: Int = 1, message: String,
        suggestion: String? = nil, notes: [Note] = []
    ) {
        self.severity = severity
        self.path = path
        self.line = line
        self.column = column
        self.length = max(1, length)
        self.message = message
        self.suggestion = suggestion
        self.notes = notes
    }

    public var isError: Bool { severity == .error }

    /// `path:line:col: error: message` (without the source line; see `RuleDiagnosticRenderer`).
    public var description: String {
        line > 0 ? "\(path):\(line):\(column): \(severity.rawValue): \(message)" : "\(path): \(severity.rawValue): \(message)"
    }
}

/// A place in a rule file.
public struct RuleSourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var column: Int
    public init(path: String, line: Int, column: Int) {
        self.path = path
        self.line = line
        self.column = column
    }
    public var description: String { line > 0 ? "\(path):\(line):\(column)" : path }
}

/// The text of one rule file, kept so that diagnostics can show the offending line.
public struct RuleSource: Sendable, Hashable {
    public var path: String
    public var text: String
    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// The 1-based `number`th line, without its line ending; nil past the end.
    public func line(_ number: Int) -> String? {
        guard number >= 1 else { return nil }
        var current = 1
        var lineStart = text.unicodeScalars.startIndex
        var index = lineStart
        let scalars = text.unicodeScalars
        while index < scalars.endIndex {
            if scalars[index] == "\n" {
                if current == number { return Self.trimCR(String(scalars[lineStart..<index])) }
                current += 1
                lineStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        return current == number ? Self.trimCR(String(scalars[lineStart..<scalars.endIndex])) : nil
    }

    private static func trimCR(_ s: String) -> String {
        s.unicodeScalars.last == "\r" ? String(s.unicodeScalars.dropLast()) : s
    }
}

/// Renders diagnostics like a compiler:
///
///     rules/alerts.rules:3:8: error: unknown field 'remainig'; did you mean 'remaining'?
///       when remainig <= 1h
///            ^~~~~~~~
public struct RuleDiagnosticRenderer: Sendable {
    private var sources: [String: RuleSource]

    public init(sources: [RuleSource]) {
        var byPath: [String: RuleSource] = [:]
        for source in sources { byPath[source.path] = source }
        self.sources = byPath
    }

    /// The diagnostic, its source line and caret line, and its notes, each line ending in `\n`.
    public func render(_ diagnostic: RuleDiagnostic) -> String {
        var out = diagnostic.description + "\n"
        out += excerpt(path: diagnostic.path, line: diagnostic.line, column: diagnostic.column, length: diagnostic.length)
        for note in diagnostic.notes {
            if let place = note.location, place.line > 0 {
                out += "\(place): note: \(note.message)\n"
                out += excerpt(path: place.path, line: place.line, column: place.column, length: 1)
            } else {
                out += "note: \(note.message)\n"
            }
        }
        return out
    }

    /// All diagnostics, in the order given.
    public func render(_ diagnostics: [RuleDiagnostic]) -> String {
        diagnostics.map(render).joined()
    }

    private func excerpt(path: String, line: Int, column: Int, length: Int) -> String {
        guard line > 0, let text = sources[path]?.line(line) else { return "" }
        let scalars = Array(text.unicodeScalars)
        var caret = ""
        // Align the caret under the column: keep tabs, double the width of wide (CJK) characters.
        for scalar in scalars.prefix(max(0, column - 1)) {
            if scalar == "\t" {
                caret += "\t"
            } else if Self.isWide(scalar) {
                caret += "  "
            } else {
                caret += " "
            }
        }
        if column - 1 > scalars.count { caret += String(repeating: " ", count: column - 1 - scalars.count) }
        caret += "^"
        let tildes = max(0, length - 1)
        if tildes > 0 {
            let covered = scalars.dropFirst(column).prefix(tildes)
            var width = covered.reduce(0) { $0 + (Self.isWide($1) ? 2 : 1) }
            width += max(0, tildes - covered.count)
            caret += String(repeating: "~", count: width)
        }
        return text + "\n" + caret + "\n"
    }

    private static func isWide(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
            0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1F300...0x1F64F,
            0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            return true
        default:
            return false
        }
    }
}
