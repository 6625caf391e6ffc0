import Foundation

/// What the ledger's decisions need of a compiled rule.
public protocol AlertRule: Sendable {
    var name: String { get }
    var severity: Severity { get }
    /// Sink names.
    var notify: [String] { get }
    /// `repeat every D`; nil fires once.
    var repeatEvery: TimeInterval? { get }
    /// When a firing due at `now` may go out: `now`, or the end of the rule's quiet
    /// window when `now` is inside it and the deadline is not.
    func quietRelease(at now: Date, deadline: Date) -> Date
    /// False with `resolve off`: no `resolved`/`expired` events.
    var notifiesResolution: Bool { get }
    func matches(_ request: CancellationRequest, now: Date) -> Bool
    /// The earliest instant after `now` at which `matches` may change by time alone; nil if never.
    func nextChange(for request: CancellationRequest, after now: Date) -> Date?
    /// The alert text for `firing` and `repeat`.
    func message(for request: CancellationRequest, now: Date) -> String
    /// The parts of `request.raw` that `matches`, `nextChange` and `message` read: the
    /// ledger keeps only these in memory. By default the whole object.
    var rawPaths: RawPaths { get }
    /// The answer the rule gives when it fires (`act`): an `action` event beside its `firing`.
    /// By default none.
    var action: Answer? { get }
}

extension AlertRule {
    public var rawPaths: RawPaths { .everything }
    public var action: Answer? { nil }
}

extension Sequence where Element == any AlertRule {
    /// The parts of a request's raw object any of these rules reads.
    public var rawPaths: RawPaths { reduce(RawPaths.none) { $0.union($1.rawPaths) } }
}

extension Sequence where Element: AlertRule {
    /// The parts of a request's raw object any of these rules reads.
    public var rawPaths: RawPaths { reduce(RawPaths.none) { $0.union($1.rawPaths) } }
}
