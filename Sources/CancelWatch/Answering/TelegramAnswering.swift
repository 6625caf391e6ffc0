import Foundation
import Logging
import Synchronization

/// Answers requests from Telegram: what ``TelegramUpdates`` hands on (presses of allowed
/// users, replies to a reason prompt) goes through the ``Answerer`` as the command line's
/// answers do, and the message shows the outcome and who answered.
///
/// - Approve answers at once; the alert is edited to say what came of it (its buttons go
///   once the request is answered or cannot be, and stay when the answer may be tried again).
/// - Refuse asks for the reason in the chat (a reply, or one of the sink's `refuse_reasons`);
///   the reason's answer is shown in place of the prompt. Cancel leaves the request as it is.
/// - A press is tied to its chat: a user allowed in one sink's chat answers nothing in another's.
public struct TelegramAnswering: Sendable {
    /// One telegram sink with actions, as its chat sees it.
    public struct Chat: Sendable, Hashable {
        public var sink: String
        public var chatID: Int64
        public var allow: Set<Int64>
        public var refuseReasons: [String]

        public init(sink: String, chatID: Int64, allow: Set<Int64>, refuseReasons: [String]) {
            self.sink = sink
            self.chatID = chatID
            self.allow = allow
            self.refuseReasons = refuseReasons
        }
    }

    private let client: TelegramBotClient
    private let answerer: Answerer
    private let store: any StateStore
    private let chats: [Int64: Chat]
    private let logger: Logger
    private let prompts = Prompts()

    /// An alert message, as a reason prompt replies to it.
    struct Alert: Sendable {
        var messageID: Int64
        var text: String
    }

    /// The alert each reason prompt asks about (Telegram does not say, for a reply to the
    /// prompt): the latest ones, so that the alert too shows what came of the refusal.
    final class Prompts: Sendable {
        static let kept = 1000
        private let alerts = Mutex<(byPrompt: [Int64: Alert], order: [Int64])>(([:], []))

        func remember(_ prompt: Int64, _ alert: Alert) {
            alerts.withLock { book in
                if book.byPrompt.updateValue(alert, forKey: prompt) == nil { book.order.append(prompt) }
                if book.order.count > Self.kept { book.byPrompt[book.order.removeFirst()] = nil }
            }
        }

        func alert(of prompt: Int64) -> Alert? { alerts.withLock { $0.byPrompt[prompt] } }
    }

    public init(client: TelegramBotClient, answerer: Answerer, store: any StateStore, chats: [Chat], logger: Logger) {
        self.client = client
        self.answerer = answerer
        self.store = store
        var byID: [Int64: Chat] = [:]
        for chat in chats {
            if var known = byID[chat.chatID] {
                known.allow.formUnion(chat.allow)
                byID[chat.chatID] = known
            } else {
                byID[chat.chatID] = chat
            }
        }
        self.chats = byID
        self.logger = logger
    }

    /// Every user any chat allows: whose presses ``TelegramUpdates`` hands on.
    public var allowed: [Int64] { Array(Set(chats.values.flatMap(\.allow))).sorted() }

    public func handle(_ update: TelegramUpdate) async {
        let (user, chatID) =
            switch update {
            case .press(let press): (press.user, press.chatID)
            case .reasonReply(let reply): (reply.user, reply.chatID)
            }
        guard let chat = chats[chatID], chat.allow.contains(user.id) else {
            logger.warning(
                "telegram: \(update.kindName) in a chat where this user may not answer, refused",
                metadata: ["telegram_user": "\(user.id)", "chat": "\(chatID)"])
            return
        }
        switch update {
        case .press(let press): await handle(press, in: chat)
        case .reasonReply(let reply): await handle(reply)
        }
    }

    private func handle(_ press: TelegramPress, in chat: Chat) async {
        let found: TrackedRequest?
        switch await tracked(press.data.requestDigest) {
        case .failure(let reason):
            logger.warning("telegram: the tracked requests cannot be read: \(reason.description)")
            await answerCallback(press, "cancelwatch cannot read its state right now: nothing was answered; try again.")
            return
        case .success(let request): found = request
        }
        // The message pressed must be the bot's message about that request: a button's data
        // alone (which a client may forge) never names a request of another chat.
        guard let request = found, press.messageText.isEmpty || press.messageText.contains(request.request.order) else {
            await edit(
                press.chatID, press.messageID, text: press.messageText,
                note: "⚠️ This request is no longer tracked by cancelwatch: nothing was answered.")
            return
        }
        switch press.data.choice {
        case .approve:
            await answer(request, with: try? Answer(.approve), by: press.user, editing: press.messageID, in: press.chatID, text: press.messageText)
        case .refuse:
            do throws(TelegramCallError) {
                let prompt = try await client.askRefusalReason(
                    chatID: press.chatID, replyTo: press.messageID, request: request.key, order: request.request.order,
                    reasons: chat.refuseReasons)
                prompts.remember(prompt, Alert(messageID: press.messageID, text: press.messageText))
            } catch {
                logger.warning("telegram: could not ask for a refusal's reason: \(error.message)", metadata: ["request": "\(request.key.id)"])
            }
        case .refuseWithReason(let index):
            guard chat.refuseReasons.indices.contains(index) else {
                await edit(press.chatID, press.messageID, text: press.messageText, note: "⚠️ That reason is no longer offered: reply with yours.")
                return
            }
            await answer(
                request, with: try? Answer(.refuse, comment: chat.refuseReasons[index]), by: press.user, editing: press.messageID,
                in: press.chatID, text: press.messageText)
        case .cancel:
            await edit(press.chatID, press.messageID, text: press.messageText, note: "Not refused: cancelled by \(press.user.name).")
        }
    }

