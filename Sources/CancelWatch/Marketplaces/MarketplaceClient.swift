import Foundation

/// One marketplace account's API, as the poller sees it.
public protocol MarketplaceClient: Sendable {
    /// The configured source name.
    var source: String { get }
    var marketplace: Marketplace { get }
    /// Every pending request of the account, all pages.
    func fetchPending() async throws(PollError) -> PendingSnapshot
    /// What became of requests that left the pending list. A request the marketplace
    /// still reports as pending comes back as `.stillPending`; only one the marketplace
    /// was searched for in full and did not list is `.vanished`. A request whose fate
    /// cannot be told from the answers (an unreadable item that could be it, no usable
    /// time to search by) has no entry: it stays as it was.
    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup]
}

/// The pending list of one source at one moment.
public struct PendingSnapshot: Sendable {
    public var requests: [CancellationRequest]
    /// Things worth a log line that did not fail the poll (a skipped item, a suspicious unit).
    public var warnings: [String]
    /// How many HTTP calls it took.
    public var pages: Int
    /// Ids of listed items that could not be decoded: they are still listed, so a tracked
    /// request with one of these ids has not left the list. (An id may repeat, or also be a
    /// decoded request's when it was listed twice: either way it is listed.)
    public var skippedIDs: [String]
    /// False when an item could not be decoded and not even its id was readable: then no
    /// tracked request may be taken for gone on the strength of this listing.
    public var complete: Bool

    public init(
        requests: [CancellationRequest], warnings: [String] = [], pages: Int = 0, skippedIDs: [String] = [],
        complete: Bool = true
    ) {
        self.requests = requests
        self.warnings = warnings
        self.pages = pages
        self.skippedIDs = skippedIDs
        self.complete = complete
    }
}

/// The answer for one request that left the pending list.
public enum OutcomeLookup: Sendable, Hashable {
    case resolved(Outcome, at: Date?)
    /// The marketplace still reports it pending (a lagging or incomplete list).
    case stillPending(CancellationRequest)
}

/// A poll that failed, with what an operator needs to act on it.
/// Messages name the source, HTTP status, marketplace code and message, never credentials.
public struct PollError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// 429: back off; `retryAfter` when the marketplace said how long.
        case rateLimited = "rate_limited"
        /// 5xx.
        case server
        /// 401/403 or a rejected signature: credentials or the seller's offer need attention.
        case auth
        /// Other 4xx or an API-level failure (`success: false`).
        case api
        /// The answer was not what the API documents.
        case decoding
        /// No HTTP answer: connection refused, timeout, TLS.
        case transport
    }

    public var source: String
    public var kind: Kind
    public var status: Int?
    public var message: String
    /// The wait the marketplace asked for, always sane.
    @ClampedOutsideDelay public var retryAfter: TimeInterval?

    public init(source: String, kind: Kind, status: Int? = nil, message: String, retryAfter: TimeInterval? = nil) {
        self.source = source
        self.kind = kind
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String {
        var text = "source '\(source)': "
        if let status { text += "HTTP \(status): " }
        return text + message
    }

    /// Whether trying again soon may help.
    public var isTransient: Bool {
        switch kind {
        case .rateLimited, .server, .transport, .decoding: return true
        case .auth, .api: return false
        }
    }
}

extension RetryPolicy {
    /// Retries of one marketplace call within a poll: a few quick tries; the poller's
    /// own backoff takes over after that.
    public static let marketplaceCall = RetryPolicy(maxAttempts: 4, initialDelay: 0.5, maxDelay: 30)

    /// The wait before try `attempt + 1` (tries count from 1): exponential with jitter
    /// between half and all of the step, or `retryAfter` when the server said (capped, and
    /// never below `initialDelay`: a "Retry-After: 0" must not become a loop without a pause).
    /// `retryAfter` is an error's, clamped where it came in. Always a wait
    /// (``WakeTime/delay(_:)``), as a marketplace call sleeps it directly.
    public func delay(afterAttempt attempt: Int, retryAfter: TimeInterval?) -> TimeInterval {
        if let retryAfter { return WakeTime.delay(min(max(retryAfter, initialDelay), maxDelay)) }
        let ceiling = min(maxDelay, initialDelay * pow(2, Double(min(max(attempt, 1) - 1, 30))))
        return WakeTime.delay(ceiling * Double.random(in: 0.5...1))
    }
}

/// A marketplace call's result and when the try that produced it was sent.
struct SentCall<Value> {
    var value: Value
    /// The instant the successful try was built and handed to the transport.
    var sentAt: Date
}

/// Sends one marketplace call with the retry policy. Every try is built afresh by
/// `makeRequest` from the instant it is sent (a signature over a timestamp is never
/// reused), and the answer carries the send time of the try that succeeded.
/// `interpret` turns a response into a value or a `PollError` (whose kind decides
/// whether to retry); it gets a scrubber that also knows the try's own credentials,
/// and every error that leaves is scrubbed with it, then cut.
func sendWithRetry<T>(
    source: String, transport: HTTPTransport, clock: WatchClock, policy: RetryPolicy, scrubber: SecretScrubber, secretHeaders: Set<String>,
    makeRequest: (Date) -> HTTPRequest,
    interpret: (HTTPResponse, SecretScrubber) throws(PollError) -> T
) async throws(PollError) -> SentCall<T> {
    var attempt = 1
    while true {
        // Every page loop calls through here: a cancelled poll stops before its next call.
        if Task.isCancelled { throw PollError(source: source, kind: .transport, message: "cancelled") }
        let sentAt = clock.now()
        let request = makeRequest(sentAt)
        let scrubbing = scrubber.including(headersOf: request, named: secretHeaders)
        let error: PollError
        do {
            let response = try await transport.send(request)
            do throws(PollError) {
                return SentCall(value: try interpret(response, scrubbing), sentAt: sentAt)
            } catch let failure {
                error = scrubbing.scrub(failure)
            }
        } catch let failure {
            error = scrubbing.scrub(PollError(source: source, kind: .transport, message: failure.description))
        }
        guard error.isTransient, attempt < (policy.maxAttempts ?? Int.max) else { throw error }
        let wait = policy.delay(afterAttempt: attempt, retryAfter: error.retryAfter)
        do {
            try await clock.sleep(for: wait)
        } catch {
            throw PollError(source: source, kind: .transport, message: "cancelled while backing off")
        }
        attempt += 1
    }
}

extension SecretScrubber {
    /// `error` with its message scrubbed, then cut to ``TextCut/errorTextLimit``.
    func scrub(_ error: PollError) -> PollError {
        var copy = error
        copy.message = scrub(error.message)
        return copy
    }
}

/// Room in `requests` for `count` more, as a listing announces them (read from the wire: at
/// most 20,000 are reserved ahead), grown as appending grows: a listing of thousands is
/// not copied again and again while it fills.
func reserve(_ requests: inout [CancellationRequest], adding count: Int) {
    let wanted = requests.count + min(max(0, count), 20_000)
    guard wanted > requests.capacity else { return }
    requests.reserveCapacity(max(wanted, 2 * requests.capacity))
}
