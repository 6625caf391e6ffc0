import Foundation
import Synchronization

/// `kind: webhook`: one HTTP `POST` per event (README.md, "Verifying a webhook's signature").
///
/// `format: generic` sends ``AlertEvent/webhookBody`` (a group, with `batch: true`:
/// ``batchBody(of:)``) with `Idempotency-Key` (the event's id) and, when a `secret` is set, `X-Cancelwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
/// The chat formats (`slack telegram feishu dingtalk wecom`) send that tool's own text
/// message, signed the tool's way (see ``ChatWebhookFormat``).
///
/// Every attempt is signed afresh (`t` is the attempt's time; the body and
/// `Idempotency-Key` stay the same), so a receiver can verify it and refuse stale ones:
///
///     import hashlib, hmac, time
///     def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
///         parts = dict(p.split("=", 1) for p in header.split(","))
///         if abs(time.time() - int(parts["t"])) > tolerance:
///             return False
///         expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
///         return hmac.compare_digest(expected, parts["v1"])
///
/// One attempt per call. Network errors, timeouts, 408, 425, 429 and 5xx are retryable,
/// with `Retry-After` passed on; a chat tool's 429 and own rate-limit codes are
/// ``DeliveryError/rateLimited(message:retryAfter:)``; other 4xx and a chat tool's error
/// replies are not retryable. A chat format paces its sends (``ChatPace``) on the clock.
/// Error messages carry the status and the first bytes of the reply, never the URL's
/// token, the secret or header values.
public struct WebhookSink: AlertSink {
    public let name: String
    public let config: WebhookSinkConfig
    let transport: HTTPTransport
    let clock: WatchClock
    let pacer: ChatPacer?
    /// How many parts of each split message the tool has taken, while some are still to go.
    let partsTaken = PartsTaken()

    /// `User-Agent` of every webhook request.
    public static let userAgent = "cancelwatch/\(CancelWatchVersion.current)"
    /// The signature header of `format: generic`.
    public static let signatureHeader = "X-Cancelwatch-Signature"
    /// Headers cancelwatch sets itself; configured `headers:` cannot replace them.
    static let reservedHeaders: Set<String> = ["content-type", "idempotency-key", "x-cancelwatch-signature", "content-length", "host"]

    public init(name: String, config: WebhookSinkConfig, transport: HTTPTransport, clock: WatchClock = SystemClock()) {
        self.name = name
        self.config = config
        self.transport = transport
        self.clock = clock
        pacer = ChatPace.of(config.format).map(ChatPacer.init)
    }

    /// The longest wait for the chat's pace slept inside one attempt (within the outbox claim's margin).
    static let longestPacingSleep: TimeInterval = 5

