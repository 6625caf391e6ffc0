import Foundation

/// A fixed set of dedicated threads for blocking calls (libcurl's easy interface, SQLite
/// through ``BlockingExecutor``).
/// Blocking work must never run on Swift's cooperative pool: on a 2-core machine
/// one blocked transfer per core starves every task. The threads end when the
/// pool is released and its queue is empty.
public final class BlockingWorkers: Sendable {
    /// Per-thread state a job may use (a reused curl handle keeps connections alive).
    public final class WorkerContext {
        public var storage: [String: AnyObject] = [:]
    }

    private let queue = JobQueue()

    public init(threads count: Int, name: String, stackSize: Int = 1 << 20) {
        for i in 0..<max(1, count) {
            let queue = self.queue
            let thread = Thread { queue.work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = stackSize
            thread.start()
        }
    }

    deinit { queue.stop() }

    /// One thread kept for the process's one-off blocking calls (opening the state file,
    /// `status`'s reads, a rule test's store), rather than a thread made for each.
    public static let shared = BlockingWorkers(threads: 1, name: "blocking")

    /// Runs `job` on a worker thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ job: @escaping @Sendable (WorkerContext) -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            queue.enqueue { context in continuation.resume(returning: job(context)) }
        }
    }

    /// Runs `body` on a worker thread; its result or error comes back to the awaiting task.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await run { _ in Result { () throws(E) -> T in try body() } }
        return try result.get()
    }

    func enqueue(_ job: @escaping (WorkerContext) -> Void) { queue.enqueue(job) }
}

/// A serial executor on a thread of its own, for an actor whose methods make blocking
/// calls (the engine's actors call SQLite, which may wait up to 5 s for a lock, and
/// fsync): its jobs run there, never on the cooperative pool. The thread ends when the
/// executor is released and its queue is empty.
public final class BlockingExecutor: SerialExecutor, Sendable {
    private let thread: BlockingWorkers

    public init(name: String) {
        // A main thread's stack: actor code (rule evaluation, JSON) runs here.
        thread = BlockingWorkers(threads: 1, name: name, stackSize: 8 << 20)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        thread.enqueue { _ in job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
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
