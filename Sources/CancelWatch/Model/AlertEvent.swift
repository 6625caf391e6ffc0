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
///
/// Its Codable form is the `generic` webhook body (also what `stdout` prints with
/// `format: json`, and, in the state file's form, what the outbox keeps): `version`, `id`,
/// `event`, `rule`, `severity`, `source`, `marketplace`, `outcome`, `actor`, `occurred_at`,
/// `message`, `request`, `deadline`, `remaining_seconds`, every one present (null where it
/// does not apply); a `group` adds `events` (its members' forms), a `digest` adds `requests`.
/// `sinks` is not part of it.
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
        /// A rule answered the request, or would have in dry-run (`outcome` says which answer,
        /// `message` what came of it).
        case action
        /// A grouped sink's one message for several `firing` and `repeat` events (`members`).
        case group
        /// A rule file's digest (`rule` is its name): the requests its `include` matched (`listed`).
        case digest
    }

    /// The same across retries and restarts: derived from source, request, rule, kind and occurrence.
    public var id: String
    public var kind: Kind
    /// The rule's name; empty for source events.
    public var rule: String
    public var severity: Severity
    public var source: String
    public var marketplace: Marketplace
    /// The request it is about; nil for source events.
    public var request: CancellationRequest?
    /// For `resolved`: approved, rejected or vanished; for `action`: what the answer asks for.
    public var outcome: Outcome?
    /// Who answered the request through cancelwatch, for `resolved` and `action`; nil when
    /// nobody did (the marketplace, or the seller elsewhere).
    public var actor: AnswerActor?
    public var occurredAt: Date
    /// The rule's rendered message (or the health message).
    public var message: String
    /// Sink names to deliver to.
    public var sinks: [String]
    /// For `group`: the events it carries, sorted by deadline; empty for every other kind.
    public var members: [AlertEvent]
    /// For `digest`: the requests it lists, sorted by deadline; empty for every other kind.
    public var listed: [CancellationRequest]

    public init(
        id: String, kind: Kind, rule: String, severity: Severity, source: String, marketplace: Marketplace,
        request: CancellationRequest?, outcome: Outcome? = nil, actor: AnswerActor? = nil, occurredAt: Date, message: String,
        sinks: [String], members: [AlertEvent] = [], listed: [CancellationRequest] = []
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
        self.actor = actor
        self.occurredAt = occurredAt
        self.message = message
        self.sinks = sinks
        self.members = members
        self.listed = listed.map { $0.owningItsRaw() }
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

    /// The `generic` webhook body: the event's Codable form as its receivers read it (`JSONValueEncoder.Form.webhookBody`).
    public var webhookBody: JSONValue {
        // Whole-second dates cannot fail to encode (one out of range is written as a note).
        (try? JSONValueEncoder(form: .webhookBody).encode(self)) ?? .null
    }
}

extension AlertEvent: Codable {
    enum CodingKeys: String, CodingKey {
        case version, id
        case kind = "event"
        case rule, severity, source, marketplace, outcome, actor
        case occurredAt = "occurred_at"
        case message, request, deadline
        case remainingSeconds = "remaining_seconds"
        case members = "events"
        case listed = "requests"
    }

    /// The form's version, for the webhook's receivers.
    static let formVersion = "1"

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formVersion, forKey: .version)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(rule.isEmpty ? nil : rule, forKey: .rule)
        try container.encode(severity, forKey: .severity)
        try container.encode(source, forKey: .source)
        try container.encode(marketplace, forKey: .marketplace)
        try container.encodeIfPresent(outcome, forKey: .outcome)
        try container.encodeIfPresent(actor?.description, forKey: .actor)
        try container.encode(occurredAt, forKey: .occurredAt)
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(request, forKey: .request)
        try container.encodeIfPresent(request?.deadline, forKey: .deadline)
        try container.encodeIfPresent(remainingSeconds, forKey: .remainingSeconds)
        if kind == .group { try container.encode(members, forKey: .members) }
        if kind == .digest {
            if encoder.writesWebhookBody {
                try container.encode(listed.map { ListedRequest(request: $0, now: occurredAt) }, forKey: .listed)
            } else {
                try container.encode(listed, forKey: .listed)
            }
        }
    }

    /// A digest's request in the webhook body: the members an event has about its request
    /// (the body's `request` leaves out its source and deadline), then the request.
    private struct ListedRequest: Encodable {
        var request: CancellationRequest
        var now: Date

        enum CodingKeys: String, CodingKey {
            case source, marketplace, deadline, request
            case remainingSeconds = "remaining_seconds"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(request.source, forKey: .source)
            try container.encode(request.marketplace, forKey: .marketplace)
            try container.encode(request.deadline, forKey: .deadline)
            try container.encode(Int64(clampingFloor: request.deadline.timeIntervalSince(now)), forKey: .remainingSeconds)
            try container.encode(request, forKey: .request)
        }
    }

    /// The event the form describes; `sinks` is empty (the outbox keeps them beside it).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id), kind: try container.decode(Kind.self, forKey: .kind),
            rule: try container.decodeIfPresent(String.self, forKey: .rule) ?? "",
            severity: try container.decode(Severity.self, forKey: .severity), source: try container.decode(String.self, forKey: .source),
            marketplace: try container.decode(Marketplace.self, forKey: .marketplace),
            request: try container.decodeIfPresent(CancellationRequest.self, forKey: .request),
            outcome: try container.decodeIfPresent(Outcome.self, forKey: .outcome),
            actor: try container.decodeIfPresent(String.self, forKey: .actor).flatMap(AnswerActor.init),
            occurredAt: try container.decode(Date.self, forKey: .occurredAt), message: try container.decode(String.self, forKey: .message),
            sinks: [], members: try container.decodeIfPresent([AlertEvent].self, forKey: .members) ?? [],
            listed: try container.decodeIfPresent([CancellationRequest].self, forKey: .listed) ?? [])
    }
}
