import Foundation
import Testing

@testable import CancelWatch

/// The state file's process holds its lock, so it holds every source, always (the engine
/// takes no lease rounds over it): a commit writes whatever lease claims it carries.
@Suite struct StateFileLeasesTests {
    @Test func aStateFileCommitIgnoresLeaseClaims() throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-leases"))
        let claims = [
            LeaseClaim(source: "a-shop", instance: "someone-else", token: 99, ttl: 30),
            LeaseClaim(source: "c-shop", instance: "this process", token: 1, ttl: 30),
        ]
        try store.commit(StoreChanges(tracked: [StoreSamples.tracked("1", source: "a-shop")], leases: claims), at: StoreSamples.now)
        #expect(try store.loadTracked().map(\.request.id) == ["1"])
    }
}
