import CancelWatchTesting
import Foundation
import HTTPServing
import MarketSim
import Testing

@testable import CancelWatch

/// The clients' answer calls against the simulator on loopback (a manual clock shared by both
/// sides): what the marketplace takes, refuses, and what a later listing shows.
@Suite struct AnswerCallsAgainstSimulatorTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_000))
    let transport = CurlHTTPTransport(threads: 2)

    func ozon(_ sim: MarketSimulator, timeout: TimeInterval = 30) -> OzonClient {
        OzonClient(
            account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k", timeout: timeout),
            transport: transport, clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
    }

    func red(_ sim: MarketSimulator) -> RedClient {
        RedClient(
            account: RedAccount(source: "red-shop", baseURL: sim.baseURL, appKey: "ak", appSecret: "sec", logistics: ["red_auto", "red_box"]),
            transport: transport, clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
    }

    static func approve() throws -> Answer { try Answer(.approve) }
    static func refuse(_ comment: String = "already shipped") throws -> Answer { try Answer(.refuse, comment: comment) }

    /// A request the simulator lists nowhere (or no longer as pending), as the caller would name it.
    func request(_ marketplace: Marketplace, id: String, order: String) -> CancellationRequest {
        CancellationRequest(
            marketplace: marketplace, source: marketplace == .ozon ? "ozon-main" : "red-shop", id: id, order: order, state: .pending,
            rawState: "", deadline: clock.now().addingTimeInterval(60))
    }

    func state(_ sim: MarketSimulator, _ marketplace: SimMarketplace, _ id: String) -> String? {
        sim.requests().last { $0.marketplace == marketplace && $0.id == id && $0.state != "hidden" }?.state
    }

    @Test func ozonTakesAnApprovalAndARefusalAndTheNextListingShowsThemDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = ozon(sim)
            let pending = try await client.fetchPending().requests
            let approved = try #require(pending.first { $0.id == "11" })
            let refused = try #require(pending.first { $0.id == "12" })
            #expect(await client.answer(approved, with: try Self.approve()) == .accepted)
            #expect(await client.answer(refused, with: try Self.refuse()) == .accepted)
            #expect(sim.requestCount(method: "POST", path: OzonClient.approvePath) == 1)
            #expect(sim.requestCount(method: "POST", path: OzonClient.rejectPath) == 1)

            let after = try await client.fetchPending().requests.map(\.id)
            #expect(!after.contains("11") && !after.contains("12"))
            let outcomes = try await client.lookupOutcomes(of: [approved, refused])
            #expect(outcomes[approved.key] == .resolved(.approved, at: clock.now()))
            #expect(outcomes[refused.key] == .resolved(.rejected, at: clock.now()))
        }
    }

    @Test func redTakesAnApprovalAndARefusalAndTheNextListingShowsThemDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = red(sim)
            let pending = try await client.fetchPending().requests
            let approved = try #require(pending.first { $0.order == "P1" })
            let refused = try #require(pending.first { $0.order == "P2" })
            #expect(await client.answer(approved, with: try Self.approve()) == .accepted)
            #expect(await client.answer(refused, with: try Self.refuse("已发货")) == .accepted)
            #expect(sim.requestCount(method: "PUT", path: RedClient.auditPath) == 2)

            let after = try await client.fetchPending().requests.map(\.order)
            #expect(!after.contains("P1") && !after.contains("P2"))
            let outcomes = try await client.lookupOutcomes(of: [approved, refused])
            let now = Date(timeIntervalSince1970: clock.now().timeIntervalSince1970.rounded(.down))
            #expect(outcomes[approved.key] == .resolved(.approved, at: now))
            #expect(outcomes[refused.key] == .resolved(.rejected, at: now))
        }
    }

    @Test func anUnknownRequestIsRefusedAsUnknownAndAnIDThatIsNoCancellationIDIsNeverSent() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(request(.ozon, id: "999", order: "x"), with: try Self.approve())
            else { Issue.record("Ozon took an unknown id"); return }
            #expect(ozonRefusal.kind == .unknownRequest)
            #expect(ozonRefusal.status == 404 && ozonRefusal.code == "5")

            for id in ["abc", "", "-5", "+5", "007", "99999999999999999999", "1 2"] {
                guard case .refused(let refusal) = await ozon(sim).answer(request(.ozon, id: id, order: "x"), with: try Self.approve())
                else { Issue.record("'\(id)' was not refused"); continue }
                #expect(refusal.kind == .unknownRequest, "\(id)")
                #expect(refusal.message.hasPrefix("not sent"), "\(refusal.message)")
            }
            #expect(sim.requestCount(path: OzonClient.approvePath) == 1, "only the numeric id was sent")

            guard case .refused(let redRefusal) = await red(sim).answer(request(.xiaohongshu, id: "P404@1", order: "P404"), with: try Self.approve())
            else { Issue.record("RED took an unknown package"); return }
            #expect(redRefusal.kind == .unknownRequest)
            #expect(redRefusal.code == "-2000101")
        }
    }

    @Test func aRequestDecidedAlreadyIsRefusedAsAlreadyDecided() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(request(.ozon, id: "13", order: "1111-0003-1"), with: try Self.approve())
            else { Issue.record("Ozon took a decided request"); return }
            #expect(ozonRefusal.kind == .alreadyDecided)
            #expect(ozonRefusal.status == 400 && ozonRefusal.code == "9")
            #expect(state(sim, .ozon, "13") == "rejected")

            let client = red(sim)
            let p1 = try #require(try await client.fetchPending().requests.first { $0.order == "P1" })
            #expect(await client.answer(p1, with: try Self.refuse()) == .accepted)
            guard case .refused(let redRefusal) = await client.answer(p1, with: try Self.approve())
            else { Issue.record("RED took a decided package"); return }
            #expect(redRefusal.kind == .alreadyDecided)
            #expect(redRefusal.code == "-2000202")
            #expect(state(sim, .red, "P1") == "rejected")
        }
    }

    @Test func aRequestPastItsDeadlineIsRefusedAsDeadlinePassed() async throws {
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let ozonRequest = try #require(try await ozon(sim).fetchPending().requests.first { $0.id == "11" })
            let redRequest = try #require(try await red(sim).fetchPending().requests.first { $0.order == "P2" })
            clock.advance(by: 121)
            guard case .refused(let ozonRefusal) = await ozon(sim).answer(ozonRequest, with: try Self.refuse())
            else { Issue.record("Ozon took a request past its deadline"); return }
            #expect(ozonRefusal.kind == .deadlinePassed)
            #expect(ozonRefusal.status == 409)
            guard case .refused(let redRefusal) = await red(sim).answer(redRequest, with: try Self.refuse())
            else { Issue.record("RED took a package past its audit time"); return }
            #expect(redRefusal.kind == .deadlinePassed)
            #expect(redRefusal.code == "-2000202")
        }
    }

    @Test func anAnswerWhoseConnectionDropsAfterItWasAppliedIsUnknownAndSentOnce() async throws {
        // One curl handle: the answer follows a listing on the same transport, whose connection
        // is kept alive. curl resends a request whose reused connection closes unanswered; an
        // answer goes on a connection of its own, so it is not sent again.
        let transport = CurlHTTPTransport(threads: 1)
        let sim = try MarketSimulator(scenario: smallScenario(), clock: clock)
        try await sim.serving {
            let client = OzonClient(
                account: OzonAccount(source: "ozon-main", baseURL: sim.baseURL, clientID: "500", apiKey: "k"), transport: transport,
                clock: clock, retry: RetryPolicy(maxAttempts: 3, initialDelay: 0.001, maxDelay: 0.001))
            let request = try #require(try await client.fetchPending().requests.first { $0.id == "11" })
            sim.addFault(SimFault(.dropConnection, marketplace: .ozon, path: OzonClient.approvePath))
            guard case .unknown(let reason) = await client.answer(request, with: try Self.approve())
            else { Issue.record("a dropped answer was taken as known"); return }
            #expect(reason.contains(AnswerOutcome.mayHaveApplied), "\(reason)")
            #expect(sim.requestCount(path: OzonClient.approvePath) == 1)
            #expect(state(sim, .ozon, "11") == "approved")
        }
    }
}
