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
            it: deliveries in flight finish or stay in the outbox for the next start. SIGHUP reloads the \
            config and the rules; a broken reload is logged with its errors and the running set stays.
            """)

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            let logger = logging.bootstrap()
            let signals = SignalInbox()
            let clock = SystemClock()
            let metrics = CancelWatchMetrics()
            var current = try config.load()
            var pipeline = try await Pipeline.make(config: current, logger: logger, clock: clock, metrics: metrics)
            var metricsServer = try startMetrics(current, metrics: metrics, clock: clock, logger: logger)
            defer { metricsServer?.shutdown() }
            while true {
                await pipeline.service.start()
                logger.info(
                    "watching",
                    metadata: [
                        "sources": "\(current.sources.map(\.name).joined(separator: ","))",
                        "rules": "\(pipeline.rules.rules.count)", "sinks": "\(current.sinkNames.joined(separator: ","))",
                        "state": "\(current.state)",
                    ])
                let service = pipeline.service
                let work = Task { await service.run() }
                // A reload checks the new config and rules while the old pipeline runs, then
                // stops it (its deliveries in flight finish) before the new one reads the state
                // file, so the two never work on the same state at once.
                var reloaded: (CancelWatchConfig, RuleSet)?
                while reloaded == nil {
                    let signal = await signals.next()
                    if signal != SIGHUP {
                        logger.info("shutting down", metadata: ["signal": "\(SignalInbox.name(signal))"])
                        work.cancel()
                        await work.value
                        logger.info("stopped")
                        return
                    }
                    logger.info("reloading the config and the rules", metadata: ["config": "\(config.config)"])
                    do {
                        let next = try config.load()
                        reloaded = (next, try Pipeline.loadRules(next, logger: logger))
                    } catch {
                        metrics.recordReload(succeeded: false)
                        logger.error("reload failed; the running config and rules stay: \(error)")
                    }
                }
                work.cancel()
                await work.value
                if let (next, nextRules) = reloaded {
                    do {
                        pipeline = try await Pipeline.make(config: next, rules: nextRules, logger: logger, clock: clock, metrics: metrics)
                    } catch {
                        metrics.recordReload(succeeded: false)
                        logger.error("reload failed; the running config and rules stay: \(error)")
                        pipeline = try await Pipeline.make(config: current, rules: pipeline.rules, logger: logger, clock: clock, metrics: metrics)
                        continue
                    }
                    metrics.recordReload(succeeded: true)
                    if next.listen != current.listen {
                        metricsServer?.shutdown()
                        metricsServer = try startMetrics(next, metrics: metrics, clock: clock, logger: logger)
                    }
                    current = next
                    logger.info("reloaded")
                }
            }
        }
    }

    private func startMetrics(_ config: CancelWatchConfig, metrics: CancelWatchMetrics, clock: WatchClock, logger: Logger) throws
        -> MetricsServer?
    {
        guard let listen = config.listen else { return nil }
        do {
            let server = try MetricsServer(address: listen, metrics: metrics, clock: clock)
            logger.info("serving /metrics and /healthz", metadata: ["listen": "\(server.baseURL)"])
            return server
        } catch {
            throw CleanExit.message("error: \(config.path): listen \(listen): \(error)", exitCode: 1)
        }
    }
}
