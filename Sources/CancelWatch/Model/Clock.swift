import Foundation

/// The one source of "now". Everything that reads the time or waits for an
/// instant takes a `WatchClock`, so tests and `cancelwatch test` run on a virtual one.
public protocol WatchClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
    /// Suspends until `deadline` (or returns at once if it has passed). Throws on cancellation.
    func sleep(until deadline: Date) async throws
}

extension WatchClock {
    public func sleep(for seconds: TimeInterval) async throws {
        try await sleep(until: now().addingTimeInterval(seconds))
    }
}

/// The real clock.
public struct SystemClock: WatchClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 {
            try await Task.sleep(for: .nanoseconds(Int64(seconds * 1e9)))
        } else {
            try Task.checkCancellation()
        }
    }
}
