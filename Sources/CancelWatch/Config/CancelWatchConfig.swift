import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Everything a `cancelwatch.yaml` says (README.md, "Configuration for real accounts"): where the state and rules are,
/// which accounts to poll, where alerts go and who hears about the watcher's own health.
///
/// Load it with ``load(path:environment:)``; every problem in the file comes back at
/// once as a ``ConfigError``. Relative paths in the file are resolved against the
/// directory of the file, so the values here are absolute when loaded from a file.
public struct CancelWatchConfig: Sendable {
    /// The file it was loaded from, as given.
    public var path: String
    /// The SQLite state file (`state:`); default `./cancelwatch.sqlite` next to the config.
    /// For a PostgreSQL state, the database's URL without its password.
    public var state: String
    /// The PostgreSQL database holding the state (`state: postgres://…`); nil for a state file.
    public var stateDatabase: PostgresLocation?
    /// Rule files and directories (`rules:`); default `./rules` next to the config.
    public var rules: [String]
    /// The zone for `hour`, `weekday`, quiet windows and times in messages (`timezone:`, IANA name); default UTC.
    public var timezone: TimeZone
    /// Where `/metrics`, `/healthz` and the status page listen (`listen:`); nil when not served.
    public var listen: ListenAddress?
    /// The status page's token (`auth: {token: …}`): required when `listen:` is not a
    /// loopback address; nil leaves the page open on loopback.
    public var auth: StatusAuth?
    /// The marketplace accounts to poll.
    public var sources: [SourceConfig]
    /// Where alerts can go; rules name them in `notify`.
    public var sinks: [SinkConfig]
    /// Alerts about the watcher itself (`source_down`, `source_up`).
    public var health: HealthConfig
    /// How long a replica's lease on a source lasts unless renewed (`lease_ttl:`), where
    /// replicas share a PostgreSQL state; default 30s.
    public var leaseTTL: TimeInterval = CancelWatchConfig.defaultLeaseTTL
    /// What rules with an `act` clause may do (`actions:`); default dry-run, 20 an hour.
    public var actions = ActionsConfig()
    /// What the file asks for that weakens it (`insecure: true`, `tls: none`, `http://` to
    /// another host, metrics on every interface): `check` prints these and `run` logs them at
    /// start and after each reload.
    public var warnings: [ConfigDiagnostic] = []

    public static let defaultStatePath = "./cancelwatch.sqlite"
    public static let defaultRulesPaths = ["./rules"]
    public static let defaultLeaseTTL: TimeInterval = 30
    public static let leaseTTLRange: ClosedRange<TimeInterval> = 5...600
    /// The file `--config` defaults to.
    public static let defaultPath = "./cancelwatch.yaml"

    public init(
        path: String = "", state: String = CancelWatchConfig.defaultStatePath,
        rules: [String] = CancelWatchConfig.defaultRulesPaths, timezone: TimeZone = TimeZone(identifier: "UTC")!,
        listen: ListenAddress? = nil, sources: [SourceConfig] = [], sinks: [SinkConfig] = [],
        health: HealthConfig = HealthConfig()
    ) {
        self.path = path
        self.state = state
        self.rules = rules
        self.timezone = timezone
        self.listen = listen
        self.sources = sources
        self.sinks = sinks
        self.health = health
    }

    /// The sink called `name`, if any.
    public func sink(named name: String) -> SinkConfig? { sinks.first { $0.name == name } }
    /// Every sink name, in the order of the file (what rules may name in `notify`).
    public var sinkNames: [String] { sinks.map(\.name) }
}

