import Foundation

/// How one source's polling is going.
public struct SourceHealth: Sendable, Hashable {
    public var source: String
    public var marketplace: Marketplace
    public var lastPollAt: Date?
    public var lastSuccessAt: Date?
    public var consecutiveFailures: Int
    /// The last failure's message (never holds credentials).
    public var lastError: String?
    /// Whether `source_down` has been raised and not yet answered by `source_up`.
    public var down: Bool

    public init(
        source: String, marketplace: Marketplace, lastPollAt: Date? = nil, lastSuccessAt: Date? = nil,
        consecutiveFailures: Int = 0, lastError: String? = nil, down: Bool = false
    ) {
        self.source = source
        self.marketplace = marketplace
        self.lastPollAt = lastPollAt
        self.lastSuccessAt = lastSuccessAt
        self.consecutiveFailures = consecutiveFailures
        self.lastError = lastError
        self.down = down
    }
}

/// Where cancelwatch keeps what must survive a restart and be visible to a second
/// process (`status`). SQLite today; a shared PostgreSQL store can come behind the
/// same protocol.
public protocol StateStore: Sendable {
    /// Every tracked request (open and recently closed).
    func loadTracked() throws(StoreError) -> [TrackedRequest]
    /// Saves one poll's changes and the source's health in one transaction.
    func save(_ tracked: [TrackedRequest], health: SourceHealth?) throws(StoreError)
    func delete(_ keys: [RequestKey]) throws(StoreError)
    func loadHealth() throws(StoreError) -> [SourceHealth]
}
