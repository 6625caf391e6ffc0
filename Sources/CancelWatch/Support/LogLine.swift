import Foundation

/// One line of cancelwatch's log as written to stderr, whatever text it is given: a
/// marketplace's or receiver's words cannot end the line, forge the next one, move a
/// terminal's cursor or reorder what is read, and a huge text is cut.
public enum LogLine {
    /// The message is cut to this many UTF-8 bytes (``TextCut``).
    public static let messageLimit = 4096
    /// Each metadata key and value is cut to this many UTF-8 bytes.
    public static let valueLimit = 1024

    /// `2026-11-23T19:01:00Z warning message [key=value ...]`, controls escaped (`\n`, `\u{1B}`).
    public static func text(at date: Date, level: String, message: String, metadata: [String: String]) -> String {
        var line = "\(Timestamp.format(date)) \(level) \(TerminalText.escaped(message, limit: messageLimit))"
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map {
                "\(TerminalText.escaped($0.key, limit: valueLimit))=\(TerminalText.escaped($0.value, limit: valueLimit))"
            }
            line += " [\(fields.joined(separator: " "))]"
        }
        return line + "\n"
    }

    /// One JSON object: `ts`, `level`, `msg`, `logger` and the metadata, texts cut, and
    /// no raw control or bidirectional character (they are `\u` escapes).
    public static func json(at date: Date, level: String, label: String, message: String, metadata: [String: String]) -> String {
        var object: [String: JSONValue] = [:]
        for (key, value) in metadata { object[TextCut.cut(key, limit: valueLimit)] = .string(TextCut.cut(value, limit: valueLimit)) }
        object["ts"] = .string(Timestamp.format(date))
        object["level"] = .string(level)
        object["msg"] = .string(TextCut.cut(message, limit: messageLimit))
        object["logger"] = .string(label)
        return TerminalText.escapingJSON(JSONValue.object(object).serialized()) + "\n"
    }
}
