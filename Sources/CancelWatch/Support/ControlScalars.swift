/// Control characters in text that goes into a request line, a header or an SMTP command,
/// where a CR or LF starts a line of the attacker's choosing. Judged by Unicode scalar:
/// `"\r\n"` is one `Character`, so a test on Characters misses it.
public enum ControlScalars {
    /// C0 controls (NUL…US, TAB included), DEL and the C1 controls.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// The first control scalar in `text`, if any.
    public static func first(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first(where: isControl)
    }

    /// `CR (U+000D)`, `LF (U+000A)`, `NUL (U+0000)`, `TAB (U+0009)`, or `U+001B`.
    public static func name(_ scalar: Unicode.Scalar) -> String {
        let code = "U+" + String(repeating: "0", count: max(0, 4 - String(scalar.value, radix: 16).count))
            + String(scalar.value, radix: 16, uppercase: true)
        switch scalar {
        case "\r": return "CR (\(code))"
        case "\n": return "LF (\(code))"
        case "\0": return "NUL (\(code))"
        case "\t": return "TAB (\(code))"
        default: return code
        }
    }
}
