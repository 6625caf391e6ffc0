import ServiceLifecycle

extension WatchService {
    /// The pipeline as services for a `ServiceGroup`, in the order they start; a group stops
    /// them in reverse, so a stage comes before the stages that feed it (the delivery queue
    /// first, the poller last: the poller stops first, the deliveries finish last). Call
    /// ``start()`` first.
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
