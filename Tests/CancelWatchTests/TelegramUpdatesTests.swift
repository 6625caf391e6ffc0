import CancelWatch
import CancelWatchTesting
import Foundation
import HTTPServing
import Logging
import MarketSim
import ServiceLifecycle
import Testing

/// What a test's `handle` was given, in order.
final class HandedUpdates: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [TelegramUpdate] = []
    func append(_ update: TelegramUpdate) { lock.withLock { items.append(update) } }
    var all: [TelegramUpdate] { lock.withLock { items } }
}

/// Log lines kept for a test to read: level, message and metadata.
final class RecordedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []
    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        lock.withLock { entries.append((level, message, metadata)) }
    }
    var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lock.withLock { entries } }

    var logger: Logger {
        Logger(label: "test") { _ in RecordingLogHandler(log: self) }
    }
}

struct RecordingLogHandler: LogHandler {
    let log: RecordedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}

/// The reader of a bot's updates, against the Telegram double and scripted servers.
@Suite struct TelegramUpdatesTests {
    let transport = CurlHTTPTransport(threads: 4)
    static let alice = SimTelegramUser(id: 42, firstName: "Alice")
    static let mallory = SimTelegramUser(id: 666, firstName: "Mallory")
    static let chat: Int64 = -1_001_234_567_890
    static let key = RequestKey(source: "ozon-main", id: "91001")

    func client(_ url: String, clock: WatchClock = SystemClock()) throws -> TelegramBotClient {
        TelegramBotClient(bot: try #require(TelegramBotURL(sendMessageURL: url)), transport: transport, clock: clock)
    }

    /// Starts a reader allowing Alice; returns its task and what it hands on.
    func start(
        _ client: TelegramBotClient, clock: WatchClock = SystemClock(), log: RecordedLog = RecordedLog(), pollTimeout: Int = 50
    ) -> (Task<Void, Never>, HandedUpdates) {
        let handed = HandedUpdates()
        let reader = TelegramUpdates(
            client: client, allow: [Self.alice.id], clock: clock, logger: log.logger, pollTimeout: pollTimeout,
            handle: { handed.append($0) })
        return (Task { try? await reader.run() }, handed)
    }

    /// Posts the standard firing alert through a telegram sink with actions; returns its message id.
    func postAlert(_ sim: MarketSimulator) async throws -> Int64 {
        let sink = WebhookSink(
            name: "tg",
            config: WebhookSinkConfig(
                url: .url(sim.telegramURL("sendMessage")), format: .telegram, chatID: String(Self.chat),
                actions: TelegramActionsConfig(allow: [Self.alice.id])),
            transport: transport)
        try await sink.deliver(SinkTestEvents.firing())
        return try #require(sim.telegram.allMessages().last?.messageID)
    }

    @Test func aPressByAnAllowedUserIsAnsweredAtOnceHandedOnAndConfirmed() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let alert = try await postAlert(sim)
        let (task, handed) = start(try client(sim.telegramURL("sendMessage")))
        defer { task.cancel() }
        let data = try #require(sim.telegram.message(alert)?.callbackData.last)
        let pressed = try sim.telegram.press(messageID: alert, data: data, from: Self.alice)

        try await waitFor { handed.all.count == 1 }
        guard case .press(let press) = try #require(handed.all.first) else { throw CancellationError() }
        #expect(press.queryID == pressed.id)
        #expect(press.user == TelegramUser(id: 42, name: "Alice"))
        #expect(press.user.actor.description == "telegram:42 (Alice)")
        #expect(press.chatID == Self.chat && press.messageID == alert)
        #expect(press.data.choice == .refuse && press.data.request(among: [Self.key]) == Self.key)
        let answered = try #require(sim.telegram.allCallbacks().first)
        #expect(answered.answered && answered.answerText == "Working on it…" && !answered.showAlert)
        // The next poll's offset confirms it.
        try await waitFor { sim.telegram.pendingUpdateIDs().isEmpty && sim.telegram.waitingPollCount() == 1 }
    }

    @Test func aPressByAUserNotAllowedIsRefusedLoggedAndNotHandedOn() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let alert = try await postAlert(sim)
        let log = RecordedLog()
        let (task, handed) = start(try client(sim.telegramURL("sendMessage")), log: log)
        defer { task.cancel() }
        let data = try #require(sim.telegram.message(alert)?.callbackData.first)
        try sim.telegram.press(messageID: alert, data: data, from: Self.mallory)
        try sim.telegram.press(messageID: alert, data: data, from: Self.alice)

