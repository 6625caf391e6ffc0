import Foundation

/// Why one delivery attempt failed, and whether trying again may help.
public struct DeliveryError: Error, Sendable, CustomStringConvertible {
    /// Network errors, timeouts, 408, 425, 429, 5xx: retry with backoff.
    public var retryable: Bool
    /// What happened, for the log: status and the first bytes of the reply, never secrets.
    public var message: String
    /// How long the receiver asked us to wait (`Retry-After`), always sane.
    @ClampedOutsideDelay public var retryAfter: TimeInterval?
    /// The receiver's rate limit refused it (a chat tool's 429 or "too fast" code): wait
    /// `retryAfter` and try again; such a try never counts toward `max_attempts`.
    public var rateLimited: Bool

    public init(retryable: Bool, message: String, retryAfter: TimeInterval? = nil) {
        self.retryable = retryable
        self.message = message
        self.retryAfter = retryAfter
        rateLimited = false
        paced = false
    }

    /// The sink's own pace holds the message back (nothing was sent): waited like a rate
    /// limit, and not a failure worth a warning.
    public var paced: Bool

    /// A rate-limit reply: retryable, never a dead letter.
    public static func rateLimited(message: String, retryAfter: TimeInterval?) -> DeliveryError {
        var error = DeliveryError(retryable: true, message: message, retryAfter: retryAfter)
        error.rateLimited = true
        return error
    }

    /// The sink's own pace: the next message may go at `retryAfter` from now.
    public static func paced(message: String, retryAfter: TimeInterval) -> DeliveryError {
        var error = rateLimited(message: message, retryAfter: retryAfter)
        error.paced = true
        return error
    }

    public var description: String { message }
}

/// Where alerts go: stdout, a webhook, a mailbox. A sink makes ONE attempt per call;
/// retries, backoff, the outbox and dead letters are the delivery queue's job, the
/// same for every sink.
public protocol AlertSink: Sendable {
    /// The configured name rules refer to in `notify`.
    var name: String { get }
    /// Delivers `event` once. Returns when the receiver acknowledged it.
    func deliver(_ event: AlertEvent) async throws(DeliveryError)
}
