import CancelWatch
import CancelWatchTesting
import Foundation
import MarketSim
import Testing

/// `kill -9` at several points, then start again: no event recorded as delivered is
/// sent again, no due event is lost, no tracked request is forgotten. SIGTERM and
/// SIGINT with a delivery in flight. A corrupt state file is reported, never replaced.
@Suite struct RestartTests {
    func addOzonRequest(_ setup: WatchSetup, hours: Double = 5) throws {
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-120), deadline: .relative(hours * 3600)))
    }

    @Test func killedMidPollItStartsAgainWithoutResendingAndFindsWhatAppearedMeanwhile() async throws {
        let setup = try WatchSetup(ozon: 3, red: 2)
        defer { setup.shutdown() }
        var ledger = DeliveryLedger()
        let first = try setup.startRun()
        let initial = try setup.dueFirings()
        try await eventually("the first firings recorded delivered\n\(first.stderr)") { try setup.deliveredIDs() == initial }

        // The next poll hangs (answers slower than any timeout); a new request is waiting in it.
        try setup.simulator.addFault(SimFault(.slow(seconds: 60), marketplace: .ozon, times: nil))
        try addOzonRequest(setup)
        try setup.simulator.resetRequestCounts()
        try await eventually("a poll in flight") {
            try setup.simulator.requestCount(path: OzonClient.listPath, account: E2EAccounts.ozonClientID) > 0
        }
        try await first.killHard()
        try ledger.checkpoint(setup)
        try setup.simulator.clearFaults()

        let second = try setup.startRun()
        let due = try setup.dueFirings()
        #expect(due.count == 6)
        try await eventually("every firing after the restart\n\(second.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }
        try await Task.sleep(for: .seconds(2))
        ledger.expectAtLeastOnceWithoutRepeats(setup.receiver, due: due)
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 })
        #expect(try await setup.statusOrders() == setup.pendingOrders())
        #expect(try await second.stop() == 0, "\(second.stderr)")
    }

    @Test func killedMidDeliveryTheUnrecordedEventComesAgainWithTheSameIDAndNothingElseDoes() async throws {
        // A sink timeout no loaded machine reaches: an acknowledgement the receiver counts but the
        // sender timed out on would come a third time, rightly, and this test counts exactly two.
        let setup = try WatchSetup(ozon: 3, red: 2, options: WatchOptions(sinkTimeout: "60s"))
        defer { setup.shutdown() }
        var ledger = DeliveryLedger()
        setup.receiver.setMode(.hold)
        let first = try setup.startRun()
        try await eventually("a delivery held open\n\(first.stderr)") { setup.receiver.holding > 0 }
        try await first.killHard()
        // The receiver acknowledges after the sender died: that acknowledgement is lost.
        setup.receiver.release(with: 200)
        try await eventually("the held request answered") { setup.receiver.holding == 0 }
        try ledger.checkpoint(setup)
        let lost = try #require(setup.receiver.acknowledged.first)
        #expect(try !setup.deliveredIDs().contains(lost))
        setup.receiver.setMode(.accept)

        let second = try setup.startRun()
        let due = try setup.dueFirings()
        try await eventually("every firing after the restart\n\(second.stderr)") {
            Set(setup.receiver.acknowledged.dropFirst()).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(2))
        ledger.expectAtLeastOnceWithoutRepeats(setup.receiver, due: due)
        // At least once: the event whose acknowledgement was lost came again, with the same id.
        #expect(setup.receiver.acknowledged.filter { $0 == lost }.count == 2)
        #expect(try await setup.statusOrders() == setup.pendingOrders())
        #expect(try await second.stop() == 0, "\(second.stderr)")
    }

    /// Killed at seeded random moments (starting up, polling, between the poll's commit
    /// and the delivery, delivering) while requests appear and get resolved.
    @Test func killedAtRandomMomentsNoEventIsLostOrSentAgainAfterItWasRecorded() async throws {
        let setup = try WatchSetup(ozon: 2, red: 2)
        defer { setup.shutdown() }
        var ledger = DeliveryLedger()
        var random = SeededGenerator(seed: 20_261_125)
        var resolved: [SimRequestInfo] = []
        for round in 0..<5 {
            let run = try setup.startRun()
            try await Task.sleep(for: .milliseconds(200 + Int(random.next() % 1800)))
            try await run.killHard()
            try ledger.checkpoint(setup)
            try addOzonRequest(setup, hours: 5 + Double(round))
            // Resolve a request whose firing is known to be delivered: its `resolved` is due.
            let delivered = try setup.deliveredIDs()
            let candidates = try setup.pendingRequests().filter { $0.marketplace == .ozon }
            if let candidate = try candidates.first(where: { delivered.contains(try setup.dueFirings(of: [$0]).first!) }) {
                #expect(try setup.simulator.resolve(.ozon, id: candidate.id, outcome: .approved))
                resolved.append(candidate)
            }
        }
        let last = try setup.startRun()
        let closing = resolved.map {
            AlertEvent.makeID(
                source: "ozon", request: WatchSetup.requestID(of: $0), rule: "pending", kind: .resolved, occurrence: 1)
        }
        let due = try setup.dueFirings(of: (try setup.pendingRequests()) + resolved).union(closing)
        try await eventually("every due event after the last start\n\(last.stderr)", timeout: 90) {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(2))
        ledger.expectAtLeastOnceWithoutRepeats(setup.receiver, due: due)
        #expect(try await setup.statusOrders() == setup.pendingOrders())
        #expect(try await last.stop() == 0, "\(last.stderr)")
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalWithADeliveryInFlightExitsZeroAndTheDeliveryFinishesOrArrivesAfterRestart(_ signal: Int32) async throws {
        var options = WatchOptions()
        // With SIGTERM the test answers the held delivery, so only that answer may end it: a
        // timeout beyond every wait of this test (a loaded full run took 8 s from the hold to
        // the signal, and a 10 s timeout ended the delivery before the answer). With SIGINT
        // nobody answers: the delivery times out and stays in the outbox.
        options.sinkTimeout = signal == SIGTERM ? "600s" : "10s"
        let setup = try WatchSetup(ozon: 2, red: 1, options: options)
        defer { setup.shutdown() }
        var ledger = DeliveryLedger()
        setup.receiver.setMode(.hold)
        let first = try setup.startRun()
        try await eventually("a delivery held open\n\(first.stderr)") { setup.receiver.holding > 0 }
        kill(first.process.processIdentifier, signal)
        if signal == SIGTERM {
            // The receiver answers while the watcher is stopping: that delivery finishes.
            try await Task.sleep(for: .milliseconds(500))
            setup.receiver.release(with: 200)
        }
        // Bounded: the sink's timeout and some slack on a loaded machine.
        let status = try await first.wait(timeout: 30)
        #expect(status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("stopped"))
        setup.receiver.release(with: 503)
        try ledger.checkpoint(setup)
        if signal == SIGTERM {
            let finished = try #require(
                setup.receiver.acknowledged.first,
                "receipts: \(setup.receiver.allReceipts.map { "\($0.event) \($0.status)" })\n\(first.stderr)")
            #expect(try setup.deliveredIDs().contains(finished), "the delivery that finished was not recorded\n\(first.stderr)")
        } else {
            #expect(setup.receiver.acknowledged.isEmpty)
            #expect(try setup.outbox().contains { $0.status == "pending" }, "the in-flight delivery left the outbox")
        }
        setup.receiver.setMode(.accept)

        let second = try setup.startRun()
        let due = try setup.dueFirings()
        try await eventually("every firing after the restart\n\(second.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }
        try await Task.sleep(for: .seconds(2))
        ledger.expectAtLeastOnceWithoutRepeats(setup.receiver, due: due)
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 })
        #expect(try await second.stop(signal: signal) == 0, "\(second.stderr)")
    }

    @Test func aCorruptStateFileIsReportedNamingItAndIsNeverReplaced() async throws {
        let setup = try WatchSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        var garbage = Data("this is not a cancelwatch state file\n".utf8)
        var random = SeededGenerator(seed: 7)
        for _ in 0..<8192 { garbage.append(UInt8(truncatingIfNeeded: random.next())) }
        try garbage.write(to: URL(fileURLWithPath: setup.statePath))

        for arguments in [["once"], ["status"], ["run"]] {
            let result = try await setup.capture(arguments + ["--config", setup.configPath], timeout: 30)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(setup.statePath), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("corrupt") || result.stderr.contains("not a cancelwatch state file"), "\(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: setup.statePath)) == garbage, "\(arguments) changed the file")
        }
        #expect(setup.receiver.allReceipts.isEmpty)
    }

    @Test func aStateFileCutShortIsReportedAndLeftAsItIs() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let once = try await setup.capture(["once", "--config", setup.configPath])
        #expect(once.status == 0, "\(once.stderr)")
        // Checkpoint the WAL into the main file, then cut the file in half.
        _ = try StateFileReader.rows(setup.statePath, "PRAGMA wal_checkpoint(TRUNCATE)", write: true)
        var data = try Data(contentsOf: URL(fileURLWithPath: setup.statePath))
        data = data.prefix(data.count / 2)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: setup.statePath + suffix) }
        try data.write(to: URL(fileURLWithPath: setup.statePath))
        for arguments in [["once"], ["status"]] {
            let result = try await setup.capture(arguments + ["--config", setup.configPath], timeout: 30)
            #expect(result.status == 1, "\(arguments): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains(setup.statePath), "\(arguments): \(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: setup.statePath)) == data, "\(arguments) changed the file")
        }
    }
}
