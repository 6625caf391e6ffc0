import Foundation

/// Whether the rules' `act` clauses answer requests or only say what they would do.
public enum ActionMode: String, Sendable, Hashable, CaseIterable {
    /// Nothing is sent: each answer a rule would give is logged and emitted as an `action` event.
    case dryRun = "dry-run"
    /// The answers are sent (at most `max_per_hour` an hour).
    case live
}

/// The config's `actions:` (`{mode: dry-run | live, max_per_hour: N}`): what acting rules may do.
public struct ActionsConfig: Sendable, Hashable {
    /// Default `dry-run`.
    public var mode: ActionMode
    /// The most answers rules send in an hour, across replicas; default 20.
    public var maxPerHour: Int

    public static let defaultMaxPerHour = 20
    /// `max_per_hour:` from 1 to 10,000.
    public static let maxPerHourRange = 1...10_000

    public init(mode: ActionMode = .dryRun, maxPerHour: Int = ActionsConfig.defaultMaxPerHour) {
        self.mode = mode
        self.maxPerHour = maxPerHour
    }
}
