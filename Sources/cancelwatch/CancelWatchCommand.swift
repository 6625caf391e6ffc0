import ArgumentParser
import CancelWatch

@main
struct CancelWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancelwatch",
        abstract: "Watches marketplace cancellation requests and alerts before they auto-approve.",
        version: CancelWatchVersion.current,
        subcommands: [
            DemoCommand.self, RunCommand.self, OnceCommand.self, CheckCommand.self, TestCommand.self,
            SimulateCommand.self, StatusCommand.self, ApproveCommand.self, RefuseCommand.self,
        ]
    )

    /// ArgumentParser's `main`, with output that may fail: SIGPIPE ignored from the start,
    /// what is queued written before exit, and a short command whose output failed exits
    /// 1 (`run` counts its failures in a metric instead).
    static func main() async {
        BrokenPipes.ignore()
        let command: ParsableCommand
        do {
            command = try await asyncParseAsRoot()
        } catch {
            exit(withError: error)
        }
        var status: Int32 = 0
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch let error as CleanExit {
            await CommandOutput.printError(error.text)
            status = error.exitCode
        } catch {
            await CommandOutput.finish()
            exit(withError: error)
        }
        if status == 0, !(command is RunCommand), CommandOutput.failures > 0 { status = 1 }
        await CommandOutput.finish()
        exit(withError: status == 0 ? nil : ExitCode(status))
    }
}
