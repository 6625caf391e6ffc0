import Foundation

/// The listeners of a stage's reports: each reads a one-way sequence of its own that the
/// stage yields to and never waits on (each keeps the newest 1024 it has not read). A
/// listener that stops reading is forgotten.
final class ReportListeners<Report: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuations: [UInt64: AsyncStream<Report>.Continuation] = [:]
    private var nextID: UInt64 = 0

    var isEmpty: Bool { lock.withLock { continuations.isEmpty } }

    /// A new listener's sequence, starting with `first`.
    func listen(first: [Report]) -> AsyncStream<Report> {
        let (stream, continuation) = AsyncStream<Report>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        for report in first { continuation.yield(report) }
        let id: UInt64 = lock.withLock {
            nextID += 1
            continuations[nextID] = continuation
            return nextID
        }
        continuation.onTermination = { [weak self] _ in self?.forget(id) }
        return stream
    }

    func publish(_ report: Report) {
        for continuation in lock.withLock({ Array(continuations.values) }) { continuation.yield(report) }
    }

    private func forget(_ id: UInt64) {
        _ = lock.withLock { continuations.removeValue(forKey: id) }
    }
}
