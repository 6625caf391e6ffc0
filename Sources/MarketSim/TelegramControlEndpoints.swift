import CancelWatch
import Foundation
import HTTPServing

/// `/_sim/telegram…`: inspect the Telegram double and script presses and replies over HTTP.
extension SimTelegramBot {
    /// The answer to `request` when its path is `/_sim/telegram…`, nil otherwise.
    func handleControl(_ request: ServerRequest) -> ServerResponse? {
        guard request.path == "/_sim/telegram" || request.path.hasPrefix("/_sim/telegram/") else { return nil }
        switch (request.method, request.path) {
        case ("GET", "/_sim/telegram"):
            return .json(
                value: [
                    "token": .string(token), "bot": Self.userJSON(bot), "messages": .array(allMessages().map(Self.inspectionJSON)),
                    "callbacks": .array(allCallbacks().map(Self.inspectionJSON)),
                    "pending_updates": .array(pendingUpdateIDs().map(JSONValue.integer)),
                ])
        case ("GET", "/_sim/telegram/messages"):
            return .json(value: ["messages": .array(allMessages().map(Self.inspectionJSON))])
        case ("GET", "/_sim/telegram/callbacks"):
            return .json(value: ["callbacks": .array(allCallbacks().map(Self.inspectionJSON))])
        case ("POST", "/_sim/telegram/press"):
            return scripted(request, keys: ["message_id", "data", "button", "from", "forged"]) { fields throws(SimScenarioError) in
                let messageID = try Self.requiredInt(fields, "message_id")
                let from = try Self.user(fields)
                let button = try fields.string("button")
                if button != nil && fields.present("data") { throw fields.error("button", "give data or button, not both") }
                let data = button == nil ? try fields.requiredString("data") : ""
                let forged = try fields.bool("forged") ?? false
                let callback: SimTelegramCallback
                do throws(SimTelegramError) {
                    if let button {
                        callback = try press(messageID: messageID, button: button, from: from)
                    } else {
                        callback = try press(messageID: messageID, data: data, from: from, forged: forged)
                    }
                } catch {
                    throw SimScenarioError(source: "request body", field: "", message: error.description)
                }
                return Self.inspectionJSON(callback)
            }
        case ("POST", "/_sim/telegram/reply"):
            return scripted(request, keys: ["message_id", "text", "from"]) { fields throws(SimScenarioError) in
                let messageID = try Self.requiredInt(fields, "message_id")
                let text = try fields.requiredString("text")
                let from = try Self.user(fields)
                do throws(SimTelegramError) {
                    return Self.inspectionJSON(try reply(to: messageID, text: text, from: from))
                } catch {
                    throw SimScenarioError(source: "request body", field: "", message: error.description)
                }
            }
        default:
            return SimState.controlError(404, "no control endpoint \(request.method) \(request.path)")
        }
    }

    /// Reads the body's object (only `keys`), runs `body`, answers 201 with its value or 400 with the error.
    private func scripted(
        _ request: ServerRequest, keys: Set<String>, _ body: (JSONFields) throws(SimScenarioError) -> JSONValue
    ) -> ServerResponse {
        do {
            let value: JSONValue
            do {
                value = try JSONParser.parse(request.body)
            } catch {
                throw SimScenarioError(source: "request body", field: "", message: error.description)
            }
            let fields = try JSONFields(value, path: "", source: "request body")
            try fields.onlyKeys(keys)
            return .json(status: 201, value: try body(fields))
        } catch {
            return SimState.controlError(400, "\(error)")
        }
    }

    private static func requiredInt(_ fields: JSONFields, _ key: String) throws(SimScenarioError) -> Int64 {
        guard let value = try fields.int(key) else { throw fields.error(key, "required") }
        return value
    }

    /// `from`: `{"id": 42, "first_name": "Alice", "username": "alice"}`.
    private static func user(_ fields: JSONFields) throws(SimScenarioError) -> SimTelegramUser {
        guard let from = try fields.object("from") else { throw fields.error("from", "required: {\"id\": …, \"first_name\": …}") }
        try from.onlyKeys(["id", "first_name", "username"])
        let id = try requiredInt(from, "id")
        guard id > 0 else { throw from.error("id", "a user id is positive") }
        return SimTelegramUser(id: id, firstName: try from.string("first_name") ?? "User", username: try from.string("username"))
    }

    static func inspectionJSON(_ message: SimTelegramMessage) -> JSONValue {
        [
            "message_id": .integer(message.messageID), "chat_id": .integer(message.chatID), "from": userJSON(message.from),
            "text": .string(message.text), "buttons": keyboardJSON(message.buttons),
            "date": .string(SimDates.rfc3339(message.date, digits: 3)),
            "edit_date": message.editDate.map { .string(SimDates.rfc3339($0, digits: 3)) } ?? .null,
            "reply_to_message_id": message.replyToMessageID.map(JSONValue.integer) ?? .null,
            "earlier_versions": .array(
                message.earlierVersions.map { version in
                    [
                        "text": .string(version.text), "buttons": keyboardJSON(version.buttons),
                        "date": .string(SimDates.rfc3339(version.date, digits: 3)),
                    ]
                }),
        ]
    }

    static func inspectionJSON(_ callback: SimTelegramCallback) -> JSONValue {
        [
            "callback_query_id": .string(callback.id), "message_id": .integer(callback.messageID), "chat_id": .integer(callback.chatID),
            "data": .string(callback.data), "from": userJSON(callback.from),
            "pressed_at": .string(SimDates.rfc3339(callback.pressedAt, digits: 3)), "answered": .bool(callback.answered),
            "answer_text": callback.answerText.map(JSONValue.string) ?? .null, "show_alert": .bool(callback.showAlert),
            "answered_at": callback.answeredAt.map { .string(SimDates.rfc3339($0, digits: 3)) } ?? .null,
        ]
    }
}
