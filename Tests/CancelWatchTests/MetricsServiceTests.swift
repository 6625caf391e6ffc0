@testable import CancelWatch
import Logging
import ServiceLifecycle
import TestServers
import Testing

/// `MetricsService` holds the running `/metrics` server in a service group: a reload's
/// replacement closes the server it replaces, graceful shutdown closes the last one, and a
/// server handed over after that is closed at once.
@Suite struct MetricsServiceTests {
    let metrics = CancelWatchMetrics()

    func serve(port: Int = 0) throws -> MetricsServer {
        try MetricsServer(address: ListenAddress(host: "127.0.0.1", port: port), metrics: metrics, clock: SystemClock())
    }

    func port(_ server: MetricsServer) throws -> Int { try #require(server.baseURL.split(separator: ":").last.flatMap { Int($0) }) }

    /// Whether `port` is free: a server can be bound to it (and is closed again).
    func isFree(_ port: Int) async -> Bool {
        guard let probe = try? serve(port: port) else { return false }
        await probe.shutdown()
        return true
    }

    /// Whether `server` no longer listens: a connection to its port is refused, or (the kernel
    /// handed the port to another test's server meanwhile) is not one of this server's.
    func hasStopped(_ server: MetricsServer) throws -> Bool {
        guard let probe = try? RawHTTPClient(port: try port(server)) else { return true }
        // No request: another test's server must not count one it did not get.
        _ = probe.read(timeout: 1)
        return server.openConnections == 0
    }

    @Test func aReplacementClosesTheServerItReplacesAndGracefulShutdownClosesTheLastOne() async throws {
        let first = try serve()
        let service = MetricsService(first)
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        let running = Task { try await group.run() }

        let second = try serve()
        await service.replace(with: second)
        #expect(try hasStopped(first))
        #expect(await !isFree(try port(second)))
        #expect(service.server === second)

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try hasStopped(second))
        #expect(service.server == nil)

        let late = try serve()
        await service.replace(with: late)
        #expect(try hasStopped(late))
        #expect(service.server == nil)
    }
}
