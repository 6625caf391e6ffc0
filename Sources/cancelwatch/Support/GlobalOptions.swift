import ArgumentParser
import CancelWatch
import Foundation
import Logging

/// Options every long-running subcommand takes.
struct LoggingOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "text or json (one object per line), to stderr.")
    var logFormat: LogFormat = .text

    /// Installs the stderr log handler, once per process.
    func bootstrap() -> Logger {
        StderrLogHandler.bootstrapOnce(format: logFormat, level: logLevel)
        var logger = Logger(label: "cancelwatch")
        logger.logLevel = logLevel
        return logger
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config: String = CancelWatchConfig.defaultPath

    func load() throws -> CancelWatchConfig {
        do {
            return try CancelWatchConfig.load(path: config)
        } catch {
            throw CleanExit.message("\(error)", exitCode: 1)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

enum LogFormat: String, ExpressibleByArgument, Sendable {
    case text, json
}

/// An error the user sees as one line on stderr and exit code 1 (no usage text).
struct CleanExit: Error, CustomStringConvertible {
    var text: String
    var exitCode: Int32
    static func message(_ text: String, exitCode: Int32) -> CleanExit { CleanExit(text: text, exitCode: exitCode) }
    var description: String { text }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning a `CleanExit` into its message on stderr and its exit code.
    func reportingErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CleanExit {
            await CommandOutput.printError(error.text)
            throw ExitCode(error.exitCode)
        }
    }
}
