import Foundation
import Testing

/// stdout or stderr is a pipe nobody reads: every write blocks. The watcher must keep
/// polling and delivering to its webhook, and stop on SIGTERM: blocking writes run on
/// threads of their own, never on Swift's cooperative pool (as many threads as cores).
@Suite struct BlockedOutputTests {
    @Test(arguments: ["stdout", "stderr"])
    func theWatcherKeepsDeliveringToItsWebhookWhileNobodyReadsItsOutput(_ stream: String) async throws {
        // More stdout sinks than the pool has threads: a sink that blocked its thread would
        // leave the watcher none.
        let consoles = (0...ProcessInfo.processInfo.activeProcessorCount).map { "console\($0)" }
        var options = WatchOptions()
        options.extraSinks = consoles.map { "  - {name: \($0), kind: stdout}" }.joined(separator: "\n")
        options.rules = """
            rule "pending" {
              when     state == "pending"
              severity warning
              notify   hook, \(consoles.joined(separator: ", "))
              message  "{{marketplace}} {{order}} pending, {{remaining}} left"
            }
            """
        let setup = try WatchSetup(ozon: 2, red: 1, options: options)
        defer { setup.shutdown() }
        let pipe = try TestPipe()
        try pipe.fill()
        let run = try setup.startRun(
            standardOutput: stream == "stdout" ? pipe.writeHandle : nil, standardError: stream == "stderr" ? pipe.writeHandle : nil)
        pipe.closeWriteEnd()
        defer { pipe.drainInBackground() }

        let due = try setup.dueFirings()
        try await eventually("the firings at the webhook") { Set(setup.receiver.acknowledged).isSuperset(of: due) }
        let later = try setup.simulator.addRequest(
            .init(marketplace: .red, account: E2EAccounts.redAppKey, created: .relative(-30), deadline: .relative(5 * 3600), logistics: "red_auto"))
        let laterDue = try setup.dueFirings(of: [later])
        try await eventually("a later request's firing at the webhook") { Set(setup.receiver.acknowledged).isSuperset(of: laterDue) }
        // SIGTERM stops it although writes are still stuck.
        #expect(try await run.stop(timeout: 30) == 0)
    }
}
