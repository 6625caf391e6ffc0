import Foundation
import TestServers
import Testing

@testable import CancelWatch

/// `run`, `once` and `status` open the store the config names through one function: a
/// `postgres://` state is the database, anything else the state file, and what only the
/// file has (its lock, its mode) comes with the file alone.
@Suite struct ConfiguredStateTests {
    static let password = "pg-Secret-7d1e"

    /// The config of a directory of its own whose `state:` is `state`.
    func config(state: String, environment: [String: String] = [:]) throws -> (CancelWatchConfig, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-configured-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = try CancelWatchConfig.parse(
            yaml: "state: \"\(state)\"\nsources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\n",
            path: directory.appendingPathComponent("cancelwatch.yaml").path, environment: environment)
        return (config, directory)
    }

    @Test func aPostgresStateOpensTheDatabaseAndLeavesNoFileBehind() async throws {
        let location = try await PostgresStores.freshLocation()
        let (config, directory) = try config(state: location.description)
        let state = try await offPool { try ConfiguredState.open(config) }
        guard case .database(let store) = state else { Issue.record("opened \(state)"); return }
        #expect(store.location == location)
        #expect(state.warnings.isEmpty)
        #expect(state.probe()?.location == location)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func aFileStateOpensTheStateFileWithItsLock() async throws {
        let (config, directory) = try config(state: "./state.sqlite")
        let state = try await offPool { try ConfiguredState.open(config) }
        guard case .file(let store) = state else { Issue.record("opened \(state)"); return }
        #expect(store.path == directory.appendingPathComponent("state.sqlite").path)
        #expect(state.probe() == nil)
        #expect(try state.sourceHolders() == nil)
        #expect(FileManager.default.fileExists(atPath: store.path + ".lock"))
    }

    @Test func aReaderOfADatabaseWithoutStateSaysToRunFirstAndWritesNothing() async throws {
        let location = try await PostgresStores.freshLocation()
        let (config, _) = try config(state: location.description)
        let failure = await #expect(throws: StoreError.self) { try await offPool { try ConfiguredState.open(config, readOnly: true) } }
        #expect(failure?.description.contains("holds no cancelwatch state yet: run `cancelwatch once` or `cancelwatch run` first") == true)
        #expect(try await PostgresStores.query("SELECT to_regclass('cancelwatch_schema') IS NULL", at: location) == ["t"])

        _ = try await offPool { try ConfiguredState.open(config) }
        let reader = try await offPool { try ConfiguredState.open(config, readOnly: true) }
        #expect(try reader.store.loadTracked().isEmpty)
    }

    @Test func anUnreachableDatabaseIsOneLineNamingItsHostAndPortNeverThePassword() async throws {
        let (port, hold) = try #require(PostgresStores.refusedPort())
        defer { withExtendedLifetime(hold) {} }
        let (config, _) = try config(
            state: "postgres://watcher:${CW_TEST_PASSWORD}@127.0.0.1:\(port)/cw?sslmode=disable",
            environment: ["CW_TEST_PASSWORD": Self.password])
        let failure = await #expect(throws: StoreError.self) { try await offPool { try ConfiguredState.open(config) } }
        let message = failure?.description ?? ""
        #expect(message.contains("cannot connect to 127.0.0.1:\(port): Connection refused"), "\(message)")
        #expect(!message.contains(Self.password) && !message.contains("\n"), "\(message)")
    }

    @Test func theReplicaHoldingEachSourceIsReadFromItsLeaseOnceThereIsOne() async throws {
        let location = try await PostgresStores.freshLocation()
        let (config, _) = try config(state: location.description)
        let state = try await offPool { try ConfiguredState.open(config) }
        #expect(try state.sourceHolders() == nil)
        _ = try await PostgresStores.query(
            """
            INSERT INTO leases VALUES (convert_to('shop', 'UTF8'), 'web-1-42-a1b2c3', 1900000000.5, nextval('lease_tokens'))
            """, at: location)
        #expect(
            try state.sourceHolders()
                == [SourceLease(source: "shop", holder: "web-1-42-a1b2c3", expiresAt: Date(timeIntervalSince1970: 1_900_000_000.5), token: 1)])
    }
}
