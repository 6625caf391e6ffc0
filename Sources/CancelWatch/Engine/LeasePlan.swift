import Foundation

/// Which sources one replica takes, keeps and gives back in a lease round: a plain function
/// of the configured sources, the leases, the live replicas, the replica and now.
///
/// With n sources and r live replicas in the order of their instance ids, each has a share
/// of n / r and the first n % r one more, so that the shares add up to n and no replica
/// holds two more than another. A replica keeps its leases up to its share and gives back
/// the rest; under its share it takes free or expired leases, never one another replica
/// holds unexpired. Sources are taken and kept in sorted order, so that replicas agree
/// without talking.
struct LeasePlan: Sendable, Hashable {
    /// Free or expired leases to take, sorted.
    var take: [String] = []
    /// This replica's leases to renew, sorted.
    var keep: [String] = []
    /// This replica's leases to release: over its share, or for a source no longer configured.
    var giveBack: [String] = []

    /// The plan for `instance` at `now`; `live` is every replica seen within the lease TTL
    /// (`instance` counts whether or not it is in it).
    static func decide(sources: [String], leases: [SourceLease], live: Set<String>, instance: String, now: Date) -> LeasePlan {
        let configured = Set(sources)
        let ordered = configured.sorted()
        guard !ordered.isEmpty else {
            return LeasePlan(giveBack: leases.filter { $0.holder == instance }.map(\.source).sorted())
        }
        let share = share(of: instance, sources: ordered.count, live: live)
        var holders: [String: SourceLease] = [:]
        for lease in leases { holders[lease.source] = lease }

        var plan = LeasePlan()
        // Its own leases, expired or not: nobody took one it still holds.
        for source in ordered where holders[source]?.holder == instance {
            if plan.keep.count < share { plan.keep.append(source) } else { plan.giveBack.append(source) }
        }
        for source in ordered where plan.keep.count + plan.take.count < share {
            guard let lease = holders[source] else {
                plan.take.append(source)
                continue
            }
            if lease.holder != instance && lease.expiresAt <= now { plan.take.append(source) }
        }
        plan.giveBack += leases.filter { $0.holder == instance && !configured.contains($0.source) }.map(\.source)
        plan.giveBack.sort()
        return plan
    }

    /// How many of `sources` sources `instance` holds when they are spread evenly over `live`
    /// and it: an equal part each, and one more for each of the first replicas, in the order
    /// of their ids, while the remainder lasts.
    static func share(of instance: String, sources: Int, live: Set<String>) -> Int {
        let replicas = live.union([instance]).sorted()
        let position = replicas.firstIndex(of: instance) ?? 0
        return sources / replicas.count + (position < sources % replicas.count ? 1 : 0)
    }
}
