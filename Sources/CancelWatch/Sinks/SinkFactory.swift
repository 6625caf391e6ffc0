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

    /// The sink for one `sinks:` entry with its retry policy, for the delivery queue.
    public func makeRoute(_ config: SinkConfig) -> DeliveryQueue.Route {
        let sink: AlertSink =
            switch config.kind {
            case .stdout(let settings):
                StdoutSink(name: config.name, format: settings.format, timeZone: timeZone, output: stdout)
            case .webhook(let settings):
                WebhookSink(name: config.name, config: settings, transport: transport, clock: clock)
            case .email(let settings):
                EmailSink(name: config.name, config: settings, transport: smtp, clock: clock, timeZone: timeZone)
            }
        return DeliveryQueue.Route(sink: sink, retry: config.retryPolicy, timeout: config.attemptTimeout, group: config.group)
    }

    /// A route for every configured sink, in order.
    public func makeRoutes(_ configs: [SinkConfig]) -> [DeliveryQueue.Route] {
        configs.map(makeRoute)
    }
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

    /// `group:` of the sink.
    public var group: GroupPolicy? {
        switch kind {
        case .stdout(let settings): settings.group
        case .webhook(let settings): settings.group
        case .email(let settings): settings.group
        }
    }

    /// The longest one attempt takes: the config's `timeout:` for webhooks and email, the
    /// delivery queue's default for stdout.
    public var attemptTimeout: TimeInterval {
        switch kind {
        case .stdout: DeliveryQueue.Route.defaultTimeout
        case .webhook(let settings): settings.timeout
        case .email(let settings): settings.timeout
        }
    }
}
