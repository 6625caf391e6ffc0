import Foundation

extension AlertEvent {
    /// One message carrying `events` (a grouped sink's `firing` and `repeat` events), sorted by
    /// deadline. Its id derives from the members' ids alone: the group sent again after a
    /// failure or a restart has the same id, and so the same Idempotency-Key.
    public static func group(_ events: [AlertEvent], sink: String, at now: Date) -> AlertEvent {
        let members = events.sorted { RequestList.precedes($0.request, $0.id, $1.request, $1.id) }
        let ids = members.map(\.id).sorted().joined(separator: "\u{1F}")
        let sources = Set(members.map(\.source))
        var group = AlertEvent(
            id: Digest.hex(Digest.sha256(Data("group\u{1F}\(ids)".utf8)).prefix(16)), kind: .group, rule: "",
            severity: members.map(\.severity).max() ?? .info, source: sources.count == 1 ? members[0].source : "",
            marketplace: members.first?.marketplace ?? .ozon, request: nil, occurredAt: now, message: "", sinks: [sink],
            members: members)
        group.message = RequestList.headline(of: group)
        return group
    }

    /// The requests a `group` or a `digest` lists, in its order, each once (a group may carry
    /// several rules' events about one request); empty for every other kind.
    public var listedRequests: [CancellationRequest] {
        switch kind {
        case .group:
            var seen = Set<RequestKey>()
            return members.compactMap(\.request).filter { seen.insert($0.key).inserted }
        case .digest:
            return listed
        default:
            return []
        }
    }
}

/// How a `group` or a `digest` reads in a chat message, an email or a terminal: a first line
/// saying how many and the earliest deadline, then one line per request sorted by deadline.
///
///     3 cancellation requests, earliest deadline in 1h 05m
///     0123-0001-1 · ozon-main · 1h 05m left · Передумал покупать
public enum RequestList {
    /// Whether `a` (event or request id `aID`) comes before `b`: earlier deadline first, then
    /// source, then id, so the order is the same however the list was gathered.
    static func precedes(_ a: CancellationRequest?, _ aID: String, _ b: CancellationRequest?, _ bID: String) -> Bool {
        switch (a, b) {
        case (let a?, let b?):
            if a.deadline != b.deadline { return a.deadline < b.deadline }
            if a.source != b.source { return a.source < b.source }
            return a.id < b.id
        case (.some, .none): return true
        case (.none, .some): return false
        case (.none, .none): return aID < bID
        }
    }

    /// `requests` sorted as every list shows them.
    public static func sorted(_ requests: [CancellationRequest]) -> [CancellationRequest] {
        requests.sorted { precedes($0, $0.id, $1, $1.id) }
    }

    /// The first line: for a group, how many requests and the earliest deadline; for a digest,
    /// its name, how many per source and the earliest deadline.
    public static func headline(of event: AlertEvent) -> String {
        event.kind == .digest ? "digest \(event.rule): \(summary(of: event))" : summary(of: event)
    }

    /// The headline without a digest's name (where the line names it already).
    public static func summary(of event: AlertEvent) -> String {
        let requests = event.listedRequests
        let earliest = requests.map(\.deadline).min().map { ", earliest deadline \(timeLeft(until: $0, from: event.occurredAt))" } ?? ""
        switch event.kind {
        case .digest:
            guard !requests.isEmpty else { return "no requests match" }
            var counts: [String: Int] = [:]
            for request in requests { counts[request.source, default: 0] += 1 }
            let perSource = counts.keys.sorted().map { "\($0) \(counts[$0] ?? 0)" }.joined(separator: ", ")
            return "\(requests.count) \(noun(requests.count)) (\(perSource))\(earliest)"
        default:
            return "\(requests.count) cancellation \(noun(requests.count))\(earliest)"
        }
    }

    /// The headline, then one line per request: at most ``longest`` (a group holds no more; a
    /// digest of more says how many it leaves out, so that no list floods a chat).
    public static func text(of event: AlertEvent) -> String {
        let requests = event.listedRequests
        var lines = [headline(of: event)] + requests.prefix(longest).map { line(for: $0, at: event.occurredAt) }
        if requests.count > longest { lines.append("… and \(requests.count - longest) more (cancelwatch status lists every one)") }
        return lines.joined(separator: "\n")
    }

    /// The most requests a list's text shows (a group's `max` at most).
    public static let longest = 500

    /// `0123-0001-1 · ozon-main · 1h 05m left · reason`, on one line.
    public static func line(for request: CancellationRequest, at now: Date) -> String {
        let remaining = request.deadline.timeIntervalSince(now)
        var parts = [
            request.order.isEmpty ? request.id : request.order, request.source,
            remaining >= 0 ? "\(DurationText.format(remaining)) left" : "overdue \(DurationText.format(-remaining))",
        ]
        if !request.reason.isEmpty { parts.append(request.reason) }
        return TerminalText.singleLine(parts.joined(separator: " · "))
    }

    static func timeLeft(until deadline: Date, from now: Date) -> String {
        let remaining = deadline.timeIntervalSince(now)
        return remaining >= 0 ? "in \(DurationText.format(remaining))" : "passed \(DurationText.format(-remaining)) ago"
    }

    static func noun(_ count: Int) -> String { count == 1 ? "request" : "requests" }
}
