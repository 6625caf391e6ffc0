import Foundation
import MarketSim
import Testing

@testable import CancelWatch

/// Both clients against the simulator on loopback, time on a manual clock shared by both sides.
@Suite struct ClientsAgainstSimulatorTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_000))
    let transport = CurlHTTPTransport(threads: 2)
    let fastRetry = RetryPolicy(maxAttempts: 4, initialDelay: 0.001, maxDelay: 0.001)

    /// `clientClock`: a client that retries sleeps on it, so fault tests hand it the system
    /// clock (the simulator's manual clock never moves on its own).
    func ozon(
        _ sim: MarketSimulator, clientID: String = "100001", key: String = "sim-ozon-key-1", source: String = "ozon-main",
        clientClock: WatchClock? = nil
    ) -> OzonClient {
        OzonClient(
            account: OzonAccount(source: source, baseURL: sim.baseURL, clientID: clientID, apiKey: key), transport: transport,
            clock: clientClock ?? clock, retry: fastRetry)
    }

    func red(_ sim: MarketSimulator, secret: String = "sim-red-secret") -> RedClient {
        RedClient(
            account: RedAccount(
                source: "red-shop", baseURL: sim.baseURL, appKey: "sim-red-key", appSecret: secret,
                logistics: ["red_auto", "red_box"], pageSize: 20),
            transport: transport, clock: clock, retry: fastRetry)
    }

    func pending(_ sim: MarketSimulator, _ marketplace: SimMarketplace, account: String) -> [SimRequestInfo] {
        sim.requests().filter { $0.marketplace == marketplace && $0.account == account && $0.state == "pending" }
    }

    @Test func ozonClientFetchesEveryPendingRequestAcrossPagesWithExactDeadlines() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        for (clientID, key) in [("100001", "sim-ozon-key-1"), ("100002", "sim-ozon-key-2")] {
            let snapshot = try await ozon(sim, clientID: clientID, key: key).fetchPending()
            let expected = pending(sim, .ozon, account: clientID)
            #expect(snapshot.requests.count == expected.count)
            let byID = Dictionary(uniqueKeysWithValues: snapshot.requests.map { ($0.id, $0) })
            for request in expected {
                let tracked = try #require(byID[request.id], "\(request.id) missing")
                #expect(abs(tracked.deadline.timeIntervalSince(request.deadline)) < 0.001)
                #expect(tracked.order == request.order)
            }
        }
        #expect(pending(sim, .ozon, account: "100002").count > 500)
        #expect(sim.requestCount(path: OzonClient.listPath, account: "100002") >= 2)
    }

    @Test func redClientComputesDeadlinesFromMaxAuditTimeAndSignsEveryPage() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let snapshot = try await red(sim).fetchPending()
        let expected = pending(sim, .red, account: "sim-red-key")
        #expect(snapshot.requests.count == expected.count)
        #expect(expected.count > 20)  // more than one page of 20
        for request in expected {
            let tracked = snapshot.requests.filter { $0.order == request.order }
            #expect(!tracked.isEmpty, "\(request.order) missing")
            // The clock does not move while the simulator answers: send time + time left is the deadline.
            #expect(tracked.contains { abs($0.deadline.timeIntervalSince(request.deadline)) < 0.002 })
        }
    }

    @Test func aWrongSecretIsAnAuthenticationErrorNamingTheSource() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let error = await #expect(throws: PollError.self) { try await red(sim, secret: "not-it").fetchPending() }
        #expect(error?.kind == .auth)
        #expect(error?.description.contains("red-shop") == true)
        #expect(error?.description.contains("not-it") == false)
        let ozonError = await #expect(throws: PollError.self) { try await ozon(sim, key: "wrong").fetchPending() }
        #expect(ozonError?.kind == .auth)
        #expect(ozonError?.status == 403)
    }

    @Test func outcomesAreLookedUpAfterRequestsLeaveTheList() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        var tracker = LedgerStorage()
        let client = ozon(sim)
        _ = tracker.apply(snapshot: try await client.fetchPending(), outcomes: [:], source: "ozon-main", now: clock.now())
        // Let the scenario's first minute pass: the seller decides some, one vanishes.
        clock.advance(by: 65)
        let missing = tracker.missing(from: try await client.fetchPending(), source: "ozon-main")
        #expect(!missing.isEmpty)
        var seen: [String: Outcome] = [:]
        // Two listings: approvals and rejections come with the first, a vanished request
        // only with the second (a paged listing can miss an item once).
        for _ in 0..<2 {
            let snapshot = try await client.fetchPending()
            let missing = tracker.missing(from: snapshot, source: "ozon-main")
            let outcomes = try await client.lookupOutcomes(of: missing)
            for change in tracker.apply(snapshot: snapshot, outcomes: outcomes, source: "ozon-main", now: clock.now()) {
                if case .resolved(let tracked, let outcome) = change { seen[tracked.request.id] = outcome }
            }
        }
        let left = missing.map(\.id)
        for request in sim.requests() where request.marketplace == .ozon && request.account == "100001" && left.contains(request.id) {
            switch request.state {
            case "approved": #expect(seen[request.id] == .approved, "\(request.id)")
            case "rejected": #expect(seen[request.id] == .rejected, "\(request.id)")
            case "pending": #expect(seen[request.id] == nil, "\(request.id) is still pending")
            default: #expect(seen[request.id] == .vanished, "\(request.id) is \(request.state)")
            }
        }
        #expect(Set(seen.values) == [.approved, .rejected, .vanished], "the first minute decides requests every way: \(seen)")
    }

    @Test func redOutcomesAreLookedUpInBothListsAfterRequestsLeaveThePendingList() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        var tracker = LedgerStorage()
        let client = red(sim)
        _ = tracker.apply(snapshot: try await client.fetchPending(), outcomes: [:], source: "red-shop", now: clock.now())
        clock.advance(by: 65)
        let snapshot = try await client.fetchPending()
        #expect(snapshot.complete && snapshot.skippedIDs.isEmpty)
        let missing = tracker.missing(from: snapshot, source: "red-shop")
        #expect(!missing.isEmpty)
        // Asked about requests that are still pending too (a lagging list), it says so.
        let stillListed = Array(snapshot.requests.prefix(3))
        let outcomes = try await client.lookupOutcomes(of: missing + stillListed)
        for request in stillListed {
            guard case .stillPending(let again)? = outcomes[request.key] else {
                Issue.record("\(request.id): \(String(describing: outcomes[request.key]))")
                continue
            }
            #expect(abs(again.deadline.timeIntervalSince(request.deadline)) < 0.002)
        }
        var seen: [String: Outcome] = [:]
        for request in missing {
            guard case .resolved(let outcome, _)? = outcomes[request.key] else {
                Issue.record("\(request.id) left the list and was not resolved: \(String(describing: outcomes[request.key]))")
                continue
            }
            seen[request.order] = outcome
        }
        for request in sim.requests() where request.marketplace == .red && request.account == "sim-red-key" {
            guard let outcome = seen[request.order] else { continue }
            switch request.state {
            case "approved": #expect(outcome == .approved, "\(request.order)")
            case "rejected": #expect(outcome == .rejected, "\(request.order)")
            default: #expect(outcome == .vanished, "\(request.order) is \(request.state)")
            }
        }
    }

    @Test(arguments: [
        SimFault.Kind.rateLimited(retryAfter: 0), .rateLimited(retryAfter: nil), .serverError(status: 503), .malformedJSON,
        .truncatedBody, .counterAsString, .unknownFields, .repeatedPage,
    ])
    func ozonClientSurvivesEachFaultAndStillSeesEveryRequest(_ fault: SimFault.Kind) async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        let expected = pending(sim, .ozon, account: "100002").count
        _ = sim.addFault(SimFault(fault, marketplace: .ozon, times: 1))
        let client = ozon(sim, clientID: "100002", key: "sim-ozon-key-2", source: "ozon-bulk", clientClock: SystemClock())
        let snapshot: PendingSnapshot
        if case .repeatedPage = fault {
            // The cursor is ignored once: the pager notices no progress and stops; the next poll is whole.
            _ = try await client.fetchPending()
            snapshot = try await client.fetchPending()
        } else {
            snapshot = try await client.fetchPending()
        }
        #expect(snapshot.requests.count == expected)
    }

    /// The simulator's stuck cursor answers the `last_id` it was sent: 0 after a full first page.
    @Test func aLastIDThatDoesNotAdvanceStopsThePagerWithAWarning() async throws {
        let sim = try MarketSimulator(clock: clock)
        defer { sim.shutdown() }
        _ = sim.addFault(SimFault(.stuckLastID, marketplace: .ozon, times: nil))
        let snapshot = try await ozon(
            sim, clientID: "100002", key: "sim-ozon-key-2", source: "ozon-bulk", clientClock: SystemClock()
        ).fetchPending()
        #expect(snapshot.warnings.contains { $0.contains("ended with last_id 0") }, "\(snapshot.warnings)")
        #expect(snapshot.requests.count == 500)
        #expect(sim.requestCount(path: OzonClient.listPath, account: "100002") <= 3)
    }
}
