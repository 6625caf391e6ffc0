import Foundation
import Logging
import ServiceLifecycle

/// Reads a bot's updates by long polling `getUpdates` (no public URL needed) and hands the
/// presses on cancelwatch's buttons and the replies to its reason prompts to `handle`, in
/// order, one at a time.
///
/// - Offsets: each update is handled once; the next poll's `offset` confirms it. One whose
///   content cannot be read is logged and skipped, and confirmed all the same.
/// - Every press is answered at once (`answerCallbackQuery`): a press by a user not in
///   `allow` is refused there, logged and not handed on; so is a reply by such a user.
/// - Errors back off (1 s doubling to 60 s, or Telegram's `retry_after`, clamped); a poll
///   that brings nothing, or nothing that can be confirmed, is never followed straight by
///   another: no loop runs hot, whatever the server answers.
/// - A graceful shutdown or a cancellation ends it at once, even during a long poll (whose
///   answer is then dropped unconfirmed: its updates come again to the next reader).
public struct TelegramUpdates: Service {
    public let client: TelegramBotClient
    let allow: Set<Int64>
    let clock: WatchClock
    let logger: Logger
    let pollTimeout: Int
    let handle: @Sendable (TelegramUpdate) async -> Void

    /// How long a poll holds, in seconds (Telegram allows 50; shorter notices a dead connection sooner).
    public static let defaultPollTimeout = 25
    static let backoff = RetryPolicy(maxAttempts: nil, initialDelay: 1, maxDelay: 60)
    /// The least time from one poll's start to the next when a poll brought nothing.
    static let quietGap: TimeInterval = 1

    public init(
        client: TelegramBotClient, allow: [Int64], clock: WatchClock, logger: Logger, pollTimeout: Int = TelegramUpdates.defaultPollTimeout,
        handle: @escaping @Sendable (TelegramUpdate) async -> Void
    ) {
        self.client = client
        self.allow = Set(allow)
        self.clock = clock
        self.logger = logger
        self.pollTimeout = min(max(pollTimeout, 0), 50)
        self.handle = handle
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await readUpdates() }
    }

    /// The polling loop, until cancelled.
    func readUpdates() async {
        var offset: Int64?
        var failures = 0
        while !Task.isCancelled {
            let started = clock.now()
            let polled = await Self.abandoningOnCancel { [client, offset, pollTimeout] () -> Result<[JSONValue], TelegramCallError> in
                do throws(TelegramCallError) {
                    return .success(try await client.getUpdates(offset: offset, timeout: pollTimeout))
                } catch {
                    return .failure(error)
                }
            }
            guard let polled else { return }
            var wait: TimeInterval = 0
            switch polled {
            case .failure(let error):
                failures += 1
                wait = Self.backoff.delay(afterAttempt: failures, retryAfter: error.retryAfter)
                logger.warning(
                    "telegram: getUpdates failed: \(error.message)",
                    metadata: ["failures": "\(failures)", "retry_in": "\(DurationText.spell(wait))"])
            case .success(let updates):
                let before = offset
                for raw in updates {
                    guard let id = TelegramUpdate.id(of: raw) else {
                        logger.warning("telegram: skipped an update without a usable update_id")
                        continue
                    }
                    if let offset, id < offset { continue }
                    offset = id + 1
                    await process(raw, id: id)
                }
                if updates.isEmpty {
                    failures = 0
                    wait = started.addingTimeInterval(Self.quietGap).timeIntervalSince(clock.now())
                } else if offset == before {
                    failures += 1
                    wait = Self.backoff.delay(afterAttempt: failures, retryAfter: nil)
                    logger.warning(
                        "telegram: getUpdates brought \(updates.count) update(s), none of which could be confirmed",
                        metadata: ["retry_in": "\(DurationText.spell(wait))"])
                } else {
                    failures = 0
                }
            }
            if wait > 0 {
                do {
                    try await clock.sleep(for: WakeTime.delay(wait))
                } catch {
                    return
                }
            }
        }
    }

    private func process(_ raw: JSONValue, id: Int64) async {
        switch TelegramUpdate.read(raw) {
        case .ignored:
            return
        case .malformed(let why):
            logger.warning("telegram: skipped update \(id): \(why)")
        case .foreignPress(let queryID, let user):
            await answer(queryID, "This button is not one cancelwatch can act on.", alert: false)
            logger.notice("telegram: a press on a button that is not cancelwatch's, ignored", metadata: Self.metadata(user, update: id))
        case .update(let update):
            let user = update.user
            guard allow.contains(user.id) else {
                if case .press(let press) = update {
                    await answer(press.queryID, "You may not answer cancellation requests here.", alert: true)
                }
                logger.warning(
                    "telegram: \(update.kindName) by a user not in actions.allow refused", metadata: Self.metadata(user, update: id))
                return
            }
            if case .press(let press) = update { await answer(press.queryID, "Working on it…", alert: false) }
            await handle(update)
        }
    }

    private func answer(_ queryID: String, _ text: String, alert: Bool) async {
        do {
            try await client.answerCallbackQuery(queryID, text: text, alert: alert)
        } catch {
            logger.warning("telegram: answerCallbackQuery failed: \(error.message)")
        }
    }

    private static func metadata(_ user: TelegramUser?, update: Int64) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["update_id": "\(update)"]
        if let user {
            metadata["telegram_user"] = "\(user.id)"
            metadata["telegram_name"] = "\(user.name)"
        }
        return metadata
    }

    /// Awaits `operation` in a task of its own; cancelling the caller ends the wait at once
    /// with nil (the operation runs on, unobserved).
    static func abandoningOnCancel<T: Sendable>(_ operation: @escaping @Sendable () async -> T) async -> T? {
        let waiter = ResumeOnce<T?>()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
                waiter.set(continuation)
                guard waiter.claimForWork() else { return }
                Task { waiter.resume(await operation()) }
            }
        } onCancel: {
            waiter.resume(nil)
        }
    }
}

extension TelegramUpdate {
    /// `press`, `reason reply`: for log lines.
    var kindName: String {
        switch self {
        case .press: "press"
        case .reasonReply: "reason reply"
        }
    }
}

extension TelegramBotClient {
    /// Asks in the chat why `request` (order `order`) should be refused, replying to the
    /// alert `messageID`: one button per reason in `reasons` and a Cancel button; a reply to
    /// this prompt comes back as a ``TelegramReasonReply``. Returns the prompt's message id.
    public func askRefusalReason(chatID: Int64, replyTo messageID: Int64, request: RequestKey, order: String, reasons: [String])
        async throws(TelegramCallError) -> Int64
    {
        let text = "Why refuse the cancellation of \(order.isEmpty ? request.id : order)? Choose a reason, or reply to this message with yours."
        return try await sendMessage(chatID: chatID, text: text, keyboard: Self.reasonKeyboard(request: request, reasons: reasons), replyTo: messageID)
    }

    /// The reason prompt's buttons: each of `reasons` (at most eight), then Cancel.
    public static func reasonKeyboard(request: RequestKey, reasons: [String]) -> JSONValue {
        var rows: [JSONValue] = reasons.prefix(TelegramActionsConfig.maxRefuseReasons).enumerated().map { index, reason in
            [["text": .string(reason), "callback_data": .string(TelegramCallbackData(.refuseWithReason(index), request: request).description)]]
        }
        rows.append([["text": "Cancel", "callback_data": .string(TelegramCallbackData(.cancel, request: request).description)]])
        return ["inline_keyboard": .array(rows)]
    }
}