        // Handled in order: once Alice's press is in, Mallory's was dealt with.
        try await waitFor { handed.all.count == 1 }
        #expect(handed.all.first?.user.id == 42)
        let refused = try #require(sim.telegram.allCallbacks().first)
        #expect(refused.from.id == 666 && refused.answered && refused.showAlert)
        #expect(refused.answerText == "You may not answer cancellation requests here.")
        let warning = try #require(log.all.first { $0.message.contains("not in actions.allow") })
        #expect(warning.level == .warning)
        #expect(warning.metadata["telegram_user"] == "666" && warning.metadata["telegram_name"] == "Mallory")
    }

    @Test func aReplyToAReasonPromptComesBackWithItsRequestAndOtherRepliesDoNot() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let alert = try await postAlert(sim)
        let bot = try client(sim.telegramURL("sendMessage"))
        let prompt = try await bot.askRefusalReason(
            chatID: Self.chat, replyTo: alert, request: Self.key, order: "0123-0001-1", reasons: ["Already shipped", "Made to order"])
        let promptMessage = try #require(sim.telegram.message(prompt))
        #expect(promptMessage.replyToMessageID == alert)
        #expect(promptMessage.buttons.map { $0.map(\.text) } == [["Already shipped"], ["Made to order"], ["Cancel"]])

        let (task, handed) = start(bot)
        defer { task.cancel() }
        try sim.telegram.reply(to: alert, text: "not to the prompt", from: Self.alice)
        let reply = try sim.telegram.reply(to: prompt, text: "  Out of stock  ", from: Self.alice)
        try sim.telegram.press(messageID: prompt, button: "Made to order", from: Self.alice)

        try await waitFor { handed.all.count == 2 }
        guard case .reasonReply(let reason) = handed.all[0], case .press(let press) = handed.all[1] else {
            Issue.record("handed on: \(handed.all)")
            return
        }
        #expect(reason.text == "Out of stock")
        #expect(reason.promptMessageID == prompt && reason.messageID == reply.messageID && reason.chatID == Self.chat)
        #expect(reason.requestDigest == TelegramCallbackData.digest(of: Self.key))
        #expect(press.data.choice == .refuseWithReason(1) && press.data.names(Self.key))
    }

    @Test func unreadableUpdatesAreSkippedLoggedAndConfirmedAndForeignButtonsAnswered() async throws {
        let clock = ManualClock()
        let ours = TelegramCallbackData(.approve, request: Self.key).description
        let batch = """
            {"ok":true,"result":[
              {"update_id":10,"callback_query":{"id":"q1","from":{"id":42,"first_name":"Alice"},
                "message":{"message_id":5,"chat":{"id":-100}},"data":"\(ours)"}},
              {"update_id":11,"callback_query":"garbage"},
              {"update_id":"x"},
              {"update_id":12,"message":{"message_id":6,"text":"hello","chat":{"id":-100}}},
              {"update_id":13,"callback_query":{"id":"q2","from":{"id":42},"message":{"message_id":1e300,"chat":{"id":-100}},"data":"\(ours)"}},
              {"update_id":9,"callback_query":{"id":"q0","from":{"id":42},"message":{"message_id":5,"chat":{"id":-100}},"data":"\(ours)"}}
            ]}
            """
        let server = try ScriptedServer(
            [{ _ in .json(text: batch) }],
            fallback: { request in
                .json(text: request.path.hasSuffix("/getUpdates") ? #"{"ok":true,"result":[]}"# : #"{"ok":true,"result":true}"#)
            })
        let log = RecordedLog()
        let (task, handed) = start(try client(server.baseURL + "/bot1:tok/sendMessage", clock: clock), clock: clock, log: log)
        defer { task.cancel() }
        // Parked on the quiet gap after the second, empty, poll.
        try await waitFor { clock.sleeperCount == 1 }

        #expect(handed.all.count == 1)
        let getUpdates = server.requests.filter { $0.path.hasSuffix("/getUpdates") }
        #expect(getUpdates.count == 2)
        #expect(try JSONParser.parse(getUpdates[1].body)["offset"] == 14)
        let answered = server.requests.filter { $0.path.hasSuffix("/answerCallbackQuery") }
            .compactMap { try? JSONParser.parse($0.body)["callback_query_id"]?.stringValue }
        #expect(answered == ["q1", "q2"])
        let messages = log.all.map(\.message)
        #expect(messages.contains("telegram: skipped update 11: a callback_query without a usable id"))
        #expect(messages.contains("telegram: skipped an update without a usable update_id"))
    }

    @Test func aRateLimitedPollWaitsTelegramsRetryAfterClamped() async throws {
        let clock = ManualClock()
        let limited = ServerResponse.json(
            status: 429,
            text: #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#)
        let absurd = ServerResponse.json(
            status: 429, text: #"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":5000}}"#)
        let server = try ScriptedServer([{ _ in limited }, { _ in absurd }], fallback: { _ in .json(text: #"{"ok":true,"result":[]}"#) })
        let (task, _) = start(try client(server.baseURL + "/bot1:tok/sendMessage", clock: clock), clock: clock)
        defer { task.cancel() }

        try await waitFor { clock.sleeperCount == 1 }
        clock.advance(by: 6.5)
        #expect(server.requests.count == 1 && clock.sleeperCount == 1)
        clock.advance(by: 0.5)
        // 5000 s is clamped to the backoff's ceiling, a minute.
        try await waitFor { server.requests.count == 2 && clock.sleeperCount == 1 }
        clock.advance(by: 59.5)
        #expect(server.requests.count == 2 && clock.sleeperCount == 1)
        clock.advance(by: 0.5)
        try await waitFor { server.requests.count == 3 && clock.sleeperCount == 1 }
    }

    @Test func pollsThatBringNothingOrNothingConfirmableNeverFollowStraightOn() async throws {
        let clock = ManualClock()
        let unconfirmable = ServerResponse.json(text: #"{"ok":true,"result":[{"update_id":"x"},{"update_id":-1}]}"#)
        let server = try ScriptedServer([{ _ in unconfirmable }], fallback: { _ in .json(text: #"{"ok":true,"result":[]}"#) })
        let (task, _) = start(try client(server.baseURL + "/bot1:tok/sendMessage", clock: clock), clock: clock, pollTimeout: 0)
        defer { task.cancel() }

        try await waitFor { clock.sleeperCount == 1 }
        #expect(server.requests.count == 1)
        clock.advance(by: 1)  // the backoff's first step is at most a second
        try await waitFor { server.requests.count == 2 && clock.sleeperCount == 1 }
        clock.advance(by: 0.5)
        #expect(server.requests.count == 2 && clock.sleeperCount == 1)
        clock.advance(by: 0.5)  // an empty answer: a second from the poll's start
        try await waitFor { server.requests.count == 3 && clock.sleeperCount == 1 }
    }

    @Test func cancellingTheReaderEndsItDuringALongPoll() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let (task, _) = start(try client(sim.telegramURL("sendMessage")))
        try await waitFor { sim.telegram.waitingPollCount() == 1 }
        task.cancel()
        await task.value
        // The poll it left is still held: the reader did not wait for it.
        #expect(sim.telegram.waitingPollCount() == 1)
    }

    @Test func aGracefulShutdownEndsTheReaderDuringALongPoll() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let reader = TelegramUpdates(
            client: try client(sim.telegramURL("sendMessage")), allow: [42], clock: SystemClock(), logger: quiet, pollTimeout: 50,
            handle: { _ in })
        let group = ServiceGroup(services: [reader], logger: quiet)
        let running = Task { try await group.run() }
        try await waitFor { sim.telegram.waitingPollCount() == 1 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(sim.telegram.waitingPollCount() == 1)
    }

    @Test func callErrorsNameTheRefusalButNeverTheToken() async throws {
        let sim = try MarketSimulator(clock: ManualClock())
        defer { sim.shutdown() }
        let wrong = try client("\(sim.baseURL)/bot999:secret-token-value/sendMessage")
        do {
            _ = try await wrong.getUpdates(offset: nil, timeout: 0)
            Issue.record("a wrong token was taken")
        } catch {
            #expect(error.kind == .refused && error.status == 401)
            #expect(error.message == "getUpdates: HTTP 401: Unauthorized")
        }
        let bot = try client(sim.telegramURL("sendMessage"))
        let id = try await bot.sendMessage(chatID: 5, text: "approved by Alice")
        // Telegram refuses an edit that changes nothing; for the caller it is done.
        try await bot.editMessageText(chatID: 5, messageID: id, text: "approved by Alice")
        do {
            try await bot.editMessageText(chatID: 5, messageID: 999, text: "x")
            Issue.record("an edit of no message was taken")
        } catch {
            #expect(error.kind == .refused && error.message == "editMessageText: HTTP 400: Bad Request: message to edit not found")
        }
    }
}
