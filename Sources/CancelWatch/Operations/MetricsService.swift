import ServiceLifecycle
import Synchronization

/// `/metrics` and `/healthz` as a service of a `ServiceGroup`: the server it holds serves
/// until graceful shutdown and is closed then. A reload that moves `listen:` puts a server on
/// the new address in its place (``replace(with:)``), so the service itself stays in the group.
public final class MetricsService: Service, Sendable, CustomStringConvertible {
    private struct State {
        var server: MetricsServer?
        var stopped = false
    }

    private let state: Mutex<State>

    public init(_ server: MetricsServer?) {
        state = Mutex(State(server: server))
    }

    public var description: String { "metrics" }

    /// The server serving now (nil: none).
    public var server: MetricsServer? { state.withLock { $0.server } }

    /// Puts `next` in place of the server serving now and closes that one; once the service
    /// has stopped, closes `next` instead. The port of a closed server is free when it returns.
    public func replace(with next: MetricsServer?) async {
        let closing: MetricsServer? = state.withLock { state in
            if state.stopped { return next }
            defer { state.server = next }
            return state.server === next ? nil : state.server
        }
        await closing?.shutdown()
    }

    public func run() async {
        try? await gracefulShutdown()
        let last = state.withLock { state in
            state.stopped = true
            defer { state.server = nil }
            return state.server
        }
        await last?.shutdown()
    }
}
