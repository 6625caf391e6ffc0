import Foundation

/// A fixed set of dedicated threads for blocking calls (libcurl's easy interface).
/// Blocking work must never run on Swift's cooperative pool: on a 2-core machine
/// one blocked transfer per core starves every task.
public final class BlockingWorkers: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [(WorkerContext) -> Void] = []
    private var stopped = false
    private var threads: [Thread] = []

    /// Per-thread state a job may use (a reused curl handle keeps connections alive).
    public final class WorkerContext {
        public var storage: [String: AnyObject] = [:]
    }

    public init(threads count: Int, name: String) {
        for i in 0..<max(1, count) {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
    }

    deinit {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `job` on a worker thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ job: @escaping @Sendable (WorkerContext) -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            enqueue { context in continuation.resume(returning: job(context)) }
        }
    }

    private func enqueue(_ job: @escaping (WorkerContext) -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        let context = WorkerContext()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job(context)
        }
    }
}
