import CancelWatch
import Foundation
import TestServers
import Testing

/// A kind of state store the store contract (`StateStoreContractTests`) runs against.
/// A new kind is one entry in `all` and its factory.
struct StoreKind: Sendable, CustomTestStringConvertible {
    let name: String
    /// Makes a new, empty place for a store of this kind (a temporary file, a database).
    let makePlace: @Sendable () throws -> StorePlace

    var testDescription: String { name }

    static let all: [StoreKind] = [.sqlite, .postgres]

    static let sqlite = StoreKind(name: "SQLite") {
        let path = try temporaryStatePath("cw-contract")
        let directory = (path as NSString).deletingLastPathComponent
        return StorePlace(
            open: { try SQLiteStateStore(path: path) },
            remove: { try? FileManager.default.removeItem(atPath: directory) })
    }

    /// A fresh database in the test process's throwaway cluster, dropped afterwards. Its
    /// stores speak for one replica (opened again: that replica restarted, its claims still its own).
    static let postgres = StoreKind(name: "PostgreSQL") {
        let location = try PostgresStores.freshLocationBlocking()
        return StorePlace(
            open: { try PostgresStateStore(location: location, instance: "contract") },
            remove: { try? PostgresCluster.shared().dropDatabase(location.database) })
    }

    /// Runs `body` on a new empty place of this kind, removed afterwards however `body` ends.
    func withPlace<T>(_ body: (StorePlace) throws -> T) throws -> T {
        let place = try makePlace()
        defer { place.remove() }
        return try body(place)
    }

    /// Runs `body` with a store opened on a new empty place.
    func withStore<T>(_ body: (any ContractStore) throws -> T) throws -> T {
        try withPlace { place in try body(try place.open()) }
    }
}

/// Where a store keeps its state, for one test.
struct StorePlace: Sendable {
    /// Opens a store for writing on the place. Opened again after the last one is
    /// released, it finds what that one committed (as after a restart).
    let open: @Sendable () throws -> any ContractStore
    /// Removes the place and everything in it.
    let remove: @Sendable () -> Void
}

/// What the contract asks of a store: the protocol, and the dead letters
/// `cancelwatch status` lists.
typealias ContractStore = StateStore & DeadLetterListing

protocol DeadLetterListing {
    /// The latest dead letters, newest first (ties: the later entry first).
    func deadLetters(limit: Int) throws(StoreError) -> [DeadLetter]
}

extension SQLiteStateStore: DeadLetterListing {}
extension PostgresStateStore: DeadLetterListing {}
