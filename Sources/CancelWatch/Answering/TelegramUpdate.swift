import Foundation

/// A Telegram user who pressed or replied.
public struct TelegramUser: Sendable, Hashable {
    public var id: Int64
    /// First and last name (or the username), cut to 64 characters.
    public var name: String

    public init(id: Int64, name: String) {
        self.id = id
        self.name = name
    }

    /// `telegram:42 (Alice)`, as events and the journal name who answered.
    public var actor: AnswerActor { AnswerActor(.telegram, name.isEmpty ? "\(id)" : "\(id) (\(name))") }
}

/// A press on one of cancelwatch's buttons.
public struct TelegramPress: Sendable, Hashable {
    /// For `answerCallbackQuery`.
    public var queryID: String
    public var user: TelegramUser
    public var chatID: Int64
    /// The message the button is under.
    public var messageID: Int64
    /// What the button carries: the choice and the request's digest.
    public var data: TelegramCallbackData
    /// The text of the message the button is under (empty when Telegram did not send it).
    public var messageText: String = ""
}

/// A reply to a refusal's reason prompt (a message carrying a ``TelegramCallbackData/Choice/cancel`` button): the reason.
public struct TelegramReasonReply: Sendable, Hashable {
    public var user: TelegramUser
    public var chatID: Int64
    public var messageID: Int64
    /// The prompt replied to.
    public var promptMessageID: Int64
    /// The request the prompt asks about (its digest, from the prompt's buttons).
    public var requestDigest: String
    /// The reason as written (at most ``Answer/commentLimit`` characters are kept).
    public var text: String
}

/// One update cancelwatch acts on.
public enum TelegramUpdate: Sendable, Hashable {
    case press(TelegramPress)
    case reasonReply(TelegramReasonReply)

    /// The user behind it.
    public var user: TelegramUser {
        switch self {
        case .press(let press): press.user
        case .reasonReply(let reply): reply.user
        }
    }

    /// Ids as the Bot API sends them fit in JSON's exact integers; anything else is refused.
    static let idRange: ClosedRange<Int64> = -9_007_199_254_740_991...9_007_199_254_740_991
    static let messageIDRange: ClosedRange<Int64> = 1...9_007_199_254_740_991
    static let nameLimit = 64
    static let queryIDLimit = 128

    /// What reading one raw update came to.
    enum Reading: Equatable {
        case update(TelegramUpdate)
        /// Not for cancelwatch (another kind of update, a message that replies to no prompt): skipped quietly.
        case ignored
        /// A press on a button that is not cancelwatch's (or is damaged): answered, then skipped.
        case foreignPress(queryID: String, user: TelegramUser?)
        /// Unreadable: logged and skipped.
        case malformed(String)
    }

    /// The update's `update_id`, when it is a readable one.
    static func id(of raw: JSONValue) -> Int64? {
        guard let id = raw["update_id"]?.exactInteger, (0...idRange.upperBound).contains(id) else { return nil }
        return id
    }

    /// Reads one update leniently: unknown members are ignored, every number is checked.
    static func read(_ raw: JSONValue) -> Reading {
        if let query = raw["callback_query"] { return readPress(query) }
        if let message = raw["message"] { return readReply(message) }
        return .ignored
    }

    private static func readPress(_ query: JSONValue) -> Reading {
        guard let queryID = query["id"]?.stringValue, !queryID.isEmpty, queryID.utf8.count <= queryIDLimit else {
            return .malformed("a callback_query without a usable id")
        }
        let user = self.user(query["from"])
        guard let user else { return .foreignPress(queryID: queryID, user: nil) }
        guard let message = query["message"], let messageID = message["message_id"]?.exactInteger, messageIDRange.contains(messageID),
            let chatID = message["chat"]?["id"]?.exactInteger, idRange.contains(chatID), chatID != 0
        else { return .foreignPress(queryID: queryID, user: user) }
        guard let text = query["data"]?.stringValue, let data = TelegramCallbackData(parsing: text) else {
            return .foreignPress(queryID: queryID, user: user)
        }
        let shown = String((message["text"]?.stringValue ?? "").prefix(ChatWebhookFormat.telegramTextLimit))
        return .update(
            .press(TelegramPress(queryID: queryID, user: user, chatID: chatID, messageID: messageID, data: data, messageText: shown)))
    }

    private static func readReply(_ message: JSONValue) -> Reading {
        guard let prompt = message["reply_to_message"], let digest = promptDigest(prompt) else { return .ignored }
        guard let user = user(message["from"]) else { return .malformed("a reply without a usable sender") }
        guard let messageID = message["message_id"]?.exactInteger, messageIDRange.contains(messageID),
            let promptID = prompt["message_id"]?.exactInteger, messageIDRange.contains(promptID),
            let chatID = message["chat"]?["id"]?.exactInteger, idRange.contains(chatID), chatID != 0
        else { return .malformed("a reply without usable message and chat ids") }
        guard let text = message["text"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            return .ignored
        }
        return .update(
            .reasonReply(
                TelegramReasonReply(
                    user: user, chatID: chatID, messageID: messageID, promptMessageID: promptID, requestDigest: digest,
                    text: String(text.prefix(Answer.commentLimit)))))
    }

    /// The request digest of a reason prompt: the message's cancel button.
    private static func promptDigest(_ message: JSONValue) -> String? {
        guard let rows = message["reply_markup"]?["inline_keyboard"]?.arrayValue else { return nil }
        for button in rows.prefix(20).flatMap({ $0.arrayValue?.prefix(20) ?? [] }) {
            if let text = button["callback_data"]?.stringValue, let data = TelegramCallbackData(parsing: text), data.choice == .cancel {
                return data.requestDigest
            }
        }
        return nil
    }

    private static func user(_ value: JSONValue?) -> TelegramUser? {
        guard let value, let id = value["id"]?.exactInteger, TelegramActionsConfig.userIDRange.contains(id),
            value["is_bot"]?.boolValue != true
        else { return nil }
        let full = [value["first_name"]?.stringValue, value["last_name"]?.stringValue].compactMap { $0 }.joined(separator: " ")
        let name = full.isEmpty ? value["username"]?.stringValue ?? "" : full
        let printable = String(name.unicodeScalars.filter { $0.properties.generalCategory != .control }.map(Character.init))
        return TelegramUser(id: id, name: String(printable.prefix(nameLimit)))
    }
}

extension JSONValue {
    /// A whole number sent as one (not as text, not with a fraction).
    var exactInteger: Int64? {
        switch self {
        case .integer(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }
}
