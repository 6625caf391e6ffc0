import CancelWatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// SIGHUP's reload of the config and the rules, as the first service of `run`'s group. It also
/// logs the signal that begins the graceful shutdown (and asks the group for it, in case the
/// signal came before the group listened), and ends the process at once on a second SIGTERM or
/// SIGINT while the group stops. Being the first service, it is the last the group stops.
///
/// A reload checks the new config and rules and binds a new listen address while the running
/// pipeline runs, then stops that pipeline (its deliveries in flight finish) before the new one
/// reads the state file, so the two never work on the same state at once. A reload that fails
/// in any way (the config, the rules, the listen address, the state file) is logged with its
/// reasons and the running set stays.
final class ReloadService: Service, Sendable, CustomStringConvertible {
    /// What runs now: the config, and its pipeline (with the rules it was made with).
    struct RunningSet: Sendable {
        var config: CancelWatchConfig
        var pipeline: Pipeline
    }

    private let signals: UnixSignalsSequence
    private let group: ServiceGroup
    private let http: MetricsService
    private let configPath: String
    private let loadConfig: @Sendable () throws -> CancelWatchConfig
    private let clock: WatchClock
    private let metrics: CancelWatchMetrics
    private let logger: Logger
    /// The set the group starts with, taken by the reloads: a retired pipeline's last
    /// reference must be theirs (see `retire`).
    private let initial: Mutex<RunningSet?>

