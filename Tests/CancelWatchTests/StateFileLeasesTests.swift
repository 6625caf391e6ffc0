import Foundation
import Testing

@testable import CancelWatch

/// The state file's process holds its lock, so it holds every source, always.
@Suite struct StateFileLeasesTests {
    @Test func aStateFileHoldsEverySourceForeverEvenAfterAReleaseAndItsCommitIgnoresLeaseClaims() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-leases"))
        let round = try store.balanceLeases(sources: ["b-shop", "a-shop", "a-shop"], ttl: 30)
        #expect(round.held.map(\.source) == ["a-shop", "b-shop"])
        #expect(round.held.allSatisfy { $0.holder == store.instance && $0.expiresAt == .distantFuture })
        #expect(round.taken.isEmpty && round.givenBack.isEmpty, "nobody else writes their state")
        #expect(try store.leases().isEmpty)
        try store.releaseLeases()
        #expect(try store.balanceLeases(sources: ["a-shop", "b-shop"], ttl: 30).held == round.held)

        let claims = [
            LeaseClaim(source: "a-shop", instance: "someone-else", token: 99, ttl: 30),
            LeaseClaim(source: "c-shop", instance: store.instance, token: 1, ttl: 30),
        ]
        try store.commit(StoreChanges(tracked: [StoreSamples.tracked("1", source: "a-shop")], leases: claims), at: StoreSamples.now)
        #expect(try store.loadTracked().map(\.request.id) == ["1"])
    }
}
