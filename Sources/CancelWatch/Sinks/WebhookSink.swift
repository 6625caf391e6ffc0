import Foundation

/// `kind: webhook`: an HTTP `POST` per event (DESIGN §5). Not delivering yet: every
/// attempt fails as retryable so that events wait in the outbox.
public struct WebhookSink: AlertSink {
    public let name: String
    public let config: WebhookSinkConfig
    let transport: HTTPTransport
    let clock: WatchClock

    public init(name: String, config: WebhookSinkConfig, transport: HTTPTransport, clock: WatchClock = SystemClock()) {
        self.name = name
        self.config = config
        self.transport = transport
        self.clock = clock
    }

    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        throw DeliveryError(retryable: true, message: "webhook delivery is not available in this build yet")
    }
}
