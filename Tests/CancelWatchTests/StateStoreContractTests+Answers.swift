import Foundation
import Testing

@testable import CancelWatch

/// The answer journal: an answer is recorded before it is sent, and a request with an
/// answer that may have applied never gets a second one, in every kind of store.
extension StateStoreContractTests {
    static func answer(
        _ id: String, source: String = "ozon-main", _ decision: Decision = .approve, by actor: AnswerActor = AnswerActor(.cli, "alice"),
        at offset: TimeInterval = 0
    ) -> AnswerRecord {
        AnswerRecord(
            request: RequestKey(source: source, id: id), order: "0123-\(id)", decision: decision,
            comment: decision == .refuse ? "out of stock" : "", actor: actor, startedAt: Samples.now.addingTimeInterval(offset))
    }

    @Test(arguments: StoreKind.all)
    func anAnswerBegunComesBackAsSendingAndASecondOneForTheSameRequestIsRefusedWithTheFirst(_ kind: StoreKind) throws {
        try kind.withStore { (store) throws in
            let first = Self.answer("1")
            #expect(try store.beginAnswer(first) == nil)
            let second = Self.answer("1", .refuse, by: AnswerActor(.telegram, "42 (Bob)"), at: 5)
            #expect(try store.beginAnswer(second) == first)
            #expect(try store.answers(for: [first.request]) == [first.request: first])
            // Another request of the same source, and the same id in another source, are other requests.
            #expect(try store.beginAnswer(Self.answer("2")) == nil)
            #expect(try store.beginAnswer(Self.answer("1", source: "ozon-other")) == nil)
        }
    }

    @Test(arguments: StoreKind.all)
    func anAnswerFinishedKeepsItsOutcomeAndOnlyARefusedOneMayBeReplaced(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let finishedAt = Samples.now.addingTimeInterval(2)
            for (id, state) in [("a", AnswerRecord.State.accepted), ("u", .unknown), ("r", .refused)] {
                let record = Self.answer(id)
                #expect(try store.beginAnswer(record) == nil)
                try store.finishAnswer(record.request, state: state, message: state == .accepted ? "" : "why \(id)", at: finishedAt)
                var expected = record
                expected.state = state
                expected.finishedAt = finishedAt
                expected.message = state == .accepted ? "" : "why \(id)"
                #expect(try store.answers(for: [record.request])[record.request] == expected)
                let again = Self.answer(id, .refuse, by: AnswerActor(.rule, "late"), at: 10)
                #expect(try store.beginAnswer(again) == (state == .refused ? nil : expected))
                if state == .refused {
                    #expect(try store.answers(for: [record.request])[record.request] == again, "the refused one is replaced")
                }
            }
            // A finished answer is not finished again (a late outcome does not overwrite it).
            try store.finishAnswer(RequestKey(source: "ozon-main", id: "a"), state: .unknown, message: "late", at: finishedAt)
            #expect(try store.answers(for: [RequestKey(source: "ozon-main", id: "a")]).first?.value.state == .accepted)
        }
    }

    @Test(arguments: StoreKind.all)
    func answersAreFoundByTheirBytesAndCountedByTheKindOfActorSinceAnInstant(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let ids = ["P1\u{0}A@1", "P1\u{0}B@1", "中@2", String(repeating: "x", count: 4096)]
            for (index, id) in ids.enumerated() {
                let actor = index % 2 == 0 ? AnswerActor(.rule, "auto \u{0}\(index)") : AnswerActor(.telegram, "7 (Éva)")
                #expect(try store.beginAnswer(Self.answer(id, source: "red\u{0}shop", by: actor, at: Double(index) * 60)) == nil)
            }
            let found = try store.answers(for: ids.map { RequestKey(source: "red\u{0}shop", id: $0) } + [RequestKey(source: "red", id: "P1")])
            #expect(Set(found.keys.map(\.id)) == Set(ids))
            #expect(found[RequestKey(source: "red\u{0}shop", id: ids[2])]?.actor == AnswerActor(.rule, "auto \u{0}2"))
            #expect(try store.answerCount(by: .rule, since: Samples.now) == 2)
            #expect(try store.answerCount(by: .rule, since: Samples.now.addingTimeInterval(1)) == 1)
            #expect(try store.answerCount(by: .telegram, since: Samples.now) == 2)
            #expect(try store.answerCount(by: .cli, since: Samples.now) == 0)
            #expect(try store.answers(for: []).isEmpty)
        }
    }
}
