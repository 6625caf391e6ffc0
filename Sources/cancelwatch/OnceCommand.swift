import ArgumentParser
import CancelWatch

struct OnceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "once", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("'once' is not built yet")
    }
}
