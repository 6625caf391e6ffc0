import Dispatch
import Foundation

/// Waits for SIGINT or SIGTERM without blocking Swift's cooperative pool.
enum ShutdownSignal {
    /// Suspends until SIGINT or SIGTERM arrives; returns the signal's name.
    static func wait(for signals: [Int32] = [SIGINT, SIGTERM]) async -> String {
        let queue = DispatchQueue(label: "cancelwatch.signals")
        return await withCheckedContinuation { continuation in
            let once = OnceFlag()
            var sources: [DispatchSourceSignal] = []
            for number in signals {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    guard once.claim() else { return }
                    for s in sources { s.cancel() }
                    continuation.resume(returning: number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)")
                }
                sources.append(source)
            }
            for source in sources { source.resume() }
        }
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
