import ArgumentParser
import CancelWatch
import Foundation
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Watch every source in the foreground until SIGTERM or SIGINT.",
        discussion: """
            Polls each source on its interval, fires each rule's events at the instant they fall due, and \
            delivers them to the sinks (retrying from the outbox in the state file). SIGTERM and SIGINT stop \
            it: deliveries in flight finish or stay in the outbox for the next start.
            """)

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            let logger = logging.bootstrap()
            let config = try config.load()
            let pipeline = try Pipeline.make(config: config, logger: logger, clock: SystemClock())
            await pipeline.service.start()
            logger.info(
                "watching",
                metadata: [
                    "sources": "\(config.sources.map(\.name).joined(separator: ","))", "rules": "\(pipeline.rules.rules.count)",
                    "sinks": "\(config.sinkNames.joined(separator: ","))", "state": "\(config.state)",
                ])
            let work = Task { await pipeline.service.run() }
            let signal = await ShutdownSignal.wait()
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            work.cancel()
            await work.value
            logger.info("stopped")
        }
    }
}
