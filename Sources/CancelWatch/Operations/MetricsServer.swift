import Foundation
import HTTPServing

/// `/metrics` (Prometheus text) and `/healthz` on the config's `listen:` address. `/healthz`
/// is 503, saying why, while a source is down or the state database does not answer. The
/// status page (``StatusPage``: `/`, `/assets/…`, `/api/v1/…`, sign-in and answers) is served
/// beside them: open on a loopback address, by token (`auth:`) on any.
///
/// Its limits hold against clients that try to exhaust it: a request head must arrive whole
/// within 10 s and 16 KB, a body (a sign-in or an answer) within 10 s more and 8 KB (413 from
/// the head alone), at most 100 connections are served at once (more wait in the backlog).
public final class MetricsServer: Sendable {
    private let server: HTTPServer

    /// The limits above.
    public static let options = HTTPServer.Options(
        maxHeaderBytes: 16 * 1024, maxBodyBytes: 8 * 1024, maxConnections: 100, requestHeadTimeout: 10, idleTimeout: 10,
        requestBodyTimeout: 10)

    public var baseURL: String { server.baseURL }

    public init(address: ListenAddress, metrics: CancelWatchMetrics, clock: WatchClock) throws {
        let page = StatusPage(metrics: metrics, clock: clock, loopback: address.isLoopback)
        server = try HTTPServer(host: address.bindHost, port: address.port, options: Self.options) { request in
            if StatusPage.serves(request.path) { return page.respond(to: request) }
            switch (request.method, request.path) {
            case ("GET", "/metrics"), ("HEAD", "/metrics"):
                return ServerResponse(
                    status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(metrics.render(now: clock.now()).utf8))
            case ("GET", "/healthz"), ("HEAD", "/healthz"):
                var problems: [String] = []
                if let unreachable = metrics.unreachableState() { problems.append(unreachable) }
                let down = metrics.downSources()
                if !down.isEmpty { problems.append("source down: \(down.map(\.source).joined(separator: ", "))") }
                if problems.isEmpty { return .text("ok\n") }
                return .text(status: 503, problems.map { "unhealthy: \($0)\n" }.joined())
            default:
                return .text(status: 404, "not found: try /, /metrics or /healthz\n")
            }
        }
    }

    /// Stops serving; the port is free when it returns (it waits without blocking a thread).
    public func shutdown() async { await server.close() }

    /// Connections it has accepted and not yet closed.
    var openConnections: Int { server.openConnections }
}
