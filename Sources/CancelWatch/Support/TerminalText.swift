import Foundation

/// Text from outside (marketplaces, receivers, state files) on its way to a terminal or a
/// log: which scalars may not pass raw, and the ways they are kept out. Controls break
/// lines or start escape sequences; bidirectional controls reorder what a reader sees
/// (U+202E shows `gpj.exe` as `exe.jpg`).
public enum TerminalText {
    /// C0 and C1 controls, DEL, and U+2028/U+2029 (line and paragraph separators).
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F..<0xA0).contains(value) || value == 0x2028 || value == 0x2029
    }

    /// U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069.
    public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// On one line: each run of controls becomes one space, bidirectional controls go,
    /// and the ends are trimmed.
    public static func singleLine(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var lastWasSpace = false
        for scalar in text.unicodeScalars where !isBidiControl(scalar) {
            if isControl(scalar) {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(scalar)
                lastWasSpace = scalar == " "
            }
        }
        return String(out).trimmingCharacters(in: .whitespaces)
    }

    /// For a log line: controls and bidirectional controls escaped (`\n`, `\r`, `\t`,
    /// `\u{1B}`), cut to `limit` UTF-8 bytes (``TextCut``, an escape kept whole or not at all).
    public static func escaped(_ text: String, limit: Int) -> String {
        TextCut.joined(
            text.unicodeScalars.lazy.map { scalar in
                switch scalar {
                case "\n": "\\n"
                case "\r": "\\r"
                case "\t": "\\t"
                case _ where isControl(scalar) || isBidiControl(scalar):
                    "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                default: String(scalar)
                }
            },
            limit: limit)
    }

    /// Serialized JSON with the scalars JSON lets pass raw (DEL, C1 controls,
    /// bidirectional controls) written as `\uXXXX` escapes: the same value, nothing a
    /// terminal acts on. Raw non-ASCII scalars only occur inside strings, so this is safe.
    public static func escapingJSON(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { isControl($0) || isBidiControl($0) }) else { return json }
        var out = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            if isControl(scalar) || isBidiControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }
}
