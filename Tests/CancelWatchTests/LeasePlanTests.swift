import Foundation
import MarketSim
import Testing

@testable import CancelWatch

/// The fair share of sources alone: values in, values out, no store or clock. A small
/// in-memory lease table applies each plan as the store does.
@Suite struct LeasePlanTests {
    static let start = Date(timeIntervalSince1970: 1_764_000_000)
    static let ttl: TimeInterval = 30
    static let sixty = (0..<60).map { String(format: "shop-%02d", $0) }

    /// Leases by source, and when each replica was last seen, changed by rounds as the store does.
    struct Table {
        var leases: [String: SourceLease] = [:]
        var seen: [String: Date] = [:]
        var nextToken: Int64 = 1

        /// One round of `instance` at `now`; returns its plan.
        @discardableResult
        mutating func round(_ instance: String, sources: [String] = LeasePlanTests.sixty, at now: Date) -> LeasePlan {
            seen[instance] = now
            let live = Set(seen.filter { $0.value > now.addingTimeInterval(-LeasePlanTests.ttl) }.keys)
            let plan = LeasePlan.decide(
                sources: sources, leases: Array(leases.values), live: live, instance: instance, now: now)
            let expiry = now.addingTimeInterval(LeasePlanTests.ttl)
            for source in plan.giveBack { leases[source] = nil }
            for source in plan.keep { leases[source]?.expiresAt = expiry }
            for source in plan.take {
                leases[source] = SourceLease(source: source, holder: instance, expiresAt: expiry, token: nextToken)
                nextToken += 1
            }
            return plan
        }

        func count(of instance: String) -> Int { leases.values.filter { $0.holder == instance }.count }
        func counts(_ instances: [String]) -> [Int] { instances.map(count(of:)) }
    }

    @Test func aLoneReplicaTakesEverySourceInOneRound() {
        var table = Table()
        let plan = table.round("a", at: Self.start)
        #expect(plan.take == Self.sixty)
        #expect(plan.keep.isEmpty && plan.giveBack.isEmpty)
        // The next round renews them all.
        let again = table.round("a", at: Self.start.addingTimeInterval(10))
        #expect(again.keep == Self.sixty && again.take.isEmpty && again.giveBack.isEmpty)
    }

    @Test func threeReplicasOverSixtySourcesHoldTwentyEachAfterARoundEach() {
        var table = Table()
        let replicas = ["a", "b", "c"]
        for replica in replicas { table.seen[replica] = Self.start }
        for replica in replicas { table.round(replica, at: Self.start.addingTimeInterval(1)) }
        #expect(table.counts(replicas) == [20, 20, 20])
        #expect(table.leases.count == 60)
    }

    @Test func aJoiningReplicaMakesTheOthersGiveBackUntilEven() {
        var table = Table()
        var now = Self.start
        table.round("a", at: now)
        table.round("b", at: now)
        table.round("a", at: now)
        table.round("b", at: now)
        #expect(table.counts(["a", "b"]) == [30, 30])

        now += 5
        let joined = table.round("c", at: now)
        #expect(joined.take.isEmpty, "every source is held by a live replica")
        let a = table.round("a", at: now)
        let b = table.round("b", at: now)
        #expect(a.giveBack.count == 10 && b.giveBack.count == 10)
        #expect(a.keep.count == 20 && b.keep.count == 20)
        #expect(table.round("c", at: now).take.count == 20)
        #expect(table.counts(["a", "b", "c"]) == [20, 20, 20])
        // Even: another round moves nothing.
        for replica in ["a", "b", "c"] {
            let plan = table.round(replica, at: now + 1)
            #expect(plan.take.isEmpty && plan.giveBack.isEmpty && plan.keep.count == 20)
        }
    }

    @Test func aDeadReplicasLeasesAreTakenOnlyOnceTheyExpire() {
        var table = Table()
        for replica in ["a", "b", "c"] { table.seen[replica] = Self.start }
        for replica in ["a", "b", "c"] { table.round(replica, at: Self.start) }
        let lastRenewal = Self.start.addingTimeInterval(5)
        table.round("c", at: lastRenewal)
        let cHeld = Set(table.leases.values.filter { $0.holder == "c" }.map(\.source))
        #expect(cHeld.count == 20)

        // c is gone; a and b go on renewing up to the instant c's leases lapse.
        var now = lastRenewal
        while now < lastRenewal.addingTimeInterval(Self.ttl) {
            for replica in ["a", "b"] {
                #expect(table.round(replica, at: now).take.isEmpty, "at \(now.timeIntervalSince(lastRenewal)) s")
            }
            now += 1
        }
        #expect(now == lastRenewal.addingTimeInterval(Self.ttl))
        let a = table.round("a", at: now)
        let b = table.round("b", at: now)
        #expect(Set(a.take + b.take) == cHeld)
        #expect(table.counts(["a", "b", "c"]) == [30, 30, 0])
    }

    @Test func aReplicaKeepsItsOwnExpiredLeaseThatNobodyTook() {
        let lease = SourceLease(source: "shop-00", holder: "a", expiresAt: Self.start, token: 7)
        let plan = LeasePlan.decide(
            sources: ["shop-00"], leases: [lease], live: ["a"], instance: "a", now: Self.start.addingTimeInterval(60))
        #expect(plan == LeasePlan(keep: ["shop-00"]))
    }

    @Test func aReplicaGivesBackTheLeasesOfSourcesNoLongerConfigured() {
        var table = Table()
        table.round("a", sources: ["old", "kept"], at: Self.start)
        let plan = table.round("a", sources: ["kept", "new"], at: Self.start.addingTimeInterval(1))
        #expect(plan == LeasePlan(take: ["new"], keep: ["kept"], giveBack: ["old"]))
        #expect(table.round("a", sources: [], at: Self.start.addingTimeInterval(2)) == LeasePlan(giveBack: ["kept", "new"]))
    }

    /// Replicas joining, dying and running rounds in any order: each believes it holds what
    /// its last round left it, until that lapses. No two beliefs ever share a source.
    @Test func neverTwoReplicasHoldOneSourceWhateverTheOrderOfRoundsJoinsAndDeaths() {
        var generator = SeededGenerator(seed: 14)
        for _ in 0..<20 {
            var table = Table()
            var believed: [String: [String: Date]] = [:]
            var alive: Set<String> = ["r0"]
            var next = 1
            var now = Self.start
            for _ in 0..<400 {
                now += Double(generator.next() % 8)
                switch generator.next() % 10 {
                case 0 where alive.count < 5:
                    alive.insert("r\(next)")
                    next += 1
                case 1 where alive.count > 1:
                    alive.remove(alive.sorted()[Int(generator.next() % UInt64(alive.count))])
                default:
                    let replica = alive.sorted()[Int(generator.next() % UInt64(alive.count))]
                    let plan = table.round(replica, at: now)
                    let expiry = now.addingTimeInterval(Self.ttl)
                    believed[replica] = Dictionary(uniqueKeysWithValues: (plan.keep + plan.take).map { ($0, expiry) })
                }
                var holders: [String: [String]] = [:]
                for (replica, held) in believed {
                    for (source, until) in held where until > now { holders[source, default: []].append(replica) }
                }
                let shared = holders.filter { $0.value.count > 1 }
                #expect(shared.isEmpty, "at \(now): \(shared)")
                if !shared.isEmpty { return }
            }
        }
    }
}
