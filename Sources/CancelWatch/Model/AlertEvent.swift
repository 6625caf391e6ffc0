import Foundation

/// How loud an alert is.
public enum Severity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case info
    case warning
    case critical

    public static func < (a: Severity, b: Severity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Something a sink delivers: a rule's alert about a request, or a source's health.
public struct AlertEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The rule's condition became true.
        case firing
        /// Still true, still pending, `repeat every` came round.
        case `repeat`
        /// The request left the pending list: `outcome` says how.
        case resolved
        /// The deadline passed while pending: the marketplace decided instead of the seller.
        case expired
        /// Polls of `source` kept failing.
        case sourceDown = "source_down"
        /// Polls of `source` succeed again.
        case sourceUp = "source_up"
    }

    /// The same across retries and restarts: derived from source, request, rule, kind and occurrence.
    public var id: String
    public var kind: Kind
    /// The rule's name; empty for source events.
    public var rule: String
    public var severity: Severity
    public var source: String
    public var marketplace: Marketplace
    /// The request it is about; nil for source events. Set by `init` (and by the scheduler,
    /// filling in a raw object as a value).
    public internal(set) var request: CancellationRequest?
    /// For `resolved`: approved, rejected or vanished.
    public var outcome: Outcome?
    public var occurredAt: Date
    /// The rule's rendered message (or the health message).
    public var message: String
    /// Sink names to deliver to.
    public var sinks: [String]

    public init(
        id: String, kind: Kind, rule: String, severity: Severity, source: String, marketplace: Marketplace,
        request: CancellationRequest?, outcome: Outcome? = nil, occurredAt: Date, message: String, sinks: [String]
    ) {
        self.id = id
        self.kind = kind
        self.rule = rule
        self.severity = severity
        self.source = source
        self.marketplace = marketplace
        // An event may wait long for its sink: its request does not keep the page it was read from.
        self.request = request?.owningItsRaw()
        self.outcome = outcome
        self.occurredAt = occurredAt
        self.message = message
        self.sinks = sinks
    }

    /// A stable id: the first 128 bits of SHA-256 over the parts, in hex.
    public static func makeID(source: String, request: String, rule: String, kind: Kind, occurrence: Int) -> String {
        let text = [source, request, rule, kind.rawValue, String(occurrence)].joined(separator: "\u{1F}")
        return Digest.hex(Digest.sha256(Data(text.utf8)).prefix(16))
    }

    /// Seconds from `occurredAt` to the request's deadline (negative after it).
    public var remainingSeconds: Int64? {
        request.map { Int64(clampingFloor: $0.deadline.timeIntervalSince(occurredAt)) }
    }

    /// The `generic` webhook body (DESIGN §5), also what `stdout` prints with `format: json`.
    public var webhookBody: JSONValue {
        var body: [String: JSONValue] = [
            "version": "1", "id": .string(id), "event": .string(kind.rawValue), "rule": rule.isEmpty ? .null : .string(rule),
            "severity": .string(severity.rawValue), "source": .string(source), "marketplace": .string(marketplace.rawValue),
            "outcome": outcome.map { .string($0.rawValue) } ?? .null, "occurred_at": .string(Timestamp.format(occurredAt)),
            "message": .string(message),
        ]
        if let request {
            body["request"] = [
                "id": .string(request.id), "order": .string(request.order), "state": .string(request.state.rawValue),
                "raw_state": .string(request.rawState), "initiator": .string(request.initiator), "reason": .string(request.reason),
                "created_at": request.createdAt.map { .string(Timestamp.format($0)) } ?? .null, "raw": request.raw,
            ]
            body["deadline"] = .string(Timestamp.format(request.deadline))
            body["remaining_seconds"] = remainingSeconds.map { .integer($0) } ?? .null
        } else {
            body["request"] = .null
            body["deadline"] = .null
            body["remaining_seconds"] = .null
        }
        return .object(body)
    }
}
