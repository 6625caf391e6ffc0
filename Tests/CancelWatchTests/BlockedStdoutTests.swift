import CancelWatch
import Foundation
import Testing

/// A task executor of one thread the test owns: a job that blocks it holds up every
/// later job, as a blocking write on Swift's cooperative pool holds up tasks there.
final class OneThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init() {
        let thread = Thread { [unowned self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.name = "one-thread-executor"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }
}

@Suite struct BlockedStdoutTests {
    /// The stdout sink writes into a pipe that is full and unread. Its delivery must wait
    /// without holding the thread it was called on: another task on that thread runs.
    @Test func aDeliveryToAStdoutNobodyReadsLeavesItsThreadFree() async throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(fds[0]) }
        let flags = fcntl(fds[1], F_GETFL)
        _ = fcntl(fds[1], F_SETFL, flags | O_NONBLOCK)
        let chunk = [UInt8](repeating: 0x78, count: 4096)
        while write(fds[1], chunk, chunk.count) > 0 {}
        while write(fds[1], chunk, 1) == 1 {}
        _ = fcntl(fds[1], F_SETFL, flags)
        let sink = StdoutSink(name: "console", output: .fileDescriptor(fds[1]))

        // The executor's thread stands for a thread of the cooperative pool. If the write held
        // it, the probe could run only once a watchdog drains the pipe, which it then reports.
        let executor = OneThreadExecutor()
        let watchdog = PipeWatchdog(readFD: fds[0], after: 30)
        let delivery = Task(executorPreference: executor) { try await sink.deliver(SinkTestEvents.firing()) }
        let probe = Task(executorPreference: executor) { "ran" }
        #expect(await probe.value == "ran")
        #expect(!watchdog.drained, "the probe ran only after the pipe was drained: the write held its thread")

        // Once somebody reads, the line arrives whole.
        watchdog.drainNow()
        try await delivery.value
        close(fds[1])
        #expect(watchdog.received.contains("CRITICAL firing final-hour"))
    }
}

/// Drains a pipe after `seconds` unless told to earlier; keeps what it read.
final class PipeWatchdog: @unchecked Sendable {
    private let condition = NSCondition()
    private var start = false
    private var didDrainEarly = false
    private var bytes: [UInt8] = []

    init(readFD: Int32, after seconds: TimeInterval) {
        let thread = Thread { [self] in
            let deadline = Date().addingTimeInterval(seconds)
            condition.lock()
            while !start && condition.wait(until: deadline) {}
            didDrainEarly = !start
            condition.unlock()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(readFD, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return }
                condition.withLock { bytes += buffer[0..<count] }
            }
        }
        thread.start()
    }

    /// Whether the watchdog had to drain the pipe because nothing else moved.
    var drained: Bool { condition.withLock { didDrainEarly } }

    var received: String { condition.withLock { String(decoding: bytes, as: UTF8.self) } }

    func drainNow() {
        condition.withLock {
            start = true
            condition.signal()
        }
    }
}
