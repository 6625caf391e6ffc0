import CancelWatch
import Foundation
import MarketSim
import Testing

/// One state file, one watcher: a second `run` or a `once` on a state file a `run` holds
/// is refused at once, naming the file and the holder's pid; the lock dies with its
/// holder, `kill -9` included. Two watchers started together deliver each alert once.
@Suite struct TwoWatchersTests {
    @Test func aSecondRunAndAOnceAreRefusedNamingTheFileAndThePidAndAKilledHolderLetsANewRunStart() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let first = try setup.startRun()
        let due = try setup.dueFirings()
        try await eventually("the first run delivered its firings\n\(first.stderr)") { try setup.deliveredIDs() == due }
        let pid = "pid \(first.process.processIdentifier)"

        let second = try setup.startRun()
        let secondStatus = try await second.wait(timeout: 30)
        #expect(secondStatus != 0)
        #expect(second.stderr.contains(setup.statePath) && second.stderr.contains(pid), "\(second.stderr)")
        let once = try await setup.capture(["once", "--config", setup.configPath])
        #expect(once.status != 0)
        #expect(once.stderr.contains(setup.statePath) && once.stderr.contains(pid), "\(once.stderr)")
        // `status` only reads: it works beside the running watcher.
        #expect(try await setup.statusOrders() == setup.pendingOrders())
        #expect(first.process.isRunning)

        try await first.killHard()
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-120), deadline: .relative(5 * 3600)))
        let third = try setup.startRun()
        let all = try setup.dueFirings()
        #expect(all.count == due.count + 1)
        try await eventually("the run after kill -9 delivered the new firing\n\(third.stderr)") { try setup.deliveredIDs() == all }
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 })
        #expect(try await third.stop() == 0, "\(third.stderr)")
    }

    /// The adversarial case: two `run`s started at the same instant on one state file.
    /// One is refused; every alert reaches the webhook once.
    @Test func twoRunsStartedTogetherOnOneStateFileDeliverEachAlertOnce() async throws {
        let setup = try WatchSetup(ozon: 3, red: 2)
        defer { setup.shutdown() }
        let runs = [try setup.startRun(), try setup.startRun()]
        let due = try setup.dueFirings()
        var refused: RunningCommand?
        try await eventually("one of the two runs refused\n\(runs.map(\.stderr).joined(separator: "\n---\n"))") {
            refused = runs.first { !$0.process.isRunning }
            return refused != nil
        }
        let watcher = try #require(runs.first { $0 !== refused })
        #expect(refused?.process.terminationStatus != 0)
        #expect(refused?.stderr.contains("pid \(watcher.process.processIdentifier)") == true, "\(refused?.stderr ?? "")")
        // Recorded delivered in the state file: the watcher will not send them again.
        try await eventually("every firing recorded delivered\n\(watcher.stderr)") { try setup.deliveredIDs() == due }
        #expect(Set(setup.receiver.acknowledged) == due)
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 }, "\(setup.receiver.acknowledged)")
        #expect(try await watcher.stop() == 0, "\(watcher.stderr)")
    }
}

