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

        /// `instance` leaves for good, as ``SourceLeases/releaseLeases()`` does.
        mutating func release(_ instance: String) {
            leases = leases.filter { $0.value.holder != instance }
            seen[instance] = nil
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

    @Test func fourSourcesOverThreeReplicasEndTwoOneOne() {
        var table = Table()
        let four = ["s1", "s2", "s3", "s4"]
        var now = Self.start
        for _ in 0..<3 {
            for replica in ["c", "b", "a"] { table.round(replica, sources: four, at: now) }
            now += 1
        }
        #expect(table.counts(["a", "b", "c"]) == [2, 1, 1])
        #expect(table.leases.count == 4)
        for replica in ["a", "b", "c"] {
            let plan = table.round(replica, sources: four, at: now)
            #expect(plan.take.isEmpty && plan.giveBack.isEmpty, "\(replica)")
        }
    }

    /// Shares add up to the sources and differ by one at most, the larger ones first in
    /// the order of the instance ids.
    @Test func sharesAddUpToTheSourcesAndDifferByOneAtMost() {
        for sources in 0...25 {
            for count in 1...6 {
                let replicas = (0..<count).map { "r\($0)" }
                let shares = replicas.map { LeasePlan.share(of: $0, sources: sources, live: Set(replicas)) }
                #expect(shares.reduce(0, +) == sources, "\(sources) over \(count)")
                #expect(shares == shares.sorted(by: >), "\(sources) over \(count)")
                #expect(shares.max()! - shares.min()! <= 1, "\(sources) over \(count)")
            }
        }
        #expect(LeasePlan.share(of: "b", sources: 4, live: ["a", "c"]) == 1, "it counts itself")
        #expect(LeasePlan.share(of: "a", sources: 4, live: ["b", "c"]) == 2)
    }

    /// Rounds of every replica of `expected` in turn, one second apart, until each holds
    /// as many as `expected` says and every source is held; returns how many passes that
    /// took (`limit + 1` when it never did). Each replica believes it holds what its last
    /// round left it until that lapses (a stopped one too): no two beliefs ever share a source.
    static func passesUntil(
        _ expected: [String: Int], _ table: inout Table, believed: inout [String: [String: Date]], now: inout Date,
        sources: [String], limit: Int = 6
    ) -> Int {
        for pass in 1...limit {
            for replica in expected.keys.sorted() {
                let plan = table.round(replica, sources: sources, at: now)
                let expiry = now.addingTimeInterval(Self.ttl)
                believed[replica] = Dictionary(uniqueKeysWithValues: (plan.keep + plan.take).map { ($0, expiry) })
                var holders: [String: [String]] = [:]
                for (holder, held) in believed {
                    for (source, until) in held where until > now { holders[source, default: []].append(holder) }
                }
                #expect(holders.allSatisfy { $0.value.count == 1 }, "at \(now): \(holders.filter { $0.value.count > 1 })")
                now += 1
            }
            if expected.allSatisfy({ table.count(of: $0.key) == $0.value }) && table.leases.count == sources.count { return pass }
        }
        return limit + 1
    }

    @Test func aReplicaJoiningAndOthersLeavingOrStoppingConvergeInAFewRoundsWithNeverTwoHolders() {
        let ten = (0..<10).map { "shop-\($0)" }
        var table = Table()
        var believed: [String: [String: Date]] = [:]
        var now = Self.start
        #expect(Self.passesUntil(["a": 4, "b": 3, "c": 3], &table, believed: &believed, now: &now, sources: ten) <= 3)

        // d joins: 10 over 4 is 3, 3, 2, 2.
        #expect(Self.passesUntil(["a": 3, "b": 3, "c": 2, "d": 2], &table, believed: &believed, now: &now, sources: ten) <= 3)

        // b leaves for good: the others take its sources at their next rounds.
        table.release("b")
        believed["b"] = nil
        #expect(Self.passesUntil(["a": 4, "c": 3, "d": 3], &table, believed: &believed, now: &now, sources: ten) <= 2)

        // c stops without a word: its sources move once its leases lapse (its belief in
        // them lasts until then), within a pass or two after.
        let lapse = table.leases.values.filter { $0.holder == "c" }.map(\.expiresAt).max()!
        let passes = Self.passesUntil(["a": 5, "d": 5], &table, believed: &believed, now: &now, sources: ten, limit: 40)
        #expect(now > lapse)
        #expect(passes <= Int(Self.ttl) / 2 + 2)
    }

    /// A replica no longer live (not seen within the TTL) has its expired leases taken; an
    /// unexpired one (renewed by a commit since) stays its own.
    @Test func aStoppedReplicasExpiredLeasesAreTakenAndItsLiveOnesAreNot() {
        let now = Self.start
        let leases = [
            SourceLease(source: "s1", holder: "z", expiresAt: now, token: 1),
            SourceLease(source: "s2", holder: "z", expiresAt: now.addingTimeInterval(-100), token: 2),
            SourceLease(source: "s3", holder: "z", expiresAt: now.addingTimeInterval(1), token: 3),
        ]
        let plan = LeasePlan.decide(sources: ["s1", "s2", "s3"], leases: leases, live: ["a"], instance: "a", now: now)
        #expect(plan == LeasePlan(take: ["s1", "s2"]))
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
