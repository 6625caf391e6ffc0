import Foundation
import TestServers
import Testing

/// The throwaway PostgreSQL the store tests run against: a real server on loopback,
/// never as root, gone with its files once let go.
@Suite struct PostgresClusterTests {
    @Test func theSharedClusterListensOnLoopbackOnlyAndGivesEachTestAnEmptyDatabaseOfItsOwn() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        let (first, second) = try await offPool { (try cluster.createDatabase(), try cluster.createDatabase()) }
        #expect(first != second)
        #expect(try await offPool { try cluster.query("SHOW listen_addresses", database: first) } == ["127.0.0.1"])
        #expect(try await offPool { try cluster.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database: second) } == ["0"])
        #expect(try await offPool { try cluster.query("SELECT current_database()", database: second) } == [second])
        // PostgreSQL refuses root; under root the cluster belongs to nobody.
        let owner = try FileManager.default.attributesOfItem(atPath: cluster.directory.appendingPathComponent("data").path)[
            .ownerAccountID] as? NSNumber
        #expect(owner?.uint32Value == (getuid() == 0 ? getpwnam("nobody").pointee.pw_uid : getuid()))
    }

    @Test func aClusterLetGoStopsItsServerAndRemovesItsDirectory() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        let database = try await offPool { try cluster.createDatabase() }
        #expect(try await offPool { try cluster.query("SELECT 1", database: database) } == ["1"])
        try await offPool { cluster.stop() }
        #expect(!FileManager.default.fileExists(atPath: cluster.directory.path))
        await #expect(throws: (any Error).self) { try await offPool { try cluster.query("SELECT 1", database: database) } }
    }
}
