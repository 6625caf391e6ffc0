import CancelWatch
import Foundation
import Testing

/// Text that may hold a secret is scrubbed before it is cut: a credential straddling the
/// cut of a reply leaves no readable prefix in the log or the state file.
@Suite struct SecretCutTests {
    static let token = "7311000111:AAF-straddle-S3CRET-cut-here-0123456789"

    /// A Telegram error reply echoing the bot's URL, with the token across byte 200 (where
    /// a reply is cut for the message): its first 25 bytes before the cut, the rest after.
    static func reply() -> String {
        let head = #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found for "#
        let url = "https://api.telegram.org/bot\(token)/sendMessage"
        let before = 200 - head.utf8.count - "https://api.telegram.org/bot".utf8.count - 25
        return head + String(repeating: "x", count: before) + url + #""}"#
    }

    @Test(arguments: [400, 200])
    func aBotTokenAcrossTheCutOfAReplyLeavesNoPrefixInTheLogOrTheDeadLetter(_ status: Int) async throws {
        let body = Self.reply()
        let cut = body.utf8.index(body.utf8.startIndex, offsetBy: 200)
        let visibleBeforeCut = String(body[..<cut]).components(separatedBy: "/bot").last!
        try #require(visibleBeforeCut.count >= 20 && Self.token.hasPrefix(visibleBeforeCut), "the token must straddle byte 200")

        var options = WatchOptions()
        options.red = false
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   tg")
        let telegram = try WebhookReceiver()
        defer { telegram.stop() }
        telegram.setMode(.reply(status: status, body: body))
        options.extraSinks = """
              - {name: tg, kind: webhook, format: telegram, chat_id: "-100200300",
                 url: "\(telegram.url)/bot${CW_CUT_TOKEN}/sendMessage", timeout: 3s,
                 retry: {initial_delay: 300ms, max_delay: 2s}}
            """
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun(environment: ["CW_CUT_TOKEN": Self.token])

        try await eventually("a dead letter for tg\n\(run.stderr)") { try setup.outbox().contains { $0.sink == "tg" && $0.status == "dead" } }
        let errors = try StateFileReader.rows(setup.statePath, "SELECT last_error FROM outbox WHERE sink = 'tg'").map { $0[0] }
        try await eventually("the dead letter's log line\n\(run.stderr)") { run.stderr.contains("dead letter") }
        #expect(try await run.stop() == 0, "\(run.stderr)")
        // The reply did reach the log and the state file, scrubbed.
        #expect(run.stderr.contains("chat not found"))
        #expect(errors.contains { $0.contains("chat not found") }, "\(errors)")
        let prefix = String(visibleBeforeCut.prefix(12))
        #expect(!run.stderr.contains(prefix), "the log shows the token's start")
        #expect(!errors.contains { $0.contains(prefix) }, "the dead letter shows the token's start: \(errors)")
    }
}
