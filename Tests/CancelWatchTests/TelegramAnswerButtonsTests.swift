import CancelWatch
import Foundation
import MarketSim
import Testing

/// Approve and Refuse under a telegram sink's alerts: what the buttons carry and when they appear.
@Suite struct TelegramAnswerButtonsTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_460_462))
    let transport = CurlHTTPTransport(threads: 2)
    static let chat = "-1001234567890"

    func sink(_ sim: MarketSimulator, actions: TelegramActionsConfig?) -> WebhookSink {
        WebhookSink(
            name: "tg",
            config: WebhookSinkConfig(url: .url(sim.telegramURL("sendMessage")), format: .telegram, chatID: Self.chat, actions: actions),
            transport: transport, clock: clock)
    }

    @Test func firingAndRepeatMessagesCarryApproveAndRefuseNamingTheRequest() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let tg = sink(sim, actions: TelegramActionsConfig(allow: [42]))
        try await tg.deliver(SinkTestEvents.firing())
        clock.advance(by: 1)  // the chat's pace: one message a second
        try await tg.deliver(SinkTestEvents.firing(kind: .repeat))
        let messages = sim.telegram.allMessages()
        #expect(messages.count == 2)
        let key = RequestKey(source: "ozon-main", id: "91001")
        for message in messages {
            #expect(message.chatID == -1_001_234_567_890)
            #expect(message.buttons.map { $0.map(\.text) } == [["Approve", "Refuse"]])
            let data = message.callbackData.compactMap(TelegramCallbackData.init(parsing:))
            #expect(data.map(\.choice) == [.approve, .refuse])
            #expect(data.allSatisfy { $0.names(key) })
        }
    }

    @Test func noButtonsWithoutActionsNorUnderEventsThatCannotBeAnswered() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        try await sink(sim, actions: nil).deliver(SinkTestEvents.firing())
        let withActions = sink(sim, actions: TelegramActionsConfig(allow: [42]))
        for kind in [AlertEvent.Kind.resolved, .expired, .action] {
            try await withActions.deliver(SinkTestEvents.firing(kind: kind))
            clock.advance(by: 1)  // the chat's pace: one message a second
        }
        try await withActions.deliver(SinkTestEvents.sourceDown())
        let messages = sim.telegram.allMessages()
        #expect(messages.count == 5)
        #expect(messages.allSatisfy { $0.buttons.isEmpty })
    }

    @Test func theButtonsStayWithin64BytesWhateverTheSourceAndIDAre() throws {
        let source = String(repeating: "ozon-main-warehouse.", count: 12)
        let id = String(repeating: "包裹-1234567890@", count: 80)
        let key = RequestKey(source: source, id: id)
        let choices: [TelegramCallbackData.Choice] = [.approve, .refuse, .cancel] + (0..<8).map { .refuseWithReason($0) }
        for choice in choices {
            let data = TelegramCallbackData(choice, request: key)
            #expect((1...64).contains(data.description.utf8.count), "\(data)")
            let read = try #require(TelegramCallbackData(parsing: data.description))
            #expect(read == data && read.choice == choice)
            #expect(read.names(key))
        }
        let event = AlertEvent(
            id: "e1", kind: .firing, rule: "r", severity: .critical, source: source, marketplace: .xiaohongshu,
            request: CancellationRequest(
                marketplace: .xiaohongshu, source: source, id: id, order: "P1", state: .pending, rawState: "1", initiator: "",
                reason: "", reasonID: "", createdAt: nil, deadline: clock.now(), raw: [:]),
            occurredAt: clock.now(), message: "m", sinks: ["tg"])
        let keyboard = try #require(ChatWebhookFormat.telegramAnswerKeyboard(for: event))
        let buttons = try #require(keyboard["inline_keyboard"]?.arrayValue?.first?.arrayValue)
        #expect(buttons.count == 2)
        #expect(buttons.allSatisfy { ($0["callback_data"]?.stringValue?.utf8.count ?? 99) <= 64 })
    }

    @Test func aButtonMapsBackToItsRequestAmongTheTrackedOnes() {
        let tracked = (0..<2000).map { RequestKey(source: "red-shop", id: "P\($0)@1764000000") }
            + [RequestKey(source: "red-shop2", id: "P7@1764000000"), RequestKey(source: "red-sho", id: "pP7@1764000000")]
        let wanted = RequestKey(source: "red-shop", id: "P7@1764000000")
        let data = TelegramCallbackData(.refuse, request: wanted)
        #expect(data.request(among: tracked) == wanted)
        #expect(data.request(among: tracked.filter { $0 != wanted }) == nil)
    }

    @Test func theDigestIsSHA256OfSourceLineFeedIDCutTo16Bytes() throws {
        let key = RequestKey(source: "ozon-main", id: "91001")
        let expected = try runPython(
            "import hashlib, sys; sys.stdout.write(hashlib.sha256(b'ozon-main\\n91001').hexdigest()[:32])")
        #expect(TelegramCallbackData.digest(of: key) == expected)
        #expect(TelegramCallbackData(.approve, request: key).description == "cw1:a:" + expected)
        #expect(TelegramCallbackData(.refuseWithReason(3), request: key).description == "cw1:r3:" + expected)
    }

    @Test func dataOfAnyOtherFormIsNotOurs() {
        let digest = String(repeating: "0a", count: 16)
        for text in [
            "", "approve", "cw1:a", "cw2:a:\(digest)", "cw1:q:\(digest)", "cw1:r8:\(digest)", "cw1:r-1:\(digest)",
            "cw1:r03:\(digest)", "cw1:a:\(digest.uppercased())", "cw1:a:\(digest)0", "cw1:a:\(digest):x", "cw1:a:\(digest.dropLast())",
        ] {
            #expect(TelegramCallbackData(parsing: text) == nil, "\(text)")
        }
        #expect(TelegramCallbackData(parsing: "cw1:x:\(digest)")?.choice == .cancel)
    }

    @Test func theBotsOtherCallsAreSiblingsOfItsSendMessageURL() {
        let bot = TelegramBotURL(sendMessageURL: "https://api.telegram.org/bot123:ABC-def/sendMessage")
        #expect(bot?.url("getUpdates") == "https://api.telegram.org/bot123:ABC-def/getUpdates")
        #expect(TelegramBotURL(sendMessageURL: "http://127.0.0.1:8080/prefix/bot1:x/sendMessage")?.url("getMe")
            == "http://127.0.0.1:8080/prefix/bot1:x/getMe")
        for other in [
            "https://api.telegram.org/bot123:ABC/sendPhoto", "https://api.telegram.org/123:ABC/sendMessage",
            "https://api.telegram.org/bot/sendMessage", "https://api.telegram.org/bot1:x/sendMessage?x=1", "sendMessage",
        ] {
            #expect(TelegramBotURL(sendMessageURL: other) == nil, "\(other)")
        }
    }
}
