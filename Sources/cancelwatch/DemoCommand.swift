import ArgumentParser
import CancelWatch
import Foundation
import Logging
import MarketSim
import ServiceLifecycle

/// `cancelwatch demo`: the simulator, the default rules and the stdout sink, with no setup.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch a simulated Ozon and Xiaohongshu shop with the default rules; alerts on stdout.",
        discussion: """
            Starts the marketplace simulator on 127.0.0.1, polls it every 5 seconds with the rules in ./rules, \
            and prints requests as they appear and resolve, and every alert. The status page (and /metrics, \
            /healthz) is served on 127.0.0.1; the banner prints its address. Needs no config and writes its \
            state to a temporary directory.
            """)

    @Option(help: "How long to run (e.g. 90s, 10m).")
    var duration: String = "3m"

    @Option(help: "The rule files or directory to use (default: ./rules of the cancelwatch checkout).")
    var rules: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .warning

    @Option(help: "The port of the status page on 127.0.0.1 (0: any free port).")
    var port: Int = 0

    func run() async throws {
        try await reportingErrors {
            guard let seconds = DurationText.parse(duration), seconds > 0 else {
                throw CleanExit.message("error: --duration '\(duration)' is not a duration like 90s or 10m", exitCode: 1)
            }
            guard (0...65535).contains(port) else {
                throw CleanExit.message("error: --port \(port) is not a port from 0 to 65535", exitCode: 1)
            }
            let signals = await StopSignals()
            StderrLogHandler.bootstrapOnce(format: .text, level: logLevel)
            var logger = Logger(label: "cancelwatch")
            logger.logLevel = logLevel
            let clock = SystemClock()
            let simulator: MarketSimulator
            do {
                simulator = try MarketSimulator(scenario: .standard, clock: clock)
            } catch {
                throw CleanExit.message("error: cannot start the simulator: \(error)", exitCode: 1)
            }
            try await simulator.serving {
                let rulesPath = try rules ?? Self.findRules()
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-demo-\(getpid())")
                try? FileManager.default.removeItem(at: directory)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }

                let config = Self.config(simulator: simulator, rules: rulesPath, state: directory.appendingPathComponent("state.sqlite").path)
                let metrics = CancelWatchMetrics()
                let pipeline = try await Pipeline.make(config: config, logger: logger, clock: clock, metrics: metrics)
                let page: MetricsServer
                do {
                    // Binding waits for the event loop: not on the cooperative pool.
                    page = try await BlockingWorkers.shared.run { [port] () throws -> MetricsServer in
                        try MetricsServer(address: ListenAddress(host: "127.0.0.1", port: port), metrics: metrics, clock: clock)
                    }
                } catch {
                    throw CleanExit.message("error: cannot serve the status page: \(error)", exitCode: 1)
                }
                let timeZone = config.timezone
                let output = DemoOutput(timeZone: timeZone)
                output.say(
                    """
                    cancelwatch demo: a simulated marketplace at \(simulator.baseURL)
                      sources: \(config.sources.map(\.name).joined(separator: ", ")) (polled every 5s)
                      rules:   \(pipeline.rules.rules.map(\.name).joined(separator: ", ")) from \(rulesPath)
                      alerts:  stdout, what arrives within \(DurationText.format(Self.group.wait)) listed as one; times in \(timeZone.identifier); stopping in \(DurationText.format(seconds)) (Ctrl-C to stop)
                      status:  \(page.baseURL)/ (the status page; its JSON API under /api/v1/)

                    """)
                let reports = await pipeline.service.ledger.reports()
                await pipeline.service.start()
                let service = pipeline.service
                let shown = ClosureService {
                    await cancelWhenGracefulShutdown {
                        for await report in reports {
                            if case .poll(let poll) = report { output.show(poll) }
                        }
                    }
                }
                let summary = ClosureService {
                    await cancelWhenGracefulShutdown {
                        while !Task.isCancelled {
                            try? await clock.sleep(for: 20)
                            if Task.isCancelled { break }
                            output.summary(await service.ledger.tracked, now: clock.now())
                        }
                    }
                }
                let http = MetricsService(page)
                let stop = ClosureService {
                    let reason = await signals.first(orSeconds: seconds) ?? "\(DurationText.format(seconds)) passed"
                    output.say("\ncancelwatch demo: \(reason); stopping")
                }
                // The stop service ending stops the others gracefully, the summary before the pipeline.
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [.init(service: http, serviceName: "status page")] + service.services.map { .init(service: $0) } + [
                            .init(service: shown, serviceName: "shown"),
                            .init(service: summary, serviceName: "summary"),
                            .init(service: stop, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "stop"),
                        ], logger: logger))
                do {
                    try await group.run()
                } catch {
                    throw CleanExit.message("error: \(error)", exitCode: 1)
                }
            }
        }
    }

    /// `./rules`, or the `rules/` of the checkout the binary was built in.
    static func findRules() throws -> String {
        var candidates = [FileManager.default.currentDirectoryPath + "/rules"]
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(directory.appendingPathComponent("rules").path)
            directory.deleteLastPathComponent()
        }
        for candidate in candidates {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: candidate)) ?? []
            if files.contains(where: { $0.hasSuffix(".\(RuleLoader.fileExtension)") }) { return candidate }
        }
        throw CleanExit.message(
            "error: no rules found: run the demo from the cancelwatch checkout, or pass --rules DIR", exitCode: 1)
    }

    /// The console's grouping: what one poll brings goes out as one list.
    static let group = GroupPolicy(wait: 5, max: 500)

    static func config(simulator: MarketSimulator, rules: String, state: String) -> CancelWatchConfig {
        let base = URL(string: simulator.baseURL)!
        var sources: [SourceConfig] = []
        // The bulk account (500+ requests) alerts on some 130 at once: the console groups them
        // into one message.
        for account in simulator.scenario.ozonAccounts {
            sources.append(
                SourceConfig(
                    name: account.name, baseURL: base, pollInterval: 5, timeout: 10,
                    credentials: .ozon(OzonCredentials(clientID: account.clientID, apiKey: Secret(account.apiKey)))))
        }
        for account in simulator.scenario.redAccounts {
            sources.append(
                SourceConfig(
                    name: account.name, baseURL: base, pollInterval: 5, timeout: 10,
                    credentials: .red(
                        RedCredentials(
                            appKey: account.appKey, appSecret: Secret(account.appSecret), logistics: ["red_auto", "red_box"],
                            maxAuditTimeUnit: account.auditTimeUnit == .seconds ? .seconds : .milliseconds))))
        }
        return CancelWatchConfig(
            path: "<demo>", state: state, rules: [rules], timezone: TimeZone.current, sources: sources,
            sinks: [SinkConfig(name: "console", kind: .stdout(StdoutSinkConfig(format: .text, group: Self.group)))],
            health: HealthConfig(notify: ["console"], downAfter: 3))
    }
}

