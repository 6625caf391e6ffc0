import Foundation

/// Checks `condition` on the real clock every few milliseconds until it holds or `limit`
/// seconds pass; returns whether it held. For a test waiting on a signal another task
/// gives (a count, a parked loop), never for "nothing happened".
public func eventually(limit: TimeInterval = 30, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = Date().addingTimeInterval(limit)
    while Date() < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}

/// ``eventually(limit:_:)``, throwing ``WaitTimedOut`` when `condition` never holds.
public func waitFor(limit: TimeInterval = 60, _ condition: () async throws -> Bool) async throws {
    guard try await eventually(limit: limit, condition) else { throw WaitTimedOut(seconds: limit) }
}

/// A condition a test waited for did not hold in time.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public var seconds: TimeInterval
    public var description: String { "the condition did not hold within \(Int(seconds))s" }
}
