import ArgumentParser
import CancelWatch

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'status' is not built yet")
    }
}
