import Foundation

/// The marketplaces cancelwatch watches.
public enum Marketplace: String, Sendable, Hashable, Codable, CaseIterable {
    case ozon
    /// Xiaohongshu (RED) Ark open platform; `kind: red` in the config.
    case xiaohongshu

    /// Members of a request's raw object that the marketplace changes on every poll on its
    /// own (Xiaohongshu's `max_audit_time` counts down): not a change of the request.
    var volatileRawKeys: [String] {
        switch self {
        case .ozon: return []
        case .xiaohongshu: return ["max_audit_time"]
        }
    }
}

/// Where a cancellation request stands.
public enum RequestState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting for the seller: the deadline counts down.
    case pending
    /// The cancellation went through (by the seller, or automatically at the deadline).
    case approved
    /// The seller refused it: the order stands.
    case rejected
}

/// One buyer's (or the marketplace's) request to cancel an order, in one shape
/// for every marketplace. Built by the marketplace clients from their wire types.
///
/// Its Codable form (member names as the webhook body's `request` has them) is the one
/// the webhook body and the state file use (`JSONValueEncoder`). The body's `request` has
/// the members of its contract only: not `marketplace`, `source`, `deadline` (the event's
/// own members there), `reason_id` or `logistics`.
public struct CancellationRequest: Sendable, Hashable, Codable {
    public var marketplace: Marketplace
    /// The configured source (account) name it came from.
    public var source: String
    /// The request's identity within its source: Ozon's `cancellation_id`;
    /// Xiaohongshu's `package_id` and `cancel_time` (a package can be asked to cancel twice).
    public var id: String
    /// The order or package it would cancel: Ozon's `posting_number`, Xiaohongshu's `package_id`.
    public var order: String
    public var state: RequestState
    /// What the marketplace says of it in words that many requests share.
    public var details: Details
    public var createdAt: Date?
    /// When the marketplace decides on its own if the seller has not.
    public var deadline: Date
    /// The API's own object, untouched: as the text it came in, when a client read it.
    public var rawObject: RawObject

    /// The texts a marketplace repeats across requests (a few hundred values among a
    /// million requests; a request table keeps each combination once). Compared by bytes:
    /// a marketplace rewriting a reason in another Unicode form has changed it (Swift's
    /// `==` on strings would take the two as equal). A new text field that rules read
    /// belongs here, with its accessor on the request.
    public struct Details: Sendable, Hashable, Codable {
        /// The marketplace's own word for the state (`ON_APPROVAL`, `unaudited`, …).
        public var rawState: String
        /// Who asked: `CLIENT`, `SELLER`, `OZON`, `SYSTEM`, `DELIVERY`; empty where unknown.
        public var initiator: String
        public var reason: String
        public var reasonID: String
        public var logistics: String
        /// The initiator's own words beside the reason (Ozon's `cancellation_reason_message`).
        public var reasonMessage: String

        public init(
            rawState: String, initiator: String = "", reason: String = "", reasonID: String = "", logistics: String = "",
            reasonMessage: String = ""
        ) {
            self.rawState = rawState
            self.initiator = initiator
            self.reason = reason
            self.reasonID = reasonID
            self.logistics = logistics
            self.reasonMessage = reasonMessage
        }

        enum CodingKeys: String, CodingKey {
            case rawState = "raw_state"
            case initiator, reason
            case reasonID = "reason_id"
            case logistics
            case reasonMessage = "reason_message"
        }

        /// Every text with its member name, and whether the `generic` webhook body carries it
        /// (its contract: `raw_state`, `initiator`, `reason`). Encoding and decoding go by this
        /// list; a new text is one entry here.
        static let texts: [(key: CodingKeys, path: any WritableKeyPath<Details, String> & Sendable, inWebhookBody: Bool)] = [
            (.rawState, \.rawState, true), (.initiator, \.initiator, true), (.reason, \.reason, true),
            (.reasonID, \.reasonID, false), (.logistics, \.logistics, false), (.reasonMessage, \.reasonMessage, false),
        ]

        /// The texts' member names (`raw_state`, `reason`, …), as rules and rule tests name them.
        public static var textNames: [String] { texts.map(\.key.rawValue) }

        /// Sets the text named `name` (one of `textNames`); false when there is none of that name.
        @discardableResult
        public mutating func setText(named name: String, to value: String) -> Bool {
            guard let text = Self.texts.first(where: { $0.key.rawValue == name }) else { return false }
            self[keyPath: text.path] = value
            return true
        }

        /// A text that a row written before it existed lacks reads as empty.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.init(rawState: "")
            for text in Self.texts { self[keyPath: text.path] = try container.decodeIfPresent(String.self, forKey: text.key) ?? "" }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            let webhook = encoder.writesWebhookBody
            for text in Self.texts where text.inWebhookBody || !webhook { try container.encode(self[keyPath: text.path], forKey: text.key) }
        }

        public static func == (a: Details, b: Details) -> Bool {
            sameBytes(a.reason, b.reason) && sameBytes(a.initiator, b.initiator) && sameBytes(a.rawState, b.rawState)
                && sameBytes(a.reasonID, b.reasonID) && sameBytes(a.logistics, b.logistics) && sameBytes(a.reasonMessage, b.reasonMessage)
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(digest) }

