import ArgumentParser
import CancelWatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

struct OnceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "once",
        abstract: "One poll-evaluate-deliver cycle, then exit (for cron).",
        discussion: """
            Polls every source once, updates the state file, sends the alerts that are due (one attempt each; \
            what fails stays in the outbox for the next run) and exits 0 when every source answered, or 1 \
            naming each source that failed.
            """)

    @OptionGroup var config: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        try await reportingErrors {
            let logger = logging.bootstrap()
            let config = try config.load()
            RunCommand.logWarnings(of: config, logger: logger)
            let pipeline = try await Pipeline.make(config: config, logger: logger, clock: SystemClock())
            await pipeline.service.start()
            let reports = try await Self.cycle(pipeline.service, logger: logger)
            for report in reports where report.error == nil {
                logger.info(
                    "polled",
                    metadata: ["source": "\(report.source)", "pending": "\(report.pending)", "changes": "\(report.changes.count)"])
            }
            let failed = reports.compactMap(\.error)
            if !failed.isEmpty {
                throw CleanExit.message(failed.map { "error: \($0.description)" }.joined(separator: "\n"), exitCode: 1)
            }
        }
    }

    /// The cycle as the one service of a group that SIGTERM and SIGINT stop gracefully: they
    /// cancel it, and it ends as on cancellation (polling stops before its next call; what is
    /// not delivered stays in the outbox).
    private static func cycle(_ service: WatchService, logger: Logger) async throws -> [PollReport] {
        let reports = CycleReports()
        let cycle = ClosureService { reports.keep(await cancelWhenGracefulShutdown { await service.once() }) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: cycle, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "once")],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw CleanExit.message("error: \(error)", exitCode: 1)
        }
        return reports.kept
    }

    /// What the cycle's service reported.
    private final class CycleReports: Sendable {
        private let reports = Mutex<[PollReport]>([])
        func keep(_ reports: [PollReport]) { self.reports.withLock { $0 = reports } }
        var kept: [PollReport] { reports.withLock { $0 } }
    }
}

/// Opens the store the config names (``ConfiguredState``), turning a failure into a clean message.
func openState(_ config: CancelWatchConfig, readOnly: Bool = false, instance: InstanceID? = nil) throws -> ConfiguredState {
    do {
        return try ConfiguredState.open(config, readOnly: readOnly, instance: instance)
    } catch {
        throw CleanExit.message("error: \(error.description)", exitCode: 1)
    }
}
