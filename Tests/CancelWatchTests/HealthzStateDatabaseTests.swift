import CancelWatchTesting
import Foundation
import Testing

@testable import CancelWatch

/// `/healthz` of a replica whose state database cannot be reached is 503, saying so and
/// naming the database's host and port (never its password), and 200 once it answers again.
@Suite struct HealthzStateDatabaseTests {
    let transport = CurlHTTPTransport(threads: 1)

    private func healthz(_ server: MetricsServer) async throws -> (status: Int, body: String) {
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/healthz"))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    private func serve(probing location: PostgresLocation) throws -> MetricsServer {
        let metrics = CancelWatchMetrics()
        metrics.setStateProbe(StateDatabaseProbe(location: location))
        return try MetricsServer(address: ListenAddress(host: "127.0.0.1", port: 0), metrics: metrics, clock: SystemClock())
    }

    @Test func healthzIs503WhileTheDatabaseRefusesConnectionsAnd200OnceItTakesThemAgain() async throws {
        let location = try await PostgresStores.freshLocation()
        let server = try serve(probing: location)
        #expect(try await healthz(server) == (200, "ok\n"))

        // Every connection to the database ended and no new one let in, as when it is down.
        let database = location.database
        _ = try await PostgresStores.query(
            """
            ALTER DATABASE \(database) ALLOW_CONNECTIONS false;
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'
            """, at: PostgresLocation(user: location.user, host: location.host, port: location.port, database: "postgres"))
        try await waitFor { try await healthz(server).status == 503 }
        let down = try await healthz(server)
        #expect(down.body.hasPrefix("unhealthy: state database unreachable at \(location.server): "), "\(down.body)")
        #expect(down.body.contains("not currently accepting connections"), "\(down.body)")
        #expect(down.body.split(separator: "\n").count == 1)

        _ = try await PostgresStores.query(
            "ALTER DATABASE \(database) ALLOW_CONNECTIONS true",
            at: PostgresLocation(user: location.user, host: location.host, port: location.port, database: "postgres"))
        try await waitFor { try await healthz(server).status == 200 }
        await server.shutdown()
    }

    @Test func healthzIs503NamingTheHostAndPortOfADatabaseNobodyListensFor() async throws {
        let (port, hold) = try #require(PostgresStores.refusedPort())
        let password = "healthz-Pa55word"
        let server = try serve(
            probing: PostgresLocation(
                user: "watcher", password: Secret(password), host: "127.0.0.1", port: port, database: "cw", sslMode: .disable))
        let down = try await healthz(server)
        #expect(down.status == 503)
        #expect(down.body == "unhealthy: state database unreachable at 127.0.0.1:\(port): Connection refused\n")
        #expect(!down.body.contains(password))
        await server.shutdown()
        withExtendedLifetime(hold) {}
    }
}
