import CancelWatch
import Foundation
import HTTPServing

/// A Telegram user or bot as the double knows it.
public struct SimTelegramUser: Sendable, Hashable {
    public var id: Int64
    public var firstName: String
    public var username: String?
    public var isBot: Bool

    public init(id: Int64, firstName: String, username: String? = nil, isBot: Bool = false) {
        self.id = id
        self.firstName = firstName
        self.username = username
        self.isBot = isBot
    }
}

/// One inline keyboard button.
public struct SimTelegramButton: Sendable, Hashable {
    public var text: String
    public var callbackData: String?
    public var url: String?

    public init(text: String, callbackData: String? = nil, url: String? = nil) {
        self.text = text
        self.callbackData = callbackData
        self.url = url
    }
}

/// A message in a chat of the double: one the bot sent (and its edits), or a user's reply.
public struct SimTelegramMessage: Sendable, Hashable {
    /// An earlier version of the message, kept when `editMessageText` replaced it.
    public struct Version: Sendable, Hashable {
        public var text: String
        public var buttons: [[SimTelegramButton]]
        public var date: Date
    }

    public var messageID: Int64
    public var chatID: Int64
    public var from: SimTelegramUser
    public var text: String
    /// The inline keyboard, rows of buttons; empty when there is none.
    public var buttons: [[SimTelegramButton]]
    public var date: Date
    public var editDate: Date?
    public var replyToMessageID: Int64?
    /// What the message said before each edit, oldest first.
    public var earlierVersions: [Version]

    /// Every button's `callback_data`, row by row.
    public var callbackData: [String] { buttons.flatMap { $0.compactMap(\.callbackData) } }
}

/// A button press (a `callback_query`) and how the bot answered it.
public struct SimTelegramCallback: Sendable, Hashable {
    public var id: String
    public var messageID: Int64
    public var chatID: Int64
    public var data: String
    public var from: SimTelegramUser
    public var pressedAt: Date
    /// Whether `answerCallbackQuery` came for it.
    public var answered: Bool
    public var answerText: String?
    public var showAlert: Bool
    public var answeredAt: Date?
}

/// Why a scripted press or reply cannot happen.
public struct SimTelegramError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A stand-in for the Telegram Bot API, served by ``MarketSimulator`` on its loopback server:
/// one bot (its token), the chats it posts to, its update queue.
///
/// Bot API (`GET` or `POST`, parameters in the query, a JSON body or a form-encoded one):
/// - `/bot<TOKEN>/sendMessage`: `chat_id` (an integer), `text` (1-4096 characters),
///   `reply_markup.inline_keyboard` (each `callback_data` 1-64 bytes), `reply_to_message_id`.
/// - `/bot<TOKEN>/editMessageText`: `chat_id`, `message_id`, `text`, `reply_markup` (left out:
///   the keyboard goes, as on Telegram).
/// - `/bot<TOKEN>/answerCallbackQuery`: `callback_query_id`, `text`, `show_alert`.
/// - `/bot<TOKEN>/getUpdates`: `offset` (confirms every update below it; negative: keeps only
///   the last `-offset`), `limit` (1-100), `timeout` (long polling, seconds, at most
///   ``longPollLimit``). A newer call ends a waiting one with 409, as Telegram does.
/// - `/bot<TOKEN>/getMe`.
///
/// Answers are Telegram's: `{"ok":true,"result":…}`, or `{"ok":false,"error_code":N,
/// "description":"…"}` with N as the HTTP status (401 `Unauthorized` for a wrong token, 404
/// `Not Found` for an unknown method, 400 `Bad Request: …`).
///
/// With ``enforce(_:)`` (``SimTelegramLimits/telegram``) `sendMessage` refuses what goes past
/// Telegram's rate limits with 429 `Too Many Requests` and `parameters.retry_after`, as Telegram does.
///
/// Control endpoints (for tests and the demo):
/// - `GET /_sim/telegram`: the token, the bot, every message (with its buttons and earlier
///   versions), every press and its answer, the updates not yet confirmed.
///   `GET /_sim/telegram/messages` and `/_sim/telegram/callbacks`: one of those lists.
/// - `POST /_sim/telegram/press`: `{"message_id": 7, "data": "…", "from": {"id": 42,
///   "first_name": "Alice"}}` (or `"button": "Approve"` instead of `data`) queues a
///   `callback_query` update. `data` must be on one of the message's buttons unless
///   `"forged": true` (a client can send any data).
/// - `POST /_sim/telegram/reply`: `{"message_id": 7, "text": "…", "from": {…}}` queues a
///   `message` update replying to that message.
///
/// Long polls wait on their own handler threads (never an event loop) and end at once when
/// the simulator stops (with 503, which only ``MarketSimulator/handle(_:)`` still sees).
public final class SimTelegramBot: @unchecked Sendable {
    /// The token the double accepts unless told another one.
    public static let defaultToken = "7000000001:AAcancelwatch-simulated-telegram-bot"
    /// The longest `timeout` a `getUpdates` call waits, in seconds.
    public static let longPollLimit: TimeInterval = 50
    static let textLimit = 4096
    static let callbackDataBytes = 1...64
    static let answerTextLimit = 200

