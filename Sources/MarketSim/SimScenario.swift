import CancelWatch
import Foundation

/// The two marketplaces the simulator stands in for.
public enum SimMarketplace: String, Sendable, Hashable, CaseIterable {
    case ozon
    case red
}

/// An Ozon Seller API account: requests must carry `Client-Id` and `Api-Key`.
public struct SimOzonAccount: Sendable, Hashable {
    /// The source name suggested for cancelwatch's config.
    public var name: String
    public var clientID: String
    public var apiKey: String

    public init(name: String, clientID: String, apiKey: String) {
        self.name = name
        self.clientID = clientID
        self.apiKey = apiKey
    }
}

/// The unit a RED account reports `max_audit_time` in (the vendor's docs disagree with themselves).
public enum SimAuditTimeUnit: String, Sendable, Hashable {
    case milliseconds
    case seconds
}

/// A Xiaohongshu (RED) Ark account: requests are signed with the app secret.
public struct SimRedAccount: Sendable, Hashable {
    /// The source name suggested for cancelwatch's config.
    public var name: String
    public var appKey: String
    public var appSecret: String
    public var auditTimeUnit: SimAuditTimeUnit

    public init(name: String, appKey: String, appSecret: String, auditTimeUnit: SimAuditTimeUnit = .milliseconds) {
        self.name = name
        self.appKey = appKey
        self.appSecret = appSecret
        self.auditTimeUnit = auditTimeUnit
    }
}

/// An instant in a scenario: an offset from an anchor (the simulator's start for
/// a scenario, "now" for requests added later), or an absolute time.
public enum SimTime: Sendable, Hashable {
    case relative(TimeInterval)
    case absolute(Date)

    /// The instant, given the anchor relative times count from.
    public func date(anchor: Date) -> Date {
        switch self {
        case .relative(let offset): return anchor.addingTimeInterval(offset)
        case .absolute(let date): return date
        }
    }
}

/// How the seller (or the marketplace) decided a request. RED calls these `canceled` and `refused`.
public enum SimOutcome: String, Sendable, Hashable {
    /// Ozon `APPROVED`; RED `audited` with `audit_result: canceled`.
    case approved
    /// Ozon `REJECTED`; RED `audited` with `audit_result: refused`.
    case rejected

    /// Reads `approved`/`canceled` or `rejected`/`refused`.
    public init?(text: String) {
        switch text.lowercased() {
        case "approved", "approve", "canceled", "cancelled": self = .approved
        case "rejected", "reject", "refused": self = .rejected
        default: return nil
        }
    }
}

/// The seller's decision on a request, at a time.
public struct SimResolution: Sendable, Hashable {
    public var at: SimTime
    public var outcome: SimOutcome
    /// Ozon `approve_comment` / RED `audit_reason`; a stock text when nil.
    public var comment: String?

    public init(at: SimTime, outcome: SimOutcome, comment: String? = nil) {
        self.at = at
        self.outcome = outcome
        self.comment = comment
    }
}

/// One cancellation request in a scenario and its life: it appears at `created`,
/// stays pending until the seller resolves it (`resolution`) or `deadline` passes
/// (then the marketplace approves it), and may vanish from the API altogether.
public struct SimRequestPlan: Sendable, Hashable {
    public var marketplace: SimMarketplace
    /// The account it belongs to: an Ozon `client_id` or a RED `app_key`.
    public var account: String
    /// When the buyer asked; the request is listed from then on (Ozon `cancelled_at`, RED `cancel_time`).
    public var created: SimTime
    /// Ozon `auto_approve_date`; RED: the instant `max_audit_time` counts down to.
    public var deadline: SimTime
    public var resolution: SimResolution?
    /// When the request disappears from every listing.
    public var vanishAt: SimTime?
    /// Ozon `cancellation_reason.name` / RED `cancel_reason`; a stock reason when nil.
    public var reason: String?
    /// Ozon `cancellation_reason.id`.
    public var reasonID: Int64?
    /// Ozon `cancellation_initiator`: CLIENT, OZON, SYSTEM, DELIVERY or SELLER.
    public var initiator: String
    /// Ozon `cancellation_reason_message`.
    public var reasonMessage: String?
    /// Ozon `cancellation_id`; assigned when nil.
    public var cancellationID: Int64?
    /// Ozon `posting_number`; assigned when nil.
    public var postingNumber: String?
    /// Ozon `order_date`; some hours before `created` when nil.
    public var orderDate: SimTime?
    /// Digits after the second in this request's Ozon dates (0, 3 or 6); varied when nil.
    public var fractionDigits: Int?
    /// RED `package_id`; assigned when nil. The same id may be used by several requests.
    public var packageID: String?
    /// RED `logistics`: `red_auto` or `red_box`.
    public var logistics: String

