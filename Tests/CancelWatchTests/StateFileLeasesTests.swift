import Foundation
import Testing

@testable import CancelWatch

/// The state file's process holds its lock, so it holds every source, always.
@Suite struct StateFileLeasesTests {
    @Test func aStateFileHoldsEverySourceForeverAndItsCommitIgnoresALeaseClaim() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-leases"))
        let round = try store.balanceLeases(instance: "a", sources: ["b-shop", "a-shop", "a-shop"], ttl: 30)
        #expect(round.held.map(\.source) == ["a-shop", "b-shop"])
        #expect(round.held.allSatisfy { $0.holder == "a" && $0.expiresAt == .distantFuture })
        #expect(round.taken.isEmpty && round.givenBack.isEmpty, "nobody else writes their state")
        #expect(try store.leases().isEmpty)

        let claim = LeaseClaim(source: "a-shop", instance: "someone-else", token: 99, ttl: 30)
        try store.commit(StoreChanges(tracked: [StoreSamples.tracked("1", source: "a-shop")], lease: claim), at: StoreSamples.now)
        #expect(try store.loadTracked().map(\.request.id) == ["1"])
    }
}
