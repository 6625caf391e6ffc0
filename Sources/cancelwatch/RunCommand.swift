import ArgumentParser
import CancelWatch
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

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
            the state file) is logged with its reasons and the running set stays. Every metric and log line \
            carries this process's instance id: $CANCELWATCH_INSTANCE, or the host name, the pid and a random suffix.
            """)

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            var logger = logging.bootstrap()
            let instance: InstanceID
            do {
                instance = try InstanceID.current()
            } catch {
                throw CleanExit.message("error: \(error)", exitCode: 1)
            }
            logger[metadataKey: "instance"] = "\(instance)"
            // Trapped before anything else: from here on these signals wait for the reload
            // service (and the group) instead of ending the process.
            let signals = await UnixSignalsSequence(trapping: .sighup, .sigterm, .sigint)
            let clock = SystemClock()
            let metrics = CancelWatchMetrics(instance: instance)
            // A failed write is counted and `run` goes on watching (the stdout sink retries its event).
            for stream in [StandardStream.output, StandardStream.error] {
                stream.onFailure { metrics.recordOutputFailure(stream: stream.name) }
            }
            let current = try config.load()
            Self.logWarnings(of: current, logger: logger)
            // Handed over with `take()`: the reload service must hold the pipeline's only reference.
            var running: ReloadService.RunningSet? = ReloadService.RunningSet(
                config: current, pipeline: try await Pipeline.make(config: current, logger: logger, clock: clock, metrics: metrics))
            var server: MetricsServer?
            if let listen = current.listen {
                do {
                    server = try await Self.serveMetrics(on: listen, metrics: metrics, clock: clock, logger: logger)
                } catch {
                    throw CleanExit.message("error: \(current.path): listen \(listen): \(error)", exitCode: 1)
                }
            }
            // The group stops its services in the reverse of their order: the pipeline first
            // (the reload service adds it), then /metrics and /healthz, which answer while
            // deliveries finish, then the reload service, which until then ends the process
            // on a second signal.
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [ServiceGroupConfiguration.ServiceConfiguration](), gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            let http = MetricsService(server)
            let reload = ReloadService(
                running: running.take()!, signals: signals, group: group,
                http: http, configPath: config.config, loadConfig: { [config] in try config.load() }, clock: clock,
                metrics: metrics, logger: logger)
            await group.addServiceUnlessShutdown(.init(service: reload, serviceName: "reload"))
            await group.addServiceUnlessShutdown(.init(service: http, serviceName: "metrics"))
            do {
                try await group.run()
            } catch {
                throw CleanExit.message("error: \(error)", exitCode: 1)
            }
            logger.info("stopped")
        }
    }

    /// `/metrics`, `/healthz` and the status page on `listen`. Binding waits for the event
    /// loop: it runs on ``BlockingWorkers/shared``, not on the cooperative pool.
    static func serveMetrics(on listen: ListenAddress, metrics: CancelWatchMetrics, clock: WatchClock, logger: Logger)
        async throws -> MetricsServer
    {
        let server = try await BlockingWorkers.shared.run { () throws -> MetricsServer in
            try MetricsServer(address: listen, metrics: metrics, clock: clock)
        }
        logger.info("serving /metrics and /healthz", metadata: ["listen": "\(server.baseURL)"])
        return server
    }

    /// Says each downgrade the config asks for (the same list `check` prints).
    static func logWarnings(of config: CancelWatchConfig, logger: Logger) {
        for warning in config.warnings {
            let place = warning.line > 0 ? "\(warning.path):\(warning.line):\(warning.column)" : warning.path
            logger.warning("config: \(warning.message)", metadata: ["at": "\(place)"])
        }
    }
}
