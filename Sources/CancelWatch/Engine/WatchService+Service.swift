import ServiceLifecycle

extension WatchService {
    /// The pipeline's stages as services for a `ServiceGroup`, in the order they start; a
    /// group stops them in reverse, so a stage comes before the stages that feed it: the
    /// poller stops first, then the ledger's timers, and the deliveries last (an attempt in
    /// flight finishes; what is not delivered stays in the outbox). Call ``start()`` first.
    public var services: [any Service] {
        [
            Stage(name: "deliveries") { [self] in await runDeliveries() },
            Stage(name: "ledger") { [self] in await runLedger() },
            Stage(name: "poller") { [poller] in await poller.run() },
        ]
    }
}

/// One stage of a started ``WatchService``: it runs until graceful shutdown, which stops it
/// as cancellation does. A stage with nothing to do (no sources, no sinks) waits for the
/// shutdown rather than ending the group.
struct Stage: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async -> Void

    var description: String { name }

    func run() async {
        await cancelWhenGracefulShutdown { await body() }
        try? await gracefulShutdown()
    }
}
