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
            it: deliveries in flight finish or stay in the outbox for the next start; a second one ends it at \
            once. SIGHUP reloads the \
            config and the rules; a reload that fails in any way (the config, the rules, the listen address, \
            the state file) is logged with its reasons and the running set stays.
            """)

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            let logger = logging.bootstrap()
            let signals = SignalInbox()
            let clock = SystemClock()
            let metrics = CancelWatchMetrics()
            // A failed write is counted and `run` goes on watching (the stdout sink retries its event).
            for stream in [StandardStream.output, StandardStream.error] {
                stream.onFailure { metrics.recordOutputFailure(stream: stream.name) }
            }
            var current = try config.load()
            Self.logWarnings(of: current, logger: logger)
            var pipeline = try await Pipeline.make(config: current, logger: logger, clock: clock, metrics: metrics)
            var metricsServer: MetricsServer?
            if let listen = current.listen {
                do {
                    metricsServer = try Self.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
                } catch {
                    throw CleanExit.message("error: \(current.path): listen \(listen): \(error)", exitCode: 1)
                }
            }
            while true {
                await pipeline.service.start()
                logger.info(
                    "watching",
                    metadata: [
                        "sources": "\(current.sources.map(\.name).joined(separator: ","))",
                        "rules": "\(pipeline.rules.rules.count)", "sinks": "\(current.sinkNames.joined(separator: ","))",
                        "state": "\(current.state)",
                    ])
                // The task holds the service only while it runs: a retired pipeline's last
                // reference is its own (see retire).
                let work = Task { [service = pipeline.service] in await service.run() }
                // A reload checks the new config and rules and binds a new listen address while
                // the old pipeline runs, then stops it (its deliveries in flight finish) before
                // the new one reads the state file, so the two never work on the same state at once.
                var reload: PreparedReload?
                while reload == nil {
                    let signal = await signals.next()
                    if signal != SIGHUP {
                        logger.info("shutting down", metadata: ["signal": "\(SignalInbox.name(signal))"])
                        let impatient = Self.exitOnSecondSignal(signals, logger: logger)
                        work.cancel()
                        await work.value
                        impatient.cancel()
                        await metricsServer?.shutdown()
                        logger.info("stopped")
                        return
                    }
                    logger.info("reloading the config and the rules", metadata: ["config": "\(config.config)"])
                    do {
                        reload = try await prepareReload(
                            running: current, server: &metricsServer, metrics: metrics, clock: clock, logger: logger)
                    } catch {
                        Self.reloadFailed(error, metrics: metrics, logger: logger)
                    }
                }
                work.cancel()
                await work.value
                guard let reload else { continue }
                do {
                    let next = try await Pipeline.make(
                        config: reload.config, rules: reload.rules, logger: logger, clock: clock, metrics: metrics)
                    await Self.retire(&pipeline, for: next)
                } catch {
                    Self.reloadFailed(error, metrics: metrics, logger: logger)
                    if reload.listenChanged {
                        await reload.server?.shutdown()
                        if reload.releasedRunningServer {
                            metricsServer = Self.rebind(current, metrics: metrics, clock: clock, logger: logger)
                        }
                    }
                    guard let restored = await restore(current, rules: pipeline.rules, signals: signals, clock: clock, metrics: metrics, logger: logger)
                    else {
                        await metricsServer?.shutdown()
                        return
                    }
                    await Self.retire(&pipeline, for: restored)
                    continue
                }
                metrics.recordReload(succeeded: true)
                if reload.listenChanged {
                    if !reload.releasedRunningServer { await metricsServer?.shutdown() }
                    metricsServer = reload.server
                }
                current = reload.config
                logger.info("reloaded")
                Self.logWarnings(of: current, logger: logger)
            }
        }
    }

    /// What a reload found ready: the config and rules, and a server on the new `listen:`.
    private struct PreparedReload {
        var config: CancelWatchConfig
        var rules: RuleSet
        var listenChanged: Bool
        /// Bound to the new address (nil when the new config has no `listen:` or it did not change).
        var server: MetricsServer?
        /// The running server was shut to free its port for the new one.
        var releasedRunningServer: Bool
    }

    /// Loads the new config and rules and binds a changed `listen:`; throws, with nothing
    /// changed, when any of it fails.
    private func prepareReload(
        running: CancelWatchConfig, server: inout MetricsServer?, metrics: CancelWatchMetrics, clock: WatchClock,
        logger: Logger
    ) async throws -> PreparedReload {
        let next = try config.load()
        let rules = try Pipeline.loadRules(next, logger: logger)
        // A server lost to an earlier failed rebind is bound again, even on the same address.
        let serverLost = next.listen != nil && server == nil
        if serverLost, let listen = next.listen, listen == running.listen {
            logger.info("binding /metrics and /healthz again: no server is running", metadata: ["listen": "\(listen)"])
        }
        guard next.listen != running.listen || serverLost else {
            return PreparedReload(config: next, rules: rules, listenChanged: false, server: nil, releasedRunningServer: false)
        }
        guard let listen = next.listen else {
            return PreparedReload(config: next, rules: rules, listenChanged: true, server: nil, releasedRunningServer: false)
        }
        do {
            let bound = try Self.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
            return PreparedReload(config: next, rules: rules, listenChanged: true, server: bound, releasedRunningServer: false)
        } catch {
            // The running server may hold the port (127.0.0.1:9464 → 0.0.0.0:9464): free it and try once more.
            guard let runningServer = server, listen.port != 0, listen.port == running.listen?.port else {
                throw ListenFailure(listen: listen, path: next.path, reason: "\(error)")
            }
            await runningServer.shutdown()
            server = nil
            do {
                let bound = try Self.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
                return PreparedReload(config: next, rules: rules, listenChanged: true, server: bound, releasedRunningServer: true)
            } catch {
                server = Self.rebind(running, metrics: metrics, clock: clock, logger: logger)
                throw ListenFailure(listen: listen, path: next.path, reason: "\(error)")
            }
        }
    }

    /// Puts `next` in place of `pipeline` and lets the old one go on a thread of its own:
    /// closing its state file checkpoints and fsyncs (SQLite's WAL), not for the cooperative pool.
    private static func retire(_ pipeline: inout Pipeline, for next: Pipeline) async {
        let retired = Retired(pipeline)
        pipeline = next
        await BlockingWorkers.shared.run { retired.release() }
    }

    /// The last reference to a pipeline that is done with.
    private final class Retired: @unchecked Sendable {
        private var pipeline: Pipeline?
        init(_ pipeline: Pipeline) { self.pipeline = pipeline }
        func release() { pipeline = nil }
    }

    private struct ListenFailure: Error, CustomStringConvertible {
        var listen: ListenAddress
        var path: String
        var reason: String
        var description: String { "\(path): listen \(listen): \(reason)" }
    }

    private static func reloadFailed(_ error: Error, metrics: CancelWatchMetrics, logger: Logger) {
        metrics.recordReload(succeeded: false)
        logger.error("reload failed; the running config and rules stay: \(error)")
    }

    /// Builds the running config's pipeline again after a reload could not start the new one,
    /// trying again with backoff (1s to 1m) while it fails; nil when SIGTERM or SIGINT comes first.
    private func restore(
        _ config: CancelWatchConfig, rules: RuleSet, signals: SignalInbox, clock: WatchClock, metrics: CancelWatchMetrics,
        logger: Logger
    ) async -> Pipeline? {
        var delay: TimeInterval = 1
        while true {
            do {
                return try await Pipeline.make(config: config, rules: rules, logger: logger, clock: clock, metrics: metrics)
            } catch {
                logger.error("cannot start the running config again; trying again in \(DurationText.spell(delay)): \(error)")
            }
            let pause = delay
            let signal = await withTaskGroup(of: Int32?.self) { group in
                group.addTask { await signals.next() }
                group.addTask {
                    try? await Task.sleep(for: .seconds(pause))
                    return nil
                }
                // The first to finish cancels the other; a signal that still arrives is kept.
                var received: Int32?
                for await result in group {
                    if let result, result != SignalInbox.cancelled { received = result }
                    group.cancelAll()
                }
                return received
            }
            if let signal, signal != SIGHUP {
                logger.info("shutting down", metadata: ["signal": "\(SignalInbox.name(signal))"])
                return nil
            }
            delay = min(delay * 2, 60)
        }
    }

    /// Ends the process at once on a SIGTERM or SIGINT that comes while the graceful stop
    /// runs: deliveries not yet made stay in the outbox for the next start.
    private static func exitOnSecondSignal(_ signals: SignalInbox, logger: Logger) -> Task<Void, Never> {
        Task {
            while true {
                let signal = await signals.next()
                if signal == SignalInbox.cancelled { return }
                guard signal != SIGHUP else { continue }
                logger.error("second signal: exiting now", metadata: ["signal": "\(SignalInbox.name(signal))"])
                // The log line is queued on stderr's writer thread: let it out before exiting.
                await StandardStream.error.drain(within: 2)
                Foundation.exit(1)
            }
        }
    }

    /// `/metrics` and `/healthz` on `listen`.
    private static func serveMetrics(on listen: ListenAddress, metrics: CancelWatchMetrics, clock: WatchClock, logger: Logger)
        throws -> MetricsServer
    {
        let server = try MetricsServer(address: listen, metrics: metrics, clock: clock)
        logger.info("serving /metrics and /healthz", metadata: ["listen": "\(server.baseURL)"])
        return server
    }

    /// The running config's server again, after its port was freed for a reload that failed;
    /// nil (logged) when it cannot be bound any more.
    private static func rebind(_ running: CancelWatchConfig, metrics: CancelWatchMetrics, clock: WatchClock, logger: Logger)
        -> MetricsServer?
    {
        guard let listen = running.listen else { return nil }
        do {
            return try serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
        } catch {
            logger.error("cannot serve /metrics and /healthz again on \(listen); watching goes on without them: \(error)")
            return nil
        }
    }

    /// Says each downgrade the config asks for (the same list `check` prints).
    static func logWarnings(of config: CancelWatchConfig, logger: Logger) {
        for warning in config.warnings {
            let place = warning.line > 0 ? "\(warning.path):\(warning.line):\(warning.column)" : warning.path
            logger.warning("config: \(warning.message)", metadata: ["at": "\(place)"])
        }
    }
}