    public init(
        marketplace: SimMarketplace, account: String, created: SimTime, deadline: SimTime, resolution: SimResolution? = nil,
        vanishAt: SimTime? = nil, reason: String? = nil, reasonID: Int64? = nil, initiator: String = "CLIENT",
        reasonMessage: String? = nil, cancellationID: Int64? = nil, postingNumber: String? = nil, orderDate: SimTime? = nil,
        fractionDigits: Int? = nil, packageID: String? = nil, logistics: String = "red_auto"
    ) {
        self.marketplace = marketplace
        self.account = account
        self.created = created
        self.deadline = deadline
        self.resolution = resolution
        self.vanishAt = vanishAt
        self.reason = reason
        self.reasonID = reasonID
        self.initiator = initiator
        self.reasonMessage = reasonMessage
        self.cancellationID = cancellationID
        self.postingNumber = postingNumber
        self.orderDate = orderDate
        self.fractionDigits = fractionDigits
        self.packageID = packageID
        self.logistics = logistics
    }

    /// An Ozon request; times are offsets in seconds from the anchor.
    public static func ozon(
        account: String, created: TimeInterval, deadline: TimeInterval, resolve: (at: TimeInterval, SimOutcome)? = nil,
        vanishAt: TimeInterval? = nil, initiator: String = "CLIENT", reason: String? = nil, cancellationID: Int64? = nil,
        postingNumber: String? = nil
    ) -> SimRequestPlan {
        SimRequestPlan(
            marketplace: .ozon, account: account, created: .relative(created), deadline: .relative(deadline),
            resolution: resolve.map { SimResolution(at: .relative($0.at), outcome: $0.1) }, vanishAt: vanishAt.map { .relative($0) },
            reason: reason, initiator: initiator, cancellationID: cancellationID, postingNumber: postingNumber)
    }

    /// A RED request; times are offsets in seconds from the anchor.
    public static func red(
        account: String, logistics: String = "red_auto", created: TimeInterval, deadline: TimeInterval,
        resolve: (at: TimeInterval, SimOutcome)? = nil, vanishAt: TimeInterval? = nil, reason: String? = nil,
        packageID: String? = nil
    ) -> SimRequestPlan {
        SimRequestPlan(
            marketplace: .red, account: account, created: .relative(created), deadline: .relative(deadline),
            resolution: resolve.map { SimResolution(at: .relative($0.at), outcome: $0.1) }, vanishAt: vanishAt.map { .relative($0) },
            reason: reason, packageID: packageID, logistics: logistics)
    }
}

/// Accounts and the requests they will see, with times relative to the simulator's start.
/// Load one from JSON with `SimScenario.load(path:)`; `SimScenario.standard` is the built-in one.
public struct SimScenario: Sendable, Hashable {
    public var ozonAccounts: [SimOzonAccount]
    public var redAccounts: [SimRedAccount]
    public var requests: [SimRequestPlan]
    /// Seeds the generator for ids and stock texts, so a scenario plays the same every time.
    public var seed: UInt64

    public init(
        ozonAccounts: [SimOzonAccount] = [], redAccounts: [SimRedAccount] = [], requests: [SimRequestPlan] = [], seed: UInt64 = 1
    ) {
        self.ozonAccounts = ozonAccounts
        self.redAccounts = redAccounts
        self.requests = requests
        self.seed = seed
    }

    /// The `sources:` section of a cancelwatch config that watches this scenario's accounts
    /// on the simulator at `baseURL`.
    public func configSourcesYAML(baseURL: String, pollInterval: String = "10s") -> String {
        var lines = ["sources:"]
        for account in ozonAccounts {
            lines += [
                "  - name: \(account.name)",
                "    kind: ozon",
                "    client_id: \"\(account.clientID)\"",
                "    api_key: \"\(account.apiKey)\"",
                "    base_url: \"\(baseURL)\"",
                "    poll_interval: \(pollInterval)",
            ]
        }
        // Each shop's logistics modes, in one pass over the requests (a fleet has hundreds of thousands).
        var logistics: [String: Set<String>] = [:]
        for request in requests where request.marketplace == .red { logistics[request.account, default: []].insert(request.logistics) }
        for account in redAccounts {
            var modes = logistics[account.appKey] ?? []
            if modes.isEmpty { modes = ["red_auto", "red_box"] }
            lines += [
                "  - name: \(account.name)",
                "    kind: red",
                "    app_key: \"\(account.appKey)\"",
                "    app_secret: \"\(account.appSecret)\"",
                "    logistics: [\(modes.sorted().joined(separator: ", "))]",
                "    max_audit_time_unit: \(account.auditTimeUnit.rawValue)",
                "    base_url: \"\(baseURL)\"",
                "    poll_interval: \(pollInterval)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per account with its credentials, for `cancelwatch simulate`.
    public func accountSummary() -> [String] {
        var lines: [String] = []
        for account in ozonAccounts {
            let count = requests.filter { $0.marketplace == .ozon && $0.account == account.clientID }.count
            lines.append("ozon  \(account.name): client_id=\(account.clientID) api_key=\(account.apiKey) (\(count) requests)")
        }
        for account in redAccounts {
            let count = requests.filter { $0.marketplace == .red && $0.account == account.appKey }.count
            lines.append(
                "red   \(account.name): app_key=\(account.appKey) app_secret=\(account.appSecret) "
                    + "max_audit_time in \(account.auditTimeUnit.rawValue) (\(count) requests)")
        }
        return lines
    }
}
