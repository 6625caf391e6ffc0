import Foundation

/// One place alerts can go (`sinks:` in the config); rules name it in `notify`.
public struct SinkConfig: Sendable, Hashable {
    /// The kind of sink with its settings.
    public enum Kind: Sendable, Hashable {
        case stdout(StdoutSinkConfig)
        case webhook(WebhookSinkConfig)
        case email(EmailSinkConfig)

        /// `stdout`, `webhook` or `email`, as written in `kind:`.
        public var name: String {
            switch self {
            case .stdout: "stdout"
            case .webhook: "webhook"
            case .email: "email"
            }
        }

        /// Every value `kind:` accepts.
        public static let names = ["stdout", "webhook", "email"]
    }

    /// Unique among sinks; what rules write in `notify`.
    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// `group:` of a sink: the `firing` and `repeat` events due for it within
/// `wait` of the first go out as one message (``AlertEvent/group(_:sink:at:)``), at most
/// `max` to a message; `critical` ones are not held back unless `critical: hold`.
public struct GroupPolicy: Sendable, Hashable {
    /// `critical:`.
    public enum Critical: String, Sendable, Hashable, CaseIterable {
        /// Each critical event goes out at once, on its own.
        case send
        /// Critical events wait in groups like the others.
        case hold
    }

    public static let waitRange: ClosedRange<TimeInterval> = 1...3600
    public static let maxRange: ClosedRange<Int> = 1...500

    /// `wait:`, 1s to 1h, default 30s.
    public var wait: TimeInterval
    /// `max:`, 1 to 500, default 50.
    public var max: Int
    /// `critical:`, default `send`.
    public var critical: Critical

    public init(wait: TimeInterval = 30, max: Int = 50, critical: Critical = .send) {
        self.wait = wait
        self.max = max
        self.critical = critical
    }

    /// `wait` and `max` within their ranges (a NaN wait: the default).
    var bounded: GroupPolicy {
        var policy = self
        policy.wait = wait.isNaN ? GroupPolicy().wait : Swift.min(Swift.max(wait, Self.waitRange.lowerBound), Self.waitRange.upperBound)
        policy.max = Swift.min(Swift.max(max, Self.maxRange.lowerBound), Self.maxRange.upperBound)
        return policy
    }

    /// Whether `event` waits to go out in a group.
    public func holds(_ event: AlertEvent) -> Bool {
        (event.kind == .firing || event.kind == .repeat) && (event.severity != .critical || critical == .hold)
    }
}

/// `kind: stdout`: events on standard output.
public struct StdoutSinkConfig: Sendable, Hashable {
    /// `format: text` (one line per event) or `format: json` (one JSON object per line).
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case text
        case json
    }

    /// Default `text`.
    public var format: Format
    /// `group:`: grouped events are printed as one list (the text format shows its first ten).
    public var group: GroupPolicy?

    public init(format: Format = .text, group: GroupPolicy? = nil) {
        self.format = format
        self.group = group
    }
}

/// `kind: webhook`: an HTTP `POST` per event.
public struct WebhookSinkConfig: Sendable, Hashable {
    /// The body shape: cancelwatch's own JSON or a chat tool's message.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case generic
        case slack
        case telegram
        case feishu
        case dingtalk
        case wecom
    }

    public static let defaultTimeout: TimeInterval = 10
    /// `timeout:` from 1ms to 10m.
    public static let timeoutRange: ClosedRange<TimeInterval> = 0.001...600

    /// `url:` (http or https). A secret, since chat URLs carry their token
    /// (`https://api.telegram.org/bot<token>/sendMessage`); printing it shows the scheme and host only.
    public var url: Secret
    /// `secret:`: signs the body (`X-Cancelwatch-Signature`; Feishu's and DingTalk's own signing).
    public var secret: Secret?
    /// `timeout:` per request, default 10s.
    public var timeout: TimeInterval
    /// Extra request `headers:`. Their values may be credentials: never print them.
    public var headers: [String: String]
    /// `format:`, default `generic`.
    public var format: Format
    /// Telegram's `chat_id:` (required with `format: telegram`, used by nothing else).
    public var chatID: String?
    /// `ca_file:`: a PEM bundle to verify the server with instead of the system's (absolute).
    public var caFile: String?
    /// `insecure: true` turns TLS verification off; it is never off unless written out.
    public var insecure: Bool
    /// `retry:`.
    public var retry: RetryPolicy
    /// `actions:` (only with `format: telegram`): Approve and Refuse buttons, and who may press them.
    public var actions: TelegramActionsConfig?
    /// `group:`; with `format: generic` only together with `batch: true` (which alone means
    /// the defaults), and then a group is posted as `{"version": "1", "events": [...]}`.
    public var group: GroupPolicy?

    public init(
        url: Secret, secret: Secret? = nil, timeout: TimeInterval = WebhookSinkConfig.defaultTimeout,
        headers: [String: String] = [:], format: Format = .generic, chatID: String? = nil, caFile: String? = nil,
        insecure: Bool = false, retry: RetryPolicy = .standard, actions: TelegramActionsConfig? = nil, group: GroupPolicy? = nil
    ) {
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.headers = headers
        self.format = format
        self.chatID = chatID
        self.caFile = caFile
        self.insecure = insecure
        self.retry = retry
        self.actions = actions
        self.group = group
    }
}

