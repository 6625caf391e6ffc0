import Foundation

/// The Bot API calls answering needs, one attempt each (the policy around them is the
/// caller's): `getUpdates`, `answerCallbackQuery`, `sendMessage`, `editMessageText`.
/// Errors never carry the token.
public struct TelegramBotClient: Sendable {
    public let bot: TelegramBotURL
    let transport: HTTPTransport
    let clock: WatchClock
    /// How long a call may take beyond a long poll's own hold.
    let callTimeout: TimeInterval

    /// The largest reply read: 100 updates of 4,096-character messages fit well inside.
    static let maxReplyBytes = 8 << 20

    public init(bot: TelegramBotURL, transport: HTTPTransport, clock: WatchClock = SystemClock(), callTimeout: TimeInterval = 15) {
        self.bot = bot
        self.transport = transport
        self.clock = clock
        self.callTimeout = min(max(callTimeout, 1), 120)
    }

    /// `getUpdates`: the updates from `offset` on (confirming every one below it), waiting up
    /// to `timeout` seconds for one to come. Each comes back as sent, to be read leniently.
    public func getUpdates(offset: Int64?, timeout: Int) async throws(TelegramCallError) -> [JSONValue] {
        var parameters: [String: JSONValue] = ["timeout": .integer(Int64(min(max(timeout, 0), 50)))]
        if let offset { parameters["offset"] = .integer(offset) }
        parameters["allowed_updates"] = ["message", "callback_query"]
        let result = try await call("getUpdates", parameters, holding: TimeInterval(min(max(timeout, 0), 50)))
        guard let updates = result.arrayValue else { throw TelegramCallError(.unreadable, "getUpdates returned \(result.typeDescription), not a list") }
        return updates
    }

    /// `answerCallbackQuery`: stops the button's spinner, showing `text` (at most 200 characters) as a toast or, with `alert`, a dialog.
    public func answerCallbackQuery(_ queryID: String, text: String? = nil, alert: Bool = false) async throws(TelegramCallError) {
        var parameters: [String: JSONValue] = ["callback_query_id": .string(queryID)]
        if let text { parameters["text"] = .string(ChatWebhookFormat.truncated(text, characters: 200)) }
        if alert { parameters["show_alert"] = true }
        _ = try await call("answerCallbackQuery", parameters)
    }

    /// `sendMessage` (text cut to Telegram's 4,096 characters); returns the new message's id.
    public func sendMessage(chatID: Int64, text: String, keyboard: JSONValue? = nil, replyTo messageID: Int64? = nil)
        async throws(TelegramCallError) -> Int64
    {
        var parameters: [String: JSONValue] = [
            "chat_id": .integer(chatID), "text": .string(ChatWebhookFormat.truncated(text, characters: ChatWebhookFormat.telegramTextLimit)),
            "disable_web_page_preview": true,
        ]
        if let keyboard { parameters["reply_markup"] = keyboard }
        if let messageID { parameters["reply_to_message_id"] = .integer(messageID) }
        let result = try await call("sendMessage", parameters)
        guard let id = result["message_id"]?.lenientInt64, TelegramUpdate.messageIDRange.contains(id) else {
            throw TelegramCallError(.unreadable, "sendMessage returned no message_id")
        }
        return id
    }

    /// `editMessageText`: the message's new text, and its keyboard (none when nil). An edit
    /// that changes nothing counts as done (Telegram refuses it as "not modified").
    public func editMessageText(chatID: Int64, messageID: Int64, text: String, keyboard: JSONValue? = nil) async throws(TelegramCallError) {
        var parameters: [String: JSONValue] = [
            "chat_id": .integer(chatID), "message_id": .integer(messageID),
            "text": .string(ChatWebhookFormat.truncated(text, characters: ChatWebhookFormat.telegramTextLimit)),
            "disable_web_page_preview": true,
        ]
        if let keyboard { parameters["reply_markup"] = keyboard }
        do {
            _ = try await call("editMessageText", parameters)
        } catch where error.kind == .refused && error.message.contains("message is not modified") {
            return
        }
    }

    /// One call; its `result`, or what went wrong.
    func call(_ method: String, _ parameters: [String: JSONValue], holding: TimeInterval = 0) async throws(TelegramCallError) -> JSONValue {
        let request = HTTPRequest(
            method: "POST", url: bot.url(method),
            headers: [HTTPHeader("Content-Type", "application/json"), HTTPHeader("User-Agent", WebhookSink.userAgent)],
            body: JSONValue.object(parameters).serializedData(), timeout: holding + callTimeout, maxResponseBytes: Self.maxReplyBytes)
        let scrubber = self.scrubber
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch {
            throw TelegramCallError(.transport, scrubber.scrub("\(method): \(error.description)"))
        }
        let reply = try? JSONParser.parse(response.body)
        if let reply, reply["ok"]?.boolValue == true, let result = reply["result"] { return result }
        let code = reply?["error_code"]?.lenientInt64.map { Int(clamping: $0) } ?? response.status
        let described = reply?["description"]?.stringValue.map { scrubber.scrub($0) }
        let text = "\(method): HTTP \(response.status): " + (described ?? scrubber.excerpt(of: response.body, limit: 200))
        switch code {
        case 429:
            let now = clock.now()
            let hinted = OutsideDelay.parse(reply?["parameters"]?["retry_after"], now: now) ?? OutsideDelay.parse(response.header("Retry-After"), now: now)
            throw TelegramCallError(.rateLimited, text, status: code, retryAfter: hinted)
        case 500...599, 408:
            throw TelegramCallError(.server, text, status: code)
        case 200..<300:
            throw TelegramCallError(.unreadable, "\(method): the reply is not a Bot API answer: \(scrubber.excerpt(of: response.body, limit: 200))")
        default:
            throw TelegramCallError(.refused, text, status: code)
        }
    }

    /// Takes the token out (as written and decoded).
    var scrubber: SecretScrubber {
        SecretScrubber([bot.token, bot.token.removingPercentEncoding ?? bot.token, bot.url("")], shortest: 6)
    }
}

/// A Bot API call that did not succeed.
public struct TelegramCallError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// No answer: connection, timeout, TLS.
        case transport
        /// 429: wait `retryAfter`.
        case rateLimited = "rate_limited"
        /// 5xx or 408.
        case server
        /// The Bot API said no (`ok: false` with a 4xx `error_code`: a bad token, a conflict, a bad call).
        case refused
        /// A reply that is not the Bot API's.
        case unreadable
    }

    public var kind: Kind
    /// The `error_code` (or HTTP status), where there was one.
    public var status: Int?
    /// What happened, the token taken out.
    public var message: String
    /// Telegram's `parameters.retry_after` (or `Retry-After`), clamped.
    @ClampedOutsideDelay public var retryAfter: TimeInterval?

    init(_ kind: Kind, _ message: String, status: Int? = nil, retryAfter: TimeInterval? = nil) {
        self.kind = kind
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}