/// The demo's own lines: requests appearing and resolving, and a countdown now and then.
final class DemoOutput: Sendable {
    let timeZone: TimeZone

    init(timeZone: TimeZone) { self.timeZone = timeZone }

    /// Queued on stdout (called as the ledger's reports arrive, which cannot wait).
    func say(_ text: String) {
        StandardStream.output.enqueue(text + "\n")
    }

    func show(_ report: PollReport) {
        if let error = report.error {
            say("  ! \(report.source): poll failed: \(TerminalText.singleLine(error.description))")
            return
        }
        var news = 0
        for change in report.changes {
            let request = change.tracked.request
            let label = TerminalText.singleLine("\(request.marketplace.rawValue) \(request.source) \(request.order)")
            switch change {
            case .new:
                news += 1
                if news <= 8 {
                    say("  + tracking \(label): deadline in \(DurationText.format(request.remaining(at: Date()))) (\(TerminalText.singleLine(request.reason)))")
                }
            case .resolved(_, let outcome):
                say("  = \(label): \(outcome.rawValue)")
            case .expired:
                say("  = \(label): the deadline passed while pending; the marketplace decided")
            case .updated:
                break
            }
        }
        if news > 8 { say("  + tracking \(news - 8) more from \(report.source)") }
    }

    func summary(_ tracked: [TrackedRequest], now: Date) {
        let pending = tracked.filter { $0.status == .pending }.map(\.request).sorted { $0.deadline < $1.deadline }
        let next = pending.prefix(3).map { "\(TerminalText.singleLine($0.order)) in \(DurationText.format($0.remaining(at: now)))" }
        say("  · \(pending.count) pending; next deadlines: \(next.joined(separator: ", "))")
    }
}
