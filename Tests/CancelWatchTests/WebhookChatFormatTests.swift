import CancelWatch
import Foundation
import HTTPServing
import Testing

@Suite struct WebhookChatFormatTests {
    /// 2026-11-23T19:01:02.345Z: 1795460462 seconds, 1795460462345 milliseconds.
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_460_462.345))
    let transport = CurlHTTPTransport(threads: 2)

    /// The text every chat format carries for `SinkTestEvents.firing()`, as JSON string content.
    static let firingTextJSON =
        #""[CRITICAL] final-hour · ozon-main 0123-0001-1 · 1h 05m left\nozon 0123-0001-1 auto-approves in 1h 05m""#

    func sink(
        _ format: WebhookSinkConfig.Format, url: String, secret: String? = nil, chatID: String? = nil
    ) -> WebhookSink {
        WebhookSink(
            name: format.rawValue,
            config: WebhookSinkConfig(url: .url(url), secret: secret.map { Secret($0) }, format: format, chatID: chatID),
            transport: transport, clock: clock)
    }

    /// Delivers the standard event through `format` to a receiver answering `reply`; returns what arrived.
    func deliver(
        _ format: WebhookSinkConfig.Format, path: String = "/hook", secret: String? = nil, chatID: String? = nil,
        event: AlertEvent = SinkTestEvents.firing(), reply: ServerResponse = .json(text: "{}")
    ) async throws -> ServerRequest {
        let receiver = try ScriptedServer(fallback: { _ in reply })
        try await sink(format, url: receiver.baseURL + path, secret: secret, chatID: chatID).deliver(event)
        return try #require(receiver.requests.first)
    }

    /// The failure `format` reports for a receiver answering `reply`.
    func failure(_ format: WebhookSinkConfig.Format, reply: ServerResponse) async throws -> DeliveryError {
        let receiver = try ScriptedServer(fallback: { _ in reply })
        do {
            try await sink(format, url: receiver.baseURL + "/hook", chatID: "42").deliver(SinkTestEvents.firing())
        } catch {
            return error
        }
        throw CancellationError()  // acknowledged: the test's #require on the result fails
    }

    // MARK: Slack

    @Test func slackGetsAnIncomingWebhookTextMessage() async throws {
        let request = try await deliver(.slack, reply: .text("ok"))
        #expect(request.method == "POST")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.bodyText == #"{"text":"# + Self.firingTextJSON + "}")
    }

    @Test func slackTextEscapesItsControlCharacters() async throws {
        let request = try await deliver(.slack, event: SinkTestEvents.firing(message: "a <b> & c"), reply: .text("ok"))
        #expect(try JSONParser.parse(request.body)["text"]?.stringValue?.hasSuffix("\na &lt;b&gt; &amp; c") == true)
    }

    @Test func slackAnythingButOkIsAFailure() async throws {
        let rejected = try await failure(.slack, reply: .text(status: 200, "invalid_token"))
        #expect(!rejected.retryable)
        #expect(rejected.message.contains("invalid_token"))
        let gone = try await failure(.slack, reply: .text(status: 404, "no_service"))
        #expect(!gone.retryable)
        #expect(gone.message == "HTTP 404: no_service")
        let limited = try await failure(.slack, reply: .text(status: 429, "rate_limited", headers: ["Retry-After": "30"]))
        #expect(limited.retryable && limited.retryAfter == 30)
    }

    // MARK: Telegram

    @Test func telegramGetsSendMessageWithTheChatID() async throws {
        let request = try await deliver(
            .telegram, path: "/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", chatID: "-1001234567890",
            reply: .json(text: #"{"ok":true,"result":{"message_id":7}}"#))
        #expect(request.path == "/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage")
        #expect(
            request.bodyText
                == #"{"chat_id":-1001234567890,"disable_web_page_preview":true,"text":"# + Self.firingTextJSON + "}")
    }

    @Test func telegramChannelNamesStayStrings() async throws {
        let request = try await deliver(.telegram, chatID: "@shop_alerts", reply: .json(text: #"{"ok":true}"#))
        #expect(try JSONParser.parse(request.body)["chat_id"] == .string("@shop_alerts"))
    }

    @Test func telegramOkFalseIsAFailureAndItsRetryAfterIsHonoured() async throws {
        let notFound = try await failure(
            .telegram, reply: .json(status: 400, text: #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#))
        #expect(!notFound.retryable)
        #expect(notFound.message.contains("chat not found"))
        let okFalse = try await failure(.telegram, reply: .json(text: #"{"ok":false,"error_code":403,"description":"Forbidden"}"#))
        #expect(!okFalse.retryable)
        let limited = try await failure(
            .telegram,
            reply: .json(
                status: 429,
                text: #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#))
        #expect(limited.retryable)
        #expect(limited.retryAfter == 3)
    }

    @Test func telegramTextPastItsLimitIsSentInPartsNoneOverIt() throws {
        let event = SinkTestEvents.firing(message: String(repeating: "я", count: 5000))
        let messages = ChatWebhookFormat.messages(
            format: .telegram, event: event, url: "http://127.0.0.1/botT/sendMessage", secret: nil, chatID: "1", now: clock.now())
        let texts = try messages.map { try #require(try JSONParser.parse(Data($0.body.utf8))["text"]?.stringValue) }
        #expect(texts.map(\.count) == [ChatWebhookFormat.text(for: event).split(separator: "\n")[0].count, 4096, 904])
        #expect(texts.allSatisfy { !$0.hasSuffix("…") })
    }

    // MARK: Feishu

    @Test func feishuGetsACustomBotTextMessage() async throws {
        let request = try await deliver(.feishu, reply: .json(text: #"{"code":0,"msg":"success","data":{}}"#))
        #expect(request.bodyText == #"{"content":{"text":"# + Self.firingTextJSON + #"},"msg_type":"text"}"#)
    }

    @Test func feishuSignsWithTimestampAndSecretAsTheKeyOverAnEmptyMessage() async throws {
        let secret = "qPZ1bGgIE8qXWlfDCOt6cb"
        let request = try await deliver(.feishu, secret: secret, reply: .json(text: #"{"code":0,"msg":"success"}"#))
        // base64(HMAC-SHA256(key: "<seconds>\n<secret>", message: "")), computed with Python.
        let expected = try IndependentHMAC.sha256(key: Data("1795460462\n\(secret)".utf8), message: Data()).base64EncodedString()
        #expect(
            request.bodyText
                == #"{"content":{"text":"# + Self.firingTextJSON + #"},"msg_type":"text","sign":""# + expected
                + #"","timestamp":"1795460462"}"#)
    }

    @Test func feishuNonZeroCodeIsAFailureRetryableOnlyForRateLimits() async throws {
        let badSign = try await failure(
            .feishu, reply: .json(text: #"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#))
        #expect(!badSign.retryable)
        #expect(badSign.message.hasPrefix("feishu replied code 19021: "))
        let limited = try await failure(.feishu, reply: .json(text: #"{"code":11232,"msg":"frequency limited psm"}"#))
        #expect(limited.retryable)
        let tooMany = try await failure(.feishu, reply: .json(text: #"{"code":9499,"msg":"Too Many Request"}"#))
        #expect(tooMany.retryable)
        // The old reply shape acknowledges too.
        _ = try await deliver(.feishu, reply: .json(text: #"{"Extra":null,"StatusCode":0,"StatusMessage":"success"}"#))
    }

    // MARK: DingTalk

    @Test func dingtalkGetsACustomBotTextMessage() async throws {
        let request = try await deliver(
            .dingtalk, path: "/robot/send?access_token=abc123", reply: .json(text: #"{"errcode":0,"errmsg":"ok"}"#))
        #expect(request.target == "/robot/send?access_token=abc123")
        #expect(request.bodyText == #"{"msgtype":"text","text":{"content":"# + Self.firingTextJSON + "}}")
    }

    @Test func dingtalkSignsTheURLWithMillisecondsAndTheSecretAsKey() async throws {
        let secret = "SEC1f3a6e0d2b9c84e7f5a1d3c6b8e0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2f4a6"
        let request = try await deliver(
            .dingtalk, path: "/robot/send?access_token=abc123", secret: secret,
            reply: .json(text: #"{"errcode":0,"errmsg":"ok"}"#))
        // base64(HMAC-SHA256(key: secret, message: "<ms>\n<secret>")), then URL-encoded like Python's quote_plus.
        let sign = try IndependentHMAC.sha256(key: Data(secret.utf8), message: Data("1795460462345\n\(secret)".utf8))
            .base64EncodedString()
        let encoded = try runPython("import sys, urllib.parse; sys.stdout.write(urllib.parse.quote_plus(sys.argv[1]))", arguments: [sign])
        #expect(request.target == "/robot/send?access_token=abc123&timestamp=1795460462345&sign=\(encoded)")
        #expect(request.queryValue("sign") == sign)
        #expect(request.bodyText == #"{"msgtype":"text","text":{"content":"# + Self.firingTextJSON + "}}")
    }

    @Test func dingtalkNonZeroErrcodeIsAFailureRetryableOnlyForRateLimits() async throws {
        let badSign = try await failure(.dingtalk, reply: .json(text: #"{"errcode":310000,"errmsg":"sign not match"}"#))
        #expect(!badSign.retryable)
        #expect(badSign.message == #"dingtalk replied errcode 310000: {"errcode":310000,"errmsg":"sign not match"}"#)
        let tooFast = try await failure(.dingtalk, reply: .json(text: #"{"errcode":130101,"errmsg":"send too fast"}"#))
        #expect(tooFast.retryable)
    }

    // MARK: WeCom

    @Test func wecomGetsAGroupBotTextMessage() async throws {
        let request = try await deliver(
            .wecom, path: "/cgi-bin/webhook/send?key=693a91f6-7xxx", reply: .json(text: #"{"errcode":0,"errmsg":"ok"}"#))
        #expect(request.target == "/cgi-bin/webhook/send?key=693a91f6-7xxx")
        #expect(request.bodyText == #"{"msgtype":"text","text":{"content":"# + Self.firingTextJSON + "}}")
    }

    @Test func wecomContentIsCutTo2048BytesOnACharacterBoundary() async throws {
        let request = try await deliver(
            .wecom, event: SinkTestEvents.firing(message: String(repeating: "取消订单", count: 400)),
            reply: .json(text: #"{"errcode":0,"errmsg":"ok"}"#))
        let content = try #require(try JSONParser.parse(request.body)["text"]?["content"]?.stringValue)
        #expect(content.utf8.count <= 2048)
        #expect(content.utf8.count > 2040)
        #expect(content.hasSuffix("…"))
    }

    @Test func wecomNonZeroErrcodeIsAFailureRetryableOnlyForRateLimits() async throws {
        let invalid = try await failure(.wecom, reply: .json(text: #"{"errcode":93000,"errmsg":"invalid webhook url"}"#))
        #expect(!invalid.retryable)
        #expect(invalid.message.contains("93000"))
        let limited = try await failure(.wecom, reply: .json(text: #"{"errcode":45009,"errmsg":"api freq out of limit"}"#))
        #expect(limited.retryable)
    }

    // MARK: All

    @Test(arguments: [WebhookSinkConfig.Format.slack, .telegram, .feishu, .dingtalk, .wecom])
    func everyChatMessageCarriesTheIdempotencyKey(_ format: WebhookSinkConfig.Format) async throws {
        let event = SinkTestEvents.firing()
        let request = try await deliver(format, chatID: "1", event: event, reply: .text("ok"))
        #expect(request.header("Idempotency-Key") == event.id)
        #expect(request.header("X-Cancelwatch-Signature") == nil)
    }

    @Test func sourceEventsAndResolutionsReadWell() {
        #expect(ChatWebhookFormat.text(for: SinkTestEvents.sourceDown()) == "[CRITICAL] source_down · red-shop\n5 polls failed")
        var resolved = SinkTestEvents.firing(severity: .info, message: "seller refused", kind: .resolved)
        resolved.outcome = .rejected
        #expect(ChatWebhookFormat.text(for: resolved) == "[INFO] final-hour (resolved) · ozon-main 0123-0001-1 · rejected\nseller refused")
    }
}
