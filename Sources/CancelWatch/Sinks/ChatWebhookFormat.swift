import Foundation

/// The chat tools' own webhook messages (`format: slack | telegram | feishu | dingtalk | wecom`):
/// each tool's text-message body, its request signing, and the replies that mean
/// failure even with HTTP 200.
///
/// Config examples:
///
///     sinks:
///       - {name: team-slack, kind: webhook, format: slack,
///          url: "${SLACK_WEBHOOK_URL}"}            # https://hooks.slack.com/services/T…/B…/…
///       - {name: tg, kind: webhook, format: telegram, chat_id: "-1001234567890",
///          url: "https://api.telegram.org/bot${TELEGRAM_BOT_TOKEN}/sendMessage"}
///       - {name: feishu-ops, kind: webhook, format: feishu, secret: "${FEISHU_BOT_SECRET}",
///          url: "https://open.feishu.cn/open-apis/bot/v2/hook/${FEISHU_HOOK_ID}"}
///       - {name: ding-ops, kind: webhook, format: dingtalk, secret: "${DINGTALK_SECRET}",   # SEC…
///          url: "https://oapi.dingtalk.com/robot/send?access_token=${DINGTALK_TOKEN}"}
///       - {name: wecom-ops, kind: webhook, format: wecom,
///          url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}"}
public enum ChatWebhookFormat {
    /// Where to post and what.
    public struct Message: Sendable, Hashable {
        public var url: String
        public var body: String
    }

    /// Telegram's `sendMessage` text limit, in characters.
    static let telegramTextLimit = 4096
    /// WeCom's text content limit, in UTF-8 bytes.
    static let wecomContentLimit = 2048
    /// DingTalk's text content limit, in UTF-8 bytes (documented as 20000).
    static let dingtalkContentLimit = 20000
    /// Feishu's request body limit is 20 KB; keep the text well inside it.
    static let feishuTextLimit = 18000
    /// Slack truncates past 40,000 characters.
    static let slackTextLimit = 40000

    /// The messages for `event` in `format` (not `generic`), signed at `now` when `secret` is set:
    /// one, but a Telegram text longer than its limit, and a group's or a digest's list longer
    /// than its tool's, becomes several, split on line boundaries (see ``parts(_:limit:measure:)``),
    /// with telegram `actions`' answer buttons (on a request's firing and repeat messages) under
    /// the last. A retry resumes at the first part the tool did not take (``WebhookSink``).
    public static func messages(
        format: WebhookSinkConfig.Format, event: AlertEvent, url: String, secret: String?, chatID: String?, now: Date,
        actions: TelegramActionsConfig? = nil
    ) -> [Message] {
        let text = self.text(for: event)
        guard format == .telegram else {
            let lists = event.kind == .group || event.kind == .digest
            let pieces = lists && format != .generic ? parts(text, limit: limit(of: format), measure: measure(of: format)) : [text]
            return pieces.map { message(format: format, event: event, text: $0, url: url, secret: secret, now: now) }
        }
        let parts = telegramParts(text)
        let keyboard = actions == nil ? nil : telegramAnswerKeyboard(for: event)
        return parts.indices.map { index in
            var body: [String: JSONValue] = ["text": .string(parts[index]), "disable_web_page_preview": true]
            if let chatID { body["chat_id"] = Int64(chatID).map(JSONValue.integer) ?? .string(chatID) }
            if index == parts.count - 1, let keyboard { body["reply_markup"] = keyboard }
            return Message(url: url, body: JSONValue.object(body).serialized())
        }
    }

    /// `text` in pieces within Telegram's limit (UTF-16 code units, the most it may count).
    static func telegramParts(_ text: String) -> [String] {
        parts(text, limit: telegramTextLimit, measure: measure(of: .telegram))
    }

    /// The longest text one message of `format` holds, in ``measure(of:)``'s unit; Slack's
    /// leaves room for its escapes.
    static func limit(of format: WebhookSinkConfig.Format) -> Int {
        switch format {
        case .telegram, .generic: telegramTextLimit
        case .slack: slackTextLimit - 5000
        case .feishu: feishuTextLimit
        case .dingtalk: dingtalkContentLimit
        case .wecom: wecomContentLimit
        }
    }

    /// How `format` counts a text's length: UTF-8 bytes for DingTalk and WeCom, UTF-16 code
    /// units (never fewer than the characters or code points a tool may count) for the others.
    static func measure(of format: WebhookSinkConfig.Format) -> @Sendable (Substring) -> Int {
        switch format {
        case .dingtalk, .wecom: { $0.utf8.count }
        default: { $0.utf16.count }
        }
    }

