import CancelWatch
import CancelWatchTesting
import Foundation
import HTTPServing
import MarketSim
import Testing

/// The simulator's Telegram Bot API double, over real loopback HTTP.
@Suite struct TelegramDoubleTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_000))
    let transport = CurlHTTPTransport(threads: 4)
    static let alice = SimTelegramUser(id: 42, firstName: "Alice")
    static let chat: Int64 = -1_001_234_567_890

    /// Calls `method` with a JSON body; returns the status and the parsed reply.
    func call(
        _ sim: MarketSimulator, _ method: String, _ body: JSONValue, token: String? = nil, timeout: TimeInterval = 30
    ) async throws -> (status: Int, reply: JSONValue) {
        let url = token.map { "\(sim.baseURL)/bot\($0)/\(method)" } ?? sim.telegramURL(method)
        let response = try await transport.send(
            HTTPRequest(
                method: "POST", url: url, headers: [HTTPHeader("Content-Type", "application/json")], body: body.serializedData(),
                timeout: timeout))
        return (response.status, try JSONParser.parse(response.body))
    }

    func control(_ sim: MarketSimulator, _ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> (Int, JSONValue) {
        let response = try await transport.send(
            HTTPRequest(method: method, url: sim.baseURL + path, body: body?.serializedData()))
        return (response.status, try JSONParser.parse(response.body))
    }

    func send(_ sim: MarketSimulator, text: String = "[CRITICAL] final-hour", data: [String] = ["a", "r"]) async throws -> Int64 {
        let buttons: [JSONValue] = data.map { ["text": .string("Button \($0)"), "callback_data": .string($0)] }
        let sent = try await call(
            sim, "sendMessage",
            ["chat_id": .integer(Self.chat), "text": .string(text), "reply_markup": ["inline_keyboard": [.array(buttons)]]])
        #expect(sent.status == 200)
        return try #require(sent.reply["result"]?["message_id"]?.lenientInt64)
    }

    /// Waits until the double holds `count` long polls (a state it reports, not a sleep's guess).
    func untilWaiting(_ sim: MarketSimulator, count: Int = 1) async throws {
        try await waitFor { sim.telegram.waitingPollCount() == count }
    }

    @Test func sendMessageStoresTheMessageAndAnswersWithTelegramsMessageObject() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let sent = try await call(
            sim, "sendMessage",
            [
                "chat_id": .string(String(Self.chat)), "text": "hello",
                "reply_markup": ["inline_keyboard": [[["text": "Approve", "callback_data": "cw1:a:0123"]]]],
            ])
        #expect(sent.status == 200)
        #expect(sent.reply["ok"] == true)
        let result = try #require(sent.reply["result"])
        #expect(result["message_id"]?.lenientInt64 == 1)
        #expect(result["chat"]?["id"] == .integer(Self.chat))
        #expect(result["date"] == .integer(1_795_000_000))
        #expect(result["text"] == "hello")
        #expect(result["from"]?["is_bot"] == true)
        #expect(result["reply_markup"]?["inline_keyboard"] == [[["text": "Approve", "callback_data": "cw1:a:0123"]]])
        let stored = try #require(sim.telegram.message(1))
        #expect(stored.chatID == Self.chat && stored.text == "hello")
        #expect(stored.buttons == [[SimTelegramButton(text: "Approve", callbackData: "cw1:a:0123")]])
    }

    @Test func aFormEncodedCallWithItsKeyboardAsJSONTextIsReadToo() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let markup = #"{"inline_keyboard":[[{"text":"Refuse","callback_data":"r"}]]}"#
        let body = "chat_id=7&text=a%20b&reply_markup=" + (markup.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let response = try await transport.send(
            HTTPRequest(
                method: "POST", url: sim.telegramURL("sendMessage"),
                headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")], body: Data(body.utf8)))
        #expect(response.status == 200)
        let stored = try #require(sim.telegram.allMessages().first)
        #expect(stored.chatID == 7 && stored.text == "a b" && stored.callbackData == ["r"])
    }

    @Test func aWrongTokenIsUnauthorizedAndAnUnknownMethodIsNotFound() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let wrong = try await call(sim, "sendMessage", ["chat_id": 1, "text": "x"], token: "123:wrong")
        #expect(wrong.status == 401)
        #expect(wrong.reply == ["ok": false, "error_code": 401, "description": "Unauthorized"])
        let unknown = try await call(sim, "sendPigeon", ["chat_id": 1])
        #expect(unknown.status == 404)
        #expect(unknown.reply == ["ok": false, "error_code": 404, "description": "Not Found"])
        #expect(sim.telegram.allMessages().isEmpty)
    }

    @Test func textPast4096CharactersIsTooLongAndEmptyTextIsRefused() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let longest = String(repeating: "ж", count: 4096)
        #expect(try await call(sim, "sendMessage", ["chat_id": 1, "text": .string(longest)]).status == 200)
        let tooLong = try await call(sim, "sendMessage", ["chat_id": 1, "text": .string(longest + "!")])
        #expect(tooLong.status == 400)
        #expect(tooLong.reply["description"] == "Bad Request: message is too long")
        let empty = try await call(sim, "sendMessage", ["chat_id": 1, "text": ""])
        #expect(empty.reply["description"] == "Bad Request: message text is empty")
        let noChat = try await call(sim, "sendMessage", ["text": "x"])
        #expect(noChat.reply["description"] == "Bad Request: chat_id is empty")
        #expect(sim.telegram.allMessages().count == 1)
    }

    @Test func callbackDataMustBeOneTo64Bytes() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        func keyboard(_ data: String) -> JSONValue {
            ["chat_id": 1, "text": "x", "reply_markup": ["inline_keyboard": [[["text": "b", "callback_data": .string(data)]]]]]
        }
        let sixtyFourBytes = String(repeating: "é", count: 32)
        #expect(try await call(sim, "sendMessage", keyboard(sixtyFourBytes)).status == 200)
        for bad in [sixtyFourBytes + "x", ""] {
            let refused = try await call(sim, "sendMessage", keyboard(bad))
            #expect(refused.status == 400)
            #expect(refused.reply == ["ok": false, "error_code": 400, "description": "Bad Request: BUTTON_DATA_INVALID"])
        }
        #expect(sim.telegram.allMessages().count == 1)
    }

    @Test func editMessageTextReplacesTextAndKeyboardAndRefusesAnEditThatChangesNothing() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim, text: "pending")
        clock.advance(by: 60)
        let edited = try await call(
            sim, "editMessageText", ["chat_id": .integer(Self.chat), "message_id": .integer(id), "text": "approved by Alice"])
        #expect(edited.status == 200)
        #expect(edited.reply["result"]?["text"] == "approved by Alice")
        #expect(edited.reply["result"]?["edit_date"] == .integer(1_795_000_060))
        #expect(edited.reply["result"]?["reply_markup"] == nil)
        let message = try #require(sim.telegram.message(id))
        #expect(message.text == "approved by Alice" && message.buttons.isEmpty)
        #expect(message.earlierVersions.map(\.text) == ["pending"])
        #expect(message.earlierVersions.first?.buttons.count == 1)

        let again = try await call(
            sim, "editMessageText", ["chat_id": .integer(Self.chat), "message_id": .integer(id), "text": "approved by Alice"])
        #expect(again.status == 400)
        #expect(again.reply["description"]?.stringValue?.hasPrefix("Bad Request: message is not modified") == true)
        let missing = try await call(sim, "editMessageText", ["chat_id": .integer(Self.chat), "message_id": 999, "text": "x"])
        #expect(missing.reply["description"] == "Bad Request: message to edit not found")
        let otherChat = try await call(sim, "editMessageText", ["chat_id": 5, "message_id": .integer(id), "text": "x"])
        #expect(otherChat.reply["description"] == "Bad Request: message to edit not found")
    }

    @Test func aPressArrivesAsACallbackQueryAndAnOffsetConfirmsIt() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim)
        let press = try sim.telegram.press(messageID: id, data: "r", from: Self.alice)
        let first = try await call(sim, "getUpdates", [:])
        let updates = try #require(first.reply["result"]?.arrayValue)
        #expect(updates.count == 1)
        let query = try #require(updates.first?["callback_query"])
        #expect(query["id"] == .string(press.id))
        #expect(query["data"] == "r")
        #expect(query["from"]?["id"] == 42 && query["from"]?["first_name"] == "Alice")
        #expect(query["message"]?["message_id"] == .integer(id))
        #expect(query["message"]?["chat"]?["id"] == .integer(Self.chat))
        let updateID = try #require(updates.first?["update_id"]?.lenientInt64)

        // Not confirmed yet: the same update again; then confirmed by the next offset.
        #expect(try await call(sim, "getUpdates", [:]).reply["result"]?.arrayValue?.count == 1)
        let confirmed = try await call(sim, "getUpdates", ["offset": .integer(updateID + 1)])
        #expect(confirmed.reply["result"] == [])
        #expect(sim.telegram.pendingUpdateIDs().isEmpty)

        let next = try sim.telegram.press(messageID: id, data: "a", from: Self.alice)
        #expect(next.id != press.id)
        let later = try await call(sim, "getUpdates", ["offset": .integer(updateID + 1)])
        #expect(later.reply["result"]?.arrayValue?.first?["update_id"] == .integer(updateID + 1))
    }

    @Test func aPressNeedsOneOfTheMessagesButtonsUnlessForged() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim)
        #expect(throws: SimTelegramError.self) { try sim.telegram.press(messageID: id, data: "zzz", from: Self.alice) }
        #expect(throws: SimTelegramError.self) { try sim.telegram.press(messageID: 999, data: "a", from: Self.alice) }
        #expect(try sim.telegram.press(messageID: id, data: "zzz", from: Self.alice, forged: true).data == "zzz")
        #expect(try sim.telegram.press(messageID: id, button: "Button r", from: Self.alice).data == "r")
    }

    @Test func answerCallbackQueryRecordsTheAnswerOnceAndRefusesUnknownOrRepeatedIDs() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim)
        let press = try sim.telegram.press(messageID: id, data: "a", from: Self.alice)
        let answered = try await call(sim, "answerCallbackQuery", ["callback_query_id": .string(press.id), "text": "Approving…"])
        #expect(answered.status == 200 && answered.reply == ["ok": true, "result": true])
        let record = try #require(sim.telegram.allCallbacks().first)
        #expect(record.answered && record.answerText == "Approving…" && !record.showAlert)

        let tooOld = "Bad Request: query is too old and response timeout expired or query ID is invalid"
        let twice = try await call(sim, "answerCallbackQuery", ["callback_query_id": .string(press.id)])
        #expect(twice.status == 400 && twice.reply["description"] == .string(tooOld))
        let unknown = try await call(sim, "answerCallbackQuery", ["callback_query_id": "1"])
        #expect(unknown.status == 400 && unknown.reply["description"] == .string(tooOld))
    }

    @Test func aReplyArrivesAsAMessageUpdateCarryingTheMessageItAnswers() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim, text: "Why refuse?")
        let reply = try sim.telegram.reply(to: id, text: "Already shipped", from: Self.alice)
        let updates = try #require(try await call(sim, "getUpdates", [:]).reply["result"]?.arrayValue)
        let message = try #require(updates.first?["message"])
        #expect(message["message_id"] == .integer(reply.messageID))
        #expect(message["text"] == "Already shipped")
        #expect(message["from"]?["id"] == 42)
        #expect(message["chat"]?["id"] == .integer(Self.chat))
        #expect(message["reply_to_message"]?["message_id"] == .integer(id))
        #expect(message["reply_to_message"]?["text"] == "Why refuse?")
    }

    @Test func aLongPollHoldsUntilAPressArrives() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim)
        async let polled = call(sim, "getUpdates", ["timeout": 50], timeout: 60)
        try await untilWaiting(sim)
        try sim.telegram.press(messageID: id, data: "a", from: Self.alice)
        let updates = try await polled.reply["result"]?.arrayValue
        #expect(updates?.first?["callback_query"]?["data"] == "a")
        #expect(sim.telegram.waitingPollCount() == 0)
    }

    @Test func aNewerPollEndsAWaitingOneWithConflict() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        async let older = call(sim, "getUpdates", ["timeout": 50], timeout: 60)
        try await untilWaiting(sim)
        let newer = try await call(sim, "getUpdates", ["timeout": 0])
        #expect(newer.status == 200 && newer.reply["result"] == [])
        let ended = try await older
        #expect(ended.status == 409)
        #expect(ended.reply["description"]?.stringValue?.hasPrefix("Conflict: terminated by other getUpdates request") == true)
    }

    @Test func stoppingTheSimulatorEndsAWaitingLongPollAtOnce() async throws {
        let sim = try MarketSimulator(clock: clock)
        let poll = ServerRequest(method: "GET", target: "/bot\(SimTelegramBot.defaultToken)/getUpdates?timeout=50")
        // Straight to the handler, on a thread of its own, as the server runs it.
        let worker = BlockingWorkers(threads: 1, name: "telegram-poll")
        async let polled = worker.run { _ in sim.handle(poll).status }
        try await untilWaiting(sim)
        await sim.close()
        // A poll left to its 50 s would answer 200 with no updates.
        #expect(await polled == 503)
        #expect(sim.handle(poll).status == 503)
    }

    @Test func theControlEndpointsPressReplyAndListWhatHappened() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let id = try await send(sim)
        let pressed = try await control(
            sim, "POST", "/_sim/telegram/press",
            ["message_id": .integer(id), "data": "a", "from": ["id": 42, "first_name": "Alice"]])
        #expect(pressed.0 == 201)
        #expect(pressed.1["data"] == "a" && pressed.1["answered"] == false)
        let wrong = try await control(
            sim, "POST", "/_sim/telegram/press", ["message_id": .integer(id), "data": "nope", "from": ["id": 42]])
        #expect(wrong.0 == 400)
        #expect(wrong.1["error"]?.stringValue?.contains("no button with data \"nope\"") == true)
        let replied = try await control(
            sim, "POST", "/_sim/telegram/reply", ["message_id": .integer(id), "text": "because", "from": ["id": 42]])
        #expect(replied.0 == 201 && replied.1["reply_to_message_id"] == .integer(id))

        let (status, state) = try await control(sim, "GET", "/_sim/telegram")
        #expect(status == 200)
        #expect(state["token"] == .string(SimTelegramBot.defaultToken))
        #expect(state["messages"]?.arrayValue?.count == 2)
        #expect(state["messages"]?.arrayValue?.first?["buttons"]?.arrayValue?.first?.arrayValue?.count == 2)
        #expect(state["callbacks"]?.arrayValue?.first?["from"]?["id"] == 42)
        #expect(state["pending_updates"]?.arrayValue?.count == 2)
    }

    @Test func withTelegramsLimitsASecondMessageWithinASecondAndATwentyFirstWithinAMinuteAreRefusedWithRetryAfter() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        sim.telegram.enforce(.telegram)
        func send(_ chat: Int64) async throws -> (status: Int, reply: JSONValue) {
            try await call(sim, "sendMessage", ["chat_id": .integer(chat), "text": "hello"])
        }
        #expect(try await send(Self.chat).status == 200)
        clock.advance(by: 0.4)
        let tooSoon = try await send(Self.chat)
        #expect(tooSoon.status == 429)
        #expect(tooSoon.reply["error_code"] == 429)
        #expect(tooSoon.reply["parameters"]?["retry_after"] == 1)
        // Another chat has a pace of its own.
        #expect(try await send(42).status == 200)
        clock.advance(by: 0.6)
        for _ in 0..<19 {
            #expect(try await send(Self.chat).status == 200)
            clock.advance(by: 1)
        }
        // Twenty in the group within the minute: the next waits until the first is a minute old.
        let twentyFirst = try await send(Self.chat)
        #expect(twentyFirst.status == 429)
        #expect(twentyFirst.reply["parameters"]?["retry_after"] == 40)  // the first went 20 s ago
        #expect(sim.telegram.rateRefusals().count == 2)
        #expect(sim.telegram.allMessages().count == 21)
    }
}