    private func handle(_ reply: TelegramReasonReply) async {
        guard case .success(let found) = await tracked(reply.requestDigest), let request = found else {
            await send(reply.chatID, replyTo: reply.messageID, "⚠️ Not refused: cancelwatch cannot find this request now; try again.")
            return
        }
        let answer: Answer
        do {
            answer = try Answer(.refuse, comment: reply.text)
        } catch {
            await send(reply.chatID, replyTo: reply.messageID, "⚠️ Not refused: \(error.description).")
            return
        }
        await self.answer(request, with: answer, by: reply.user, editing: reply.promptMessageID, in: reply.chatID, text: nil)
    }

    /// Sends `answer` and shows what came of it on the message `messageID` (whose text is
    /// `text`; nil: the message is the reason prompt, replaced by the outcome).
    private func answer(
        _ request: TrackedRequest, with answer: Answer?, by user: TelegramUser, editing messageID: Int64, in chatID: Int64, text: String?
    ) async {
        guard let answer else { return }
        let result = await answerer.answer(source: request.key.source, id: request.key.id, with: answer, by: user.actor)
        let who = user.name.isEmpty ? "\(user.id)" : user.name
        let note: String
        var keepButtons = false
        switch result.kind {
        case .sent(.accepted):
            note = answer.decision == .approve ? "✅ Approved by \(who)." : "⛔ Refused by \(who): \(answer.comment)"
        case .sent(.unknown):
            note = "❓ \(who)'s answer was sent, but its outcome is unknown: it will not be sent again; the next listing tells."
        case .sent(.refused(let refusal)) where refusal.kind == .rateLimited || refusal.kind == .notSent:
            note = "⚠️ Not answered yet: \(result.line). Try again."
            keepButtons = true
        case .notSent(.lookupFailed), .notSent(.storeFailed):
            note = "⚠️ Not answered: \(result.line). Try again."
            keepButtons = true
        default:
            note = "⚠️ \(result.line)"
        }
        let buttons = keepButtons ? ChatWebhookFormat.telegramAnswerKeyboard(for: request.key) : nil
        if let alert = prompts.alert(of: messageID) {
            // The prompt gives the outcome, and so does the alert it asked about.
            await edit(chatID, messageID, text: "", note: note)
            await edit(chatID, alert.messageID, text: alert.text, note: note, keyboard: buttons)
        } else {
            await edit(chatID, messageID, text: text ?? "", note: note, keyboard: text == nil ? nil : buttons)
        }
    }

    /// The request a button's digest names, among the tracked ones (nil: none); a failure
    /// to read them is its reason.
    private func tracked(_ digest: String) async -> Result<TrackedRequest?, StoreError> {
        let store = self.store
        do throws(StoreError) {
            return .success(
                try await BlockingWorkers.shared.run { () throws(StoreError) -> TrackedRequest? in
                    try store.loadTracked(keepingRaw: .none).first { TelegramCallbackData.digest(of: $0.key) == digest }
                })
        } catch {
            return .failure(error)
        }
    }

    private func answerCallback(_ press: TelegramPress, _ text: String) async {
        do throws(TelegramCallError) {
            try await client.answerCallbackQuery(press.queryID, text: text, alert: true)
        } catch {
            logger.debug("telegram: answerCallbackQuery failed: \(error.message)")
        }
    }

    /// Shows `note` under `text` (the message's own text, cut so that the note always fits).
    private func edit(_ chatID: Int64, _ messageID: Int64, text: String, note: String, keyboard: JSONValue? = nil) async {
        let room = max(0, ChatWebhookFormat.telegramTextLimit - note.count - 2)
        let full = text.isEmpty ? note : "\(ChatWebhookFormat.truncated(text, characters: room))\n\n\(note)"
        do throws(TelegramCallError) {
            try await client.editMessageText(chatID: chatID, messageID: messageID, text: full, keyboard: keyboard)
        } catch {
            logger.warning("telegram: could not show an answer's outcome: \(error.message)")
        }
    }

    private func send(_ chatID: Int64, replyTo messageID: Int64, _ text: String) async {
        do throws(TelegramCallError) {
            _ = try await client.sendMessage(chatID: chatID, text: text, replyTo: messageID)
        } catch {
            logger.warning("telegram: could not reply: \(error.message)")
        }
    }
}

extension CancelWatchConfig {
    /// One reader per bot that a `format: telegram` sink with `actions:` posts through: its
    /// presses and reason replies answered by `answerer`. Each reader has a transport of its
    /// own (a long poll holds a connection for its whole length).
    public func telegramReaders(answerer: Answerer, store: any StateStore, clock: WatchClock, logger: Logger) -> [TelegramUpdates] {
        var chats: [TelegramBotURL: [TelegramAnswering.Chat]] = [:]
        var order: [TelegramBotURL] = []
        for sink in sinks {
            guard case .webhook(let settings) = sink.kind, settings.format == .telegram, let actions = settings.actions,
                let bot = TelegramBotURL(sendMessageURL: settings.url.reveal()), let chatID = settings.chatID.flatMap({ Int64($0) })
            else { continue }
            if chats[bot] == nil { order.append(bot) }
            chats[bot, default: []].append(
                TelegramAnswering.Chat(sink: sink.name, chatID: chatID, allow: Set(actions.allow), refuseReasons: actions.refuseReasons))
        }
        return order.map { bot in
            let client = TelegramBotClient(bot: bot, transport: CurlHTTPTransport(threads: 2), clock: clock)
            let answering = TelegramAnswering(client: client, answerer: answerer, store: store, chats: chats[bot] ?? [], logger: logger)
            // Each update in a task of its own: a slow marketplace holds no other press.
            return TelegramUpdates(client: client, allow: answering.allowed, clock: clock, logger: logger) { update in
                Task { await answering.handle(update) }
            }
        }
    }
}
