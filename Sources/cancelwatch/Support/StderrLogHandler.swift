import CancelWatch
import Foundation
import Logging

/// Logs to stderr as text for people or JSON lines for machines. Messages are written
/// whole under a lock so lines from several tasks never interleave.
struct StderrLogHandler: LogHandler {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    static func bootstrapOnce(format: LogFormat, level: Logger.Level) {
        lock.lock()
        defer { lock.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
    }

    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let now = Date()
        let line: String
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(Timestamp.format(now)) \(event.level) \(event.message)" + (fields.isEmpty ? "" : " [\(fields)]") + "\n"
        case .json:
            var object: [String: JSONValue] = [
                "ts": .string(Timestamp.format(now)), "level": .string(event.level.rawValue),
                "msg": .string(event.message.description), "logger": .string(label),
            ]
            for (key, value) in merged { object[key] = .string(value.description) }
            line = JSONValue.object(object).serialized() + "\n"
        }
        Self.lock.lock()
        FileHandle.standardError.write(Data(line.utf8))
        Self.lock.unlock()
    }
}
