import Foundation
import Logging
import TestServers

@testable import CancelWatch

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

    /// A store opened at `location` on a thread of its own, for `instance` (a new one when nil).
    static func open(_ location: PostgresLocation, instance: String? = nil) async throws -> PostgresStateStore {
        try await offPool { try PostgresStateStore(location: location, instance: instance ?? PostgresStateStore.newInstance()) }
    }

    /// Waits (blocking) until at least `count` sessions of the database at `location` wait
    /// on a lock, as the server reports it; false if that has not happened in two minutes.
    static func waitForSessionsWaitingOnLocks(_ count: Int, at location: PostgresLocation) throws -> Bool {
        let limit = Date().addingTimeInterval(120)
        while Date() < limit {
            let waiting = try PostgresCluster.shared().query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                database: location.database)
            if Int(waiting.first ?? "") ?? 0 >= count { return true }
        }
        return false
    }

    /// Runs `lock` in a transaction on a connection of its own and keeps that transaction
    /// (and the locks it took) open until the returned closure is called (or, with
    /// `serverLimits`, until the server ends it as it ends a replica's idle transaction).
    static func holding(
        at location: PostgresLocation, serverLimits: Bool = false,
        _ lock: @escaping @Sendable (StateDatabaseSession) throws(StoreError) -> Void
    ) async throws -> @Sendable () -> Void {
        let holder = try await offPool {
            try StateDatabaseConnection(
                location: location, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                serverLimits: serverLimits)
        }
        let locked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? holder.transaction { (session) throws(StoreError) in
                try lock(session)
                locked.signal()
                release.wait()
            }
            locked.signal()
        }
        try await offPool { locked.wait() }
        return { release.signal() }
    }

    /// A loopback port where connections are refused while `hold` lives (held, not listening).
    static func refusedPort() -> (port: Int, hold: PortHold)? {
        for port in 20000..<20100 {
            if let hold = PortHold(port: port) { return (port, hold) }
        }
        return nil
    }
}
