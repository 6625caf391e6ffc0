import ArgumentParser
import CancelWatch

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "simulate", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'simulate' is not built yet")
    }
}