/// A host and port `/metrics` and `/healthz` listen on: an IPv4 address (`127.0.0.1:9464`,
/// `0.0.0.0:9464` for every interface), an IPv6 one in brackets (`[::1]:9464`), `localhost`
/// (bound as 127.0.0.1), or a bare port (127.0.0.1). Anything else, a host name or `:9464`
/// with the host left out, is refused: it is not what the server would bind.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Why a `listen:` value is not an address to listen on; `message` says what to write.
    public struct ParseError: Error, Sendable, Hashable {
        public var message: String
    }

    /// Reads an address as ``parse(_:)`` does; nil when it is refused.
    public init?(parsing text: String) {
        guard case .success(let address) = Self.parse(text) else { return nil }
        self = address
    }

    /// Reads `host:port`, `[v6]:port`, `localhost:port` or a bare port, or says why not.
    public static func parse(_ text: String) -> Result<ListenAddress, ParseError> {
        let text = text.trimmingCharacters(in: .whitespaces)
        var host: String
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else {
                return .failure(ParseError(message: "write an IPv6 address in brackets and then its port, e.g. [::1]:9464"))
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            guard isAddress(host, family: AF_INET6) else {
                return .failure(ParseError(message: "'\(host)' is not an IPv6 address (e.g. [::1]:9464)"))
            }
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.isEmpty {
                let port = portText.isEmpty ? "9464" : String(portText)
                return .failure(
                    ParseError(
                        message: "the host is missing: write 127.0.0.1:\(port) to serve this machine only, "
                            + "or 0.0.0.0:\(port) to serve every interface (metrics are then public)"))
            }
            if host.contains(":") {
                return .failure(ParseError(message: "write an IPv6 address in brackets, e.g. [::1]:9464"))
            }
            if host.lowercased() == "localhost" {
                host = "localhost"
            } else if !isAddress(host, family: AF_INET) {
                return .failure(
                    ParseError(message: "'\(host)' is not an IP address: write an IPv4 address, [an IPv6 one] or localhost"))
            }
        } else {
            host = "127.0.0.1"
            portText = Substring(text)
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCIIDigit), let port = Int(portText),
            (0...65535).contains(port)
        else {
            return .failure(ParseError(message: "the port must be a number from 0 to 65535, e.g. 127.0.0.1:9464"))
        }
        return .success(ListenAddress(host: host, port: port))
    }

    private static func isAddress(_ text: String, family: Int32) -> Bool {
        var storage = in6_addr()
        return inet_pton(family, text, &storage) == 1
    }

    /// The address the server binds: `localhost` is bound as 127.0.0.1.
    public var bindHost: String { host == "localhost" ? "127.0.0.1" : host }

    /// Whether this is every interface (`0.0.0.0`, `[::]`): anyone who can reach the host can read the metrics.
    public var servesEveryInterface: Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return v4.s_addr == 0 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { $0.allSatisfy { $0 == 0 } }
    }

    /// What `check` and `run` say when metrics are served on every interface.
    public var publicWarning: String? {
        guard servesEveryInterface else { return nil }
        return "listen \(self) serves /metrics and /healthz on every interface: they are public to anyone who can reach "
            + "this host (write 127.0.0.1:\(port) to keep them on this machine, or firewall the port)"
    }

    /// `127.0.0.1:9464`, `[::1]:9464`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Alerts about the watcher's own health (README.md, "Alerts about the watcher itself").
public struct HealthConfig: Sendable, Hashable {
    /// Sinks that receive `source_down` and `source_up` (`notify:`); default none.
    public var notify: [String]
    /// Consecutive failed polls of a source before `source_down` (`down_after:`); default 3.
    public var downAfter: Int
    /// How long a source may go without a successful poll before `source_down`, whether its
    /// polls fail, hang or never run (`silent_after:`); default `down_after` poll intervals
    /// plus 15 minutes (the longest wait a marketplace can impose).
    public var silentAfter: TimeInterval?

    public static let defaultDownAfter = 3
    /// `down_after:` from 1 to 1,000,000.
    public static let downAfterRange = 1...1_000_000
    /// `silent_after:` from 1s to 1w.
    public static let silentAfterRange: ClosedRange<TimeInterval> = 1...(7 * 86400)

    public init(notify: [String] = [], downAfter: Int = HealthConfig.defaultDownAfter, silentAfter: TimeInterval? = nil) {
        self.notify = notify
        self.downAfter = downAfter
        self.silentAfter = silentAfter
    }
}

/// How a sink retries a delivery that failed in a way worth retrying (network errors,
/// timeouts, 408, 425, 429, 5xx): exponential backoff with jitter from `initialDelay`
/// up to `maxDelay`. Written `retry: {max_attempts: 0, initial_delay: 1s, max_delay: 5m}`.
public struct RetryPolicy: Sendable, Hashable {
    /// Tries before the delivery becomes a dead letter; nil (`max_attempts: 0`, the default)
    /// keeps trying until the receiver acknowledges, so an alert is never silently dropped.
    public var maxAttempts: Int?
    /// The delay before the first retry (default 1s).
    public var initialDelay: TimeInterval
    /// The longest delay between tries (default 5m).
    public var maxDelay: TimeInterval

    public init(maxAttempts: Int? = nil, initialDelay: TimeInterval = 1, maxDelay: TimeInterval = 300) {
        self.maxAttempts = maxAttempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// `initial_delay:` and `max_delay:` from 1ms to 1d.
    public static let delayRange: ClosedRange<TimeInterval> = 0.001...86400
    /// `max_attempts:` from 0 (until acknowledged) to 1,000,000.
    public static let maxAttemptsRange = 0...1_000_000

    /// Until acknowledged, from 1s doubling up to 5m.
    public static let standard = RetryPolicy()
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
