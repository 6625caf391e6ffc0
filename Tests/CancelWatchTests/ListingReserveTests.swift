import Foundation
import Testing

@testable import CancelWatch

/// A listing reserves room for what the marketplace announces (Ozon's `counter`, Xiaohongshu's
/// `total_page`): a number from the wire, so the room is bounded, and reserving poll after poll
/// grows the array as appending would.
@Suite struct ListingReserveTests {
    @Test func anAnnouncedCountFromTheWireReservesABoundedRoom() {
        var requests: [CancellationRequest] = []
        reserve(&requests, adding: Int.max)
        #expect(requests.capacity >= 20_000 && requests.capacity < 40_000)
        var untouched: [CancellationRequest] = []
        reserve(&untouched, adding: -5)
        reserve(&untouched, adding: Int.min)
        #expect(untouched.capacity == 0)
    }

    @Test func reservingPageAfterPageGrowsAsAppendingDoes() {
        var requests: [CancellationRequest] = []
        var capacities: Set<Int> = []
        let request = CancellationRequest(
            marketplace: .ozon, source: "s", id: "1", order: "o", state: .pending, rawState: "ON_APPROVAL",
            deadline: Date(timeIntervalSince1970: 0))
        for _ in 0..<5_000 {
            reserve(&requests, adding: 1)
            requests.append(request)
            capacities.insert(requests.capacity)
        }
        // Doubling: a dozen or so sizes for 5,000 appends, not one per append.
        #expect(capacities.count <= 16)
    }
}
