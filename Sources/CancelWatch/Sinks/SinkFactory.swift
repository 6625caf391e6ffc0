import Foundation

/// Builds the sinks a configuration names, with what they share: the HTTP and SMTP
/// transports, the clock (webhook signatures, email `Date`) and the time zone
/// (times in text lines and email subjects).
public struct SinkFactory: Sendable {
    public var transport: HTTPTransport
    public var smtp: SMTPTransport
    public var clock: WatchClock
    public var timeZone: TimeZone
    /// Where `kind: stdout` sinks write (standard output unless a test says otherwise).
    public var stdout: StdoutSink.Output

    public init(
        transport: HTTPTransport, smtp: SMTPTransport, clock: WatchClock = SystemClock(),
        timeZone: TimeZone = TimeZone(identifier: "UTC")!, stdout: StdoutSink.Output = .standardOutput
    ) {
        self.transport = transport
        self.smtp = smtp
        self.clock = clock
        self.timeZone = timeZone
        self.stdout = stdout
    }

    /// The sink for one `sinks:` entry.
    public func makeSink(_ config: SinkConfig) -> AlertSink {
        switch config.kind {
        case .stdout(let settings):
            return StdoutSink(name: config.name, format: settings.format, timeZone: timeZone, output: stdout)
        case .webhook(let settings):
            return WebhookSink(name: config.name, config: settings, transport: transport, clock: clock)
        case .email(let settings):
            return EmailSink(name: config.name, config: settings, transport: smtp, clock: clock, timeZone: timeZone)
        }
    }

    /// The sink for one `sinks:` entry with its retry policy, for the delivery queue.
    public func makeRoute(_ config: SinkConfig) -> DeliveryQueue.Route {
        DeliveryQueue.Route(sink: makeSink(config), retry: config.retryPolicy)
    }

    /// A route for every configured sink, in order.
    public func makeRoutes(_ configs: [SinkConfig]) -> [DeliveryQueue.Route] {
        configs.map(makeRoute)
    }
}

/// The sink for one `sinks:` entry (see ``SinkFactory``).
public func makeSink(
    _ config: SinkConfig, transport: HTTPTransport, smtp: SMTPTransport, timeZone: TimeZone,
    clock: WatchClock = SystemClock()
) -> AlertSink {
    SinkFactory(transport: transport, smtp: smtp, clock: clock, timeZone: timeZone).makeSink(config)
}

extension SinkConfig {
    /// How the delivery queue retries this sink: the config's `retry:` for webhooks and
    /// email, the standard policy for stdout.
    public var retryPolicy: RetryPolicy {
        switch kind {
        case .stdout: .standard
        case .webhook(let settings): settings.retry
        case .email(let settings): settings.retry
        }
    }
}
