import Foundation

@testable import CancelWatch

/// Records each delivery attempt a queue reports.
final class AttemptLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [DeliveryResult] = []
    var results: [DeliveryResult] { lock.withLock { stored } }

    /// Logs the attempts among `reports` (what `deliverDueOnce` returns).
    func add(_ reports: [DeliveryReport]) {
        for case .attempt(let result) in reports { lock.withLock { stored.append(result) } }
    }

    /// Runs `queue` until the task is cancelled, logging every attempt it reports. The log
    /// reads the reports on a task of its own: it hears of an attempt after the state file.
    func run(_ queue: DeliveryQueue) async -> Task<Void, Never> {
        let reports = await queue.reports()
        return Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await queue.run() }
                group.addTask {
                    for await report in reports { self.add([report]) }
                }
            }
        }
    }

    /// Whether the log has heard of every attempt `store` recorded (the queue reports an
    /// attempt once the state file has it).
    func heardEveryAttempt(in store: SQLiteStateStore) throws -> Bool {
        var recorded = 0
        try store.database.query("SELECT COALESCE(SUM(attempts), 0) FROM outbox") { recorded = Int($0.integer(0)) }
        return results.count == recorded
    }
}
