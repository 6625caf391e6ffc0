import Foundation
import Logging

/// Why an answer was not sent: nothing reached the marketplace.
public enum AnswerStop: Error, Sendable, Hashable {
    /// No source of that name in the config.
    case unknownSource(String, known: [String])
    /// The source's client cannot answer (its marketplace has no answer call here).
    case cannotAnswer(String)
    /// The request is not among those tracked for the source.
    case unknownRequest
    /// The marketplace says it is decided already.
    case decided(Outcome)
    /// Its deadline has passed (the marketplace decided, or is about to).
    case deadlinePassed(Date)
    /// An answer was recorded for it already, which may have applied.
    case answeredBefore(AnswerRecord)
    /// Its current state could not be learnt from the marketplace.
    case lookupFailed(String)
    /// The journal could not record the answer, so it was not sent.
    case storeFailed(String)
}

extension AnswerStop {
    /// Why nothing was sent, in the words that follow "not answered:" (an unknown source: the whole line).
    public var reason: String {
        switch self {
        case .unknownSource(let source, let known):
            "no source named '\(source)' in the config" + (known.isEmpty ? "" : " (sources: \(known.joined(separator: ", ")))")
        case .cannotAnswer(let marketplace): "\(marketplace) requests cannot be answered from cancelwatch"
        case .unknownRequest: "no such request is tracked for this source (see `cancelwatch status --format json`)"
        case .decided(let outcome): "the marketplace says it is \(outcome.rawValue) already"
        case .deadlinePassed(let deadline): "its deadline \(Timestamp.format(deadline)) has passed"
        case .answeredBefore(let record):
            "\(record.actor) answered it before (\(record.decision.rawValue), \(Timestamp.format(record.startedAt)), "
                + "\(record.state.rawValue)); one decision is never sent twice"
        case .lookupFailed(let reason): "its current state could not be read from the marketplace (\(reason))"
        case .storeFailed(let reason): "the answer could not be recorded before sending (\(reason))"
        }
    }
}

/// What one answer came to, with the request it was for (as the marketplace had it, when known).
public struct AnswerResult: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case sent(AnswerOutcome)
        case notSent(AnswerStop)
    }

    public var source: String
    public var id: String
    public var request: CancellationRequest?
    public var answer: Answer
    public var kind: Kind

    public init(source: String, id: String, request: CancellationRequest?, answer: Answer, kind: Kind) {
        self.source = source
        self.id = id
        self.request = request
        self.answer = answer
        self.kind = kind
    }

    /// Only an answer the marketplace took.
    public var accepted: Bool { kind == .sent(.accepted) }

    /// One line for a person, naming the request.
    public var line: String {
        let what = answer.decision == .approve ? "approve" : "refuse"
        let name = (request.map { "\($0.marketplace.rawValue) " } ?? "") + "\(source) request \(id)" + (request.map { " (order \($0.order))" } ?? "")
        switch kind {
        case .sent(.accepted):
            return "\(name): \(answer.decision == .approve ? "approved" : "refused"); the marketplace accepted the answer"
        case .sent(.refused(let refusal)):
            let why: String
            switch refusal.kind {
            case .unknownRequest: why = "the marketplace does not know this request for this account"
            case .alreadyDecided: why = "the marketplace says it was decided already"
            case .deadlinePassed: why = "the marketplace says its deadline passed"
            case .noPermission: why = "this account may not answer it"
            case .auth: why = "the marketplace refused the credentials"
            case .endpointGone: why = "the marketplace's answer call is gone (endpoint answered 404 or \"method offline\")"
            case .rateLimited: why = "the marketplace asks to slow down; nothing was applied, try again later"
            case .notSent: why = "the marketplace could not be reached; nothing was sent"
            case .other: why = "the marketplace refused it"
            }
            return "\(name): could not \(what): \(why) (\(refusal))"
        case .sent(.unknown(let reason)):
            return "\(name): the answer (\(what)) was sent but its outcome is unknown (\(reason)); it will not be sent again: the next listing tells what happened"
        case .notSent(let stop):
            if case .unknownSource = stop { return stop.reason }
            return "\(name): not answered: \(stop.reason)"
        }
    }
}

/// The one way an answer reaches a marketplace, whoever gives it (the command line, a
/// Telegram button, a rule): the request must be tracked, the marketplace must report it
/// pending now and its deadline must be ahead; the answer is recorded in the journal
/// before it is sent (a request with an answer that may have applied gets no second one),
/// and its outcome after. An outcome that cannot be known is never sent again.
public struct Answerer: Sendable {
    private let store: any StateStore
    private let clients: [String: any MarketplaceClient]
    private let clock: WatchClock
    private let logger: Logger

