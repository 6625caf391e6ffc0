import CancelWatch

/// What a command prints, through `StandardStream` (whole lines, off the cooperative
/// pool, failures reported). A short command whose output failed exits non-zero.
enum CommandOutput {
    /// `text` on stdout, a newline added if missing; a failed write ends the command (exit 1).
    static func print(_ text: String) async throws {
        do {
            try await StandardStream.output.write(text.hasSuffix("\n") ? text : text + "\n")
        } catch {
            throw CleanExit.message("error: \(error.description)", exitCode: 1)
        }
    }

    /// `text` on stderr, a newline added if missing. A failure is counted, and `main`
    /// turns it into a non-zero exit.
    static func printError(_ text: String) async {
        try? await StandardStream.error.write(text.hasSuffix("\n") ? text : text + "\n")
    }

    /// `text` on stderr without waiting (from code that cannot await).
    static func queueError(_ text: String) {
        StandardStream.error.enqueue(text.hasSuffix("\n") ? text : text + "\n")
    }

    /// Writes or drops whatever still waits, for at most a few seconds (a stream nobody
    /// reads must not keep the process from exiting).
    static func finish() async {
        await StandardStream.output.drain(within: 2)
        await StandardStream.error.drain(within: 2)
    }

    /// Writes to stdout or stderr that failed since the process started.
    static var failures: Int { StandardStream.output.failures + StandardStream.error.failures }
}
