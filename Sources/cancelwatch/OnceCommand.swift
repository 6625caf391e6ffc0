import ArgumentParser
import CancelWatch
import Foundation

struct OnceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "once",
        abstract: "Poll every source once, update the state file, and exit (for cron).",
        discussion: "Exits 0 when every source answered, 1 naming each source that failed.")

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            let logger = logging.bootstrap()
            let config = try config.load()
            let store = try openStore(config)
            let clock = SystemClock()
            let transport = CurlHTTPTransport()
            let watcher = try Watcher(
                sources: config.polledSources(transport: transport, clock: clock), store: store, clock: clock,
                logger: logger, downAfter: config.health.downAfter)
            let reports = await watcher.pollAllOnce()
            await watcher.prune()
            let failed = reports.filter { $0.error != nil }
            for report in reports where report.error == nil {
                logger.info(
                    "polled",
                    metadata: ["source": "\(report.source)", "pending": "\(report.pending)", "changes": "\(report.changes.count)"])
            }
            if !failed.isEmpty {
                let lines = failed.map { "error: \($0.error!.description)" }.joined(separator: "\n")
                throw CleanExit.message(lines, exitCode: 1)
            }
        }
    }
}

/// Opens the configured state file, turning a failure into a clean message.
func openStore(_ config: CancelWatchConfig, readOnly: Bool = false) throws -> SQLiteStateStore {
    do {
        return try SQLiteStateStore(path: config.state, readOnly: readOnly)
    } catch {
        throw CleanExit.message("error: \(error.description)", exitCode: 1)
    }
}