    public let token: String
    /// The bot itself: its id is the token's number.
    public let bot: SimTelegramUser
    let clock: any WatchClock

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var messages: [SimTelegramMessage] = []
    private var messageIndex: [Int64: Int] = [:]
    private var callbacks: [SimTelegramCallback] = []
    private var callbackIndex: [String: Int] = [:]
    private var updates: [(id: Int64, body: JSONValue)] = []
    private var nextUpdateID: Int64 = 700_000_001
    private var nextMessageID: Int64 = 1
    private var nextCallbackSerial: UInt64 = 5_200_000_000_000_000_001
    private var limits: SimTelegramLimits?
    /// Each chat's accepted `sendMessage` instants within the last minute.
    private var sentInChat: [Int64: [Date]] = [:]
    private var refusedForRate: [(chatID: Int64, at: Date)] = []
    private var pollGeneration = 0
    private var waitingPolls = 0
    private var stopped = false

    init(token: String, clock: any WatchClock) {
        self.token = token
        self.clock = clock
        let number = token.split(separator: ":").first.flatMap { Int64($0) } ?? 7_000_000_001
        self.bot = SimTelegramUser(id: number, firstName: "cancelwatch sim", username: "cancelwatch_sim_bot", isBot: true)
    }

    private func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Ends every waiting long poll, and every later one at once, with 503.
    func stop() {
        locked {
            stopped = true
            condition.broadcast()
        }
    }

    // MARK: Inspection

    /// Every message in every chat, in the order they were sent.
    public func allMessages() -> [SimTelegramMessage] { locked { messages } }

    /// The message `id`, as it is now.
    public func message(_ id: Int64) -> SimTelegramMessage? { locked { messageIndex[id].map { messages[$0] } } }

    /// Every press, in order, with its answer.
    public func allCallbacks() -> [SimTelegramCallback] { locked { callbacks } }

    /// The ids of the updates not yet confirmed by a `getUpdates` offset.
    public func pendingUpdateIDs() -> [Int64] { locked { updates.map(\.id) } }

    /// How many `getUpdates` calls are holding, waiting for an update.
    public func waitingPollCount() -> Int { locked { waitingPolls } }

    /// Makes `sendMessage` refuse what goes past `limits` (nil: accept everything, the default),
    /// with Telegram's 429 and `parameters.retry_after`.
    public func enforce(_ limits: SimTelegramLimits?) {
        locked {
            self.limits = limits
            sentInChat = [:]
        }
    }

    /// Every `sendMessage` refused for going past the limits: its chat and when.
    public func rateRefusals() -> [(chatID: Int64, at: Date)] { locked { refusedForRate } }

    // MARK: Scripting

    /// Has `from` press the button carrying `data` under message `messageID`: queues a
    /// `callback_query` update and returns the press. Unless `forged`, `data` must be on one
    /// of the message's buttons now.
    @discardableResult
    public func press(messageID: Int64, data: String, from: SimTelegramUser, forged: Bool = false) throws(SimTelegramError)
        -> SimTelegramCallback
    {
        let now = clock.now()
        return try locked { () throws(SimTelegramError) -> SimTelegramCallback in
            guard let index = messageIndex[messageID] else { throw SimTelegramError("no message \(messageID)") }
            let message = messages[index]
            guard message.from.id == bot.id else { throw SimTelegramError("message \(messageID) is not the bot's") }
            guard forged || message.callbackData.contains(data) else {
                let known = message.callbackData.map { "\"\($0)\"" }.joined(separator: ", ")
                throw SimTelegramError(
                    "message \(messageID) has no button with data \"\(data)\" (its buttons: \(known.isEmpty ? "none" : known))")
            }
            let id = String(nextCallbackSerial)
            nextCallbackSerial += 1
            let callback = SimTelegramCallback(
                id: id, messageID: messageID, chatID: message.chatID, data: data, from: from, pressedAt: now, answered: false,
                answerText: nil, showAlert: false, answeredAt: nil)
            callbackIndex[id] = callbacks.count
            callbacks.append(callback)
            let query: JSONValue = [
                "id": .string(id), "from": Self.userJSON(from), "message": messageJSON(message),
                "chat_instance": .string(String(message.chatID)), "data": .string(data),
            ]
            enqueue(["callback_query": query])
            return callback
        }
    }

