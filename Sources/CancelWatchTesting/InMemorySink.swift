import CancelWatch
import Foundation

/// Keeps every delivered event, for tests. Can be told to fail the next attempts.
public final class InMemorySink: AlertSink, @unchecked Sendable {
    public let name: String
    private let lock = NSLock()
    private var stored: [(event: AlertEvent, at: Date)] = []
    private var failures: [DeliveryError] = []
    private let clock: WatchClock

    public init(name: String = "memory", clock: WatchClock = SystemClock()) {
        self.name = name
        self.clock = clock
    }

    /// The events acknowledged so far, in delivery order.
    public var events: [AlertEvent] { lock.withLock { stored.map(\.event) } }

    /// Each acknowledged event with the clock's time when it arrived.
    public var deliveries: [(event: AlertEvent, at: Date)] { lock.withLock { stored } }

    /// The next `count` attempts fail with `error`.
    public func failNext(_ count: Int, with error: DeliveryError = DeliveryError(retryable: true, message: "test failure")) {
        lock.withLock { failures += Array(repeating: error, count: count) }
    }

    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        let failure: DeliveryError? = lock.withLock {
            if !failures.isEmpty { return failures.removeFirst() }
            stored.append((event, clock.now()))
            return nil
        }
        if let failure { throw failure }
    }
}