    /// `text` in pieces of at most `limit` (as `measure` counts), each ending at a line's end (a
    /// single longer line is cut at the limit, between characters); pieces of nothing but blank
    /// lines are left out.
    static func parts(_ text: String, limit: Int, measure: (Substring) -> Int) -> [String] {
        var parts: [String] = []
        var current: (text: String, size: Int)?
        func add(_ chunk: Substring, size: Int) {
            if let joined = current, joined.size + 1 + size <= limit {
                current = (joined.text + "\n" + chunk, joined.size + 1 + size)
            } else {
                if let current { parts.append(current.text) }
                current = (String(chunk), size)
            }
        }
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let size = measure(line)
            if size <= limit {
                add(line, size: size)
                continue
            }
            var start = line.startIndex
            var chunkSize = 0
            var index = line.startIndex
            while index < line.endIndex {
                let next = line.index(after: index)
                let width = measure(line[index..<next])
                if chunkSize + width > limit, chunkSize > 0 {
                    add(line[start..<index], size: chunkSize)
                    start = index
                    chunkSize = 0
                }
                chunkSize += width
                index = next
            }
            add(line[start..<line.endIndex], size: chunkSize)
        }
        if let current { parts.append(current.text) }
        let shown = parts.filter { !$0.allSatisfy(\.isNewline) }
        return shown.isEmpty ? [text] : shown
    }

    /// One message of `text` about `event` in a format other than Telegram (whose are ``messages(format:event:url:secret:chatID:now:actions:)``).
    private static func message(
        format: WebhookSinkConfig.Format, event: AlertEvent, text: String, url: String, secret: String?, now: Date
    ) -> Message {
        switch format {
        case .generic, .telegram:
            return Message(url: url, body: event.webhookBody.serialized())
        case .slack:
            let body: JSONValue = ["text": .string(truncated(slackEscaped(text), characters: slackTextLimit))]
            return Message(url: url, body: body.serialized())
        case .feishu:
            var body: [String: JSONValue] = [
                "msg_type": "text", "content": ["text": .string(truncated(text, characters: feishuTextLimit))],
            ]
            if let secret {
                let t = unixSeconds(now)
                body["timestamp"] = .string(String(t))
                body["sign"] = .string(feishuSign(secret: secret, timestamp: t))
            }
            return Message(url: url, body: JSONValue.object(body).serialized())
        case .dingtalk:
            let body: JSONValue = [
                "msgtype": "text", "text": ["content": .string(TextCut.cut(text, limit: dingtalkContentLimit))],
            ]
            var signedURL = url
            if let secret {
                let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
                let sign = dingtalkSign(secret: secret, timestampMilliseconds: ms)
                signedURL += (url.contains("?") ? "&" : "?") + "timestamp=\(ms)&sign=\(PercentEncoding.encoded(sign))"
            }
            return Message(url: signedURL, body: body.serialized())
        case .wecom:
            let body: JSONValue = [
                "msgtype": "text", "text": ["content": .string(TextCut.cut(text, limit: wecomContentLimit))],
            ]
            return Message(url: url, body: body.serialized())
        }
    }

    /// "Approve" and "Refuse" under a firing or repeat message about a request (see
    /// ``TelegramCallbackData`` for what they carry); nil for any other event.
    public static func telegramAnswerKeyboard(for event: AlertEvent) -> JSONValue? {
        guard event.kind == .firing || event.kind == .repeat, let request = event.request else { return nil }
        return telegramAnswerKeyboard(for: RequestKey(source: event.source, id: request.id))
    }

    /// "Approve" and "Refuse" for `request`.
    public static func telegramAnswerKeyboard(for request: RequestKey) -> JSONValue {
        let approve = TelegramCallbackData(.approve, request: request)
        let refuse = TelegramCallbackData(.refuse, request: request)
        return [
            "inline_keyboard": [
                [
                    ["text": "Approve", "callback_data": .string(approve.description)],
                    ["text": "Refuse", "callback_data": .string(refuse.description)],
                ]
            ]
        ]
    }

    /// Feishu custom bot signing: base64(HMAC-SHA256(key: "<t>\n<secret>", message: empty)), t in seconds.
    public static func feishuSign(secret: String, timestamp: Int64) -> String {
        Digest.hmacSHA256(key: Data("\(timestamp)\n\(secret)".utf8), message: Data()).base64EncodedString()
    }

    /// DingTalk custom bot signing: base64(HMAC-SHA256(key: secret, message: "<ms>\n<secret>")),
    /// before URL encoding; ms in milliseconds.
    public static func dingtalkSign(secret: String, timestampMilliseconds ms: Int64) -> String {
        Digest.hmacSHA256(key: Data(secret.utf8), message: Data("\(ms)\n\(secret)".utf8)).base64EncodedString()
    }

    /// The event as a short chat message: a header line with severity, rule, source,
    /// order and time left, then the rule's message.
    ///
    ///     [CRITICAL] final-hour · ozon-main 0123-0001-1 · 1h 05m left
    ///     ozon 0123-0001-1 auto-approves in 1h 05m
    /// A group or a digest is its list (``RequestList``) after the severity.
    public static func text(for event: AlertEvent) -> String {
        var header = "[\(event.severity.rawValue.uppercased())] "
        if event.kind == .group || event.kind == .digest { return header + RequestList.text(of: event) }
        if event.rule.isEmpty {
            header += "\(event.kind.rawValue) · \(event.source)"
        } else {
            header += event.rule
            if event.kind != .firing { header += " (\(event.kind.rawValue))" }
            header += " · \(event.source)"
        }
        if let request = event.request {
            header += " \(request.order.isEmpty ? request.id : request.order)"
            header += " · \(StdoutSink.status(of: event, request: request))"
        }
        let message = event.message.trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? header : header + "\n" + message
    }

    /// A reply with HTTP 2xx that still means the message was not posted, or nil. The reply's
    /// start is quoted scrubbed by `scrubber` before it is cut.
    static func rejection(
        format: WebhookSinkConfig.Format, response: HTTPResponse, now: Date, scrubber: SecretScrubber
    ) -> DeliveryError? {
        let excerpt = scrubber.excerpt(of: response.body, limit: WebhookSink.replyExcerptBytes)
        switch format {
        case .generic:
            return nil
        case .slack:
            // Slack answers `ok`; compatible receivers sometimes answer nothing.
            let text = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty || text == "ok" { return nil }
            return DeliveryError(retryable: false, message: "slack replied HTTP \(response.status): \(excerpt)")
        case .telegram:
            guard let reply = try? JSONParser.parse(response.body), reply["ok"]?.boolValue == false else { return nil }
            let code = reply["error_code"]?.lenientInt64
            let retryAfter = OutsideDelay.parse(reply["parameters"]?["retry_after"], now: now)
            let message = "telegram replied ok=false: \(excerpt)"
            if code == 429 { return .rateLimited(message: message, retryAfter: retryAfter) }
            return DeliveryError(retryable: false, message: message)
        case .feishu:
            guard let reply = try? JSONParser.parse(response.body),
                let code = reply["code"]?.lenientInt64 ?? reply["StatusCode"]?.lenientInt64, code != 0
            else { return nil }
            // 9499 "too many requests", 11232 flow control: rate limits; 2200 internal error: try again later.
            let message = "feishu replied code \(code): \(excerpt)"
            if [9499, 11232].contains(code) { return .rateLimited(message: message, retryAfter: nil) }
            return DeliveryError(retryable: code == 2200, message: message)
        case .dingtalk:
            guard let reply = try? JSONParser.parse(response.body), let code = reply["errcode"]?.lenientInt64, code != 0 else {
                return nil
            }
            // 130101 / 410100 "send too fast": rate limits; -1 "system busy".
            let message = "dingtalk replied errcode \(code): \(excerpt)"
            if [130101, 410100].contains(code) { return .rateLimited(message: message, retryAfter: nil) }
            return DeliveryError(retryable: code == -1, message: message)
        case .wecom:
            guard let reply = try? JSONParser.parse(response.body), let code = reply["errcode"]?.lenientInt64, code != 0 else {
                return nil
            }
            // 45009 "api freq out of limit": a rate limit; 45033 concurrency limit, -1 "system busy".
            let message = "wecom replied errcode \(code): \(excerpt)"
            if code == 45009 { return .rateLimited(message: message, retryAfter: nil) }
            return DeliveryError(retryable: [45033, -1].contains(code), message: message)
        }
    }

    /// A wait a chat tool names in its body rather than in `Retry-After` (Telegram's `parameters.retry_after`).
    static func retryAfterHint(format: WebhookSinkConfig.Format, response: HTTPResponse, now: Date) -> TimeInterval? {
        guard format == .telegram, let reply = try? JSONParser.parse(response.body) else { return nil }
        return OutsideDelay.parse(reply["parameters"]?["retry_after"], now: now)
    }

    static func unixSeconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// Slack's three control characters in message text.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }


    /// At most `limit` characters (the unit Telegram, Slack and Feishu count), ending in ``TextCut/marker`` when cut.
    static func truncated(_ text: String, characters limit: Int) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit - 1)) + TextCut.marker
    }
}
