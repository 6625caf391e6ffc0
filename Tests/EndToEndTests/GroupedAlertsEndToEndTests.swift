import CancelWatch
import Foundation
import MarketSim
import Testing

/// The real binary grouping what one poll brings: three hundred requests reach a Telegram chat
/// whose double enforces Telegram's rate limits as a few messages naming every order once,
/// and a batch that fails twice goes again whole, under the same key, and is acknowledged once.
@Suite struct GroupedAlertsEndToEndTests {
    /// The orders a Telegram message lists: its lines that start with one of `orders`.
    static func listed(in messages: [SimTelegramMessage], among orders: Set<String>) -> [String] {
        messages.flatMap { $0.text.split(separator: "\n") }.compactMap { line in
            let first = String(line.split(separator: " · ", maxSplits: 1).first ?? "")
            return orders.contains(first) ? first : nil
        }
    }

    @Test func threeHundredRequestsInOnePollReachATelegramChatEnforcingItsLimitsAsAFewMessagesNamingEveryOrderOnce() async throws {
        var options = WatchOptions()
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   tg")
        let setup = try WatchSetup(ozon: 200, red: 100, options: options)
        defer { setup.shutdown() }
        let simulator = try setup.simulator
        let bot = simulator.telegram
        bot.enforce(.telegram)
        setup.options.extraSinks = """
              - {name: tg, kind: webhook, format: telegram, chat_id: "-1001234567890",
                 url: "\(simulator.telegramURL("sendMessage"))", group: {wait: 5s, max: 100}}
            """
        try setup.writeConfig()
        let orders = Set(try setup.pendingRequests().map(\.order))
        #expect(orders.count == 300)

        let run = try setup.startRun()
        try await eventually("every order in the chat\n\(run.stderr)", timeout: 180) {
            Set(Self.listed(in: bot.allMessages(), among: orders)) == orders
        }
        try await eventually("nothing left for the chat in the outbox\n\(run.stderr)") {
            let rows = try setup.outbox().filter { $0.sink == "tg" }
            return !rows.isEmpty && !rows.contains { $0.status == "pending" }
        }
        let messages = bot.allMessages()
        #expect(messages.count <= 12, "\(messages.count) messages")
        let listed = Self.listed(in: messages, among: orders)
        #expect(listed.count == 300, "every order exactly once: \(listed.count) lines name one")
        #expect(bot.rateRefusals().isEmpty, "refused for rate: \(bot.rateRefusals().count)")
        #expect(messages.first?.text.hasPrefix("[WARNING] 100 cancellation requests, earliest deadline in") == true, "\(messages.first?.text.prefix(200) ?? "")")
        // Each firing was delivered as a member of a group, and only so.
        let rows = try setup.outbox().filter { $0.sink == "tg" }
        #expect(rows.filter { $0.status == "delivered" }.count >= 303, "300 members and their groups")
        #expect(rows.allSatisfy { $0.status == "delivered" }, "\(Dictionary(grouping: rows, by: \.status).mapValues(\.count))")
    }

    @Test func aBatchThatFailsTwiceGoesAgainWholeUnderTheSameKeyAndIsAcknowledgedOnce() async throws {
        var options = WatchOptions()
        options.hookSettings = "batch: true, group: {wait: 2s, max: 50}"
        options.retry = "{initial_delay: 300ms, max_delay: 1s}"
        let setup = try WatchSetup(ozon: 3, red: 2, options: options)
        defer { setup.shutdown() }
        setup.receiver.setMode(.failTimes(2, status: 503))
        let due = try setup.dueFirings()
        #expect(due.count == 5)

        let run = try setup.startRun()
        try await eventually("the batch acknowledged\n\(run.stderr)") { setup.receiver.acknowledgedReceipts.count == 1 }
        try await eventually("the outbox settled\n\(run.stderr)") {
            let rows = try setup.outbox().filter { $0.sink == "hook" }
            return rows.count == 6 && rows.allSatisfy { $0.status == "delivered" }
        }
        let receipts = setup.receiver.allReceipts
        #expect(receipts.map(\.status) == [503, 503, 200])
        #expect(Set(receipts.map { $0.headers["idempotency-key"] ?? "" }).count == 1)
        #expect(receipts.first?.headers["idempotency-key"]?.isEmpty == false)
        #expect(Set(receipts.map(\.body)).count == 1, "the same batch every time")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(receipts[2].body.utf8)) as? [String: Any])
        #expect(body["version"] as? String == "1")
        let events = try #require(body["events"] as? [[String: Any]])
        #expect(Set(events.compactMap { $0["id"] as? String }) == due)
        #expect(events.allSatisfy { $0["event"] as? String == "firing" })
        let deadlines = events.compactMap { $0["deadline"] as? String }
        #expect(deadlines == deadlines.sorted(), "sorted by deadline")
        // Each event in it is recorded delivered once, with the batch.
        #expect(try setup.deliveredIDs().isSuperset(of: due))
    }
}