    /// Has `from` press the button labelled `text` under message `messageID`.
    @discardableResult
    public func press(messageID: Int64, button text: String, from: SimTelegramUser) throws(SimTelegramError) -> SimTelegramCallback {
        guard let message = message(messageID) else { throw SimTelegramError("no message \(messageID)") }
        guard let data = message.buttons.joined().first(where: { $0.text == text })?.callbackData else {
            let labels = message.buttons.joined().map { "\"\($0.text)\"" }.joined(separator: ", ")
            throw SimTelegramError("message \(messageID) has no button \"\(text)\" (its buttons: \(labels.isEmpty ? "none" : labels))")
        }
        return try press(messageID: messageID, data: data, from: from)
    }

    /// Has `from` reply `text` to message `messageID` in its chat: stores the reply and queues
    /// a `message` update carrying `reply_to_message`.
    @discardableResult
    public func reply(to messageID: Int64, text: String, from: SimTelegramUser) throws(SimTelegramError) -> SimTelegramMessage {
        let now = clock.now()
        return try locked { () throws(SimTelegramError) -> SimTelegramMessage in
            guard let index = messageIndex[messageID] else { throw SimTelegramError("no message \(messageID)") }
            guard !text.isEmpty, text.count <= Self.textLimit else {
                throw SimTelegramError("a reply's text is 1-\(Self.textLimit) characters")
            }
            let original = messages[index]
            let reply = store(chatID: original.chatID, from: from, text: text, buttons: [], replyTo: messageID, now: now)
            enqueue(["message": messageJSON(reply)])
            return reply
        }
    }

    // MARK: The Bot API

    /// The answer to `request` when its path is `/bot…`, nil otherwise.
    func handleBotAPI(_ request: ServerRequest) -> ServerResponse? {
        guard request.path.hasPrefix("/bot") else { return nil }
        let rest = request.path.dropFirst(4)
        guard let slash = rest.firstIndex(of: "/") else { return Self.failure(404, "Not Found") }
        let written = ServerRequest.percentDecode(rest[..<slash])
        guard Self.sameBytes(written, token) else { return Self.failure(401, "Unauthorized") }
        guard request.method == "GET" || request.method == "POST" else { return Self.failure(404, "Not Found") }
        let parameters: TelegramParameters
        switch TelegramParameters.read(request) {
        case .success(let read): parameters = read
        case .failure(let error): return Self.failure(400, error.description)
        }
        let method = rest[rest.index(after: slash)...].lowercased()
        let result: Result<JSONValue, TelegramAPIError>
        switch method {
        case "getme": result = .success(Self.userJSON(bot))
        case "sendmessage": result = sendMessage(parameters)
        case "editmessagetext": result = editMessageText(parameters)
        case "answercallbackquery": result = answerCallbackQuery(parameters)
        case "getupdates": result = getUpdates(parameters)
        default: return Self.failure(404, "Not Found")
        }
        switch result {
        case .success(let value): return .json(value: ["ok": true, "result": value])
        case .failure(let error):
            guard let wait = error.retryAfter else { return Self.failure(error.code, error.description) }
            return .json(
                status: error.code,
                value: [
                    "ok": false, "error_code": .integer(Int64(error.code)), "description": .string(error.description),
                    "parameters": ["retry_after": .integer(Int64(wait))],
                ])
        }
    }

