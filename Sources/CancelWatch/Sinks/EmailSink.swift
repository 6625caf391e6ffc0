import Foundation

/// `kind: email`: one message per event over SMTP (DESIGN §5). Not delivering yet:
/// every attempt fails as retryable so that events wait in the outbox.
public struct EmailSink: AlertSink {
    public let name: String
    public let config: EmailSinkConfig
    let transport: SMTPTransport
    let clock: WatchClock
    let timeZone: TimeZone

    public init(
        name: String, config: EmailSinkConfig, transport: SMTPTransport, clock: WatchClock = SystemClock(),
        timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        self.name = name
        self.config = config
        self.transport = transport
        self.clock = clock
        self.timeZone = timeZone
    }

    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        throw DeliveryError(retryable: true, message: "email delivery is not available in this build yet")
    }
}
