import CancelWatch
import Foundation
import MarketSim
import Testing

/// Text is bytes end to end: two Xiaohongshu packages whose ids differ only after a NUL
/// (`PKG\u0000A`, `PKG\u0000B`) are two requests through the real binary, in its
/// alerts, in the state file and in `status`, and neither alerts again after a restart.
@Suite struct NulInPackageIDsTests {
    @Test func twoPackagesThatDifferOnlyAfterANulBothAlertAndStayTwoRequests() async throws {
        var options = WatchOptions()
        options.ozon = false
        let setup = try WatchSetup(ozon: 0, red: 0, options: options)
        defer { setup.shutdown() }
        let created = Date().addingTimeInterval(-600).timeIntervalSince1970.rounded(.down)
        for package in ["PKG\u{0}A", "PKG\u{0}B"] {
            _ = try setup.simulator.addRequest(
                SimRequestPlan(
                    marketplace: .red, account: E2EAccounts.redAppKey, created: .absolute(Date(timeIntervalSince1970: created)),
                    deadline: .relative(7 * 3600), packageID: package, logistics: "red_auto"))
        }
        let due = try setup.dueFirings()
        #expect(due.count == 2)

        let run = try setup.startRun()
        try await eventually("both firings recorded delivered\n\(run.stderr)") { try setup.deliveredIDs() == due }
        let orders = setup.receiver.acknowledgedReceipts.compactMap(\.order)
        #expect(orders.sorted() == ["PKG\u{0}A", "PKG\u{0}B"])
        #expect(try await setup.statusOrders() == ["red|PKG\u{0}A", "red|PKG\u{0}B"])
        let rows = try StateFileReader.rows(setup.statePath, "SELECT id FROM requests ORDER BY id")
        #expect(rows.map { $0[0] }.map { $0.prefix(5) } == ["PKG\u{0}A", "PKG\u{0}B"], "\(rows)")
        #expect(try await run.stop() == 0, "\(run.stderr)")

        // Started again on the same state file: both are known, nothing fires twice.
        let once = try await setup.capture(["once", "--config", setup.configPath])
        #expect(once.status == 0, "\(once.stderr)")
        #expect(try setup.outbox().count == 2)
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 })
        #expect(Set(setup.receiver.acknowledged) == due)
    }
}
