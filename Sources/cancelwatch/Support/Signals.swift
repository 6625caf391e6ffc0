import Foundation
import UnixSignals

/// SIGTERM and SIGINT for a command that stops on the first of them (`demo`, `simulate`):
/// trapped when made, so that from then on neither ends the process by its default action.
struct StopSignals: Sendable {
    private let signals: UnixSignalsSequence

    init() async {
        signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
    }

    /// The name of the first signal, or nil when `seconds` (if given) pass first. Once per value.
    func first(orSeconds seconds: TimeInterval?) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await signal in signals { return "\(signal)" }
                return nil
            }
            if let seconds {
                group.addTask {
                    try? await Task.sleep(for: .seconds(seconds))
                    return nil
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// A write to a pipe whose reader is gone fails with EPIPE instead of killing the
/// process (SIGPIPE's default): the failure is reported where the write was made.
enum BrokenPipes {
    static func ignore() {
        signal(SIGPIPE, SIG_IGN)
    }
}