    private func sendMessage(_ p: TelegramParameters) -> Result<JSONValue, TelegramAPIError> {
        let now = clock.now()
        let chatID: Int64
        let text: String
        let buttons: [[SimTelegramButton]]
        do throws(TelegramAPIError) {
            chatID = try p.chatID()
            text = try Self.checkedText(p.string("text"))
            buttons = try Self.keyboard(p.json("reply_markup"))
        } catch {
            return .failure(error)
        }
        let replyTo = p.int64("reply_to_message_id")
        return locked {
            if let replyTo, messageIndex[replyTo].map({ messages[$0].chatID }) != chatID {
                return .failure(.badRequest("message to be replied not found"))
            }
            if let limits {
                let recent = (sentInChat[chatID] ?? []).filter { now.timeIntervalSince($0) < 60 }
                sentInChat[chatID] = recent
                if let wait = limits.wait(chatID: chatID, recent: recent, now: now) {
                    refusedForRate.append((chatID, now))
                    return .failure(TelegramAPIError(code: 429, description: "Too Many Requests: retry after \(wait)", retryAfter: wait))
                }
                sentInChat[chatID, default: []].append(now)
            }
            let message = store(chatID: chatID, from: bot, text: text, buttons: buttons, replyTo: replyTo, now: now)
            return .success(messageJSON(message))
        }
    }

    private func editMessageText(_ p: TelegramParameters) -> Result<JSONValue, TelegramAPIError> {
        let now = clock.now()
        let chatID: Int64
        let messageID: Int64
        let text: String
        let buttons: [[SimTelegramButton]]
        do throws(TelegramAPIError) {
            if p.string("inline_message_id") != nil { throw TelegramAPIError.badRequest("inline messages are not simulated") }
            chatID = try p.chatID()
            guard let id = p.int64("message_id") else { throw TelegramAPIError.badRequest("message identifier is not specified") }
            messageID = id
            text = try Self.checkedText(p.string("text"))
            buttons = try Self.keyboard(p.json("reply_markup"))
        } catch {
            return .failure(error)
        }
        return locked {
            guard let index = messageIndex[messageID], messages[index].chatID == chatID else {
                return .failure(.badRequest("message to edit not found"))
            }
            guard messages[index].from.id == bot.id else { return .failure(.badRequest("message can't be edited")) }
            var message = messages[index]
            if message.text == text && message.buttons == buttons {
                return .failure(
                    .badRequest(
                        "message is not modified: specified new message content and reply markup are exactly the same "
                            + "as a current content and reply markup of the message"))
            }
            message.earlierVersions.append(.init(text: message.text, buttons: message.buttons, date: message.editDate ?? message.date))
            message.text = text
            message.buttons = buttons
            message.editDate = now
            messages[index] = message
            return .success(messageJSON(message))
        }
    }

    private func answerCallbackQuery(_ p: TelegramParameters) -> Result<JSONValue, TelegramAPIError> {
        let now = clock.now()
        let text = p.string("text")
        if let text, text.count > Self.answerTextLimit { return .failure(.badRequest("MESSAGE_TOO_LONG")) }
        let showAlert = p.bool("show_alert") ?? false
        return locked {
            guard let id = p.string("callback_query_id"), let index = callbackIndex[id], !callbacks[index].answered else {
                return .failure(.badRequest("query is too old and response timeout expired or query ID is invalid"))
            }
            callbacks[index].answered = true
            callbacks[index].answerText = text
            callbacks[index].showAlert = showAlert
            callbacks[index].answeredAt = now
            return .success(true)
        }
    }

