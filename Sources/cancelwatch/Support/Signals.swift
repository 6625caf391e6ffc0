import Dispatch
import Foundation

/// Delivers SIGHUP, SIGINT and SIGTERM to async code without blocking Swift's
/// cooperative pool: each arrival is queued and handed to `next()`.
final class SignalInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var arrived: [Int32] = []
    private var waiter: CheckedContinuation<Int32, Never>?
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "cancelwatch.signals")

    init(_ numbers: [Int32] = [SIGHUP, SIGINT, SIGTERM]) {
        for number in numbers {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    private func deliver(_ number: Int32) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: number)
        } else {
            arrived.append(number)
            lock.unlock()
        }
    }

    /// The next signal, waiting for one if none has arrived; `cancelled` (-1) when the
    /// task is cancelled first, so that a task group racing it against a timer can end.
    func next() async -> Int32 {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                lock.lock()
                if !arrived.isEmpty {
                    let number = arrived.removeFirst()
                    lock.unlock()
                    continuation.resume(returning: number)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: Self.cancelled)
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let waiting = waiter
            waiter = nil
            lock.unlock()
            waiting?.resume(returning: Self.cancelled)
        }
    }

    /// What `next()` returns when its task is cancelled.
    static let cancelled: Int32 = -1

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }
}

/// Waits for SIGINT or SIGTERM; returns the signal's name.
enum ShutdownSignal {
    static func wait() async -> String {
        let inbox = SignalInbox([SIGINT, SIGTERM])
        return SignalInbox.name(await inbox.next())
    }
}

/// A write to a pipe whose reader is gone fails with EPIPE instead of killing the
/// process (SIGPIPE's default): the failure is reported where the write was made.
enum BrokenPipes {
    static func ignore() {
        signal(SIGPIPE, SIG_IGN)
    }
}
