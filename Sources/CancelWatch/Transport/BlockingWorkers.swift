import Foundation

/// A fixed set of dedicated threads for blocking calls (libcurl's easy interface).
/// Blocking work must never run on Swift's cooperative pool: on a 2-core machine
/// one blocked transfer per core starves every task. The threads end when the
/// pool is released and its queue is empty.
public final class BlockingWorkers: Sendable {
    /// Per-thread state a job may use (a reused curl handle keeps connections alive).
    public final class WorkerContext {
        public var storage: [String: AnyObject] = [:]
    }

    private let queue = JobQueue()

    public init(threads count: Int, name: String) {
        for i in 0..<max(1, count) {
            let queue = self.queue
            let thread = Thread { queue.work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit { queue.stop() }

    /// Runs `job` on a worker thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ job: @escaping @Sendable (WorkerContext) -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            queue.enqueue { context in continuation.resume(returning: job(context)) }
        }
    }
}

/// The jobs the worker threads share; the threads hold it, not the pool.
private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [(BlockingWorkers.WorkerContext) -> Void] = []
    private var head = 0
    private var stopped = false

    func enqueue(_ job: @escaping (BlockingWorkers.WorkerContext) -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    func work() {
        let context = BlockingWorkers.WorkerContext()
        while true {
            condition.lock()
            while head == jobs.count && !stopped { condition.wait() }
            if head == jobs.count {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job(context)
        }
    }
}
