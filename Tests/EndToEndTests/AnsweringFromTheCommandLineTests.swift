@testable import CancelWatch
import Foundation
import MarketSim
import Testing
import TestServers

/// `cancelwatch approve` and `refuse` with the real binary against the simulator, beside a
/// running watcher: the marketplace changes, the watcher's next listing resolves the request
/// and its `resolved` event names who answered; nothing is answered twice.
@Suite struct AnsweringFromTheCommandLineTests {
    /// A watcher running on one request of each marketplace, each fired at the receiver.
    func watching() async throws -> (WatchSetup, RunningCommand) {
        let setup = try WatchSetup(ozon: 1, red: 1)
        let run = try setup.startRun()
        try await eventually("both requests fired\n\(run.stderr)", timeout: 60) {
            setup.receiver.acknowledgedReceipts.filter { $0.event == "firing" }.count == 2
        }
        return (setup, run)
    }

    func pending(_ setup: WatchSetup, _ marketplace: SimMarketplace) throws -> SimRequestInfo {
        try #require(try setup.pendingRequests().first { $0.marketplace == marketplace })
    }

    @Test(arguments: [(SimMarketplace.ozon, Decision.approve), (.ozon, .refuse), (.red, .approve), (.red, .refuse)])
    func anAnswerFromTheCommandLineChangesTheMarketplaceAndTheResolvedEventNamesTheUser(
        _ marketplace: SimMarketplace, _ decision: Decision
    ) async throws {
        let (setup, run) = try await watching()
        defer { setup.shutdown() }
        let request = try pending(setup, marketplace)
        let source = WatchSetup.source(of: request)
        let id = WatchSetup.requestID(of: request)
        let arguments = [decision.rawValue, source, id, "--config", setup.configPath, "--yes"]
            + (decision == .refuse ? ["--comment", "the parcel has left"] : [])
        let answered = try await setup.capture(arguments)
        #expect(answered.status == 0, "\(answered.stderr)")
        let word = decision == .approve ? "approved" : "refused"
        #expect(answered.stdout.contains("\(source) request \(id) (order \(request.order)): \(word)"), "\(answered.stdout)")
        let state = try #require(try setup.simulator.requests().first { $0.simID == request.simID }?.state)
        #expect(state == decision.outcome.rawValue)

        // The watcher's next listing resolves it, naming who answered.
        try await eventually("the resolved event\n\(run.stderr)", timeout: 60) {
            setup.receiver.acknowledgedReceipts.contains { $0.event == "resolved" && $0.requestID == id }
        }
        let resolved = try #require(setup.receiver.acknowledgedReceipts.first { $0.event == "resolved" && $0.requestID == id })
        let body = try #require(try JSONSerialization.jsonObject(with: Data(resolved.body.utf8)) as? [String: Any])
        #expect(body["outcome"] as? String == decision.outcome.rawValue)
        #expect(body["actor"] as? String == "cli:\(AnswerCLIUser.name)", "\(resolved.body)")

        // A second answer, either way, is never sent.
        let again = try await setup.capture(["approve", source, id, "--config", setup.configPath, "--yes"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("answered it before"), "\(again.stderr)")
        #expect(setup.receiver.acknowledgedReceipts.filter { $0.event == "resolved" && $0.requestID == id }.count == 1)
    }

    @Test func withoutATerminalAndWithoutYesNothingIsAnsweredAndBadInputIsNamed() async throws {
        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        _ = try await setup.command(["once", "--config", setup.configPath])
        let request = try pending(setup, .ozon)
        let refused = try await setup.capture(["approve", "ozon", request.id, "--config", setup.configPath])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("no terminal to confirm on; add --yes"), "\(refused.stderr)")

        let noSource = try await setup.capture(["approve", "ozn", request.id, "--config", setup.configPath, "--yes"])
        #expect(noSource.status == 1 && noSource.stderr.contains("no source named 'ozn' in the config (sources: ozon, red)"), "\(noSource.stderr)")
        let noRequest = try await setup.capture(["approve", "ozon", "999999999", "--config", setup.configPath, "--yes"])
        #expect(noRequest.status == 1 && noRequest.stderr.contains("ozon request 999999999: not answered: no such request"), "\(noRequest.stderr)")
        let noComment = try await setup.capture(["refuse", "ozon", request.id, "--config", setup.configPath, "--yes", "--comment", ""])
        #expect(noComment.status == 1 && noComment.stderr.contains("a refusal needs a comment"), "\(noComment.stderr)")
        #expect(try setup.pendingRequests().contains { $0.simID == request.simID }, "still pending")
    }

    /// The simulator applies the answer, then holds its reply past the client's timeout:
    /// the outcome is unknown, the answer is not sent again, and the next listing tells.
    @Test func anAnswerAppliedButUnansweredIsReportedUnknownNeverSentAgainAndTheListingTells() async throws {
        let setup = try WatchSetup(ozon: 1, red: 0, options: WatchOptions(sourceTimeout: "2s", red: false))
        defer { setup.shutdown() }
        _ = try await setup.command(["once", "--config", setup.configPath])
        let request = try pending(setup, .ozon)
        _ = try setup.simulator.addFault(SimFault(.slow(seconds: 30), path: "/v2/conditional-cancellation/approve", times: nil))
        let first = try await setup.capture(["approve", "ozon", request.id, "--config", setup.configPath, "--yes"])
        #expect(first.status == 1)
        #expect(first.stderr.contains("outcome is unknown") && first.stderr.contains("will not be sent again"), "\(first.stderr)")
        #expect(try setup.simulator.requestCount(path: "/v2/conditional-cancellation/approve") == 1)
        #expect(try setup.simulator.requests().first { $0.simID == request.simID }?.state == "approved")

        let second = try await setup.capture(["approve", "ozon", request.id, "--config", setup.configPath, "--yes"])
        #expect(second.status == 1 && second.stderr.contains("answered it before"), "\(second.stderr)")
        #expect(try setup.simulator.requestCount(path: "/v2/conditional-cancellation/approve") == 1, "answered once")

        _ = try await setup.command(["once", "--config", setup.configPath])
        let status = try await setup.capture(["status", "--config", setup.configPath, "--format", "json"])
        #expect(!status.stdout.contains("\"id\":\"\(request.id)\""), "no longer pending:\n\(status.stdout)")
    }
}

/// The user the tests run as, as the command line names it.
enum AnswerCLIUser {
    static var name: String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid \(geteuid())"
    }
}
