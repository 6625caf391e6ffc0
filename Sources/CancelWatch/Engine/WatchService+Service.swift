import ServiceLifecycle

extension WatchService {
    /// The pipeline as services for a `ServiceGroup`, in the order they start (a group stops
    /// them in reverse). Call ``start()`` first.
    public var services: [any Service] { [WatchServiceRun(service: self)] }
}

/// Runs a started ``WatchService`` until graceful shutdown, which stops it as cancellation
/// does: polling stops before its next call and deliveries in flight finish or stay in the outbox.
struct WatchServiceRun: Service, CustomStringConvertible {
    let service: WatchService

    var description: String { "watch" }

    func run() async {
        await cancelWhenGracefulShutdown { [service] in await service.run() }
    }
}
