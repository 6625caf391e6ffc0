import Foundation
import Testing

@testable import CancelWatch

/// The request table keeps what requests share as one interned profile, told apart by bytes.
@Suite struct RequestTableProfileTests {
    static func request(_ id: String, reason: String, logistics: String = "red_box") -> CancellationRequest {
        CancellationRequest(
            marketplace: .xiaohongshu, source: "red-shop", id: id, order: "P-\(id)", state: .pending, rawState: "unaudited",
            initiator: "", reason: reason, reasonID: "", logistics: logistics, createdAt: nil,
            deadline: Date(timeIntervalSince1970: 1_764_000_000.5), rawObject: RawObject(.object([:])))
    }

    /// Every text field of the model is in `CancellationRequest.texts`: a field added without it
    /// would be told apart by `==` (canonical equivalence) in the tables.
    @Test func everyTextFieldOfTheModelIsComparedByBytes() {
        let sample = Self.request("1", reason: "r")
        let textFields = Mirror(reflecting: sample).children.filter { $0.value is String }
        #expect(textFields.count == CancellationRequest.texts.count)
        var nfd = sample
        nfd.reason = "e\u{301}"
        var nfc = sample
        nfc.reason = "\u{E9}"
        #expect(nfd == nfc)
        #expect(!nfd.sameBytes(as: nfc))
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

    @Test func aProfileLeavesWithItsLastRequestAndAnotherTakesItsPlace() {
        var table = RequestTable<Int>(rawPaths: .none)
        // More profiles than the recent ones, interleaved, then all removed and replaced.
        var slots: [Int32] = []
        for i in 0..<40 { slots.append(table.set(Self.request("\(i)", reason: "reason \(i % 20)"), rawKept: .everything, extra: i)) }
        for (i, slot) in slots.enumerated() { #expect(table.request(at: slot) == Self.request("\(i)", reason: "reason \(i % 20)")) }
        for slot in slots { table.remove(slot) }
        let slot = table.set(Self.request("x", reason: "new", logistics: "red_auto"), rawKept: .everything, extra: 0)
        #expect(table.request(at: slot) == Self.request("x", reason: "new", logistics: "red_auto"))
        #expect(table.count == 1)
    }
}
