import CancelWatch
import Foundation
import Logging

/// Logs to stderr as text for people or JSON lines for machines (`LogLine`: controls
/// escaped, long texts cut). A line is queued on `StandardStream.error` and written on
/// its thread, so logging never blocks a task, and a failed write is counted, not fatal.
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
        let fields = merged.mapValues(\.description)
        let line =
            switch format {
            case .text: LogLine.text(at: Date(), level: event.level.rawValue, message: event.message.description, metadata: fields)
            case .json:
                LogLine.json(at: Date(), level: event.level.rawValue, label: label, message: event.message.description, metadata: fields)
            }
        StandardStream.error.enqueue(line)
    }
}
