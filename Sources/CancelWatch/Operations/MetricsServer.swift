import Foundation
import HTTPServing

/// `/metrics` (Prometheus text) and `/healthz` on the config's `listen:` address.
public final class MetricsServer: Sendable {
    private let server: HTTPServer

    public var baseURL: String { server.baseURL }

    public init(address: ListenAddress, metrics: CancelWatchMetrics, clock: WatchClock) throws {
        server = try HTTPServer(host: address.host, port: address.port) { request in
            switch (request.method, request.path) {
            case ("GET", "/metrics"):
                return ServerResponse(
                    status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(metrics.render(now: clock.now()).utf8))
            case ("GET", "/healthz"):
                let unhealthy = metrics.unhealthySources(now: clock.now())
                if unhealthy.isEmpty { return .text("ok\n") }
                return .text(status: 503, "unhealthy: no recent successful poll of \(unhealthy.joined(separator: ", "))\n")
            default:
                return .text(status: 404, "not found: try /metrics or /healthz\n")
            }
        }
    }

    public func shutdown() { server.shutdown() }
}
