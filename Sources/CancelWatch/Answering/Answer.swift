import Foundation

/// What a seller answers to a cancellation request.
public enum Decision: String, Sendable, Hashable, Codable, CaseIterable {
    /// The cancellation goes through: the order is cancelled and the buyer refunded.
    case approve
    /// The cancellation is refused: the order stands and must be delivered.
    case refuse

    /// What the request becomes when the marketplace takes the answer.
    public var outcome: Outcome {
        switch self {
        case .approve: .approved
        case .refuse: .rejected
        }
    }
}

/// One answer to send: the decision and its comment (a refusal always has one).
public struct Answer: Sendable, Hashable {
    public var decision: Decision
    /// The reason given to the marketplace; never empty for a refusal.
    public var comment: String

    /// The longest comment sent (the marketplaces document none; a seller's reason is a sentence).
    public static let commentLimit = 500

    /// Throws a one-line reason when a refusal has no comment, or a comment is too long or
    /// holds control characters.
    public init(_ decision: Decision, comment: String = "") throws(AnswerInputError) {
        let trimmed = comment.trimmingCharacters(in: .whitespacesAndNewlines)
        if decision == .refuse && trimmed.isEmpty {
            throw AnswerInputError("a refusal needs a comment (the reason the marketplace passes on to the buyer)")
        }
        guard trimmed.count <= Self.commentLimit else {
            throw AnswerInputError("the comment is \(trimmed.count) characters long; at most \(Self.commentLimit)")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" }) else {
            throw AnswerInputError("the comment holds a control character")
        }
        self.decision = decision
        self.comment = trimmed
    }
}

/// An answer that cannot be sent as given (before anything reaches the marketplace).
public struct AnswerInputError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Why a marketplace did not take an answer: it said so, and the request is as it was.
public struct AnswerRefusal: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// No such request for this account (Ozon 404; RED -2000101).
        case unknownRequest = "unknown_request"
        /// It was answered already (Ozon 400 code 9; RED -2000202).
        case alreadyDecided = "already_decided"
        /// Its deadline passed: the marketplace decided (Ozon 409).
        case deadlinePassed = "deadline_passed"
        /// The account may not answer it (Ozon 403; RED -2000401).
        case noPermission = "no_permission"
        /// Credentials or signature refused (401).
        case auth
        /// The answer call itself is gone (404 on the path, RED "method offline").
        case endpointGone = "endpoint_gone"
        /// Too many calls (429): nothing was applied; it may be sent again later.
        case rateLimited = "rate_limited"
        /// The marketplace could not be reached (no connection made, cancelled before
        /// sending): nothing was sent; it may be sent again.
        case notSent = "not_sent"
        /// Any other refusal the marketplace stated.
        case other
    }

    public var kind: Kind
    /// The HTTP status, where the refusal came with one.
    public var status: Int?
    /// The marketplace's own code (Ozon `code`, RED `error_code`), as text.
    public var code: String?
    /// The marketplace's message, scrubbed of credentials and cut.
    public var message: String

    public init(kind: Kind, status: Int? = nil, code: String? = nil, message: String) {
        self.kind = kind
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let status { parts.append("HTTP \(status)") }
        if let code { parts.append("code \(code)") }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// What sending one answer came to.
public enum AnswerOutcome: Sendable, Hashable {
    /// The marketplace took it: the request is decided.
    case accepted
    /// The marketplace refused it: nothing changed.
    case refused(AnswerRefusal)
    /// It may or may not have been applied (a timeout or a 5xx after sending, an answer
    /// that cannot be read): it is never sent again; the next listing tells.
    case unknown(String)
}

/// A marketplace client that can also answer requests.
public protocol AnsweringClient: MarketplaceClient {
    /// Sends `answer` for `request` (its `id` and `order` as the marketplace lists them).
    /// Retries only what cannot have reached the marketplace (no connection; a 429):
    /// anything that may have been applied comes back `.unknown`, never sent twice.
    func answer(_ request: CancellationRequest, with answer: Answer) async -> AnswerOutcome
}

/// Who answered a request: the command line's user, a Telegram user, or a rule.
public struct AnswerActor: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        case cli
        case telegram
        case rule
        /// The status page: a signed-in user's name, or `api` for the bearer token.
        case web
    }

    public var kind: Kind
    /// The OS user name, the Telegram user (id and name), the rule's name, or the page's signed-in name.
    public var name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    /// `cli:alice`, `telegram:12345 (Alice)`, `rule:auto-approve`: how events and the journal name it.
    public var description: String { "\(kind.rawValue):\(name)" }

    /// Reads `description` back; nil for a text not of that form.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let kind = Kind(rawValue: String(text[..<colon])) else { return nil }
        self.init(kind, String(text[text.index(after: colon)...]))
    }
}

/// One answer as the journal keeps it: written before it is sent, its outcome after.
public struct AnswerRecord: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        /// Written, about to be sent (or the process stopped while sending: taken as unknown).
        case sending
        /// The marketplace took it.
        case accepted
        /// The marketplace refused it; nothing changed (a new answer may be tried).
        case refused
        /// It may have been applied: never sent again.
        case unknown

        /// Whether the request may have been decided by this answer (then no other is sent).
        public var mayHaveApplied: Bool { self != .refused }
    }

    public var request: RequestKey
    /// The order, for people reading the journal.
    public var order: String
    public var decision: Decision
    public var comment: String
    public var actor: AnswerActor
    public var state: State
    public var startedAt: Date
    public var finishedAt: Date?
    /// The refusal's or the unknown outcome's reason (scrubbed, cut); empty otherwise.
    public var message: String

    public init(
        request: RequestKey, order: String, decision: Decision, comment: String, actor: AnswerActor, state: State = .sending,
        startedAt: Date, finishedAt: Date? = nil, message: String = ""
    ) {
        self.request = request
        self.order = order
        self.decision = decision
        self.comment = comment
        self.actor = actor
        self.state = state
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.message = message
    }
}

/// Where answers are recorded before they are sent: the state store (the state file or the
/// shared database), so that one decision is never sent twice, across crashes and replicas.
public protocol AnswerJournal: Sendable {
    /// Records `record` (state `sending`) in one transaction, unless the request already has
    /// an answer that may have applied (`sending`, `accepted`, `unknown`): then nothing is
    /// written and that answer comes back. A `refused` one is replaced.
    func beginAnswer(_ record: AnswerRecord) throws(StoreError) -> AnswerRecord?
    /// Records how the answer begun for `request` ended (`accepted`, `refused` or `unknown`).
    func finishAnswer(_ request: RequestKey, state: AnswerRecord.State, message: String, at: Date) throws(StoreError)
    /// The answers recorded for these requests.
    func answers(for requests: [RequestKey]) throws(StoreError) -> [RequestKey: AnswerRecord]
    /// How many answers by actors of `kind` began at or after `since` (rules' hourly budget).
    func answerCount(by kind: AnswerActor.Kind, since: Date) throws(StoreError) -> Int
}
