import CancelWatch
import Foundation
import MarketSim
import Testing

/// The real binary answering from Telegram's buttons, against the simulator's Bot API double:
/// a refusal by a reason button and by a reply, a press by a user not allowed refused, the
/// messages edited to show the outcome and who answered, and the resolved events naming them.
@Suite struct AnsweringFromTelegramTests {
    static let alice = SimTelegramUser(id: 42, firstName: "Alice")
    static let mallory = SimTelegramUser(id: 99, firstName: "Mallory")

    @Test func refusalsFromButtonsAndRepliesReachTheMarketplaceAndOthersArePresses() async throws {
        let setup = try WatchSetup.withTelegramSink(ozon: 1, red: 1)
        defer { setup.shutdown() }
        let simulator = try setup.simulator
        let bot = simulator.telegram
        let run = try setup.startRun()
        try await eventually("both alerts in the chat\n\(run.stderr)", timeout: 60) { bot.allMessages().count == 2 }
        let ozon = try #require(try setup.pendingRequests().first { $0.marketplace == .ozon })
        let red = try #require(try setup.pendingRequests().first { $0.marketplace == .red })
        func alert(about order: String) throws -> SimTelegramMessage {
            try #require(bot.allMessages().first { $0.replyToMessageID == nil && $0.text.contains(order) })
        }

        // Someone not allowed presses Approve: refused at once, nothing answered.
        let forbidden = try bot.press(messageID: try alert(about: ozon.order).messageID, button: "Approve", from: Self.mallory)
        try await eventually("the press answered\n\(run.stderr)") { bot.allCallbacks().first { $0.id == forbidden.id }?.answered == true }
        #expect(bot.allCallbacks().first { $0.id == forbidden.id }?.answerText == "You may not answer cancellation requests here.")
        // The log line may come just after the press is answered.
        try await eventually("the refusal logged\n\(run.stderr)") { run.stderr.contains("press by a user not in actions.allow refused") }

        // A press whose data names another request than the message it is under (a forged
        // client) answers nothing.
        let redKey = RequestKey(source: "red", id: WatchSetup.requestID(of: red))
        let ozonKey = RequestKey(source: "ozon", id: WatchSetup.requestID(of: ozon))
        let forged = try bot.press(
            messageID: try alert(about: ozon.order).messageID, data: TelegramCallbackData(.approve, request: redKey).description,
            from: Self.alice, forged: true)
        try await eventually("the forged press answered\n\(run.stderr)") { bot.allCallbacks().first { $0.id == forged.id }?.answered == true }
        try await eventually("the forged press shown as answering nothing\n\(run.stderr)") {
            bot.message(try alert(about: ozon.order).messageID)?.text.contains("nothing was answered") == true
        }
        #expect(simulator.requests().filter { $0.state == "pending" }.count == 2, "nothing answered")

        // RED: Refuse, then the reason's button; the prompt and the alert show the outcome.
        let redAlert = try alert(about: red.order)
        try bot.press(messageID: redAlert.messageID, button: "Refuse", from: Self.alice)
        try await eventually("the reason prompt\n\(run.stderr)") { bot.allMessages().contains { $0.replyToMessageID == redAlert.messageID } }
        let redPrompt = try #require(bot.allMessages().first { $0.replyToMessageID == redAlert.messageID })
        #expect(redPrompt.buttons.joined().map(\.text) == ["Already shipped", "Cancel"])
        try bot.press(messageID: redPrompt.messageID, button: "Already shipped", from: Self.alice)
        try await eventually("RED refused\n\(run.stderr)") { simulator.requests().first { $0.simID == red.simID }?.state == "rejected" }
        try await eventually("the prompt shows the outcome\n\(run.stderr)") {
            bot.message(redPrompt.messageID)?.text.contains("⛔ Refused by Alice: Already shipped") == true
        }
        #expect(bot.message(redPrompt.messageID)?.buttons.isEmpty == true, "no buttons once answered")
        try await eventually("the alert shows the outcome\n\(run.stderr)") {
            bot.message(redAlert.messageID)?.text.contains("⛔ Refused by Alice: Already shipped") == true
        }
        #expect(bot.message(redAlert.messageID)?.text.contains(red.order) == true, "the alert keeps its text")
        #expect(bot.message(redAlert.messageID)?.buttons.isEmpty == true)

        // Ozon: Refuse (its alert lost its buttons to the forged press: its own data again), then a reply with the reason.
        let ozonAlert = try alert(about: ozon.order)
        try bot.press(
            messageID: ozonAlert.messageID, data: TelegramCallbackData(.refuse, request: ozonKey).description, from: Self.alice,
            forged: true)
        try await eventually("the reason prompt\n\(run.stderr)") { bot.allMessages().contains { $0.replyToMessageID == ozonAlert.messageID } }
        let ozonPrompt = try #require(bot.allMessages().first { $0.replyToMessageID == ozonAlert.messageID })
        try bot.reply(to: ozonPrompt.messageID, text: "The buyer asked to keep it", from: Self.alice)
        try await eventually("Ozon refused\n\(run.stderr)") { simulator.requests().first { $0.simID == ozon.simID }?.state == "rejected" }
        try await eventually("the alert shows the outcome of the reply\n\(run.stderr)") {
            bot.message(ozonAlert.messageID)?.text.contains("⛔ Refused by Alice: The buyer asked to keep it") == true
        }
        #expect(simulator.requests().filter { $0.state == "approved" }.isEmpty, "the forbidden approval was never sent")

        // The next listings resolve both, naming Alice.
        try await eventually("both resolved\n\(run.stderr)", timeout: 60) {
            setup.receiver.acknowledgedReceipts.filter { $0.event == "resolved" }.count == 2
        }
        for receipt in setup.receiver.acknowledgedReceipts where receipt.event == "resolved" {
            let body = try #require(try JSONSerialization.jsonObject(with: Data(receipt.body.utf8)) as? [String: Any])
            #expect(body["outcome"] as? String == "rejected")
            #expect(body["actor"] as? String == "telegram:42 (Alice)", "\(receipt.body)")
        }
        #expect(bot.allCallbacks().allSatisfy { $0.answered }, "every press answered")
    }
}
