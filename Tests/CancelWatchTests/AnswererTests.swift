import Foundation
import Logging
import Testing

@testable import CancelWatch

/// A marketplace that answers as a test says, counting the answers that reach it.
final class ScriptedAnswering: AnsweringClient, @unchecked Sendable {
    let source = "ozon-main"
    let marketplace = Marketplace.ozon
    private let lock = NSLock()
    private var lookup: (CancellationRequest) -> OutcomeLookup? = { .stillPending($0) }
    private var outcome: AnswerOutcome = .accepted
    private var sent: [(id: String, answer: Answer)] = []

    func answerLookups(_ lookup: @escaping (CancellationRequest) -> OutcomeLookup?) { lock.withLock { self.lookup = lookup } }
    func answerWith(_ outcome: AnswerOutcome) { lock.withLock { self.outcome = outcome } }
    var answers: [(id: String, answer: Answer)] { lock.withLock { sent } }

    func fetchPending() async throws(PollError) -> PendingSnapshot { PendingSnapshot(requests: []) }

    func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        let lookup = lock.withLock { self.lookup }
        var result: [RequestKey: OutcomeLookup] = [:]
        for request in requests { result[request.key] = lookup(request) }
        return result
    }

    func answer(_ request: CancellationRequest, with answer: Answer) async -> AnswerOutcome {
        lock.withLock {
            sent.append((request.id, answer))
            return outcome
        }
    }
}

/// The safe path every answer takes: pending now, before the deadline, recorded before it
/// is sent, never sent twice.
@Suite struct AnswererTests {
    let clock = ManualClock()
    let market = ScriptedAnswering()
    let cli = AnswerActor(.cli, "alice")

    func tracked(_ id: String, deadlineIn seconds: TimeInterval = 3600) -> TrackedRequest {
        TrackedRequest(
            request: CancellationRequest(
                marketplace: .ozon, source: "ozon-main", id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
                deadline: clock.now().addingTimeInterval(seconds)),
            status: .pending, firstSeen: clock.now(), lastSeen: clock.now())
    }

    func answerer(_ store: any StateStore) -> Answerer {
        Answerer(store: store, clients: [market], clock: clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func store(tracking ids: [String] = ["1"]) throws -> SQLiteStateStore {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-answerer"))
        try store.save(ids.map { tracked($0) }, health: nil)
        return store
    }

    @Test func anAcceptedAnswerIsRecordedAndNoSecondAnswerReachesTheMarketplace() async throws {
        let store = try store()
        let answerer = answerer(store)
        let first = await answerer.answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli)
        #expect(first.accepted, "\(first.line)")
        #expect(first.request?.order == "order-1")
        let record = try #require(try store.answers(for: [RequestKey(source: "ozon-main", id: "1")]).first?.value)
        #expect(record.state == .accepted && record.actor == cli && record.decision == .approve && record.finishedAt == clock.now())

        let second = await answerer.answer(
            source: "ozon-main", id: "1", with: try Answer(.refuse, comment: "changed my mind"), by: AnswerActor(.telegram, "7"))
        #expect(second.kind == .notSent(.answeredBefore(record)), "\(second.line)")
        #expect(second.line.contains("cli:alice answered it before"), "\(second.line)")
        #expect(market.answers.count == 1)
    }

    @Test(arguments: [AnswerOutcome.unknown("timeout after 30s"), .accepted])
    func anAnswerWhoseOutcomeIsUnknownOrWhoseRecordFailedIsNeverSentAgain(_ outcome: AnswerOutcome) async throws {
        // `.accepted` with the outcome's record refused: the journal keeps it as sending.
        let inner = try store()
        let store = RefusingStore(inner, refusing: ["finishAnswer"])
        store.refusing = outcome == .accepted
        market.answerWith(outcome)
        let answerer = answerer(store)
        let first = await answerer.answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli)
        #expect(first.kind == .sent(outcome))
        let state = try inner.answers(for: [RequestKey(source: "ozon-main", id: "1")]).first?.value.state
        #expect(state == (outcome == .accepted ? .sending : .unknown))
        store.refusing = false
        market.answerWith(.accepted)
        let second = await answerer.answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli)
        guard case .notSent(.answeredBefore) = second.kind else {
            Issue.record("sent again: \(second.line)")
            return
        }
        #expect(market.answers.count == 1)
        if case .unknown = outcome { #expect(first.line.contains("will not be sent again"), "\(first.line)") }
    }

