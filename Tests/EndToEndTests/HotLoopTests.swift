@testable import CancelWatch
import Foundation
import Testing

/// No answer can make the watcher loop hot: a retry is never scheduled at "now" by accident.
@Suite struct HotLoopTests {
    /// Telegram's rate-limit reply with a `retry_after` that is not a number, with Telegram's
    /// own 429 and with a 200 (as some compatible gateways answer).
    @Test(arguments: [429, 200])
    func aTelegramRetryAfterOfNaNSchedulesTheNextAttemptAtLeastTheFloorLater(_ status: Int) async throws {
        var options = WatchOptions()
        options.red = false
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   tg")
        let telegram = try WebhookReceiver()
        defer { telegram.stop() }
        telegram.setMode(.reply(status: status, body: #"{"ok":false,"error_code":429,"parameters":{"retry_after":"nan"}}"#))
        options.extraSinks = """
              - {name: tg, kind: webhook, format: telegram, chat_id: "-100200300",
                 url: "\(telegram.url)/bot123456:hotloop-token/sendMessage", timeout: 3s,
                 retry: {initial_delay: 300ms, max_delay: 2s}}
            """
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun()

        try await eventually("two attempts at the Telegram receiver\n\(run.stderr)") { telegram.allReceipts.count >= 2 }
        // The state file first: every attempt it records has reached the receiver by then.
        let rows = try StateFileReader.rows(setup.statePath, "SELECT attempts, next_attempt_at FROM outbox WHERE sink = 'tg'")
        let receipts = telegram.allReceipts
        let gap = receipts[1].receivedAt.timeIntervalSince(receipts[0].receivedAt)
        #expect(gap >= WakeTime.floor, "the second attempt came \(gap)s after the first")

        let row = try #require(rows.first, "no outbox row for tg")
        let attempts = try #require(Int(row[0]))
        let next = try #require(Double(row[1]), "next_attempt_at is \(row[1])")
        #expect(next.isFinite)
        // A rate-limit reply is not counted toward max_attempts; the next try still comes after the first.
        #expect(attempts == 0, "\(attempts) attempts recorded for rate-limit replies")
        let attempted = receipts[0].receivedAt.timeIntervalSince1970
        #expect(next >= attempted + WakeTime.floor, "the first attempt at \(attempted) is to be retried at \(next)")
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }
}
