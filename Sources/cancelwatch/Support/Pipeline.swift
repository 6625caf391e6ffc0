import CancelWatch
import Foundation
import Logging
import ServiceLifecycle

/// What `run`, `once` and `demo` share: a config becomes clients, compiled rules,
/// sinks and a `WatchService`.
struct Pipeline {
    let service: WatchService
    let rules: RuleSet
    /// What runs beside the stages in `run`: the readers of Telegram's buttons.
    var answering: [any Service] = []

    /// Loads the rules (every diagnostic to stderr; errors stop here), opens the state
    /// store and assembles the service.
    static func make(
        config: CancelWatchConfig, logger: Logger, clock: WatchClock, metrics: CancelWatchMetrics = CancelWatchMetrics()
    ) async throws -> Pipeline {
        try await make(config: config, rules: try loadRules(config, logger: logger), logger: logger, clock: clock, metrics: metrics)
    }

    /// Assembles the service for rules already loaded. It reads what the state store
    /// knows, so no other pipeline may be writing to the same state file meanwhile; `metrics`
    /// checks the store's database for `/healthz` from then on. Opening and reading the
    /// store block (SQLite, PostgreSQL): that runs on ``BlockingWorkers/shared``.
    static func make(
        config: CancelWatchConfig, rules: RuleSet, logger: Logger, clock: WatchClock, metrics: CancelWatchMetrics
    ) async throws -> Pipeline {
        try await BlockingWorkers.shared.run { () throws -> Pipeline in
            try assemble(config: config, rules: rules, logger: logger, clock: clock, metrics: metrics)
        }
    }

    private static func assemble(
        config: CancelWatchConfig, rules: RuleSet, logger: Logger, clock: WatchClock, metrics: CancelWatchMetrics
    ) throws -> Pipeline {
        let state = try openState(config, instance: metrics.instance)
        for warning in state.warnings { logger.warning("\(warning)") }
        let transport = CurlHTTPTransport()
        let sinks = SinkFactory(transport: transport, smtp: CurlSMTPTransport(), clock: clock, timeZone: config.timezone)
        let sources = config.polledSources(transport: transport, clock: clock)
        let answerer = Answerer(store: state.store, clients: sources.map(\.client), clock: clock, logger: logger)
        let actions = RuleActionSink(
            answerer: answerer, journal: state.store, maxPerHour: config.actions.maxPerHour, live: config.actions.mode == .live,
            clock: clock, logger: logger, action: { [rules] in rules[$0]?.action })
        let routes =
            sinks.makeRoutes(config.sinks)
            + [DeliveryQueue.Route(sink: actions, retry: RuleActionSink.retry, timeout: RuleActionSink.timeout)]
        var leases: LeaseKeeper?
        if case .database(let database) = state {
            do throws(StoreError) {
                try database.enroll(ttl: config.leaseTTL)
            } catch {
                throw CleanExit.message("error: \(error.description)", exitCode: 1)
            }
            leases = LeaseKeeper(
                leases: database, sources: sources.map(\.client.source), ttl: config.leaseTTL,
                pollInterval: sources.map(\.pollInterval).min(), logger: logger)
        }
        do throws(StoreError) {
            let service = try WatchService(
                sources: sources, rules: rules.rules, digests: rules.digests, routes: routes, store: state.store, clock: clock, logger: logger,
                health: config.health, metrics: metrics, leases: leases, actions: config.actions,
                deadLetters: { [state] limit in try? state.deadLetters(limit: limit) })
            metrics.setStateProbe(state.probe())
            metrics.board.configure(
                StatusBoard.Configured(
                    sources: config.sources.map(\.name), sinks: config.sinkNames, timeZone: config.timezone, auth: config.auth,
                    answerer: answerer))
            return Pipeline(
                service: service, rules: rules,
                answering: config.telegramReaders(answerer: answerer, store: state.store, clock: clock, logger: logger))
        } catch {
            throw CleanExit.message("error: \(error.description)", exitCode: 1)
        }
    }

    /// Compiles the config's rules; prints every diagnostic like `check` does.
    static func loadRules(_ config: CancelWatchConfig, logger: Logger) throws -> RuleSet {
        let result = RuleLoader(knownSinks: Set(config.sinkNames), timeZone: config.timezone).load(paths: config.rules)
        if !result.diagnostics.isEmpty {
            CommandOutput.queueError(result.renderDiagnostics())
        }
        guard let ruleSet = result.ruleSet, !result.hasErrors else {
            throw CleanExit.message(
                "error: the rules have \(result.errors.count) error(s); see `cancelwatch check` for every one",
                exitCode: 1)
        }
        logger.info("rules loaded", metadata: ["rules": "\(ruleSet.rules.count)", "files": "\(ruleSet.files.count)"])
        return ruleSet
    }
}

/// One pipeline's run as a service of `run`'s group: the pipeline's services in a group of
/// their own, so that a reload can stop this pipeline alone and wait until it has stopped.
/// It keeps no reference to the pipeline once it has run.
final class PipelineRun: Service, Sendable, CustomStringConvertible {
    private let stages: ServiceGroup
    private let ended: AsyncStream<Never>
    private let end: AsyncStream<Never>.Continuation

    init(_ pipeline: Pipeline, logger: Logger) {
        stages = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: pipeline.service.services + pipeline.answering, logger: logger))
        (ended, end) = AsyncStream.makeStream(of: Never.self)
    }

    var description: String { "pipeline" }

    func run() async throws {
        defer { end.finish() }
        try await stages.run()
    }

    /// Stops the pipeline (deliveries in flight finish or stay in the outbox) and returns once
    /// it has stopped, or at once when the calling task is cancelled.
    func stop() async {
        await stages.triggerGracefulShutdown()
        for await _ in ended {}
    }
}
