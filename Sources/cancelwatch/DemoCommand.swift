import ArgumentParser
import CancelWatch

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'demo' is not built yet")
    }
}
