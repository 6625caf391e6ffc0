import ArgumentParser
import CancelWatch

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'run' is not built yet")
    }
}
