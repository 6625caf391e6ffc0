import ArgumentParser
import CancelWatch
import Foundation
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Watch every source in the foreground until SIGTERM or SIGINT.")

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
            logger.info(
                "watching",
                metadata: ["sources": "\(config.sources.map(\.name).joined(separator: ","))", "state": "\(config.state)"])
            let work = Task { await runWatcher(watcher, clock: clock, logger: logger) }
            let signal = await ShutdownSignal.wait()
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            work.cancel()
            await work.value
            logger.info("stopped")
        }
    }
}

/// The watcher's polling loops plus a timer that expires requests at their deadlines.
func runWatcher(_ watcher: Watcher, clock: WatchClock, logger: Logger) async {
    await withTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run() }
        group.addTask {
            while !Task.isCancelled {
                let next = await watcher.nearestDeadline() ?? clock.now().addingTimeInterval(60)
                do {
                    try await clock.sleep(until: min(next, clock.now().addingTimeInterval(60)))
                } catch {
                    return
                }
                for change in await watcher.expireDue() {
                    let request = change.tracked.request
                    logger.notice(
                        "deadline passed while pending",
                        metadata: ["source": "\(request.source)", "id": "\(request.id)", "order": "\(request.order)"])
                }
                await watcher.prune()
            }
        }
    }
}
