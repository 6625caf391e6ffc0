import CancelWatchTesting
import Foundation
import HTTPServing
import MarketSim
import Logging
import Testing

@testable import CancelWatch

/// The chat presets keep to their tools' limits: they pace themselves, wait out a
/// rate-limit reply without using up `max_attempts`, and split a long Telegram message.
@Suite struct ChatToolLimitsTests {
    /// The virtual instants a receiver got its requests at.
    final class Arrivals: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [Date] = []
        var times: [Date] { lock.withLock { stored } }
        func add(_ time: Date) { lock.withLock { stored.append(time) } }
    }

    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_460_462))
    let transport = CurlHTTPTransport(threads: 2)

    func sink(_ format: WebhookSinkConfig.Format, url: String, actions: TelegramActionsConfig? = nil) -> WebhookSink {
        WebhookSink(
            name: format.rawValue,
            config: WebhookSinkConfig(url: .url(url), format: format, chatID: "42", actions: actions),
            transport: transport, clock: clock)
    }

    func queue(_ sink: AlertSink, retry: RetryPolicy, event: AlertEvent) throws -> (DeliveryQueue, SQLiteStateStore) {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-chat-limits"))
        var queued = event
        queued.sinks = [sink.name]
        try store.commit(alerts: [], events: [queued], health: nil, at: clock.now())
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: retry)], store: store, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (queue, store)
    }

    @Test func aDingTalkSinkRateLimitedFiveTimesWithThreeAttemptsStillDeliversTheSameEvent() async throws {
        let tooFast = { (_: ServerRequest) in ServerResponse.json(text: #"{"errcode":130101,"errmsg":"send too fast"}"#) }
        let receiver = try ScriptedServer(
            Array(repeating: tooFast, count: 5) + [{ _ in .json(text: #"{"errcode":0,"errmsg":"ok"}"#) }])
        let event = SinkTestEvents.firing()
        let (queue, store) = try queue(
            sink(.dingtalk, url: receiver.baseURL + "/robot/send"), retry: RetryPolicy(maxAttempts: 3, initialDelay: 1, maxDelay: 60),
            event: event)
        let log = AttemptLog()
        for _ in 0..<6 {
            log.add(await queue.deliverDueOnce())
            clock.advance(by: 60)
        }
        #expect(log.results.map(\.status) == Array(repeating: .retry, count: 5) + [.delivered])
        #expect(log.results.allSatisfy { $0.eventID == event.id })
        #expect(log.results.last?.attempts == 1)
        #expect(try store.outboxCounts().map { "\($0.sink)/\($0.status)/\($0.count)" } == ["dingtalk/delivered/1"])
        #expect(receiver.requests.count == 6)
        #expect(receiver.requests.allSatisfy { $0.header("Idempotency-Key") == event.id })
    }

    static let tooFast: @Sendable (ServerRequest) -> ServerResponse = { _ in ServerResponse.json(text: #"{"errcode":130101,"errmsg":"send too fast"}"#) }

    /// A DingTalk sink answered by `script`, one attempt a minute: each retry's wait, and the store.
    func waits(_ script: [(ServerRequest) -> ServerResponse]) async throws -> ([TimeInterval], SQLiteStateStore, DeliveryQueue) {
        let receiver = try ScriptedServer(script)
        let (queue, store) = try queue(
            sink(.dingtalk, url: receiver.baseURL + "/robot/send"), retry: RetryPolicy(initialDelay: 1, maxDelay: 60),
            event: SinkTestEvents.firing())
        let log = AttemptLog()
        for _ in 0..<script.count {
            log.add(await queue.deliverDueOnce())
            clock.advance(by: 60)
        }
        return (log.results.compactMap { result in result.nextAttemptAt.map { $0.timeIntervalSince(result.at) } }, store, queue)
    }

    @Test func rateLimitRepliesThatNameNoWaitBackOffFurtherEachTimeUntilOneIsDelivered() async throws {
        // DingTalk's 130101 says "too fast" and no more: asked again at the backoff's first step
        // each time, a throttled robot would be hit every second for as long as it lasts.
        let ok = { (_: ServerRequest) in ServerResponse.json(text: #"{"errcode":0,"errmsg":"ok"}"#) }
        let (waits, store, queue) = try await waits(Array(repeating: Self.tooFast, count: 5) + [ok, Self.tooFast])
        // Ceilings 1, 2, 4, 8, 16 s, each with jitter down to half.
        #expect(waits.count == 5, "\(waits)")
        #expect(waits.last.map { $0 >= 8 } == true, "\(waits)")
        #expect(waits.allSatisfy { $0 <= 16 }, "\(waits)")
        #expect(try store.outboxCounts().map { "\($0.sink)/\($0.status)/\($0.count)" } == ["dingtalk/delivered/1"])
        // After a delivery the next one starts from the first step again.
        var next = SinkTestEvents.firing()
        next.id = "after-a-delivery"
        next.sinks = ["dingtalk"]
        try store.commit(alerts: [], events: [next], health: nil, at: clock.now())
        let again = AttemptLog()
        again.add(await queue.deliverDueOnce())
        let first = again.results.compactMap { result in result.nextAttemptAt.map { $0.timeIntervalSince(result.at) } }
        #expect(first.count == 1 && first.allSatisfy { $0 <= 1 }, "\(first)")
    }

    @Test func anyOtherOutcomeEndsARowOfRateLimitsThatNameNoWait() async throws {
        let down = { (_: ServerRequest) in ServerResponse.text(status: 503, "down") }
        let (waits, _, _) = try await waits(Array(repeating: Self.tooFast, count: 4) + [down, Self.tooFast])
        #expect(waits.count == 6, "\(waits)")
        // The fourth waits at least 4 s (ceiling 8); after the 503 the row starts again at 1 s.
        #expect(waits[3] >= 4 && waits[5] <= 1, "\(waits)")
    }

    @Test func aTelegramTooManyRequestsWaitsItsRetryAfterAndIsNeverADeadLetter() async throws {
        let limited = ServerResponse.json(
            status: 429, text: #"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":37}}"#)
        let receiver = try ScriptedServer([{ _ in limited }, { _ in limited }, { _ in .json(text: #"{"ok":true,"result":{}}"#) }])
        let (queue, _) = try queue(
            sink(.telegram, url: receiver.baseURL + "/botT/sendMessage"), retry: RetryPolicy(maxAttempts: 1, initialDelay: 1, maxDelay: 5),
            event: SinkTestEvents.firing())
        let log = AttemptLog()
        log.add(await queue.deliverDueOnce())
        // The tool's own wait, beyond the sink's max_delay, and no dead letter at max_attempts 1.
        #expect(log.results.first?.status == .retry)
        #expect(log.results.first?.nextAttemptAt == clock.now().addingTimeInterval(37))
        clock.advance(by: 36)
        log.add(await queue.deliverDueOnce())
        #expect(log.results.count == 1)
        clock.advance(by: 1)
        log.add(await queue.deliverDueOnce())
        clock.advance(by: 37)
        log.add(await queue.deliverDueOnce())
        #expect(log.results.map(\.status) == [.retry, .retry, .delivered])
    }

    @Test func aToolsWaitBeyondTheOutsideCapIsClampedToIt() throws {
        let response = HTTPResponse(status: 429, headers: [HTTPHeader("Retry-After", "7200")], body: Data())
        let failure = try #require(WebhookSink.failure(of: response, format: .slack, now: clock.now(), scrubber: SecretScrubber([])))
        #expect(failure.rateLimited && failure.retryable)
        #expect(failure.retryAfter == OutsideDelay.cap)
    }

    @Test func eachToolsRateLimitCodeIsARateLimitAndTheGenericFormatsIsNot() throws {
        let replies: [(WebhookSinkConfig.Format, String)] = [
            (.dingtalk, #"{"errcode":130101}"#), (.dingtalk, #"{"errcode":410100}"#), (.wecom, #"{"errcode":45009}"#),
            (.feishu, #"{"code":9499}"#), (.feishu, #"{"code":11232}"#),
            (.telegram, #"{"ok":false,"error_code":429}"#),
        ]
        for (format, body) in replies {
            let failure = WebhookSink.failure(
                of: HTTPResponse(status: 200, body: Data(body.utf8)), format: format, now: clock.now(), scrubber: SecretScrubber([]))
            #expect(failure?.rateLimited == true, "\(format) \(body)")
        }
        let busy = WebhookSink.failure(
            of: HTTPResponse(status: 200, body: Data(#"{"errcode":-1}"#.utf8)), format: .dingtalk, now: clock.now(), scrubber: SecretScrubber([]))
        #expect(busy?.retryable == true && busy?.rateLimited == false)
        let generic = WebhookSink.failure(of: HTTPResponse(status: 429, body: Data()), format: .generic, now: clock.now(), scrubber: SecretScrubber([]))
        #expect(generic?.retryable == true && generic?.rateLimited == false)
    }

    /// Sends `count` messages through `sink` one after another while moving the clock a second
    /// whenever the sink waits; returns the virtual instants the receiver got them at. A wait the
    /// sink gives back (longer than it sleeps itself) is slept here, as the delivery queue would.
    func sendPaced(_ count: Int, through sink: WebhookSink, arrivals: Arrivals) async throws -> [Date] {
        let clock = self.clock
        let sending = Task {
            var index = 0
            while index < count {
                do {
                    try await sink.deliver(SinkTestEvents.firing(id: String(format: "%032x", index)))
                    index += 1
                } catch let error as DeliveryError where error.paced && error.rateLimited {
                    try await clock.sleep(for: try #require(error.retryAfter))
                }
            }
        }
        while arrivals.times.count < count {
            try await waitFor { clock.sleeperCount > 0 || arrivals.times.count == count }
            if clock.sleeperCount > 0 { clock.advance(by: 1) }
        }
        try await sending.value
        return arrivals.times
    }

    @Test func twentyFiveDingTalkMessagesTakeAMinuteAndNeverMoreThanTwentyInAnySixtySeconds() async throws {
        let arrivals = Arrivals()
        let clock = self.clock
        let receiver = try ScriptedServer(fallback: { _ in
            arrivals.add(clock.now())
            return .json(text: #"{"errcode":0}"#)
        })
        let times = try await sendPaced(25, through: sink(.dingtalk, url: receiver.baseURL + "/robot/send"), arrivals: arrivals)
        #expect(times.count == 25)
        #expect(try #require(times.last).timeIntervalSince(try #require(times.first)) >= 60)
        for index in 0..<(times.count - 20) {
            #expect(times[index + 20].timeIntervalSince(times[index]) >= 60, "21 messages within a minute from #\(index)")
        }
    }

    @Test func feishuSendsAtMostFiveASecondAndTelegramAndSlackOne() async throws {
        for (format, perSecond) in [(WebhookSinkConfig.Format.feishu, 5), (.telegram, 1), (.slack, 1)] {
            let arrivals = Arrivals()
            let clock = self.clock
            let receiver = try ScriptedServer(fallback: { _ in
                arrivals.add(clock.now())
                return format == .slack ? .text("ok") : .json(text: #"{"ok":true,"code":0}"#)
            })
            let times = try await sendPaced(12, through: sink(format, url: receiver.baseURL + "/hook"), arrivals: arrivals)
            for index in 0..<(times.count - perSecond) {
                #expect(times[index + perSecond].timeIntervalSince(times[index]) >= 1, "\(format) #\(index)")
            }
        }
    }

    @Test func aLongTelegramMessageIsSplitOnLinesWithTheButtonsOnlyUnderTheLast() throws {
        let lines = (0..<400).map { "order 0123-\(String(format: "%04d", $0))-1 · 2h left · Передумал покупать" }
        let event = SinkTestEvents.firing(message: lines.joined(separator: "\n"))
        let messages = ChatWebhookFormat.messages(
            format: .telegram, event: event, url: "http://127.0.0.1/botT/sendMessage", secret: nil, chatID: "42", now: clock.now(),
            actions: TelegramActionsConfig(allow: [7]))
        #expect(messages.count > 1)
        let bodies = try messages.map { try JSONParser.parse(Data($0.body.utf8)) }
        let texts = bodies.map { $0["text"]?.stringValue ?? "" }
        #expect(texts.allSatisfy { $0.count <= ChatWebhookFormat.telegramTextLimit })
        #expect(texts.joined(separator: "\n") == ChatWebhookFormat.text(for: event))
        #expect(bodies.dropLast().allSatisfy { $0["reply_markup"] == nil })
        #expect(bodies.last?["reply_markup"] != nil)
        #expect(bodies.allSatisfy { $0["chat_id"] == .integer(42) })
    }

    @Test func aSingleLineLongerThanTheLimitIsCutAtIt() {
        let parts = ChatWebhookFormat.telegramParts("head\n" + String(repeating: "x", count: 9000) + "\ntail")
        #expect(parts == ["head", String(repeating: "x", count: 4096), String(repeating: "x", count: 4096), String(repeating: "x", count: 808) + "\ntail"])
    }

    @Test func aTelegramMessageWithinTheLimitIsOneMessageAsBefore() {
        let text = String(repeating: "y", count: ChatWebhookFormat.telegramTextLimit)
        #expect(ChatWebhookFormat.telegramParts(text) == [text])
    }

    @Test func aSplitTelegramMessageArrivesPartByPartPacedAtItsChat() async throws {
        let arrivals = Arrivals()
        let clock = self.clock
        let receiver = try ScriptedServer(fallback: { _ in
            arrivals.add(clock.now())
            return .json(text: #"{"ok":true,"result":{}}"#)
        })
        let sink = sink(.telegram, url: receiver.baseURL + "/botT/sendMessage")
        let event = SinkTestEvents.firing(message: (0..<400).map { "line \($0) " + String(repeating: "z", count: 40) }.joined(separator: "\n"))
        let expected = ChatWebhookFormat.telegramParts(ChatWebhookFormat.text(for: event))
        let sending = Task { try await sink.deliver(event) }
        while arrivals.times.count < expected.count {
            try await waitFor { clock.sleeperCount > 0 || arrivals.times.count == expected.count }
            if clock.sleeperCount > 0 { clock.advance(by: 1) }
        }
        try await sending.value
        let texts = try receiver.requests.map { try JSONParser.parse($0.body)["text"]?.stringValue ?? "" }
        #expect(texts == expected)
        let times = arrivals.times
        #expect(zip(times, times.dropFirst()).allSatisfy { $1.timeIntervalSince($0) >= 1 })
    }

    /// One attempt at `event`, the clock moved on by `step` whenever the sink waits for its pace.
    func attempt(_ event: AlertEvent, through sink: WebhookSink, step: TimeInterval) async throws -> DeliveryError? {
        let clock = self.clock
        let finished = Arrivals()
        let sending = Task { () -> DeliveryError? in
            defer { finished.add(clock.now()) }
            do throws(DeliveryError) {
                try await sink.deliver(event)
                return nil
            } catch {
                return error
            }
        }
        while finished.times.isEmpty {
            try await waitFor { clock.sleeperCount > 0 || !finished.times.isEmpty }
            if clock.sleeperCount > 0 { clock.advance(by: step) }
        }
        return await sending.value
    }

    static let longMessage = SinkTestEvents.firing(
        message: (0..<300).map { "line \($0) " + String(repeating: "z", count: 40) }.joined(separator: "\n"))

    @Test func aMessageSentLateCountsFromWhenItWentSoTheNextNeverReachesTheChatTooSoon() async throws {
        let simulator = try MarketSimulator(clock: clock)
        defer { simulator.shutdown() }
        simulator.telegram.enforce(.telegram)
        let sink = WebhookSink(
            name: "tg", config: WebhookSinkConfig(url: .url(simulator.telegramURL("sendMessage")), format: .telegram, chatID: "-100123"),
            transport: transport, clock: clock)
        let parts = ChatWebhookFormat.telegramParts(ChatWebhookFormat.text(for: Self.longMessage)).count
        #expect(parts >= 3)
        // Every wait for the pace ends late (a busy machine): the clock passes each slot by half a second.
        let failure = try await attempt(Self.longMessage, through: sink, step: 1.5)
        #expect(failure == nil, "\(failure?.message ?? "")")
        #expect(simulator.telegram.rateRefusals().isEmpty)
        #expect(simulator.telegram.allMessages().count == parts)
    }

    @Test func aRetryOfASplitMessageStartsAtThePartTheChatRefused() async throws {
        let clock = self.clock
        let served = Arrivals()
        let receiver = try ScriptedServer(fallback: { _ in
            served.add(clock.now())
            // The second part is refused once for rate.
            if served.times.count == 2 {
                return .json(
                    status: 429,
                    text: #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#)
            }
            return .json(text: #"{"ok":true,"result":{}}"#)
        })
        let sink = sink(.telegram, url: receiver.baseURL + "/botT/sendMessage")
        let expected = ChatWebhookFormat.telegramParts(ChatWebhookFormat.text(for: Self.longMessage))
        #expect(expected.count >= 3)
        #expect(try await attempt(Self.longMessage, through: sink, step: 1)?.rateLimited == true)
        clock.advance(by: 3)
        #expect(try await attempt(Self.longMessage, through: sink, step: 1) == nil)
        let texts = try receiver.requests.map { try JSONParser.parse($0.body)["text"]?.stringValue ?? "" }
        // The first part once; the second refused, then taken; the rest once.
        #expect(texts.map { expected.firstIndex(of: $0) ?? -1 } == [0, 1] + Array(1..<expected.count))
    }

    /// A WeCom robot takes 2,048 bytes: a group of 50 Russian reasons goes as several messages,
    /// every request named once, none cut.
    @Test func aGroupTooLongForItsToolIsSplitOnLinesInEveryChatFormat() throws {
        let group = AlertEvent.group(
            (1...50).map { RequestListTests.event($0, deadlineIn: Double(60 + $0)) }.map {
                var event = $0
                event.request?.details.reason = "Покупатель передумал, заказал другой товар"
                return event
            }, sink: "wecom", at: SinkTestEvents.occurredAt)
        let text = ChatWebhookFormat.text(for: group)
        for format in [WebhookSinkConfig.Format.wecom, .dingtalk, .feishu, .slack, .telegram] {
            let messages = ChatWebhookFormat.messages(
                format: format, event: group, url: "https://chat.example.com/hook", secret: nil, chatID: "42", now: clock.now())
            let bodies = try messages.map { try JSONParser.parse(Data($0.body.utf8)) }
            let texts = bodies.map { $0["text"]?["content"]?.stringValue ?? $0["content"]?["text"]?.stringValue ?? $0["text"]?.stringValue ?? "" }
            #expect(texts.joined(separator: "\n") == text, "\(format): every line once, in order")
            let limit = ChatWebhookFormat.limit(of: format)
            #expect(texts.allSatisfy { ChatWebhookFormat.measure(of: format)(Substring($0)) <= limit }, "\(format)")
        }
        #expect(ChatWebhookFormat.messages(
            format: .wecom, event: group, url: "https://chat.example.com/hook", secret: nil, chatID: nil, now: clock.now()).count >= 2)
    }

    /// Telegram's limit counts UTF-16 code units at most: a line of emoji is cut by them.
    @Test func aTelegramPartIsMeasuredInUTF16SoEmojiNeverMakeItTooLong() {
        let parts = ChatWebhookFormat.telegramParts("head\n" + String(repeating: "👍🏻", count: 3000))
        #expect(parts.allSatisfy { $0.utf16.count <= ChatWebhookFormat.telegramTextLimit })
        #expect(parts.first == "head")
        #expect(parts.dropFirst().joined() == String(repeating: "👍🏻", count: 3000))
    }
}
