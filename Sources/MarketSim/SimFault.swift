import Foundation

/// A misbehaviour the simulator adds to its marketplace API answers on demand.
///
/// A fault matches a request by marketplace, account (Ozon `Client-Id`, RED `app-key`)
/// and path, each optional, and applies to the next `times` matching requests, or to
/// every one until cleared when `times` is nil. Several faults may apply to one request:
/// a delay plus a 503, say. Faults never touch the `/_sim/` control endpoints.
public struct SimFault: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// HTTP 429, with `Retry-After: N` when given. Ozon body: code 8; RED: an envelope with error_code 429.
        case rateLimited(retryAfter: Int?)
        /// HTTP 500, 502, 503 (or any status given), with a short body.
        case serverError(status: Int)
        /// The (otherwise normal) answer comes after this many seconds.
        case slow(seconds: TimeInterval)
        /// HTTP 200 with a body that is not JSON (cut mid-object).
        case malformedJSON
        /// The full `Content-Length` is announced, half the body is sent, the connection closes.
        case truncatedBody
        /// The connection closes without an answer.
        case dropConnection
        /// Ozon: `counter` as a string (`"12"`), as Ozon's own example shows.
        case counterAsString
        /// Fields no documentation mentions, at the top level, in `data` and in every item.
        case unknownFields
        /// Ozon: `last_id` in the answer echoes the request's, so it never advances.
        case stuckLastID
        /// The cursor is ignored: Ozon `last_id` / RED `page_no` always get the first page again.
        case repeatedPage
    }

    public var kind: Kind
    /// Only this marketplace's API, or both when nil.
    public var marketplace: SimMarketplace?
    /// Only this account (Ozon client id or RED app key), or any when nil.
    public var account: String?
    /// Only this path (e.g. `/v2/conditional-cancellation/list`), or any when nil.
    public var path: String?
    /// How many matching requests it applies to; nil: every one until cleared.
    public var times: Int?

    public init(_ kind: Kind, marketplace: SimMarketplace? = nil, account: String? = nil, path: String? = nil, times: Int? = 1) {
        self.kind = kind
        self.marketplace = marketplace
        self.account = account
        self.path = path
        self.times = times
    }

    /// The name used in `POST /_sim/faults` (`rate_limit`, `server_error`, ...).
    public var kindName: String {
        switch kind {
        case .rateLimited: return "rate_limit"
        case .serverError: return "server_error"
        case .slow: return "slow"
        case .malformedJSON: return "malformed_json"
        case .truncatedBody: return "truncated_body"
        case .dropConnection: return "drop_connection"
        case .counterAsString: return "counter_as_string"
        case .unknownFields: return "unknown_fields"
        case .stuckLastID: return "stuck_last_id"
        case .repeatedPage: return "repeated_page"
        }
    }

    func matches(marketplace: SimMarketplace, account: String?, path: String) -> Bool {
        if let m = self.marketplace, m != marketplace { return false }
        if let a = self.account, a != account { return false }
        if let p = self.path, p != path { return false }
        return true
    }
}

/// The faults applied to one request, gathered from every matching active fault.
struct AppliedFaults {
    var rateLimited: Int?? = nil
    var serverError: Int? = nil
    var delay: TimeInterval = 0
    var malformedJSON = false
    var truncatedBody = false
    var dropConnection = false
    var counterAsString = false
    var unknownFields = false
    var stuckLastID = false
    var repeatedPage = false
    var names: [String] = []

    mutating func add(_ fault: SimFault) {
        names.append(fault.kindName)
        switch fault.kind {
        case .rateLimited(let retryAfter): rateLimited = .some(retryAfter)
        case .serverError(let status): serverError = status
        case .slow(let seconds): delay += seconds
        case .malformedJSON: malformedJSON = true
        case .truncatedBody: truncatedBody = true
        case .dropConnection: dropConnection = true
        case .counterAsString: counterAsString = true
        case .unknownFields: unknownFields = true
        case .stuckLastID: stuckLastID = true
        case .repeatedPage: repeatedPage = true
        }
    }
}
