import Foundation
import Synchronization
import TestServers
import Testing

@testable import CancelWatch

/// Leases in a real PostgreSQL (the test process's throwaway cluster): several stores with
/// different instance ids on one database, as replicas share it. Store calls block their
/// thread: each runs off Swift's pool.
@Suite struct PostgresLeasesTests {
    static let sixty = (0..<60).map { String(format: "shop-%02d", $0) }

    /// Stores for `instances` on one fresh database.
    static func replicas(_ instances: [String]) async throws -> [Replica] {
        let location = try await PostgresStores.freshLocation()
        var result: [Replica] = []
        for instance in instances { result.append(Replica(store: try await PostgresStores.open(location, instance: instance))) }
        return result
    }

    /// One replica's store.
    struct Replica: Sendable {
        let store: PostgresStateStore
        var instance: String { store.instance }

        func roundBlocking(_ sources: [String], ttl: TimeInterval) throws -> LeaseRound {
            try store.balanceLeases(sources: sources, ttl: ttl)
        }

        func round(_ sources: [String] = PostgresLeasesTests.sixty, ttl: TimeInterval = 60) async throws -> LeaseRound {
            try await offPool { try roundBlocking(sources, ttl: ttl) }
        }

        func commit(_ changes: StoreChanges) async throws {
            try await offPool { try store.commit(changes, at: StoreSamples.now) }
        }

        func leases() async throws -> [SourceLease] { try await offPool { try store.leases() } }
    }

    /// How many leases each of `replicas` holds, by the table.
    static func counts(_ replicas: [Replica]) async throws -> [Int] {
        let leases = try await replicas[0].leases()
        return replicas.map { replica in leases.filter { $0.holder == replica.instance }.count }
    }

    /// Rounds of every replica in turn until each holds `expected`; returns how many turns
    /// it took (at most `passes`, or one more when they never got there).
    static func roundsUntil(_ expected: [Int], _ replicas: [Replica], ttl: TimeInterval = 60, passes: Int = 4) async throws -> Int {
        for pass in 1...passes {
            for replica in replicas { _ = try await replica.round(ttl: ttl) }
            if try await counts(replicas) == expected { return pass }
        }
        return passes + 1
    }

    @Test func sourcesSpreadEvenlyOverTwoReplicasAndAgainWhenAThirdJoins() async throws {
        let replicas = try await Self.replicas(["a", "b", "c"])
        let (a, b, c) = (replicas[0], replicas[1], replicas[2])
        #expect(try await a.round().taken == Self.sixty, "alone, it takes every source")
        #expect(try await Self.roundsUntil([30, 30], [a, b]) <= 2)

        let joined = try await c.round()
        #expect(joined.held.isEmpty && joined.taken.isEmpty, "every source is held by a live replica")
        #expect(try await Self.roundsUntil([20, 20, 20], [a, b, c]) <= 2)
        let leases = try await a.leases()
        #expect(leases.map(\.source) == Self.sixty)
        for replica in replicas {
            let round = try await replica.round()
            #expect(round.taken.isEmpty && round.givenBack.isEmpty)
            let table = leases.filter { $0.holder == replica.instance }
            #expect(round.held.map(\.source) == table.map(\.source) && round.held.map(\.token) == table.map(\.token))
            #expect(round.held.allSatisfy { $0.expiresAt > round.at && $0.holder == replica.instance })
        }
    }

