import Foundation

/// Which replica polls which source: leases that replicas sharing a store balance among
/// themselves, one round at a time (``LeasePlan``).
public protocol SourceLeases: Sendable {
    /// The replica this store speaks for: the holder of the leases it takes.
    var instance: String { get }
    /// One round, in one transaction: records ``instance`` as alive, takes, renews (for `ttl`)
    /// and gives back leases on `sources` so that they spread evenly over the live replicas,
    /// and returns what ``instance`` holds now.
    func balanceLeases(sources: [String], ttl: TimeInterval) throws(StoreError) -> LeaseRound
    /// Leaving for good: deletes every lease ``instance`` holds and its record as a live
    /// replica, in one transaction, so that the others take its sources at their next round
    /// rather than once its leases lapse.
    func releaseLeases() throws(StoreError)
    /// Every lease, by source (for `status`).
    func leases() throws(StoreError) -> [SourceLease]
}

/// One source's lease: who holds it and until when.
public struct SourceLease: Sendable, Hashable {
    public var source: String
    /// The replica's instance id.
    public var holder: String
    /// When it lapses unless renewed, by the store's clock.
    public var expiresAt: Date
    /// Changes every time the lease changes hands: a commit made under an earlier holding
    /// of the same lease is refused (``LeaseClaim``).
    public var token: Int64

    public init(source: String, holder: String, expiresAt: Date, token: Int64) {
        self.source = source
        self.holder = holder
        self.expiresAt = expiresAt
        self.token = token
    }

    /// The claim a commit for this source makes, renewing the lease for `ttl`.
    public func claim(ttl: TimeInterval) -> LeaseClaim {
        LeaseClaim(source: source, instance: holder, token: token, ttl: ttl)
    }
}

/// What one lease round came to.
public struct LeaseRound: Sendable, Hashable {
    /// The leases the replica holds now, by source.
    public var held: [SourceLease]
    /// Sources it took this round: another replica may have written their state since this
    /// one last had them, so their state is read again before polling.
    public var taken: [String]
    /// Sources it gave back this round (over its share, or no longer configured).
    public var givenBack: [String]
    /// The store's clock when the round ran.
    public var at: Date

    public init(held: [SourceLease], taken: [String] = [], givenBack: [String] = [], at: Date) {
        self.held = held
        self.taken = taken
        self.givenBack = givenBack
        self.at = at
    }
}

/// A commit's claim to write for one source (``StoreChanges/leases``), made from the lease a
/// round returned (``SourceLease/claim(ttl:)``): the store renews the lease for `ttl` in the
/// commit's transaction, and refuses the whole commit when the lease is no longer that holding.
public struct LeaseClaim: Sendable, Hashable {
    public var source: String
    public var instance: String
    public var token: Int64
    public var ttl: TimeInterval
}
