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
}