    @Test func aReplicaThatStopsRenewingLosesItsSourcesToTheOthersOnlyOnceItsLeasesExpire() async throws {
        let ttl: TimeInterval = 3
        let replicas = try await Self.replicas(["a", "b", "c"])
        let (a, b, c) = (replicas[0], replicas[1], replicas[2])
        // Spread with a long lease, so that a slow machine does not let one lapse meanwhile.
        #expect(try await Self.roundsUntil([20, 20, 20], replicas) <= 2)
        // c's last renewal, and a round of a and b while its leases are live (tried again
        // if this machine was too slow for that).
        var last = try await c.round(ttl: ttl)
        var rounds: [LeaseRound] = []
        for _ in 0..<10 {
            last = try await c.round(ttl: ttl)
            rounds = [try await a.round(ttl: ttl), try await b.round(ttl: ttl)]
            if rounds.allSatisfy({ round in last.held.allSatisfy { round.at < $0.expiresAt } }) { break }
        }
        #expect(last.held.count == 20)
        let expiry = Dictionary(uniqueKeysWithValues: last.held.map { ($0.source, $0.expiresAt) })
        #expect(rounds.allSatisfy { round in last.held.allSatisfy { round.at < $0.expiresAt } })

        // c stops; a and b go on until they hold everything (bounded).
        let deadline = Date().addingTimeInterval(30)
        while try await Self.counts([a, b]) != [30, 30], Date() < deadline {
            rounds.append(try await a.round(ttl: ttl))
            rounds.append(try await b.round(ttl: ttl))
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.counts(replicas) == [30, 30, 0])
        let takers = rounds.filter { !$0.taken.isEmpty }
        #expect(Set(takers.flatMap(\.taken)).isSuperset(of: expiry.keys))
        for round in takers {
            for source in round.taken where expiry[source] != nil {
                #expect(round.at >= expiry[source]!, "\(source) taken at \(round.at), before its lease lapsed")
            }
        }

        // c's commit for a source it lost writes nothing.
        let lost = try #require(last.held.first)
        let request = StoreSamples.tracked("1", source: lost.source)
        let refused = await #expect(throws: StoreError.self) {
            try await c.commit(StoreChanges(tracked: [request], leases: [lost.claim(ttl: ttl)]))
        }
        #expect(refused?.lostLease == lost.source)
        #expect(try await offPool { try c.store.loadTracked() }.isEmpty)
    }

    /// Every replica's round released at once, many times, over sources nobody holds yet:
    /// they all reach for the same first free sources.
    @Test func concurrentRoundsNeverGiveOneSourceTwoHolders() async throws {
        let replicas = try await Self.replicas((0..<4).map { "w\($0)" })
        var sources: [String] = []
        for iteration in 0..<25 {
            sources = (0..<60).map { String(format: "it%02d-shop-%02d", iteration, $0) }
            let batch = sources
            let rounds = try await offPool { try Self.atOnce(replicas) { try $0.roundBlocking(batch, ttl: 60) } }
            var holders: [String: [String]] = [:]
            for (replica, round) in zip(replicas, rounds) {
                #expect(round.held.allSatisfy { batch.contains($0.source) && $0.holder == replica.instance })
                for lease in round.held { holders[lease.source, default: []].append(replica.instance) }
            }
            let shared = holders.filter { $0.value.count > 1 }
            #expect(shared.isEmpty, "iteration \(iteration): \(shared)")
            if !shared.isEmpty { return }
        }
        // They end with every source held once, evenly.
        let batch = sources
        for _ in 0..<3 { _ = try await offPool { try Self.atOnce(replicas) { try $0.roundBlocking(batch, ttl: 60) } } }
        #expect(try await replicas[0].leases().map(\.source) == sources)
        #expect(try await Self.counts(replicas) == [15, 15, 15, 15])
    }

    @Test func aCommitUnderALeaseGivenBackOrTakenAgainWritesNothingAndSaysWhy() async throws {
        let replicas = try await Self.replicas(["a", "b"])
        let (a, b) = (replicas[0], replicas[1])
        let two = ["s1", "s2"]
        let first = try await a.round(two)
        let (s1, s2) = (first.held[0], first.held[1])
        _ = try await b.round(two)
        #expect(try await a.round(two).givenBack == ["s2"], "b is live: a keeps its share of one")
        #expect(try await b.round(two).taken == ["s2"])

        let changes = { (claim: LeaseClaim) in
            let request = StoreSamples.tracked("1", source: claim.source)
            return StoreChanges(
                tracked: [request], alerts: [AlertState(request: request.key, rule: "r", firings: 1)],
                events: [
                    AlertEvent(
                        id: "e-\(claim.token)", kind: .firing, rule: "r", severity: .critical, source: claim.source,
                        marketplace: .ozon, request: request.request, occurredAt: StoreSamples.now, message: "m", sinks: ["hook"])
                ],
                health: [SourceHealth(source: claim.source, marketplace: .ozon, lastPollAt: StoreSamples.now)], leases: [claim])
        }
        let refused = await #expect(throws: StoreError.self) { try await a.commit(changes(s2.claim(ttl: 60))) }
        #expect(refused?.lostLease == "s2")
        #expect(refused?.message.contains("replica 'a' no longer holds the lease on source 's2' ('b' holds it)") == true)
        let written = try await offPool {
            (try a.store.loadTracked(), try a.store.loadAlerts(), try a.store.outboxCounts(), try a.store.loadHealth())
        }
        #expect(written.0.isEmpty && written.1.isEmpty && written.2.isEmpty && written.3.isEmpty)

        // Its own lease renews in the commit.
        let before = try #require(try await a.leases().first { $0.source == "s1" })
        try await a.commit(changes(s1.claim(ttl: 600)))
        let after = try #require(try await a.leases().first { $0.source == "s1" })
        #expect(after.expiresAt > before.expiresAt && after.token == before.token && after.holder == "a")
        #expect(try await offPool { try a.store.loadTracked() }.map(\.request.source) == ["s1"])

        // b gives s2 back and a takes it again: a commit from a's earlier holding is still refused.
        #expect(try await b.round([]).givenBack == ["s2"])
        let again = try await a.round(["s1", "s2", "s3", "s4"])
        #expect(again.taken.contains("s2"))
        let refusedAgain = await #expect(throws: StoreError.self) { try await a.commit(changes(s2.claim(ttl: 60))) }
        #expect(refusedAgain?.message.contains("(this replica took it again since)") == true)
        let s2Again = try #require(again.held.first { $0.source == "s2" })
        try await a.commit(changes(s2Again.claim(ttl: 60)))
        #expect(try await offPool { try a.store.loadTracked() }.map(\.request.source).sorted() == ["s1", "s2"])
    }

    /// A commit under several leases renews them all, or, when one changed hands, writes
    /// nothing and renews none, naming the first lost one.
    @Test func aCommitUnderTwoClaimsOneOfThemLostWritesNothingAndNamesTheLostOne() async throws {
        let replicas = try await Self.replicas(["a", "b"])
        let (a, b) = (replicas[0], replicas[1])
        let four = ["s1", "s2", "s3", "s4"]
        let first = try await a.round(four)
        let claims = Dictionary(uniqueKeysWithValues: first.held.map { ($0.source, $0.claim(ttl: 600)) })
        _ = try await b.round(four)
        #expect(try await a.round(four).givenBack == ["s3", "s4"])
        #expect(try await b.round(four).taken == ["s3", "s4"])

        let before = try await a.leases()
        let requests = ["s1", "s2", "s3"].map { StoreSamples.tracked("1", source: $0) }
        let changes = { (leases: [LeaseClaim]) in
            StoreChanges(
                tracked: requests, alerts: requests.map { AlertState(request: $0.key, rule: "r", firings: 1) },
                health: requests.map { SourceHealth(source: $0.request.source, marketplace: .ozon) }, leases: leases)
        }
        let refused = await #expect(throws: StoreError.self) {
            try await a.commit(changes([claims["s1"]!, claims["s4"]!, claims["s3"]!]))
        }
        #expect(refused?.lostLease == "s4")
        #expect(refused?.message.contains("no longer holds the lease on source 's4' ('b' holds it)") == true)
        let written = try await offPool { (try a.store.loadTracked(), try a.store.loadAlerts(), try a.store.loadHealth()) }
        #expect(written.0.isEmpty && written.1.isEmpty && written.2.isEmpty)
        #expect(try await a.leases() == before, "s1's renewal went with the rest")

        try await a.commit(changes([claims["s1"]!, claims["s2"]!]))
        let after = try await a.leases()
        #expect(after.filter { ["s1", "s2"].contains($0.source) }.allSatisfy { lease in
            lease.holder == "a" && lease.expiresAt > before.first { $0.source == lease.source }!.expiresAt
        })
        #expect(Set(try await offPool { try a.store.loadTracked() }.map(\.request.source)) == ["s1", "s2", "s3"])
    }

    /// Sources whose names are prefixes of one another are leased, renewed and lost one by one.
    @Test func leasesOnSourcesNamedAsPrefixesOfOneAnotherAreRenewedAndLostEachAlone() async throws {
        let replicas = try await Self.replicas(["a", "b"])
        let (a, b) = (replicas[0], replicas[1])
        let sources = ["sho", "shop", "shop-2", "shop.", "shop-20"]
        let first = try await a.round(sources)
        #expect(first.held.count == 5)
        let claims = first.held.map { $0.claim(ttl: 600) }
        try await a.commit(StoreChanges(leases: claims))
        _ = try await b.round(sources)
        let second = try await a.round(sources)
        #expect(second.givenBack.count == 2)
        _ = try await b.round(sources)

        let lost = try #require(claims.first { second.givenBack.contains($0.source) })
        let kept = claims.filter { !second.givenBack.contains($0.source) }
        let refused = await #expect(throws: StoreError.self) { try await a.commit(StoreChanges(leases: kept + [lost])) }
        #expect(refused?.lostLease == lost.source)
        try await a.commit(StoreChanges(leases: kept))
    }

    /// A replica leaving for good lets go of its leases and its place among the live: the
    /// next round of another takes all it held, long before its leases would have lapsed.
    @Test func aReleasedReplicasSourcesAreTakenAtTheNextRoundOfAnother() async throws {
        let replicas = try await Self.replicas(["a", "b"])
        let (a, b) = (replicas[0], replicas[1])
        #expect(try await Self.roundsUntil([30, 30], replicas, ttl: 3600) <= 2)
        let held = try await a.leases().filter { $0.holder == "a" }

        try await offPool { try a.store.releaseLeases() }
        #expect(try await a.leases().allSatisfy { $0.holder == "b" })
        let round = try await b.round(ttl: 3600)
        #expect(round.taken == held.map(\.source))
        #expect(round.held.map(\.source) == Self.sixty)
        #expect(try await Self.counts(replicas) == [0, 60])

        // A commit made under a released lease writes nothing.
        let refused = await #expect(throws: StoreError.self) {
            try await a.commit(StoreChanges(tracked: [StoreSamples.tracked("1", source: held[0].source)], leases: [held[0].claim(ttl: 60)]))
        }
        #expect(refused?.lostLease == held[0].source)
        // Releasing again, or with nothing held, changes nothing.
        try await offPool { try a.store.releaseLeases() }
        #expect(try await Self.counts(replicas) == [0, 60])
    }

    @Test func aFreshDatabaseHasNoLeasesAndAReplicaWithNoSourcesHoldsNone() async throws {
        let replica = try await Self.replicas(["a"])[0]
        #expect(try await replica.leases().isEmpty)
        let round = try await replica.round([])
        #expect(round.held.isEmpty && round.taken.isEmpty && round.givenBack.isEmpty)
    }

    /// Runs `body` for each replica on a thread of its own, all released together (blocking).
    static func atOnce<T: Sendable>(_ replicas: [Replica], _ body: @escaping @Sendable (Replica) throws -> T) throws -> [T] {
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        for (index, replica) in replicas.enumerated() {
            done.enter()
            Thread {
                start.wait()
                let result = Result { try body(replica) }
                results.withLock { $0[index] = result }
                done.leave()
            }.start()
        }
        for _ in replicas { start.signal() }
        done.wait()
        return try results.withLock { all in try replicas.indices.map { try all[$0]!.get() } }
    }

    @Test func aSecondProcessUnderALiveReplicasInstanceIsRefusedAndCannotGiveItsLeasesBack() async throws {
        let location = try await PostgresStores.freshLocation()
        let running = try await offPool { try PostgresStateStore(location: location, instance: "web-1", process: "100-aa") }
        let copy = try await offPool { try PostgresStateStore(location: location, instance: "web-1", process: "200-bb") }
        let round = try await offPool { try running.balanceLeases(sources: Self.sixty, ttl: 60) }
        #expect(round.held.count == 60)

        for attempt in ["enroll", "round"] {
            let refused = await #expect(throws: StoreError.self, "\(attempt)") {
                try await offPool {
                    if attempt == "enroll" { try copy.enroll(ttl: 60) } else { _ = try copy.balanceLeases(sources: Self.sixty, ttl: 60) }
                }
            }
            #expect(
                refused?.description.contains("replica 'web-1' already runs in another process (seen ") == true,
                "\(refused?.description ?? "")")
            #expect(refused?.description.contains("give each replica its own CANCELWATCH_INSTANCE") == true)
        }
        try await offPool { try copy.releaseLeases() }
        #expect(try await offPool { try running.leases() }.filter { $0.holder == "web-1" }.count == 60)

        // The same process opening the store again (a reload) is the same replica; once the
        // first process's record is older than the TTL, another may take the name over.
        let reloaded = try await offPool { try PostgresStateStore(location: location, instance: "web-1", process: "100-aa") }
        try await offPool { try reloaded.enroll(ttl: 60) }
        _ = try await PostgresStores.query("UPDATE replicas SET seen_at = seen_at - 120", at: location)
        try await offPool { try copy.enroll(ttl: 60) }
    }

    /// A replica that loses power in the middle of a lease round leaves its transaction open
    /// (the server sees no close): the server ends it, and the others' rounds go on.
    @Test func aReplicaGoneInTheMiddleOfARoundDoesNotHoldTheOthersRoundsForLong() async throws {
        let location = try await PostgresStores.freshLocation()
        let survivor = Replica(store: try await PostgresStores.open(location, instance: "b"))
        let release = try await PostgresStores.holding(at: location, serverLimits: true) { (session) throws(StoreError) in
            try session.execute("SELECT pg_advisory_xact_lock(\(PostgresStateStore.leaseRoundLock))")
        }
        defer { release() }
        var round: LeaseRound?
        for _ in 0..<10 where round == nil {
            round = try? await survivor.round(ttl: 60)
        }
        #expect(round?.held.count == 60)
    }

    /// A replica cut off from the database past its TTL, and a second process started under
    /// its instance id meanwhile: when the first is back, its commits under the old leases
    /// are refused, its rounds say it was supplanted, and it never takes the second's
    /// outbox claims for its own.
    @Test func aReplicaSupplantedWhileCutOffWritesNothingAndTakesNoneOfTheNewProcesssClaims() async throws {
        let location = try await PostgresStores.freshLocation()
        let first = try await offPool { try PostgresStateStore(location: location, instance: "web-1", process: "100-aa") }
        let second = try await offPool { try PostgresStateStore(location: location, instance: "web-1", process: "200-bb") }
        let held = try await offPool { try first.balanceLeases(sources: Self.sixty, ttl: 60) }.held
        try await offPool { try first.commit(alerts: [], events: StateStoreContractTests.events(2), health: nil, at: StoreSamples.now) }

        // Cut off for longer than the TTL: the second process enrolls and claims the outbox.
        _ = try await PostgresStores.query("UPDATE replicas SET seen_at = seen_at - 120", at: location)
        try await offPool { try second.enroll(ttl: 60) }
        let claimed = try await offPool { try second.dueDeliveries(sink: "hook", now: StoreSamples.now, limit: 10, claim: 600) }
        #expect(claimed.deliveries.count == 2)

        let refused = await #expect(throws: StoreError.self) {
            try await offPool {
                try first.commit(
                    StoreChanges(tracked: [StoreSamples.tracked("1", source: held[0].source)], leases: [held[0].claim(ttl: 60)]),
                    at: StoreSamples.now)
            }
        }
        #expect(refused?.lostLease == held[0].source)
        let round = await #expect(throws: StoreError.self) { try await offPool { try first.balanceLeases(sources: Self.sixty, ttl: 60) } }
        #expect(round?.supplanted == true)
        #expect(try await offPool { try first.dueDeliveries(sink: "hook", now: StoreSamples.now, limit: 10, claim: 600) }.deliveries.isEmpty)
    }
}
