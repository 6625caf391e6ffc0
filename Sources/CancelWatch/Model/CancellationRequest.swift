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
/// A value with its fields in one shared, immutable box: a request is copied many times
/// on its way from a client through the tracker to the scheduler and its events, and a
/// copy costs one reference count instead of one per string. Changing a field makes a
/// new box (requests are rarely changed after they are built). Its strings and raw object
/// are read borrowed from the box (`_read`): reading one costs no reference count.
public struct CancellationRequest: Sendable, Hashable {
    struct Fields: Sendable, Hashable {
        var marketplace: Marketplace
        var source: String
        var id: String
        var order: String
        var state: RequestState
        var rawState: String
        var initiator: String
        var reason: String
        var reasonID: String
        var logistics: String
        var createdAt: Date?
        var deadline: Date
        var rawObject: RawObject
    }

    final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    private mutating func change(_ body: (inout Fields) -> Void) {
        var fields = box.fields
        body(&fields)
        box = Box(fields)
    }

    public var marketplace: Marketplace {
        get { box.fields.marketplace }
        set { change { $0.marketplace = newValue } }
    }
    /// The configured source (account) name it came from.
    public var source: String {
        _read { yield box.fields.source }
        set { change { $0.source = newValue } }
    }
    /// The request's identity within its source: Ozon's `cancellation_id`;
    /// Xiaohongshu's `package_id` and `cancel_time` (a package can be asked to cancel twice).
    public var id: String {
        _read { yield box.fields.id }
        set { change { $0.id = newValue } }
    }
    /// The order or package it would cancel: Ozon's `posting_number`, Xiaohongshu's `package_id`.
    public var order: String {
        _read { yield box.fields.order }
        set { change { $0.order = newValue } }
    }
    public var state: RequestState {
        get { box.fields.state }
        set { change { $0.state = newValue } }
    }
    /// The marketplace's own word for the state (`ON_APPROVAL`, `unaudited`, …).
    public var rawState: String {
        _read { yield box.fields.rawState }
        set { change { $0.rawState = newValue } }
    }
    /// Who asked: `CLIENT`, `SELLER`, `OZON`, `SYSTEM`, `DELIVERY`; empty where unknown.
    public var initiator: String {
        _read { yield box.fields.initiator }
        set { change { $0.initiator = newValue } }
    }
    public var reason: String {
        _read { yield box.fields.reason }
        set { change { $0.reason = newValue } }
    }
    public var reasonID: String {
        _read { yield box.fields.reasonID }
        set { change { $0.reasonID = newValue } }
    }
    public var logistics: String {
        _read { yield box.fields.logistics }
        set { change { $0.logistics = newValue } }
    }
    public var createdAt: Date? {
        get { box.fields.createdAt }
        set { change { $0.createdAt = newValue } }
    }
    /// When the marketplace decides on its own if the seller has not.
    public var deadline: Date {
        get { box.fields.deadline }
        set { change { $0.deadline = newValue } }
    }
    /// The API's own object, untouched: as the text it came in, when a client read it.
    public var rawObject: RawObject {
        _read { yield box.fields.rawObject }
        set { change { $0.rawObject = newValue } }
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
        box = Box(
            Fields(
                marketplace: marketplace, source: source, id: id, order: order, state: state, rawState: rawState,
                initiator: initiator, reason: reason, reasonID: reasonID, logistics: logistics, createdAt: createdAt,
                deadline: deadline, rawObject: rawObject))
    }

    public static func == (a: CancellationRequest, b: CancellationRequest) -> Bool {
        a.box === b.box || a.box.fields == b.box.fields
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(box.fields) }

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
