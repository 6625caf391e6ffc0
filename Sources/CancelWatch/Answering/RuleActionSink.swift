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
    private let clock: WatchClock
    private let logger: Logger

    public init(
        answerer: Answerer, journal: any AnswerJournal, maxPerHour: Int, clock: WatchClock, logger: Logger,
        action: @escaping @Sendable (String) -> Answer?
    ) {
        self.answerer = answerer
        self.journal = journal
        self.action = action
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