    @Test func aRefusalByTheMarketplaceChangesNothingAndALaterAnswerMayBeSent() async throws {
        let store = try store()
        market.answerWith(.refused(AnswerRefusal(kind: .noPermission, status: 200, code: "-2000401", message: "no permission")))
        let answerer = answerer(store)
        let first = await answerer.answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli)
        #expect(!first.accepted)
        #expect(first.line == "ozon ozon-main request 1 (order order-1): could not approve: this account may not answer it (HTTP 200: code -2000401: no permission)")
        market.answerWith(.accepted)
        #expect(await answerer.answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli).accepted)
        #expect(market.answers.count == 2)
    }

    @Test func nothingIsSentForARequestTheMarketplaceReportsDecidedOrPastItsDeadlineOrCannotTell() async throws {
        let store = try store(tracking: ["decided", "late", "unsure"])
        market.answerLookups { request in
            switch request.id {
            case "decided": return .resolved(.rejected, at: nil)
            case "late":
                var moved = request
                moved.deadline = Date(timeIntervalSince1970: 1_764_000_000 - 1)
                return .stillPending(moved)
            default: return nil
            }
        }
        let answerer = answerer(store)
        let decided = await answerer.answer(source: "ozon-main", id: "decided", with: try Answer(.approve), by: cli)
        #expect(decided.kind == .notSent(.decided(.rejected)))
        let late = await answerer.answer(source: "ozon-main", id: "late", with: try Answer(.approve), by: cli)
        #expect(late.kind == .notSent(.deadlinePassed(Date(timeIntervalSince1970: 1_764_000_000 - 1))))
        #expect(late.line.contains("its deadline 2025-11-24T15:59:59Z has passed"), "\(late.line)")
        let unsure = await answerer.answer(source: "ozon-main", id: "unsure", with: try Answer(.approve), by: cli)
        guard case .notSent(.lookupFailed) = unsure.kind else {
            Issue.record("\(unsure.line)")
            return
        }
        #expect(market.answers.isEmpty)
        #expect(try store.answers(for: ["decided", "late", "unsure"].map { RequestKey(source: "ozon-main", id: $0) }).isEmpty)
    }

    @Test func anUnknownSourceOrRequestIsNamedAndNothingIsSent() async throws {
        let store = try store()
        let answerer = answerer(store)
        let source = await answerer.answer(source: "ozon-typo", id: "1", with: try Answer(.approve), by: cli)
        #expect(source.line == "no source named 'ozon-typo' in the config (sources: ozon-main)")
        let request = await answerer.answer(source: "ozon-main", id: "2\u{0}", with: try Answer(.approve), by: cli)
        #expect(request.kind == .notSent(.unknownRequest))
        #expect(market.answers.isEmpty)
    }

    @Test func whenTheJournalCannotRecordTheAnswerItIsNotSent() async throws {
        let store = RefusingStore(try store(), refusing: ["beginAnswer"])
        store.refusing = true
        let result = await answerer(store).answer(source: "ozon-main", id: "1", with: try Answer(.approve), by: cli)
        guard case .notSent(.storeFailed) = result.kind else {
            Issue.record("\(result.line)")
            return
        }
        #expect(market.answers.isEmpty)
    }

    @Test func aRefusalNeedsACommentAndCommentsAreBounded() throws {
        #expect(throws: AnswerInputError.self) { try Answer(.refuse) }
        #expect(throws: AnswerInputError.self) { try Answer(.refuse, comment: "  \n ") }
        #expect(throws: AnswerInputError.self) { try Answer(.approve, comment: String(repeating: "x", count: Answer.commentLimit + 1)) }
        #expect(throws: AnswerInputError.self) { try Answer(.refuse, comment: "no\u{0}") }
        #expect(try Answer(.refuse, comment: " out of stock ").comment == "out of stock")
    }
}