        /// The fast digest of the texts' bytes.
        var digest: UInt64 {
            var digest = FastDigest()
            digest.add(rawState)
            digest.add(initiator)
            digest.add(reason)
            digest.add(reasonID)
            digest.add(logistics)
            digest.add(reasonMessage)
            return digest.value
        }
    }

    public var rawState: String {
        get { details.rawState }
        set { details.rawState = newValue }
    }
    public var initiator: String {
        get { details.initiator }
        set { details.initiator = newValue }
    }
    public var reason: String {
        get { details.reason }
        set { details.reason = newValue }
    }
    public var reasonID: String {
        get { details.reasonID }
        set { details.reasonID = newValue }
    }
    public var logistics: String {
        get { details.logistics }
        set { details.logistics = newValue }
    }
    public var reasonMessage: String {
        get { details.reasonMessage }
        set { details.reasonMessage = newValue }
    }

    enum CodingKeys: String, CodingKey {
        case marketplace, source, id, order, state
        case createdAt = "created_at"
        case deadline
        case rawObject = "raw"
    }

    /// One object: its own members and its details' side by side.
    public func encode(to encoder: any Encoder) throws {
        let stored = !encoder.writesWebhookBody
        var container = encoder.container(keyedBy: CodingKeys.self)
        if stored {
            try container.encode(marketplace, forKey: .marketplace)
            try container.encode(source, forKey: .source)
        }
        try container.encode(id, forKey: .id)
        try container.encode(order, forKey: .order)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(createdAt, forKey: .createdAt)
        if stored { try container.encode(deadline, forKey: .deadline) }
        try container.encode(rawObject, forKey: .rawObject)
        try details.encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        marketplace = try container.decode(Marketplace.self, forKey: .marketplace)
        source = try container.decode(String.self, forKey: .source)
        id = try container.decode(String.self, forKey: .id)
        order = try container.decode(String.self, forKey: .order)
        state = try container.decode(RequestState.self, forKey: .state)
        details = try Details(from: decoder)
        createdAt = try container.decodeIfPresent(Date.self, forKey: .createdAt)
        deadline = try container.decode(Date.self, forKey: .deadline)
        rawObject = try container.decode(RawObject.self, forKey: .rawObject)
    }

    /// The API's own object as a value (built from the text each time it is read).
    public var raw: JSONValue {
        get { rawObject.value }
        set { rawObject = RawObject(newValue) }
    }

    public init(
        marketplace: Marketplace, source: String, id: String, order: String, state: RequestState,
        rawState: String, initiator: String = "", reason: String = "", reasonID: String = "",
        logistics: String = "", reasonMessage: String = "", createdAt: Date? = nil, deadline: Date, raw: JSONValue = .object([:])
    ) {
        self.init(
            marketplace: marketplace, source: source, id: id, order: order, state: state, rawState: rawState,
            initiator: initiator, reason: reason, reasonID: reasonID, logistics: logistics, reasonMessage: reasonMessage,
            createdAt: createdAt, deadline: deadline, rawObject: RawObject(raw))
    }

    public init(
        marketplace: Marketplace, source: String, id: String, order: String, state: RequestState,
        rawState: String, initiator: String, reason: String, reasonID: String,
        logistics: String, reasonMessage: String = "", createdAt: Date?, deadline: Date, rawObject: RawObject
    ) {
        self.marketplace = marketplace
        self.source = source
        self.id = id
        self.order = order
        self.state = state
        details = Details(
            rawState: rawState, initiator: initiator, reason: reason, reasonID: reasonID, logistics: logistics,
            reasonMessage: reasonMessage)
        self.createdAt = createdAt
        self.deadline = deadline
        self.rawObject = rawObject
    }

    /// The same request, its raw object holding its own bytes (`RawObject.owningItsBytes`).
    func owningItsRaw() -> CancellationRequest {
        guard rawObject.isSharedText else { return self }
        var copy = self
        copy.rawObject = rawObject.owningItsBytes()
        return copy
    }

    /// The request's identity across all sources.
    public var key: RequestKey { RequestKey(source: source, id: id) }

    /// Time left before the marketplace decides; negative once the deadline has passed.
    public func remaining(at now: Date) -> TimeInterval { deadline.timeIntervalSince(now) }
}

/// A request's identity across sources. Told apart by bytes, as the marketplace sent them
/// (Swift's `==` would take two ids written with canonically equivalent characters as one).
public struct RequestKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var source: String
    public var id: String
    public init(source: String, id: String) {
        self.source = source
        self.id = id
    }
    public static func == (a: RequestKey, b: RequestKey) -> Bool { sameBytes(a.id, b.id) && sameBytes(a.source, b.source) }
    /// By the fast digest of the bytes, as the request tables index keys.
    public func hash(into hasher: inout Hasher) { hasher.combine(FastDigest.of(source, id)) }
    /// By bytes too (source, then id), so that two keys are ordered exactly when they differ.
    public static func < (a: RequestKey, b: RequestKey) -> Bool {
        if !sameBytes(a.source, b.source) { return a.source.utf8.lexicographicallyPrecedes(b.source.utf8) }
        return a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
    }
    public var description: String { "\(source)/\(id)" }
}

/// How a request stopped being pending.
public enum Outcome: String, Sendable, Hashable, Codable {
    case approved
    case rejected
    /// It left the pending list and the marketplace no longer knows it.
    case vanished
}
