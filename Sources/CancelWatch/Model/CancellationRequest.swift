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
/// the webhook body and the state file use (`JSONValueEncoder`).
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
    /// The marketplace's own word for the state (`ON_APPROVAL`, `unaudited`, …).
    public var rawState: String
    /// Who asked: `CLIENT`, `SELLER`, `OZON`, `SYSTEM`, `DELIVERY`; empty where unknown.
    public var initiator: String
    public var reason: String
    public var reasonID: String
    public var logistics: String
    public var createdAt: Date?
    /// When the marketplace decides on its own if the seller has not.
    public var deadline: Date
    /// The API's own object, untouched: as the text it came in, when a client read it.
    public var rawObject: RawObject

    enum CodingKeys: String, CodingKey {
        case marketplace, source, id, order, state
        case rawState = "raw_state"
        case initiator, reason
        case reasonID = "reason_id"
        case logistics
        case createdAt = "created_at"
        case deadline
        case rawObject = "raw"
    }

    /// The API's own object as a value (built from the text each time it is read).
    public var raw: JSONValue {
        get { rawObject.value }
        set { rawObject = RawObject(newValue) }
    }

    public init(
        marketplace: Marketplace, source: String, id: String, order: String, state: RequestState,
        rawState: String, initiator: String = "", reason: String = "", reasonID: String = "",
        logistics: String = "", createdAt: Date? = nil, deadline: Date, raw: JSONValue = .object([:])
    ) {
        self.init(
            marketplace: marketplace, source: source, id: id, order: order, state: state, rawState: rawState,
            initiator: initiator, reason: reason, reasonID: reasonID, logistics: logistics, createdAt: createdAt,
            deadline: deadline, rawObject: RawObject(raw))
    }

    public init(
        marketplace: Marketplace, source: String, id: String, order: String, state: RequestState,
        rawState: String, initiator: String, reason: String, reasonID: String,
        logistics: String, createdAt: Date?, deadline: Date, rawObject: RawObject
    ) {
        self.marketplace = marketplace
        self.source = source
        self.id = id
        self.order = order
        self.state = state
        self.rawState = rawState
        self.initiator = initiator
        self.reason = reason
        self.reasonID = reasonID
        self.logistics = logistics
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

extension CancellationRequest {
    /// Its text fields. Where bytes matter (a marketplace rewriting a text in another Unicode
    /// form has changed it), requests are compared through these (`sameBytes(as:)`), not by
    /// `==`, which takes canonically equivalent strings as equal.
    static let texts: [KeyPath<CancellationRequest, String> & Sendable] = [
        \.source, \.id, \.order, \.rawState, \.initiator, \.reason, \.reasonID, \.logistics,
    ]

    /// Equal, with every text of the same bytes.
    func sameBytes(as other: CancellationRequest) -> Bool {
        self == other && Self.texts.allSatisfy { CancelWatch.sameBytes(self[keyPath: $0], other[keyPath: $0]) }
    }

    /// The fast digest of its texts' bytes (equal for requests the same by `sameBytes(as:)`).
    var textDigest: UInt64 {
        var digest = FastDigest()
        for text in Self.texts { digest.add(self[keyPath: text]) }
        return digest.value
    }
}
