import ArgumentParser
import CancelWatch

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'test' is not built yet")
    }
}
