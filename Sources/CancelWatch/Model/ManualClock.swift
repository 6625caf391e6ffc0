import Foundation

/// A virtual clock that moves only when told to: what `cancelwatch test` and the tests run on.
/// Sleepers wake, in deadline order, when `advance` passes their instant.
public final class ManualClock: WatchClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    private var sleepers: [(deadline: Date, id: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextID: UInt64 = 0

    public init(_ start: Date = Date(timeIntervalSince1970: 1_764_000_000)) {
        current = start
    }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// How many tasks are waiting in `sleep(until:)`.
    public var sleeperCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sleepers.count
    }

    /// The instants the tasks in `sleep(until:)` wait for, earliest first.
    public var sleeperDeadlines: [Date] {
        lock.lock()
        defer { lock.unlock() }
        return sleepers.map(\.deadline).sorted()
    }

    public func sleep(until deadline: Date) async throws {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                lock.lock()
                if deadline <= current {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                // Cancelled before it was registered: the cancellation handler has run already.
                if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                sleepers.append((deadline, id, continuation))
                lock.unlock()
            }
        } onCancel: {
            lock.lock()
            let index = sleepers.firstIndex { $0.id == id }
            let sleeper = index.map { sleepers.remove(at: $0) }
            lock.unlock()
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward to `date`, waking every sleeper whose deadline has come.
    public func advance(to date: Date) {
        lock.lock()
        if date > current { current = date }
        let due = sleepers.filter { $0.deadline <= current }.sorted { $0.deadline < $1.deadline }
        sleepers.removeAll { $0.deadline <= current }
        lock.unlock()
        for sleeper in due { sleeper.continuation.resume() }
    }

    public func advance(by seconds: TimeInterval) {
        advance(to: now().addingTimeInterval(seconds))
    }
}
