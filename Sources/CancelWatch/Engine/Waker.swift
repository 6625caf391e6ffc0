import Foundation

/// Lets a loop sleep until an instant or until someone has news for it, whichever
/// comes first. A signal sent while nobody waits is kept for the next wait.
public final class Waker: @unchecked Sendable {
    private let lock = NSLock()
    private var signalled = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextID: UInt64 = 0

    public init() {}

    /// Wakes the current (or next) wait.
    public func signal() {
        lock.lock()
        let current = waiters
        waiters.removeAll()
        signalled = current.isEmpty
        lock.unlock()
        for continuation in current.values { continuation.resume() }
    }

    /// Returns at `deadline` (nil: no deadline), on a signal, or on cancellation. A deadline
    /// is kept finite and at least the floor away (``WakeTime/bounded(_:now:)``): a loop
    /// waiting here cannot spin on a deadline that is past, NaN or never moves.
    public func wait(until deadline: Date?, clock: WatchClock) async {
        if consumeSignal() { return }
        let deadline = deadline.map { WakeTime.bounded($0, now: clock.now()) }
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask { try? await clock.sleep(until: deadline) }
            }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    private func consumeSignal() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let was = signalled
        signalled = false
        return was
    }

    private func waitForSignal() async {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                lock.lock()
                if signalled || Task.isCancelled {
                    signalled = false
                    lock.unlock()
                    continuation.resume()
                    return
                }
                waiters[id] = continuation
                lock.unlock()
            }
        } onCancel: {
            lock.lock()
            let continuation = waiters.removeValue(forKey: id)
            lock.unlock()
            continuation?.resume()
        }
    }
}
