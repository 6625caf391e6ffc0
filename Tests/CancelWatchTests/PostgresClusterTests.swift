import Foundation
import TestServers
import Testing

/// The throwaway PostgreSQL the store tests run against: a real server on loopback,
/// never as root, gone with its files once let go.
@Suite struct PostgresClusterTests {
    @Test func theSharedClusterListensOnLoopbackOnlyAndGivesEachTestAnEmptyDatabaseOfItsOwn() async throws {
        let cluster = try await PostgresCluster.shared()
        let first = try await cluster.createDatabase()
        let second = try await cluster.createDatabase()
        #expect(first != second)
        #expect(try await cluster.query("SHOW listen_addresses", database: first) == ["127.0.0.1"])
        #expect(try await cluster.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database: second) == ["0"])
        #expect(try await cluster.query("SELECT current_database()", database: second) == [second])
        // PostgreSQL refuses root; under root the cluster belongs to nobody.
        let owner = try FileManager.default.attributesOfItem(atPath: cluster.directory.appendingPathComponent("data").path)[
            .ownerAccountID] as? NSNumber
        #expect(owner?.uint32Value == (getuid() == 0 ? getpwnam("nobody").pointee.pw_uid : getuid()))
    }

    @Test func aClusterLetGoStopsItsServerAndRemovesItsDirectory() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        let database = try await cluster.createDatabase()
        #expect(try await cluster.query("SELECT 1", database: database) == ["1"])
        try await offPool { cluster.stop() }
        #expect(!FileManager.default.fileExists(atPath: cluster.directory.path))
        await #expect(throws: PostgresClusterError.self) { try await cluster.query("SELECT 1", database: database) }
    }
}
