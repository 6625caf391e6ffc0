import Foundation
import Logging

/// Where a rule's `action` events go when actions are live: each is answered through the
/// ``Answerer`` as its rule says. The outbox holds an action until this sink has taken it,
/// so a crash or a restart neither loses nor repeats it (the journal refuses a second
/// answer). Its name is one no configured sink can have.
public struct RuleActionSink: AlertSink {
    public static let sinkName = "+rule-actions"
    public var name: String { Self.sinkName }

    private let answerer: Answerer
    private let journal: any AnswerJournal
    /// The answer the rule of that name gives now; nil when it no longer acts.
    private let action: @Sendable (String) -> Answer?
    private let maxPerHour: Int
    /// False in dry-run: an action queued while actions were live is logged, not sent.
    private let live: Bool
    private let clock: WatchClock
    private let logger: Logger

    /// How the delivery queue retries an action it could not send yet: soon, then every
    /// few minutes, until its request is decided or its deadline passes (then it is done).
    public static let retry = RetryPolicy(initialDelay: 5, maxDelay: 300)
    /// The looking-up and the answer, each bounded by its source's own `timeout`.
    public static let timeout: TimeInterval = 300

    public init(
        answerer: Answerer, journal: any AnswerJournal, maxPerHour: Int, live: Bool = true, clock: WatchClock, logger: Logger,
        action: @escaping @Sendable (String) -> Answer?
    ) {
        self.answerer = answerer
        self.journal = journal
        self.action = action
        self.live = live
        self.maxPerHour = max(1, maxPerHour)
        self.clock = clock
        self.logger = logger
    }

    /// Answers the request of an `action` event (other events are not its business). Done
    /// once the answer was sent or cannot be (decided, past its deadline, answered before,
    /// over the hourly budget); a failure that may pass (the marketplace could not be asked,
    /// the journal could not record, a 429) is retried by the delivery queue.
    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        guard event.kind == .action, let request = event.request, let outcome = event.outcome else { return }
        let metadata: Logger.Metadata = ["rule": "\(event.rule)", "source": "\(request.source)", "request": "\(request.id)"]
        guard live else {
            logger.notice(
                "actions are dry-run now: rule \(event.rule)'s answer (\(outcome.rawValue)) to \(request.source) request \(request.id), queued while they were live, is not sent",
                metadata: metadata)
            return
        }
        guard let answer = action(event.rule), answer.decision.outcome == outcome else {
            logger.warning(
                "rule \(event.rule) no longer gives this answer (\(outcome.rawValue)) to \(request.source) request \(request.id): not sent",
                metadata: metadata)
            return
        }
        let since = clock.now().addingTimeInterval(-3600)
        let journal = self.journal
        let spent: Int
        do {
            spent = try await BlockingWorkers.shared.run { () throws(StoreError) in try journal.answerCount(by: .rule, since: since) }
        } catch {
            throw DeliveryError(retryable: true, message: "the answer journal cannot be read: \(error.description)")
        }
        guard spent < maxPerHour else {
            logger.error(
                "actions.max_per_hour (\(maxPerHour)) reached: rule \(event.rule)'s answer (\(answer.decision.rawValue)) to \(request.source) request \(request.id) (order \(request.order)) is not sent",
                metadata: metadata)
            return
        }
        let result = await answerer.answer(source: request.source, id: request.id, with: answer, by: AnswerActor(.rule, event.rule))
        switch result.kind {
        case .notSent(.lookupFailed), .notSent(.storeFailed):
            throw DeliveryError(retryable: true, message: result.line)
        case .sent(.refused(let refusal)) where refusal.kind == .rateLimited || refusal.kind == .notSent:
            throw DeliveryError(retryable: true, message: result.line)
        default:
            return
        }
    }
}
