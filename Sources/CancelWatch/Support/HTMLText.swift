/// Text from outside (marketplaces, receivers, the config) on its way into an HTML page, as
/// an element's text or a quoted attribute's value: shown as written, never read as markup.
public enum HTMLText {
    /// `&`, `<`, `>`, `"` and `'` as character references; tabs and line breaks as spaces;
    /// other controls (NUL among them) and bidirectional controls as U+FFFD, so what a
    /// marketplace sent can neither end the element nor reorder what a reader sees.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out += " "
            case _ where TerminalText.isControl(scalar) || TerminalText.isBidiControl(scalar): out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "&", "<", ">", "\"", "'": true
        default: TerminalText.isControl(scalar) || TerminalText.isBidiControl(scalar)
        }
    }
}