    /// Sends `event`'s request, or each of a split Telegram message's in turn, each at its pace.
    /// A retry of a split message starts at the first part not yet taken (this process
    /// remembers; after a restart every part goes again).
    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        let scrubber = self.scrubber
        let count = requests(for: event).count
        let first = count > 1 ? min(partsTaken.first(of: event.id), count - 1) : 0
        for part in first..<count {
            var slot: Date?
            if let pacer {
                // A short wait is slept here; a longer one goes back to the delivery queue as the
                // chat's rate limit, so that no attempt outlives its outbox claim (replicas).
                let now = clock.now()
                let (booking, booked) = pacer.reserve(now: now, within: Self.longestPacingSleep)
                guard booked else {
                    throw DeliveryError.paced(
                        message: "paced below \(config.format.rawValue)'s limit: next message at \(Timestamp.format(booking))",
                        retryAfter: booking.timeIntervalSince(now))
                }
                do {
                    try await clock.sleep(until: booking)
                } catch {
                    throw DeliveryError(retryable: true, message: "cancelled while pacing")
                }
                slot = booking
            }
            // Built after the wait: signed at the instant it is sent.
            let request = requests(for: event)[part]
            let response: HTTPResponse
            do {
                response = try await transport.send(request)
            } catch {
                if let slot { pacer?.settle(slot, at: clock.now()) }
                throw DeliveryError(retryable: true, message: scrubber.scrub(error.description))
            }
            if let slot { pacer?.settle(slot, at: clock.now()) }
            if var failure = Self.failure(of: response, format: config.format, now: clock.now(), scrubber: scrubber) {
                failure.message = scrubber.scrub(failure.message)
                throw failure
            }
            if count > 1 { partsTaken.record(part + 1, of: event.id, whole: part + 1 == count) }
        }
    }

    /// The requests one attempt sends for `event` (signed at the clock's current time): one,
    /// or a long Telegram message's parts.
    public func requests(for event: AlertEvent) -> [HTTPRequest] {
        let now = clock.now()
        let url = config.url.value
        var headers = [
            HTTPHeader("Content-Type", "application/json"),
            HTTPHeader("User-Agent", Self.userAgent),
            HTTPHeader("Idempotency-Key", event.id),
        ]
        let messages: [ChatWebhookFormat.Message]
        if config.format == .generic {
            let body = (event.kind == .group ? Self.batchBody(of: event) : event.webhookBody).serialized()
            messages = [ChatWebhookFormat.Message(url: url, body: body)]
            if let secret = config.secret {
                headers.append(HTTPHeader(Self.signatureHeader, Self.signature(secret: secret.value, body: body, at: now)))
            }
        } else {
            messages = ChatWebhookFormat.messages(
                format: config.format, event: event, url: url, secret: config.secret?.value, chatID: config.chatID, now: now,
                actions: config.actions)
        }
        for (name, value) in config.headers.sorted(by: { $0.key < $1.key })
        where !Self.reservedHeaders.contains(name.lowercased()) {
            if let index = headers.firstIndex(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame }) {
                headers.remove(at: index)
            }
            headers.append(HTTPHeader(name, value))
        }
        // The reply only says whether it was taken (its status, a chat tool's short error
        // object): a long one is cut, and judged by its status and start.
        return messages.map { message in
            HTTPRequest(
                method: "POST", url: message.url, headers: headers, body: Data(message.body.utf8), timeout: config.timeout,
                tls: TLSOptions(caFile: config.caFile, insecure: config.insecure), maxResponseBytes: Self.maxReplyBytes,
                cutsLongAnswer: true)
        }
    }

    static let maxReplyBytes = 1 << 20

    /// A group's body (`batch: true`): `{"version": "1", "events": [...]}`, each member's
    /// ``AlertEvent/webhookBody`` in the group's order (by deadline).
    public static func batchBody(of group: AlertEvent) -> JSONValue {
        .object(["version": .string(AlertEvent.formVersion), "events": .array(group.members.map(\.webhookBody))])
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    public static func signature(secret: String, body: String, at now: Date) -> String {
        let t = Int64(now.timeIntervalSince1970.rounded(.down))
        let mac = Digest.hmacSHA256(key: Data(secret.utf8), message: Data("\(t).\(body)".utf8))
        return "t=\(t),v1=\(Digest.hex(mac))"
    }

    /// What went wrong with `response`, or nil when the receiver acknowledged the event. The
    /// reply's start is quoted scrubbed by `scrubber` before it is cut.
    static func failure(
        of response: HTTPResponse, format: WebhookSinkConfig.Format, now: Date, scrubber: SecretScrubber
    ) -> DeliveryError? {
        let status = response.status
        let retryAfter = OutsideDelay.parse(response.header("Retry-After"), now: now)
        if (200..<300).contains(status) {
            return ChatWebhookFormat.rejection(format: format, response: response, now: now, scrubber: scrubber)
        }
        let message = "HTTP \(status): \(scrubber.excerpt(of: response.body, limit: Self.replyExcerptBytes))"
        switch status {
        case 429 where format != .generic:
            let hinted = retryAfter ?? ChatWebhookFormat.retryAfterHint(format: format, response: response, now: now)
            return .rateLimited(message: message, retryAfter: hinted)
        case 408, 425, 429, 500..<600:
            let hinted = retryAfter ?? ChatWebhookFormat.retryAfterHint(format: format, response: response, now: now)
            return DeliveryError(retryable: true, message: message, retryAfter: hinted)
        default:
            return DeliveryError(retryable: false, message: message)
        }
    }

    /// How much of a reply an error message quotes.
    static let replyExcerptBytes = 200

    /// Takes out what is secret: the URL (its token), the signing secret, configured header values.
    var scrubber: SecretScrubber {
        var sensitive = [config.url.value, config.secret?.value].compactMap { $0 } + Array(config.headers.values)
        if let components = URLComponents(string: config.url.value) {
            // Decoded and as sent (percent-encoded): a receiver may echo either form.
            let segments = components.path.split(separator: "/") + components.percentEncodedPath.split(separator: "/")
            sensitive += segments.map(String.init)
            // Telegram's `/bot<token>/`: the token is a secret without its prefix too.
            sensitive += segments.filter { $0.hasPrefix("bot") }.map { String($0.dropFirst(3)) }
            sensitive += (components.queryItems ?? []).compactMap(\.value)
            sensitive += (components.percentEncodedQueryItems ?? []).compactMap(\.value)
            if let user = components.user { sensitive.append(user) }
            if let password = components.password { sensitive.append(password) }
        }
        // Six bytes at least: shorter URL path segments ("v1", "hooks") are not secrets.
        return SecretScrubber(sensitive, shortest: 6)
    }
}

/// Per split message (by event id), how many of its parts the tool took in earlier attempts:
/// a retry sends only the rest. At most ``limit`` messages are remembered (the oldest forgotten).
final class PartsTaken: Sendable {
    static let limit = 1000
    private let taken = Mutex<(counts: [String: Int], order: [String])>(([:], []))

    /// The first part an attempt at message `id` sends.
    func first(of id: String) -> Int { taken.withLock { $0.counts[id] ?? 0 } }

    /// `parts` of message `id` were taken; `whole`: all of them, so it is forgotten.
    func record(_ parts: Int, of id: String, whole: Bool) {
        taken.withLock { state in
            if whole {
                if state.counts.removeValue(forKey: id) != nil { state.order.removeAll { $0 == id } }
                return
            }
            if state.counts.updateValue(parts, forKey: id) == nil { state.order.append(id) }
            if state.order.count > Self.limit { state.counts[state.order.removeFirst()] = nil }
        }
    }
}
