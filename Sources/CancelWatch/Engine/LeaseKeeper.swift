import Foundation
import Logging
import Synchronization

/// This replica's share of the sources, where replicas share a database: a lease round
/// (``SourceLeases/balanceLeases(sources:ttl:)``) every ``period``, so that a lease is
/// renewed twice before it could lapse and a dead replica's sources are taken within `ttl`
/// and one period. The ``Poller`` runs the rounds and polls what they return.
public final class LeaseKeeper: Sendable {
    public let ttl: TimeInterval
    private let leases: any SourceLeases
    private let sources: [String]
    private let logger: Logger
    /// Whether the last round failed (an outage is logged when it starts and when it ends).
    private let failing = Mutex(false)

    /// `ttl` and `pollInterval` (the shortest source's) are bounded by the config.
    public init(leases: any SourceLeases, sources: [String], ttl: TimeInterval, pollInterval: TimeInterval? = nil, logger: Logger) {
        self.leases = leases
        self.sources = sources
        self.ttl = ttl
        period = max(1, min(ttl / 3, pollInterval ?? ttl))
        self.logger = logger
    }

    /// How long between rounds: a third of `ttl`, or the shortest poll interval when that
    /// is shorter (at least a second).
    public let period: TimeInterval

    /// One round: the leases this replica holds now, or nil when the database could not be
    /// reached (the replica goes on polling what it holds; its leases lapse after `ttl`, and a
    /// replica that can reach the database then takes them). Leases on `givingBack` are given
    /// back (and not taken) this round.
    public func round(givingBack: Set<String> = []) async -> [SourceLease]? {
        let (leases, ttl) = (self.leases, self.ttl)
        let sources = givingBack.isEmpty ? self.sources : self.sources.filter { !givingBack.contains($0) }
        do {
            let round = try await BlockingWorkers.shared.run { () throws(StoreError) -> LeaseRound in
                try leases.balanceLeases(sources: sources, ttl: ttl)
            }
            if setFailing(false) {
                logger.notice("the lease round succeeded again", metadata: ["held": "\(round.held.count)"])
            }
            if !round.taken.isEmpty || !round.givenBack.isEmpty {
                logger.info(
                    "lease round", metadata: [
                        "held": "\(round.held.count)", "taken": "\(Self.list(round.taken))",
                        "given_back": "\(Self.list(round.givenBack))",
                    ])
            }
            return round.held
        } catch {
            if error.supplanted {
                // Another process runs as this replica since this one was cut off: it polls
                // the sources now, and this one must hold none of them.
                if !setFailing(true) { logger.error("\(error.description); this process polls nothing from now on") }
                return []
            }
            if !setFailing(true) {
                logger.error("lease round failed; polling what this replica holds until the database answers: \(error.description)")
            }
            return nil
        }
    }

    /// Sources for a log line: the first ten, and how many more.
    static func list(_ sources: [String]) -> String {
        let shown = sources.prefix(10).joined(separator: ",")
        return sources.count > 10 ? "\(shown) and \(sources.count - 10) more" : shown
    }

    /// Sets whether rounds are failing; returns whether they were.
    private func setFailing(_ now: Bool) -> Bool {
        failing.withLock { failing in
            defer { failing = now }
            return failing
        }
    }

    /// Gives back every lease this replica holds, so that the others take its sources at
    /// their next round rather than after `ttl`.
    public func releaseAll() async {
        let leases = self.leases
        do {
            try await BlockingWorkers.shared.run { () throws(StoreError) in try leases.releaseLeases() }
        } catch {
            logger.warning("could not give the leases back; they lapse after the lease TTL: \(error.description)")
        }
    }
}
