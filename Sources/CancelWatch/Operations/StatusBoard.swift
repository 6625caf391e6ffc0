import Foundation
import Synchronization

/// A pending request as the status page shows it: the request and the alert states of the
/// rules that have fired on it.
public struct PendingRequest: Sendable {
    public var request: CancellationRequest
    /// The rules that fired on it (at least one `firing`), by rule name.
    public var alerts: [AlertState]

    public init(request: CancellationRequest, alerts: [AlertState] = []) {
        self.request = request
        self.alerts = alerts
    }
}

/// One event as the status page lists it: what it was about, not its whole body.
public struct RecentEvent: Sendable {
    /// Its place in this process's sequence of events (1, 2, …): `/api/v1/events?since=`.
    public var cursor: Int
    public var id: String
    public var kind: AlertEvent.Kind
    public var rule: String
    public var severity: Severity
    public var source: String
    public var order: String?
    public var occurredAt: Date
    public var message: String

    /// The longest message kept, in UTF-8 bytes.
    static let messageLimit = 300
}

/// What the status page serves, kept up to date by the running pipeline as `/metrics` is
/// (a page view never waits for the ledger or reads the state file): the pending requests
/// nearest their deadlines, the sources' health, the latest dead letters, the last events,
/// and the config's sources, sinks and time zone. One board lives as long as the process.
public final class StatusBoard: Sendable {
    /// The most requests kept (the nearest deadlines); the page says how many more there are.
    public static let maxRequests = 1000
    /// The most events kept, newest last.
    public static let maxEvents = 200
    /// The dead letters kept, newest first.
    public static let deadLettersShown = 5

    /// The pipeline's view of its configuration.
    public struct Configured: Sendable {
        public var sources: [String]
        public var sinks: [String]
        public var timeZone: TimeZone
        /// The status page's token (`auth:`); nil: open on loopback only.
        public var auth: StatusAuth?
        /// What answers requests from the page (the pipeline's, the same the command line uses); nil: none yet.
        public var answerer: Answerer?

        public init(
            sources: [String] = [], sinks: [String] = [], timeZone: TimeZone = .gmt, auth: StatusAuth? = nil,
            answerer: Answerer? = nil
        ) {
            self.sources = sources
            self.sinks = sinks
            self.timeZone = timeZone
            self.auth = auth
            self.answerer = answerer
        }
    }

    /// The ledger's pending requests and sources' health at one instant.
    public struct Pending: Sendable {
        /// Nearest deadline first, at most ``StatusBoard/maxRequests``.
        public var requests: [PendingRequest] = []
        /// How many were pending (more than `requests` holds when it was cut).
        public var total = 0
        public var health: [SourceHealth] = []
        /// When the ledger was read; nil: not yet.
        public var at: Date?
    }

    private struct State {
        var configured = Configured()
        var pending = Pending()
        var deadLetters: [DeadLetter] = []
        var events: [RecentEvent] = []
        var lastCursor = 0
    }

    private let state = Mutex(State())
    /// The page's wrong-token counts, signed-out sessions and answer slots: kept with the
    /// board for the process's life, so a reload that moves `listen:` keeps them.
    public let guards: StatusPageGuards

    public init(guards: StatusPageGuards = StatusPageGuards()) { self.guards = guards }

    public var configured: Configured { state.withLock { $0.configured } }
    public var pending: Pending { state.withLock { $0.pending } }
    public var deadLetters: [DeadLetter] { state.withLock { $0.deadLetters } }

    public func configure(_ configured: Configured) {
        state.withLock { $0.configured = configured }
    }

    /// The ledger's pending requests (cut to ``maxRequests``, nearest deadline first) and health.
    public func setPending(_ requests: [PendingRequest], total: Int, health: [SourceHealth], at: Date) {
        let kept = Array(requests.prefix(Self.maxRequests))
        state.withLock { $0.pending = Pending(requests: kept, total: max(total, kept.count), health: health, at: at) }
    }

    /// The latest dead letters, newest first.
    public func setDeadLetters(_ letters: [DeadLetter]) {
        let kept = Array(letters.prefix(Self.deadLettersShown))
        state.withLock { $0.deadLetters = kept }
    }

    /// Adds `events` after the ones kept (the oldest beyond ``maxEvents`` go).
    public func record(_ events: [AlertEvent]) {
        guard !events.isEmpty else { return }
        state.withLock { state in
            for event in events {
                state.lastCursor += 1
                state.events.append(
                    RecentEvent(
                        cursor: state.lastCursor, id: event.id, kind: event.kind, rule: event.rule, severity: event.severity,
                        source: event.source, order: event.request?.order, occurredAt: event.occurredAt,
                        message: TextCut.cut(event.message, limit: RecentEvent.messageLimit)))
            }
            if state.events.count > Self.maxEvents { state.events.removeFirst(state.events.count - Self.maxEvents) }
        }
    }

    /// Where `/api/v1/events` starts: after an event's cursor, or after an instant.
    public enum EventsSince: Sendable, Equatable {
        case cursor(Int)
        case time(Date)

        /// A whole number (a cursor) or an RFC 3339 time; nil for anything else.
        public init?(parsing text: String) {
            if !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let cursor = Int(text) {
                self = .cursor(cursor)
            } else if let time = Timestamp.parse(text) {
                self = .time(time)
            } else {
                return nil
            }
        }
    }

    /// What ``events(since:limit:)`` answers.
    public struct EventsPage: Sendable {
        /// Newest last.
        public var events: [RecentEvent]
        /// Events after `since` are gone from the board (or, without `since`, some kept were left out).
        public var truncated: Bool
        /// More after these are kept.
        public var more: Bool
        /// The last event's cursor returned, or the latest when none is.
        public var cursor: Int
        /// `since` was a cursor this process never gave (one from before a restart): the events
        /// returned are the oldest kept, as if none had been seen.
        public var reset: Bool
    }

    /// Without `since`, the newest `limit` events kept; with it, the oldest `limit` after it (so a
    /// client passing each answer's `cursor` back gets every event, in turns), newest last.
    public func events(since: EventsSince?, limit: Int) -> EventsPage {
        state.withLock { state in
            var since = since
            var reset = false
            // Cursors count from 1 at each start: one beyond the last is from an earlier process.
            if case .cursor(let cursor) = since, cursor > state.lastCursor {
                since = .cursor(0)
                reset = true
            }
            let after: [RecentEvent]
            switch since {
            case nil: after = state.events
            case .cursor(let cursor): after = state.events.filter { $0.cursor > cursor }
            case .time(let time): after = state.events.filter { $0.occurredAt > time }
            }
            let limit = max(0, limit)
            guard since != nil else {
                return EventsPage(
                    events: Array(after.suffix(limit)), truncated: after.count > limit, more: false, cursor: state.lastCursor, reset: false)
            }
            let kept = Array(after.prefix(limit))
            // A cursor older than the oldest event kept: some after it are gone.
            var lost = false
            if case .cursor(let cursor) = since, let first = state.events.first { lost = cursor < first.cursor - 1 }
            return EventsPage(
                events: kept, truncated: lost, more: kept.count < after.count, cursor: kept.last?.cursor ?? state.lastCursor, reset: reset)
        }
    }
}
