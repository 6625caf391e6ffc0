import CancelWatch
import Foundation
import TestServers

/// PostgreSQL stores for tests, each in a fresh database of the test process's cluster.
enum PostgresStores {
    /// The location of a fresh, empty database.
    static func freshLocation() async throws -> PostgresLocation {
        let cluster = try await PostgresCluster.shared()
        return try PostgresLocation.parse(written: cluster.url(database: try await cluster.createDatabase()), environment: [:]).get()
    }

    /// A store opened (and migrated) in a fresh database, opened off Swift's pool.
    static func fresh() async throws -> PostgresStateStore {
        try await open(try await freshLocation())
    }

    /// A store opened at `location` on a thread of its own.
    static func open(_ location: PostgresLocation) async throws -> PostgresStateStore {
        try await offPool { try PostgresStateStore(location: location) }
    }
}