/// `actions:` of a `format: telegram` sink: its firing and repeat messages carry Approve and
/// Refuse buttons, and presses by the users in `allow` answer the request.
public struct TelegramActionsConfig: Sendable, Hashable {
    /// `allow:`: the Telegram user ids whose presses count; anyone else's are refused.
    public var allow: [Int64]
    /// `refuse_reasons:`: reasons offered as buttons when refusing (a reply gives any other).
    public var refuseReasons: [String]

    /// Telegram user ids are positive and fit in 52 bits; this bound is JSON's exact integers.
    public static let userIDRange: ClosedRange<Int64> = 1...9_007_199_254_740_991
    /// The most users `allow:` may list.
    public static let maxUsers = 100
    /// The most `refuse_reasons:`.
    public static let maxRefuseReasons = 8
    /// A reason's length in characters (it is also a button's label).
    public static let refuseReasonLength: ClosedRange<Int> = 1...100

    public init(allow: [Int64], refuseReasons: [String] = []) {
        self.allow = allow
        self.refuseReasons = refuseReasons
    }
}

/// `kind: email`: a message per event over SMTP (README.md, "Email").
public struct EmailSinkConfig: Sendable, Hashable {
    /// How the SMTP connection is protected (`tls:`).
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// `smtp://` upgraded with STARTTLS, required (libcurl `CURLUSESSL_ALL`); the default for `smtp://`.
        case starttls
        /// TLS from the first byte; the default for `smtps://`.
        case implicit
        /// No encryption at all: only ever when the config says `tls: none`.
        case unencrypted = "none"
    }

    public static let defaultSubject = "[cancelwatch] {{severity}}: {{rule}} {{order}}"
    public static let defaultTimeout: TimeInterval = 30
    /// `timeout:` from 1ms to 10m.
    public static let timeoutRange: ClosedRange<TimeInterval> = 0.001...600

    /// `url:`, `smtp://host:587` or `smtps://host:465`; always carries its port
    /// (587 for `smtp`, 465 for `smtps` when the config leaves it out).
    public var url: URL
    /// `tls:`; by default from the scheme.
    public var tls: TLSMode
    /// `username:` for SMTP AUTH.
    public var username: String?
    /// `password:` for SMTP AUTH.
    public var password: Secret?
    /// `from:`, an address or `Name <address>`.
    public var from: String
    /// `to:`, at least one address.
    public var to: [String]
    /// `cc:`.
    public var cc: [String]
    /// `subject:`, a template like the rules' `message`.
    public var subject: String
    /// `timeout:` of one SMTP conversation, default 30s.
    public var timeout: TimeInterval
    /// `ca_file:` (absolute).
    public var caFile: String?
    /// `insecure: true` turns TLS verification off; never off unless written out.
    public var insecure: Bool
    /// `retry:`.
    public var retry: RetryPolicy
    /// `group:`: grouped events go out as one message listing them.
    public var group: GroupPolicy?

    /// The server's host name.
    public var host: String { url.host ?? "" }
    /// The server's port.
    public var port: Int { url.port ?? (url.scheme == "smtps" ? 465 : 587) }

    public init(
        url: URL, tls: TLSMode? = nil, username: String? = nil, password: Secret? = nil, from: String,
        to: [String], cc: [String] = [], subject: String = EmailSinkConfig.defaultSubject,
        timeout: TimeInterval = EmailSinkConfig.defaultTimeout, caFile: String? = nil, insecure: Bool = false,
        retry: RetryPolicy = .standard, group: GroupPolicy? = nil
    ) {
        self.url = url
        self.tls = tls ?? (url.scheme == "smtps" ? .implicit : .starttls)
        self.username = username
        self.password = password
        self.from = from
        self.to = to
        self.cc = cc
        self.subject = subject
        self.timeout = timeout
        self.caFile = caFile
        self.insecure = insecure
        self.retry = retry
        self.group = group
    }
}

extension WebhookSinkConfig: CustomReflectable {
    /// Header values may be credentials (`Authorization: Bearer …`): printing or dumping
    /// the config shows them as secrets.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "url": url, "secret": secret as Any, "timeout": timeout,
                "headers": headers.mapValues { Secret($0) }, "format": format, "chatID": chatID as Any,
                "caFile": caFile as Any, "insecure": insecure, "retry": retry, "actions": actions as Any, "group": group as Any,
            ], displayStyle: .struct)
    }
}
