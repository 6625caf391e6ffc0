import Foundation
import Testing

@testable import CancelWatch

/// The request table keeps a request's details as one interned value, told apart by bytes.
@Suite struct RequestTableDetailsTests {
    static func request(_ id: String, reason: String, logistics: String = "red_box") -> CancellationRequest {
        CancellationRequest(
            marketplace: .xiaohongshu, source: "red-shop", id: id, order: "P-\(id)", state: .pending, rawState: "unaudited",
            initiator: "", reason: reason, reasonID: "", logistics: logistics, createdAt: nil,
            deadline: Date(timeIntervalSince1970: 1_764_000_000.5), rawObject: RawObject(.object([:])))
    }

    /// Every text of a request's details is compared by bytes: one left out of `==` would let a
    /// reason rewritten in another Unicode form pass as unchanged.
    @Test func everyDetailIsComparedByBytes() throws {
        let form = try JSONValueEncoder(form: .stateFile).encode(Self.request("1", reason: "r").details)
        let members = try #require(form.objectValue)
        #expect(members.count == Mirror(reflecting: Self.request("1", reason: "r").details).children.count)
        for key in members.keys {
            var composed = members
            composed[key] = "\u{E9}"
            var decomposed = members
            decomposed[key] = "e\u{301}"
            let a = try JSONValueDecoder().decode(CancellationRequest.Details.self, from: .object(composed))
            let b = try JSONValueDecoder().decode(CancellationRequest.Details.self, from: .object(decomposed))
            #expect(a != b, "\(key)")
            #expect(a == a && a.hashValue == a.hashValue)
        }
    }

    @Test func requestsDifferingOnlyInTheUnicodeFormOfAReasonComeBackWithTheirOwnBytes() {
        var table = RequestTable<Int>(rawPaths: .none)
        let composed = Self.request("1", reason: "\u{E9}")
        let decomposed = Self.request("2", reason: "e\u{301}")
        let a = table.set(composed, rawKept: .everything, extra: 1)
        let b = table.set(decomposed, rawKept: .everything, extra: 2)
        #expect(Array(table.request(at: a).reason.utf8) == Array("\u{E9}".utf8))
        #expect(Array(table.request(at: b).reason.utf8) == Array("e\u{301}".utf8))
        #expect(table.sameFields(a, composed) && !table.sameFields(a, Self.request("1", reason: "e\u{301}")))
    }

    @Test func detailsLeaveWithTheirLastRequestAndOthersTakeTheirPlace() {
        var table = RequestTable<Int>(rawPaths: .none)
        // More details than the recent ones, interleaved, then all removed and replaced.
        var slots: [Int32] = []
        for i in 0..<40 { slots.append(table.set(Self.request("\(i)", reason: "reason \(i % 20)"), rawKept: .everything, extra: i)) }
        for (i, slot) in slots.enumerated() { #expect(table.request(at: slot) == Self.request("\(i)", reason: "reason \(i % 20)")) }
        for slot in slots { table.remove(slot) }
        let slot = table.set(Self.request("x", reason: "new", logistics: "red_auto"), rawKept: .everything, extra: 0)
        #expect(table.request(at: slot) == Self.request("x", reason: "new", logistics: "red_auto"))
        #expect(table.count == 1)
    }

    /// The recent details are found by their texts' lengths: details of the same lengths share
    /// a set of four, and more of them than that must still come back each with its own bytes.
    @Test func manyDetailsOfTheSameLengthsComeBackEachWithItsOwnBytes() {
        var table = RequestTable<Int>(rawPaths: .none)
        var slots: [(slot: Int32, reason: String)] = []
        for round in 0..<3 {
            for i in 0..<12 {
                let reason = "reason-\(i < 10 ? "0" : "")\(i)"
                let slot = table.set(Self.request("\(round)-\(i)", reason: reason), rawKept: .everything, extra: i)
                slots.append((slot, reason))
            }
        }
        for (slot, reason) in slots { #expect(Array(table.request(at: slot).reason.utf8) == Array(reason.utf8)) }
        #expect(table.sameFields(slots[0].slot, Self.request("0-0", reason: "reason-00")))
        #expect(!table.sameFields(slots[0].slot, Self.request("0-0", reason: "reason-01")))
    }

    /// A poll's requests share one source, tried first: once every request of it has left, the
    /// next source (even one given the same pool id) is not taken for it.
    @Test func theLastSourceIsNotTakenForTheNextOneOnceItsRequestsLeft() {
        var table = RequestTable<Int>(rawPaths: .none)
        func request(_ id: String, source: String) -> CancellationRequest {
            var request = Self.request(id, reason: "r")
            request.source = source
            return request
        }
        let first = table.set(request("1", source: "shop-a"), rawKept: .everything, extra: 0)
        table.remove(first)
        let second = table.set(request("1", source: "shop-b"), rawKept: .everything, extra: 0)
        #expect(table.source(at: second) == "shop-b")
        let third = table.set(request("2", source: "shop-a"), rawKept: .everything, extra: 0)
        #expect(table.source(at: third) == "shop-a" && table.source(at: second) == "shop-b")
        #expect(table.slot(of: RequestKey(source: "shop-b", id: "1")) == second)
    }
}
