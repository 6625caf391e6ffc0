import Foundation

/// What a cancelwatch button on Telegram carries as its `callback_data` (1-64 bytes): the
/// choice and a digest naming the request, never the source name or request id themselves
/// (either may be long).
///
/// Form: `cw1:<choice>:<request digest>`, where the request digest is the first 16 bytes of
/// SHA-256 over `source`, a line feed and `id`, in lowercase hex (source names never hold a
/// line feed, so the pair is unambiguous), and `<choice>` is `a` (approve), `r` (refuse),
/// `r<N>` (refuse with `refuse_reasons[N]`, N from 0 to 7) or `x` (cancel a refusal begun).
/// `cw1:a:5e0d9c1f0b6a4e27a1d3c2b9f8e7d6c5` is 38 bytes; the longest, `cw1:r7:…`, 39.
///
/// A reader maps it back by computing ``digest(of:)`` for the tracked requests
/// (``request(among:)``): 128 bits make a collision among them out of reach.
public struct TelegramCallbackData: Sendable, Hashable, CustomStringConvertible {
    public enum Choice: Sendable, Hashable {
        case approve
        case refuse
        /// Refuse with the sink's `refuse_reasons[index]`.
        case refuseWithReason(Int)
        /// Leave a refusal unsent (the reason prompt's own button).
        case cancel
    }

    public var choice: Choice
    /// 32 lowercase hex digits.
    public var requestDigest: String

    static let prefix = "cw1"
    static let digestBytes = 16

    public init(_ choice: Choice, request: RequestKey) {
        self.choice = choice
        self.requestDigest = Self.digest(of: request)
    }

    /// Reads a `callback_data`; nil for anything not of the form above (another bot's buttons, a forgery).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix else { return nil }
        let digest = parts[2]
        guard digest.utf8.count == Self.digestBytes * 2,
            digest.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        switch parts[1] {
        case "a": choice = .approve
        case "r": choice = .refuse
        case "x": choice = .cancel
        default:
            let code = parts[1]
            guard code.utf8.count == 2, code.hasPrefix("r"), let index = Int(code.dropFirst()),
                (0..<TelegramActionsConfig.maxRefuseReasons).contains(index)
            else { return nil }
            choice = .refuseWithReason(index)
        }
        requestDigest = String(digest)
    }

    /// The `callback_data` text.
    public var description: String {
        let code: String
        switch choice {
        case .approve: code = "a"
        case .refuse: code = "r"
        case .refuseWithReason(let index): code = "r\(index)"
        case .cancel: code = "x"
        }
        return "\(Self.prefix):\(code):\(requestDigest)"
    }

    /// Whether this names `request`.
    public func names(_ request: RequestKey) -> Bool { requestDigest == Self.digest(of: request) }

    /// The request among `requests` this names, or nil.
    public func request<Requests: Sequence<RequestKey>>(among requests: Requests) -> RequestKey? {
        requests.first(where: names)
    }

    /// The first 16 bytes of SHA-256("<source>\n<id>"), in hex.
    public static func digest(of request: RequestKey) -> String {
        Digest.hex(Digest.sha256(Data("\(request.source)\n\(request.id)".utf8)).prefix(digestBytes))
    }
}