    public init(store: any StateStore, clients: [any MarketplaceClient], clock: WatchClock, logger: Logger) {
        self.store = store
        var byName: [String: any MarketplaceClient] = [:]
        for client in clients where byName[client.source] == nil { byName[client.source] = client }
        self.clients = byName
        self.clock = clock
        self.logger = logger
    }

    /// The request as the marketplace reports it now, when it may be answered.
    public func prepare(source: String, id: String) async -> Result<CancellationRequest, AnswerStop> {
        guard let client = clients[source] else { return .failure(.unknownSource(source, known: clients.keys.sorted())) }
        guard let answering = client as? any AnsweringClient else { return .failure(.cannotAnswer(client.marketplace.rawValue)) }
        let key = RequestKey(source: source, id: id)
        let store = self.store
        let tracked: TrackedRequest?
        do {
            tracked = try await BlockingWorkers.shared.run { () throws(StoreError) -> TrackedRequest? in
                try store.loadTracked(source: source, keepingRaw: .none).first { $0.key == key }
            }
        } catch {
            return .failure(.storeFailed(error.description))
        }
        guard let tracked else { return .failure(.unknownRequest) }
        // The journal first: an earlier answer is named, whatever the marketplace says now.
        do {
            if let earlier = try await BlockingWorkers.shared.run({ () throws(StoreError) in try store.answers(for: [key])[key] }),
                earlier.state.mayHaveApplied
            {
                return .failure(.answeredBefore(earlier))
            }
        } catch {
            return .failure(.storeFailed(error.description))
        }
        let lookup: [RequestKey: OutcomeLookup]
        do {
            lookup = try await answering.lookupOutcomes(of: [tracked.request])
        } catch {
            return .failure(.lookupFailed(error.description))
        }
        switch lookup[key] {
        case .stillPending(let current):
            guard current.deadline > clock.now() else { return .failure(.deadlinePassed(current.deadline)) }
            return .success(current)
        case .resolved(let outcome, _):
            return .failure(.decided(outcome))
        case nil:
            return .failure(.lookupFailed("the marketplace's answers do not tell whether it is still pending"))
        }
    }

    /// Sends `answer` for the request `id` of `source` by `actor`, safely (see the type).
    public func answer(source: String, id: String, with answer: Answer, by actor: AnswerActor) async -> AnswerResult {
        var result = AnswerResult(source: source, id: id, request: nil, answer: answer, kind: .notSent(.unknownRequest))
        let request: CancellationRequest
        switch await prepare(source: source, id: id) {
        case .failure(let stop):
            result.kind = .notSent(stop)
            log(result, actor: actor)
            return result
        case .success(let current):
            request = current
            result.request = current
        }
        // `prepare` found the client able to answer.
        guard let client = clients[source] as? any AnsweringClient else { return result }
        let record = AnswerRecord(
            request: request.key, order: request.order, decision: answer.decision, comment: answer.comment, actor: actor,
            startedAt: clock.now())
        let store = self.store
        do {
            if let earlier = try await BlockingWorkers.shared.run({ () throws(StoreError) in try store.beginAnswer(record) }) {
                result.kind = .notSent(.answeredBefore(earlier))
                log(result, actor: actor)
                return result
            }
        } catch {
            result.kind = .notSent(.storeFailed(error.description))
            log(result, actor: actor)
            return result
        }
        let outcome = await client.answer(request, with: answer)
        result.kind = .sent(outcome)
        let (state, message): (AnswerRecord.State, String) =
            switch outcome {
            case .accepted: (.accepted, "")
            case .refused(let refusal): (.refused, refusal.description)
            case .unknown(let reason): (.unknown, reason)
            }
        let at = clock.now()
        do {
            try await BlockingWorkers.shared.run { () throws(StoreError) in
                try store.finishAnswer(request.key, state: state, message: message, at: at)
            }
        } catch {
            // The journal keeps it as `sending`: taken as unknown, never sent again.
            logger.error(
                "the outcome of an answer could not be recorded (it stays 'sending', never sent again): \(error.description)",
                metadata: ["source": "\(source)", "request": "\(id)"])
        }
        log(result, actor: actor)
        return result
    }

    private func log(_ result: AnswerResult, actor: AnswerActor) {
        let level: Logger.Level =
            switch result.kind {
            case .sent(.accepted): .notice
            default: .warning
            }
        logger.log(level: level, "\(result.line)", metadata: ["actor": "\(actor)"])
    }
}
