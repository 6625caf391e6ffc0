import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Standard output, standard error (or another descriptor), written only here: with
/// `write(2)` on a thread of its own, never on Swift's cooperative pool, since a pipe
/// nobody reads blocks the writer. A failed write (a closed pipe, a full disk) is an
/// error the caller sees and a count, never a trap; SIGPIPE must be ignored (`main`).
/// One thread per stream writes in order, so lines never interleave.
public final class StandardStream: Sendable {
    /// File descriptor 1.
    public static let output = StandardStream(fileDescriptor: STDOUT_FILENO, name: "stdout")
    /// File descriptor 2.
    public static let error = StandardStream(fileDescriptor: STDERR_FILENO, name: "stderr")

    /// The shared stream for 1 and 2, a new one for any other descriptor.
    public static func forDescriptor(_ fd: Int32) -> StandardStream {
        switch fd {
        case STDOUT_FILENO: output
        case STDERR_FILENO: error
        default: StandardStream(fileDescriptor: fd, name: "fd \(fd)")
        }
    }

    /// Bytes `enqueue` lets wait for a slow or blocked stream; later lines are dropped (and counted).
    public static let queueLimit = 4 << 20

    public let fileDescriptor: Int32
    /// `stdout`, `stderr`: the metric's label and the error's wording.
    public let name: String
    private let workers: BlockingWorkers
    private let state = LockedState()

    public init(fileDescriptor: Int32, name: String) {
        self.fileDescriptor = fileDescriptor
        self.name = name
        workers = BlockingWorkers(threads: 1, name: name)
    }

    /// Writes `text` whole, waiting (off the pool) until it is written. Cancelling the
    /// waiting task ends the wait; a write that has not begun then never happens.
    public func write(_ text: String) async throws(OutputError) {
        let bytes = Array(text.utf8)
        let fd = fileDescriptor
        let waiter = ResumeOnce<Int32?>()
        let failure = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
                waiter.set(continuation)
                workers.enqueue { [self] _ in
                    guard waiter.claimForWork() else { return }
                    let failure = Self.writeAll(bytes, to: fd)
                    record(failure)
                    waiter.resume(failure)
                }
            }
        } onCancel: {
            waiter.resume(ECANCELED)
        }
        if let failure { throw OutputError(stream: name, code: failure) }
    }

    /// Queues `text` and returns at once (log lines, which may be written from any task).
    /// While more than `queueLimit` bytes wait, `text` is dropped and counted as a failure.
    public func enqueue(_ text: String) {
        let bytes = Array(text.utf8)
        let accepted = state.withLock { state in
            guard state.queued + bytes.count <= Self.queueLimit else { return false }
            state.queued += bytes.count
            return true
        }
        guard accepted else {
            record(ENOBUFS)
            return
        }
        let fd = fileDescriptor
        workers.enqueue { [self] _ in
            let failure = Self.writeAll(bytes, to: fd)
            state.withLock { $0.queued -= bytes.count }
            record(failure)
        }
    }

    /// Waits until what was queued before is written, or `seconds` passed (a stream
    /// nobody reads must not keep the process from exiting).
    public func drain(within seconds: TimeInterval) async {
        let waiter = ResumeOnce<Int32?>()
        _ = await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
            waiter.set(continuation)
            workers.enqueue { _ in waiter.resume(nil) }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { waiter.resume(nil) }
        }
    }

    /// Writes that failed or were dropped since the process started.
    public var failures: Int { state.withLock { $0.failures } }

    /// Calls `observer` after each failed or dropped write (the metric).
    public func onFailure(_ observer: @escaping @Sendable () -> Void) {
        state.withLock { $0.observers.append(observer) }
    }

    private func record(_ failure: Int32?) {
        guard failure != nil else { return }
        let observers = state.withLock { state in
            state.failures += 1
            return state.observers
        }
        for observer in observers { observer() }
    }

    /// Writes every byte, retrying short writes, EINTR, and EAGAIN on a non-blocking
    /// descriptor (waiting until it is writable); returns errno on failure.
    static func writeAll(_ bytes: [UInt8], to fd: Int32) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBufferPointer { buffer in
                Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written >= 0 {
                offset += written
                continue
            }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                var wanted = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&wanted, 1, -1)
            default:
                return code
            }
        }
        return nil
    }

    private struct State {
        var queued = 0
        var failures = 0
        var observers: [@Sendable () -> Void] = []
    }

    private final class LockedState: @unchecked Sendable {
        private let lock = NSLock()
        private var state = State()
        func withLock<T>(_ body: (inout State) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&state)
        }
    }
}

/// A write to stdout or stderr that failed: `cannot write to stdout: Broken pipe`.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public var stream: String
    /// errno (ECANCELED when the waiting task was cancelled).
    public var code: Int32
    public var description: String { "cannot write to \(stream): \(String(cString: strerror(code)))" }
}

/// A continuation resumed once, by whichever comes first: the work, a timer or a cancellation.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var early: T?
    private var done = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        lock.lock()
        if done, let early {
            lock.unlock()
            continuation.resume(returning: early)
            return
        }
        self.continuation = continuation
        lock.unlock()
    }

    /// For the work: false when the wait already ended (cancelled), so the work is skipped.
    func claimForWork() -> Bool {
        lock.withLock { !done }
    }

    func resume(_ value: T) {
        lock.lock()
        guard !done else {
            lock.unlock()
            return
        }
        done = true
        guard let continuation else {
            early = value
            lock.unlock()
            return
        }
        self.continuation = nil
        lock.unlock()
        continuation.resume(returning: value)
    }
}