    /// `signals` traps SIGHUP, SIGTERM and SIGINT; `group` is the group this service is the first of.
    init(
        running: RunningSet, signals: UnixSignalsSequence, group: ServiceGroup, http: MetricsService, configPath: String,
        loadConfig: @escaping @Sendable () throws -> CancelWatchConfig, clock: WatchClock, metrics: CancelWatchMetrics,
        logger: Logger
    ) {
        initial = Mutex(running)
        self.signals = signals
        self.group = group
        self.http = http
        self.configPath = configPath
        self.loadConfig = loadConfig
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    var description: String { "reload" }

    func run() async {
        let (requests, requested) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let reloading = Task { await self.reloads(requests) }
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.listen(requested: requested, reloading: reloading) }
            // Every other service has stopped when the group asks this one to.
            try? await gracefulShutdown()
            requested.finish()
            reloading.cancel()
            await reloading.value
            tasks.cancelAll()
        }
    }

    /// SIGHUP asks for a reload (several while one runs ask for one more); the first SIGTERM or
    /// SIGINT begins the graceful shutdown and the next one ends the process.
    private func listen(requested: AsyncStream<Void>.Continuation, reloading: Task<Void, Never>) async {
        var stopping = false
        for await signal in signals {
            if signal == .sighup {
                if stopping {
                    logger.info("SIGHUP ignored: shutting down")
                } else {
                    requested.yield()
                }
                continue
            }
            if stopping {
                logger.error("second signal: exiting now", metadata: ["signal": "\(signal)"])
                // The log line is queued on stderr's writer thread: let it out before exiting.
                await StandardStream.error.drain(within: 2)
                Foundation.exit(1)
            }
            stopping = true
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            requested.finish()
            reloading.cancel()
            await group.triggerGracefulShutdown()
        }
    }

    /// Runs the reloads asked for, one at a time, until the requests end or the task is
    /// cancelled (the group is stopping: a reload under way starts no new pipeline).
    private func reloads(_ requests: AsyncStream<Void>) async {
        guard var running = initial.withLock({ $0.take() }) else { return }
        var run = await watch(running)
        for await _ in requests {
            logger.info("reloading the config and the rules", metadata: ["config": "\(configPath)"])
            let reload: PreparedReload
            do {
                reload = try await prepareReload(running: running.config)
            } catch {
                reloadFailed(error)
                continue
            }
            await run.stop()
            guard !Task.isCancelled else {
                // The pipeline may still be stopping: no other may open the state file.
                if reload.listenChanged { await http.replace(with: reload.server) }
                return
            }
            var next: Pipeline?
            do {
                next = try await Pipeline.make(
                    config: reload.config, rules: reload.rules, logger: logger, clock: clock, metrics: metrics)
            } catch {
                reloadFailed(error)
                if reload.listenChanged {
                    await reload.server?.shutdown()
                    if reload.releasedRunningServer { await http.replace(with: await rebind(running.config)) }
                }
                next = await restore(running)
                guard next != nil, !Task.isCancelled else { return await Self.retire(&next) }
                await Self.retire(&running.pipeline, for: &next)
                run = await watch(running)
                continue
            }
            guard !Task.isCancelled else {
                if reload.listenChanged { await http.replace(with: reload.server) }
                return await Self.retire(&next)
            }
            running.config = reload.config
            await Self.retire(&running.pipeline, for: &next)
            metrics.recordReload(succeeded: true)
            if reload.listenChanged { await http.replace(with: reload.server) }
            logger.info("reloaded")
            RunCommand.logWarnings(of: running.config, logger: logger)
            run = await watch(running)
        }
    }

    /// Starts the pipeline and adds it to the group. A reload's `stop()` takes it out again;
    /// one added after the group began to stop never runs.
    private func watch(_ running: RunningSet) async -> PipelineRun {
        await running.pipeline.service.start()
        logger.info(
            "watching",
            metadata: [
                "sources": "\(running.config.sources.map(\.name).joined(separator: ","))",
                "rules": "\(running.pipeline.rules.rules.count)",
                "sinks": "\(running.config.sinkNames.joined(separator: ","))", "state": "\(running.config.state)",
            ])
        let run = PipelineRun(running.pipeline, logger: logger)
        await group.addServiceUnlessShutdown(
            ServiceGroupConfiguration.ServiceConfiguration(
                service: run, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "pipeline"))
        return run
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
    private func prepareReload(running: CancelWatchConfig) async throws -> PreparedReload {
        let next = try loadConfig()
        let rules = try Pipeline.loadRules(next, logger: logger)
        // A server lost to an earlier failed rebind is bound again, even on the same address.
        let serverLost = next.listen != nil && http.server == nil
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
            let bound = try await RunCommand.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
            return PreparedReload(config: next, rules: rules, listenChanged: true, server: bound, releasedRunningServer: false)
        } catch {
            // The running server may hold the port (127.0.0.1:9464 → 0.0.0.0:9464): free it and try once more.
            guard http.server != nil, listen.port != 0, listen.port == running.listen?.port else {
                throw ListenFailure(listen: listen, path: next.path, reason: "\(error)")
            }
            await http.replace(with: nil)
            do {
                let bound = try await RunCommand.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
                return PreparedReload(config: next, rules: rules, listenChanged: true, server: bound, releasedRunningServer: true)
            } catch {
                await http.replace(with: await rebind(running))
                throw ListenFailure(listen: listen, path: next.path, reason: "\(error)")
            }
        }
    }

    /// Builds the running config's pipeline again after a reload could not start the new one,
    /// trying again with backoff (1s to 1m) while it fails; nil when the task is cancelled first.
    private func restore(_ running: RunningSet) async -> Pipeline? {
        var delay: TimeInterval = 1
        while !Task.isCancelled {
            do {
                return try await Pipeline.make(
                    config: running.config, rules: running.pipeline.rules, logger: logger, clock: clock, metrics: metrics)
            } catch {
                logger.error("cannot start the running config again; trying again in \(DurationText.spell(delay)): \(error)")
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 60)
        }
        return nil
    }

    /// The running config's server again, after its port was freed for a reload that failed;
    /// nil (logged) when it cannot be bound any more.
    private func rebind(_ running: CancelWatchConfig) async -> MetricsServer? {
        guard let listen = running.listen else { return nil }
        do {
            return try await RunCommand.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
        } catch {
            logger.error("cannot serve /metrics and /healthz again on \(listen); watching goes on without them: \(error)")
            return nil
        }
    }

    private func reloadFailed(_ error: Error) {
        metrics.recordReload(succeeded: false)
        logger.error("reload failed; the running config and rules stay: \(error)")
    }

    /// Puts `next` (when there is one) in place of `pipeline` and lets the old one go on a
    /// thread of its own: closing its state file checkpoints and fsyncs (SQLite's WAL), not
    /// for the cooperative pool.
    private static func retire(_ pipeline: inout Pipeline, for next: inout Pipeline?) async {
        guard let replacement = next else { return }
        var old: Pipeline? = pipeline
        pipeline = replacement
        next = nil
        await retire(&old)
    }

    /// Lets go of `pipeline` on a thread of its own (see above).
    private static func retire(_ pipeline: inout Pipeline?) async {
        let retired = Retired(pipeline)
        pipeline = nil
        await BlockingWorkers.shared.run { retired.release() }
    }

    /// The last reference to a pipeline that is done with.
    private final class Retired: @unchecked Sendable {
        private var pipeline: Pipeline?
        init(_ pipeline: Pipeline?) { self.pipeline = pipeline }
        func release() { pipeline = nil }
    }

    private struct ListenFailure: Error, CustomStringConvertible {
        var listen: ListenAddress
        var path: String
        var reason: String
        var description: String { "\(path): listen \(listen): \(reason)" }
    }
}
