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
            SimulateCommand.self, StatusCommand.self,
        ]
    )
}
