/// Control characters in text that goes into a request line, a header or an SMTP command,
/// where a CR or LF starts a line of the attacker's choosing. The set is the one
/// ``TerminalText`` keeps off a terminal: C0, DEL, C1, U+2028/U+2029 and the bidirectional
/// controls. Judged by Unicode scalar: `"\r\n"` is one `Character`, so a test on
/// Characters misses it.
public enum ControlScalars {
    /// The first control scalar in `text`, if any.
    public static func first(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first { TerminalText.isControl($0) || TerminalText.isBidiControl($0) }
    }

    /// `CR (U+000D)`, `LF (U+000A)`, `NUL (U+0000)`, `TAB (U+0009)`, `U+001B`, or
    /// `RIGHT-TO-LEFT OVERRIDE (U+202E)` for a scalar with a Unicode name.
    public static func name(_ scalar: Unicode.Scalar) -> String {
        let code = "U+" + String(repeating: "0", count: max(0, 4 - String(scalar.value, radix: 16).count))
            + String(scalar.value, radix: 16, uppercase: true)
        switch scalar {
        case "\r": return "CR (\(code))"
        case "\n": return "LF (\(code))"
        case "\0": return "NUL (\(code))"
        case "\t": return "TAB (\(code))"
        default: return scalar.properties.name.map { "\($0) (\(code))" } ?? code
        }
    }
}
