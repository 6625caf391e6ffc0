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
        // In pieces of at most a day: a deadline years away (or `distantFuture`) cannot
        // overflow the nanosecond count, and the wall clock is consulted again after each.
        var seconds = deadline.timeIntervalSinceNow
        while seconds > 0 {
            try await Task.sleep(for: .microseconds(Int64((min(seconds, 86_400) * 1e6).rounded(.up))))
            seconds = deadline.timeIntervalSinceNow
        }
        try Task.checkCancellation()
    }
}