    private func getUpdates(_ p: TelegramParameters) -> Result<JSONValue, TelegramAPIError> {
        let offset = p.int64("offset")
        let limit = Int(min(max(p.int64("limit") ?? 100, 1), 100))
        let timeout = min(max(p.double("timeout") ?? 0, 0), Self.longPollLimit)
        let deadline = Date().addingTimeInterval(timeout)
        return locked {
            if let offset {
                if offset < 0 {
                    let keep = Int(min(-max(offset, -Int64(Int32.max)), Int64(updates.count)))
                    updates.removeFirst(updates.count - keep)
                } else {
                    updates.removeAll { $0.id < offset }
                }
            }
            pollGeneration += 1
            let generation = pollGeneration
            condition.broadcast()
            waitingPolls += 1
            defer { waitingPolls -= 1 }
            while true {
                if stopped { return .failure(TelegramAPIError(code: 503, description: "Service Unavailable: the simulator stopped")) }
                if pollGeneration != generation {
                    return .failure(
                        TelegramAPIError(
                            code: 409, description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"))
                }
                if !updates.isEmpty || Date() >= deadline {
                    return .success(.array(updates.prefix(limit).map { update in update.body.merging(["update_id": .integer(update.id)]) }))
                }
                _ = condition.wait(until: deadline)
            }
        }
    }

    // MARK: State (with the lock held)

    private func store(
        chatID: Int64, from: SimTelegramUser, text: String, buttons: [[SimTelegramButton]], replyTo: Int64?, now: Date
    ) -> SimTelegramMessage {
        let message = SimTelegramMessage(
            messageID: nextMessageID, chatID: chatID, from: from, text: text, buttons: buttons, date: now, editDate: nil,
            replyToMessageID: replyTo, earlierVersions: [])
        nextMessageID += 1
        messageIndex[message.messageID] = messages.count
        messages.append(message)
        return message
    }

    private func enqueue(_ update: JSONValue) {
        updates.append((nextUpdateID, update))
        nextUpdateID += 1
        condition.broadcast()
    }

    /// Telegram's Message object.
    private func messageJSON(_ message: SimTelegramMessage) -> JSONValue {
        var object: [String: JSONValue] = [
            "message_id": .integer(message.messageID), "from": Self.userJSON(message.from), "chat": Self.chatJSON(message.chatID),
            "date": .integer(Self.unix(message.date)), "text": .string(message.text),
        ]
        if let edited = message.editDate { object["edit_date"] = .integer(Self.unix(edited)) }
        if !message.buttons.isEmpty { object["reply_markup"] = ["inline_keyboard": Self.keyboardJSON(message.buttons)] }
        if let replyTo = message.replyToMessageID, let index = messageIndex[replyTo] {
            var original = messageJSON(messages[index]).objectValue ?? [:]
            original["reply_to_message"] = nil
            object["reply_to_message"] = .object(original)
        }
        return .object(object)
    }

    // MARK: Values

    static func userJSON(_ user: SimTelegramUser) -> JSONValue {
        var object: [String: JSONValue] = ["id": .integer(user.id), "is_bot": .bool(user.isBot), "first_name": .string(user.firstName)]
        if let username = user.username { object["username"] = .string(username) }
        return .object(object)
    }

    static func chatJSON(_ id: Int64) -> JSONValue {
        id > 0 ? ["id": .integer(id), "type": "private", "first_name": "Seller"] : ["id": .integer(id), "type": "supergroup", "title": "Orders"]
    }

    static func keyboardJSON(_ rows: [[SimTelegramButton]]) -> JSONValue {
        .array(
            rows.map { row in
                .array(
                    row.map { button in
                        var object: [String: JSONValue] = ["text": .string(button.text)]
                        if let data = button.callbackData { object["callback_data"] = .string(data) }
                        if let url = button.url { object["url"] = .string(url) }
                        return .object(object)
                    })
            })
    }

    static func unix(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    static func failure(_ code: Int, _ description: String) -> ServerResponse {
        .json(status: code, value: ["ok": false, "error_code": .integer(Int64(code)), "description": .string(description)])
    }

    private static func checkedText(_ text: String?) throws(TelegramAPIError) -> String {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw .badRequest("message text is empty")
        }
        guard text.count <= textLimit else { throw .badRequest("message is too long") }
        return text
    }

    /// The inline keyboard of `markup` (absent: none), checked as Telegram checks it.
    private static func keyboard(_ markup: JSONValue?) throws(TelegramAPIError) -> [[SimTelegramButton]] {
        guard let markup, !markup.isNull else { return [] }
        guard case .object(let members) = markup else { throw .badRequest("can't parse reply keyboard markup JSON object") }
        guard let rowsValue = members["inline_keyboard"] else { return [] }
        guard let rows = rowsValue.arrayValue else { throw .badRequest("field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays") }
        var keyboard: [[SimTelegramButton]] = []
        for rowValue in rows {
            guard let row = rowValue.arrayValue else {
                throw .badRequest("field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays")
            }
            var buttons: [SimTelegramButton] = []
            for item in row {
                guard let text = item["text"]?.stringValue else { throw .badRequest("can't parse inline keyboard button: Field \"text\" must be of type String") }
                let data = item["callback_data"]?.stringValue
                let url = item["url"]?.stringValue
                if let data, !callbackDataBytes.contains(data.utf8.count) { throw .badRequest("BUTTON_DATA_INVALID") }
                if data == nil && url == nil {
                    throw .badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                }
                buttons.append(SimTelegramButton(text: text, callbackData: data, url: url))
            }
            if !buttons.isEmpty { keyboard.append(buttons) }
        }
        return keyboard
    }

    static func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
}

/// A Bot API refusal: `error_code` and `description`.
struct TelegramAPIError: Error, Sendable, CustomStringConvertible {
    var code: Int
    var description: String
    /// Seconds to wait, for a 429 (`parameters.retry_after`).
    var retryAfter: Int? = nil

    static func badRequest(_ what: String) -> TelegramAPIError { TelegramAPIError(code: 400, description: "Bad Request: \(what)") }
}

/// A Bot API call's parameters, from the query string and a JSON or form-encoded body.
struct TelegramParameters {
    var values: [String: JSONValue]

    static func read(_ request: ServerRequest) -> Result<TelegramParameters, TelegramAPIError> {
        var values: [String: JSONValue] = [:]
        for item in request.query { values[item.name] = .string(item.value) }
        guard !request.body.isEmpty else { return .success(TelegramParameters(values: values)) }
        let type = request.header("Content-Type")?.lowercased() ?? ""
        if type.hasPrefix("application/x-www-form-urlencoded") {
            for item in request.formFields { values[item.name] = .string(item.value) }
        } else if type.hasPrefix("application/json") || type.isEmpty {
            guard case .object(let members)? = try? JSONParser.parse(request.body) else {
                return .failure(.badRequest("can't parse JSON object"))
            }
            values.merge(members) { _, body in body }
        } else {
            return .failure(.badRequest("unsupported Content-Type \(type.prefix(60)) (the double reads JSON and form-encoded bodies)"))
        }
        return .success(TelegramParameters(values: values))
    }

    func string(_ key: String) -> String? {
        switch values[key] {
        case .string(let s)?: return s
        case .integer(let i)?: return String(i)
        default: return nil
        }
    }

    func int64(_ key: String) -> Int64? { values[key]?.lenientInt64 }

    func double(_ key: String) -> Double? {
        guard let d = values[key]?.lenientDouble, d.isFinite else { return nil }
        return d
    }

    func bool(_ key: String) -> Bool? {
        switch values[key] {
        case .bool(let b)?: return b
        case .string(let s)?: return s == "true" ? true : s == "false" ? false : nil
        default: return nil
        }
    }

    /// An object given as JSON, or as a string holding JSON (how form-encoded calls send it).
    func json(_ key: String) -> JSONValue? {
        switch values[key] {
        case .string(let s)?: return (try? JSONParser.parse(Data(s.utf8))) ?? .string(s)
        case let value?: return value
        case nil: return nil
        }
    }

    /// `chat_id` as an integer (Telegram also takes `@channel` names, which the double does not know).
    func chatID() throws(TelegramAPIError) -> Int64 {
        guard let raw = values["chat_id"], !raw.isNull, string("chat_id")?.isEmpty == false else { throw .badRequest("chat_id is empty") }
        guard let id = raw.lenientInt64, id != 0 else { throw .badRequest("chat not found") }
        return id
    }
}

extension JSONValue {
    /// This object with `other`'s members added (replacing any of the same name).
    func merging(_ other: [String: JSONValue]) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members.merge(other) { _, new in new }
        return .object(members)
    }
}

/// The rate limits Telegram documents for a bot's messages: about one a second in a chat,
/// and at most 20 a minute in a group (a chat whose id is negative).
public struct SimTelegramLimits: Sendable, Hashable {
    public var perChatInterval: TimeInterval
    public var perGroupPerMinute: Int

    public init(perChatInterval: TimeInterval = 1, perGroupPerMinute: Int = 20) {
        self.perChatInterval = perChatInterval
        self.perGroupPerMinute = perGroupPerMinute
    }

    /// Telegram's own.
    public static let telegram = SimTelegramLimits()

    /// Whole seconds to wait before a message to `chatID` is accepted, given the instants of the
    /// ones accepted there within the last minute (oldest first); nil when it may go now.
    func wait(chatID: Int64, recent: [Date], now: Date) -> Int? {
        var wait: TimeInterval = 0
        if let last = recent.last { wait = max(wait, perChatInterval - now.timeIntervalSince(last)) }
        if chatID < 0, recent.count >= perGroupPerMinute {
            wait = max(wait, 60 - now.timeIntervalSince(recent[recent.count - perGroupPerMinute]))
        }
        return wait > 0 ? max(1, Int(wait.rounded(.up))) : nil
    }
}
