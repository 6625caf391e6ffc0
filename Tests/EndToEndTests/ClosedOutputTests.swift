@testable import CancelWatch
import Foundation
import MarketSim
import Testing

/// Output that fails under cancelwatch: a pipe whose reader went away (`| head -c 100`)
/// or a full disk (`/dev/full`). `run` keeps watching and counts the failed writes; the
/// short commands exit non-zero. Nothing traps (exit 132) or dies of SIGPIPE (141).
@Suite struct ClosedOutputTests {
    /// Every pending request fires once, to the webhook and to stdout.
    static let rules = """
        rule "pending" {
          when     state == "pending"
          severity warning
          notify   hook, console
          message  "{{marketplace}} {{order}} pending, {{remaining}} left"
        }
        """

    static func options(listen: Bool = true) -> WatchOptions {
        var options = WatchOptions()
        options.rules = rules
        options.listen = listen
        options.extraSinks = "  - {name: console, kind: stdout}"
        return options
    }

    /// A request that appears while `run` watches; returns the ids of its firing.
    static func addLaterRequest(_ setup: WatchSetup) throws -> Set<String> {
        let info = try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-60), deadline: .relative(5 * 3600)))
        return try setup.dueFirings(of: [info])
    }

    @Test func runKeepsWatchingAfterTheReaderOfItsStdoutGoesAwayAndCountsTheFailedWrites() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1, options: Self.options())
        defer { setup.shutdown() }
        let stdout = try TestPipe()
        let run = try setup.startRun(standardOutput: stdout.writeHandle)
        stdout.closeWriteEnd()
        // The first alert lines come, then the reader goes away, as `| head -c 100` does.
        let first = try await stdout.readFirstBytes()
        #expect(String(decoding: first, as: UTF8.self).contains("firing pending"))
        stdout.closeReadEnd()
        let due = try setup.dueFirings()
        try await eventually("the first firings at the webhook\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }

        // A later alert goes to stdout (a write to the closed pipe) and still reaches the webhook.
        let later = try Self.addLaterRequest(setup)
        try await eventually("the later firing at the webhook\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: later) }
        let metrics = try await run.metricsURL() + "/metrics"
        try await eventually("failed writes to stdout counted\n\(run.stderr)") {
            (metricValue(try await httpGet(metrics).body, #"cancelwatch_output_failures_total{stream="stdout"}"#) ?? 0) >= 1
        }
        #expect(run.process.isRunning, "exit \(run.process.terminationStatus)\n\(run.stderr)")
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }

    @Test func runKeepsWatchingWhenStderrIsAFullDisk() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1, options: Self.options())
        defer { setup.shutdown() }
        // The log cannot say where /metrics is: the test chooses the port.
        let port = try freeLoopbackPort()
        let config = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:\(port)")
            .write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let run = try setup.startRun(standardError: try fullDevice())
        let due = try setup.dueFirings()
        try await eventually("the first firings at the webhook (exit \(run.process.isRunning ? "-" : "\(run.process.terminationStatus)"))") {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }
        let later = try Self.addLaterRequest(setup)
        try await eventually("the later firing at the webhook") { Set(setup.receiver.acknowledged).isSuperset(of: later) }
        #expect(run.stdout.contains("firing pending"))
        try await eventually("failed writes to stderr counted") {
            (metricValue(try await httpGet("http://127.0.0.1:\(port)/metrics").body, #"cancelwatch_output_failures_total{stream="stderr"}"#)
                ?? 0) >= 1
        }
        #expect(run.process.isRunning, "exit \(run.process.terminationStatus)")
        #expect(try await run.stop() == 0)
    }

    /// How an output is broken.
    enum Broken: String, CaseIterable, Sendable {
        /// A pipe whose read end is closed before the command starts: EPIPE (and SIGPIPE).
        case closedPipe
        /// `/dev/full`: ENOSPC.
        case fullDisk
    }

    /// A short command and the stream it must write to.
    enum ShortCommand: String, CaseIterable, Sendable {
        case checkPrintsOK, checkReportsErrors, status, test, once, simulateBanner, demo

        /// 1 (stdout) or 2 (stderr).
        var stream: Int32 {
            switch self {
            case .checkReportsErrors, .once: 2
            default: 1
            }
        }

        /// The exit status with outputs that work.
        var statusWhenOutputWorks: Int32 { self == .checkReportsErrors ? 1 : 0 }

        func arguments(_ setup: WatchSetup) throws -> [String] {
            let rules = packageRoot().appendingPathComponent("rules").path
            switch self {
            case .checkPrintsOK: return ["check", "--config", setup.configPath]
            case .checkReportsErrors:
                try setup.writeRules("rule \"broken\" {\n  when state ==\n}\n", file: "broken.rules")
                return ["check", setup.directory.appendingPathComponent("rules/broken.rules").path]
            case .status: return ["status", "--config", setup.configPath]
            case .test: return ["test", packageRoot().appendingPathComponent("rules/tests").path]
            case .once: return ["once", "--config", setup.configPath]
            case .simulateBanner: return ["simulate", "--port", "0", "--duration", "2s"]
            case .demo: return ["demo", "--duration", "3s", "--rules", rules]
            }
        }
    }

    @Test(arguments: ShortCommand.allCases, Broken.allCases)
    func shortCommandsExitNonZeroWithoutATrapWhenTheirOutputFails(_ command: ShortCommand, _ broken: Broken) async throws {
        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        // `status` reads a state file: one poll makes it.
        let prepared = try await setup.command(["once", "--config", setup.configPath])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        let arguments = try command.arguments(setup)

        let working = try RunningCommand(arguments, directory: setup.directory)
        #expect(try await working.wait() == command.statusWhenOutputWorks, "\(working.stderr)")

        let pipe = try TestPipe()
        let handle: FileHandle
        switch broken {
        case .closedPipe:
            pipe.closeReadEnd()
            handle = pipe.writeHandle
        case .fullDisk:
            handle = try fullDevice()
        }
        let failing = try RunningCommand(
            arguments, directory: setup.directory, standardOutput: command.stream == 1 ? handle : nil,
            standardError: command.stream == 2 ? handle : nil)
        pipe.closeWriteEnd()
        let status = try await failing.wait(timeout: 60)
        #expect(failing.process.terminationReason == .exit, "killed by signal \(status)\n\(failing.stderr)")
        #expect(status != 0, "\(failing.stderr)")
        #expect(status != 132 && status != 141, "exit \(status)\n\(failing.stderr)")
    }
}
