import Foundation

/// One marketplace account to poll (`sources:` in the config).
public struct SourceConfig: Sendable, Hashable {
    /// Which API a source talks to: `kind: ozon` or `kind: red` (`xiaohongshu` is accepted too).
    public enum Kind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case ozon
        /// Xiaohongshu (RED) Ark open platform.
        case red

        /// The marketplace the kind polls.
        public var marketplace: Marketplace {
            switch self {
            case .ozon: .ozon
            case .red: .xiaohongshu
            }
        }

        /// The production API host.
        public var defaultBaseURL: URL {
            switch self {
            case .ozon: URL(string: "https://api-seller.ozon.ru")!
            case .red: URL(string: "https://ark.xiaohongshu.com")!
            }
        }

        public var description: String { rawValue }
    }

    /// Unique among sources; appears in events, metrics and the state file.
    public var name: String
    /// Where requests go (`base_url:`): the production host by default, the simulator's in tests.
    /// Never ends with `/`.
    public var baseURL: URL
    /// Time between polls (`poll_interval:`, default 60s, 1s to 1d).
    public var pollInterval: TimeInterval
    /// Time limit of one HTTP request (`timeout:`, default 30s, 1ms to 10m).
    public var timeout: TimeInterval
    /// The kind-specific part: the account's credentials and, for RED, its polling options.
    public var credentials: SourceCredentials

    public static let defaultPollInterval: TimeInterval = 60
    public static let minimumPollInterval: TimeInterval = 1
    /// `poll_interval:` from 1s to 1d.
    public static let pollIntervalRange: ClosedRange<TimeInterval> = minimumPollInterval...86400
    public static let defaultTimeout: TimeInterval = 30
    /// `timeout:` from 1ms to 10m.
    public static let timeoutRange: ClosedRange<TimeInterval> = 0.001...600

    /// `ozon` or `red`, from ``credentials``.
    public var kind: Kind { credentials.kind }
    /// The marketplace polled, from ``kind``.
    public var marketplace: Marketplace { kind.marketplace }
    /// The Ozon credentials, when this is an Ozon source.
    public var ozon: OzonCredentials? {
        if case .ozon(let value) = credentials { value } else { nil }
    }
    /// The RED credentials and options, when this is a RED source.
    public var red: RedCredentials? {
        if case .red(let value) = credentials { value } else { nil }
    }

    /// `baseURL` nil means the kind's production host.
    public init(
        name: String, baseURL: URL? = nil, pollInterval: TimeInterval = SourceConfig.defaultPollInterval,
        timeout: TimeInterval = SourceConfig.defaultTimeout, credentials: SourceCredentials
    ) {
        self.name = name
        self.baseURL = baseURL ?? credentials.kind.defaultBaseURL
        self.pollInterval = pollInterval
        self.timeout = timeout
        self.credentials = credentials
    }
}

/// The kind-specific part of a source.
public enum SourceCredentials: Sendable, Hashable {
    case ozon(OzonCredentials)
    case red(RedCredentials)

    public var kind: SourceConfig.Kind {
        switch self {
        case .ozon: .ozon
        case .red: .red
        }
    }
}

/// An Ozon Seller API account: headers `Client-Id` and `Api-Key`.
public struct OzonCredentials: Sendable, Hashable {
    /// `client_id:`, digits only (a YAML number is accepted too).
    public var clientID: String
    /// `api_key:`.
    public var apiKey: Secret

    public init(clientID: String, apiKey: Secret) {
        self.clientID = clientID
        self.apiKey = apiKey
    }
}

/// How Xiaohongshu's `max_audit_time` is counted (MARKETPLACES.md: unknown, so a setting).
public enum MaxAuditTimeUnit: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// What the vendor's table says; the default.
    case milliseconds
    case seconds

    /// Seconds in one unit.
    public var seconds: TimeInterval {
        switch self {
        case .milliseconds: 0.001
        case .seconds: 1
        }
    }

    public var description: String { rawValue }
}

/// A Xiaohongshu (RED) Ark account: `app_key` and `app_secret` for signing, and how to poll it.
public struct RedCredentials: Sendable, Hashable {
    /// The logistics modes Xiaohongshu knows.
    public static let knownLogistics = ["red_auto", "red_box"]
    public static let defaultLogistics = ["red_auto"]
    public static let defaultPageSize = 50
    public static let pageSizeRange = 1...100

    /// `app_key:`, sent as the `app-key` header.
    public var appKey: String
    /// `app_secret:`, appended to the string to sign.
    public var appSecret: Secret
    /// `logistics:`, each `red_auto` or `red_box`; polled one after the other. Default `[red_auto]`.
    public var logistics: [String]
    /// `max_audit_time_unit:`, default milliseconds.
    public var maxAuditTimeUnit: MaxAuditTimeUnit
    /// `page_size:`, 1...100, default 50.
    public var pageSize: Int

    public init(
        appKey: String, appSecret: Secret, logistics: [String] = RedCredentials.defaultLogistics,
        maxAuditTimeUnit: MaxAuditTimeUnit = .milliseconds, pageSize: Int = RedCredentials.defaultPageSize
    ) {
        self.appKey = appKey
        self.appSecret = appSecret
        self.logistics = logistics
        self.maxAuditTimeUnit = maxAuditTimeUnit
        self.pageSize = pageSize
    }
}
