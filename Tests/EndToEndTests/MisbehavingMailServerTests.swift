import Foundation
import Testing
import TestServers

/// The real binary against SMTP servers that misbehave on purpose: one that accepts a
/// connection and never says a word, and one whose refusal carries a credential, terminal
/// escapes, a forged log line and a megabyte of text. A mail server must never hold back
/// another sink's alerts, stop the watcher, or write what it likes into the logs and the
/// state file.
@Suite(.serialized) struct MisbehavingMailServerTests {
    private static let password = "smtp-pass-5e7a91"

    /// `notify hook, mail` and an email sink pointing at `port`.
    private func setup(mailPort: Int) throws -> WatchSetup {
        var options = WatchOptions()
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   hook, mail")
        options.extraSinks = """
              - {name: mail, kind: email, url: "smtp://127.0.0.1:\(mailPort)", tls: none, timeout: 2s,
                 username: watch, password: "${SMTP_PASSWORD}", from: "cw <watch@example.com>", to: [owner@example.com],
                 retry: {initial_delay: 300ms, max_delay: 2s}}
            """
        return try WatchSetup(ozon: 2, red: 1, options: options)
    }

    @Test func aMailServerThatNeverAnswersHoldsBackNoWebhookAlertAndIsRetried() async throws {
        let smtp = try SMTPTestServer(silent: true)
        defer { smtp.stop() }
        let setup = try setup(mailPort: smtp.port)
        defer { setup.shutdown() }
        let run = try setup.startRun(environment: ["SMTP_PASSWORD": Self.password])

        let due = try setup.dueFirings()
        try await eventually("every firing at the webhook while the mail server is silent") {
            due.isSubset(of: Set(setup.receiver.acknowledgedReceipts.map(\.id)))
        }
        // Each mail attempt ends at the sink's timeout and is tried again (a new connection):
        // the sink is not stuck on the first one.
        try await eventually("a second connection to the silent mail server") { smtp.connections >= 2 }
        #expect(run.process.isRunning)
        let mail = try setup.outbox().filter { $0.sink == "mail" }
        #expect(!mail.isEmpty && mail.allSatisfy { $0.status == "pending" }, "\(mail)")
        #expect(!run.stderr.contains(Self.password))
    }

    @Test func aRefusalCarryingEscapesAndAForgedLineIsStoredScrubbedAndLoggedClean() async throws {
        // Greets and accepts everything up to RCPT, refused with the password, an ESC
        // sequence, a CR LF and a forged log line, U+202E, and a megabyte of text.
        let smtp = try SMTPTestServer(
            credentials: ("watch", Self.password), refuse: ["owner@example.com"],
            refusal: "5.7.1 refused \(Self.password) \u{1B}[2J\u{1B}[31m\u{202E}\r\nall sources healthy\n" + String(repeating: "x", count: 1 << 20))
        defer { smtp.stop() }
        let setup = try setup(mailPort: smtp.port)
        defer { setup.shutdown() }
        let run = try setup.startRun(environment: ["SMTP_PASSWORD": Self.password])

        var errors: [String] = []
        try await eventually("the mail sink's deliveries recorded as failed, with their error") {
            errors = try StateFileReader.rows(
                setup.statePath, "SELECT last_error FROM outbox WHERE sink = 'mail' AND last_error IS NOT NULL"
            ).map { $0[0] }
            return !errors.isEmpty
        }
        for error in errors {
            #expect(error.utf8.count <= 4096, "last_error holds \(error.utf8.count) bytes")
            #expect(!error.contains(Self.password))
        }
        // Logged too, as lines of their own making only.
        try await eventually("the refusal in the log") { run.stderr.contains("5.7.1") }
        let stderr = run.stderr
        #expect(!stderr.contains(Self.password))
        #expect(!stderr.contains("\u{1B}") && !stderr.contains("\u{202E}"))
        #expect(!stderr.split(separator: "\n").contains { $0.hasPrefix("all sources healthy") })
        #expect(stderr.utf8.count < 1_000_000, "stderr holds \(stderr.utf8.count) bytes")
        #expect(run.process.isRunning)
    }
}
