import CancelWatch
import Foundation
import TestServers

/// PostgreSQL stores for tests, each in a fresh database of the test process's cluster.
enum PostgresStores {
    /// The location of a fresh, empty database.
    static func freshLocation() async throws -> PostgresLocation {
        try await offPool { try freshLocationBlocking() }
    }

    /// The location of a fresh, empty database (blocking while the cluster starts and the database is made).
    static func freshLocationBlocking() throws -> PostgresLocation {
        let cluster = try PostgresCluster.shared()
        return try PostgresLocation.parse(written: cluster.url(database: try cluster.createDatabase()), environment: [:]).get()
    }

    /// Runs `sql` in the database at `location` (blocking).
    static func query(_ sql: String, at location: PostgresLocation) async throws -> [String] {
        try await offPool { try PostgresCluster.shared().query(sql, database: location.database) }
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
