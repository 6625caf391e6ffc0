import CancelWatch
import Foundation
import MarketSim
import Testing

/// Secrets never appear in any output of any command, at any log level and format, nor
/// in the events sinks receive or the state file; the state file is created 0600.
@Suite(.serialized) struct SecretsTests {
    /// Distinctive values, each passed through `${VAR}` from the environment.
    static let environment: [String: String] = [
        "CW_OZON_API_KEY": E2EAccounts.ozonKey,
        "CW_RED_APP_SECRET": E2EAccounts.redSecret,
        "CW_OZON_BAD_KEY": "ozbad-S3CRET-41d7e",
        "CW_RED_BAD_SECRET": "redbad-S3CRET-90a1c",
        "CW_WEBHOOK_SECRET": "whsec-S3CRET-0c7d2",
        "CW_WEBHOOK_TOKEN": "qtok-S3CRET-99113",
        "CW_HEADER_VALUE": "hdrval-S3CRET-5e1f0",
        "CW_TELEGRAM_TOKEN": "123456789:TGtoken-S3CRET-77aa",
        "CW_SMTP_PASSWORD": "smtppw-S3CRET-a6c38",
    ]

    static var secrets: [String] { Array(environment.values) }

    /// Every secret found in `text`, named by where it was found.
    static func leaks(in text: String, _ place: String) -> [String] {
        secrets.filter { text.contains($0) }.map { "\(place) shows \($0)" }
    }

    func writeConfig(_ setup: WatchSetup, telegram: WebhookReceiver, smtpPort: Int) throws {
        let base = setup.baseURL
        try """
            state: ./state.sqlite
            rules: [./rules]
            listen: 127.0.0.1:0
            sources:
              - {name: ozon, kind: ozon, client_id: "\(E2EAccounts.ozonClientID)", api_key: "${CW_OZON_API_KEY}", base_url: "\(base)",
                 poll_interval: 1s}
              - {name: red, kind: red, app_key: "\(E2EAccounts.redAppKey)", app_secret: "${CW_RED_APP_SECRET}", base_url: "\(base)",
                 poll_interval: 1s}
              - {name: ozon-bad, kind: ozon, client_id: "\(E2EAccounts.ozonClientID)", api_key: "${CW_OZON_BAD_KEY}", base_url: "\(base)",
                 poll_interval: 1s}
              - {name: red-bad, kind: red, app_key: "\(E2EAccounts.redAppKey)", app_secret: "${CW_RED_BAD_SECRET}", base_url: "\(base)",
                 poll_interval: 1s}
            sinks:
              - {name: hook, kind: webhook, url: "\(setup.receiver.url)?token=${CW_WEBHOOK_TOKEN}",
                 secret: "${CW_WEBHOOK_SECRET}", headers: {X-Api-Token: "${CW_HEADER_VALUE}"}, timeout: 2s,
                 retry: {initial_delay: 300ms, max_delay: 1s}}
              - {name: tg, kind: webhook, format: telegram, chat_id: "-100200300",
                 url: "\(telegram.url)/bot${CW_TELEGRAM_TOKEN}/sendMessage", timeout: 2s,
                 retry: {initial_delay: 300ms, max_delay: 1s}}
              - {name: mail, kind: email, url: "smtp://127.0.0.1:\(smtpPort)", tls: none, username: watcher,
                 password: "${CW_SMTP_PASSWORD}", from: "cancelwatch <watch@example.com>", to: [owner@example.com], timeout: 2s,
                 retry: {initial_delay: 300ms, max_delay: 1s}}
              - {name: console, kind: stdout, format: json}
            health: {notify: [hook, tg, console], down_after: 1}
            """.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        try setup.writeRules(
            """
            rule "pending" {
              when     state == "pending"
              notify   hook, tg, mail, console
              message  "{{marketplace}} {{order}} {{remaining}} {{raw.cancel_reason}}"
            }
            """)
    }

    @Test func noCommandShowsASecretAtAnyLogLevelAndTheStateFileIsPrivate() async throws {
        let setup = try WatchSetup(ozon: 2, red: 2)
        defer { setup.shutdown() }
        let telegram = try WebhookReceiver()
        defer { telegram.stop() }
        // A port where nothing listens: the email sink fails, and its errors are logged.
        let closed = try WebhookReceiver()
        let smtpPort = closed.port
        closed.stop()
        try writeConfig(setup, telegram: telegram, smtpPort: smtpPort)
        let env = Self.environment
        let config = setup.configPath
        var leaks: [String] = []
        var ran: [String] = []

        func scan(_ result: CommandResult, _ name: String) {
            ran.append(name)
            leaks += Self.leaks(in: result.stdout, "\(name) stdout") + Self.leaks(in: result.stderr, "\(name) stderr")
        }

        // check: valid rules, then a broken rule file.
        scan(try await setup.capture(["check", "--config", config], environment: env), "check")
        let broken = setup.directory.appendingPathComponent("broken.rules").path
        try "rule \"b\" { when remainig < 1h notify hoook }".write(toFile: broken, atomically: true, encoding: .utf8)
        let check = try await setup.capture(["check", "--config", config, broken], environment: env)
        #expect(check.status == 1)
        scan(check, "check broken")

        // once, at trace level, text and JSON logs.
        for format in ["text", "json"] {
            let once = try await setup.capture(
                ["once", "--config", config, "--log-level", "trace", "--log-format", format], environment: env)
            #expect(once.status == 1, "the bad sources fail: \(once.stderr)")
            #expect(once.stderr.contains("ozon-bad") && once.stderr.contains("red-bad"))
            scan(once, "once \(format)")
        }
        let mode = try FileManager.default.attributesOfItem(atPath: setup.statePath)[.posixPermissions] as? Int
        #expect(mode == 0o600, "state file mode \(String(mode ?? 0, radix: 8))")

        // run, at trace level, in both formats, long enough to poll, fail, deliver and retry.
        for format in ["text", "json"] {
            let run = try RunningCommand(
                ["run", "--config", config, "--log-level", "trace", "--log-format", format], directory: setup.directory,
                environment: env)
            try await eventually("deliveries to both webhooks\n\(run.stderr)") {
                setup.receiver.acknowledged.count >= 4 && telegram.acknowledged.count >= 4
            }
            try await eventually("the email sink failing\n\(run.stderr)") { run.stderr.contains("mail") }
            kill(run.process.processIdentifier, SIGHUP)
            try await eventually("the reload") { run.stderr.contains("reloaded") }
            let metricsURL = try await run.metricsURL()
            let metrics = try await httpGet(metricsURL + "/metrics")
            let health = try await httpGet(metricsURL + "/healthz")
            leaks += Self.leaks(in: metrics.body, "/metrics") + Self.leaks(in: health.body, "/healthz")
            #expect(try await run.stop() == 0)
            scan(CommandResult(status: 0, stdout: run.stdout, stderr: run.stderr), "run \(format)")
        }

        // status, both formats.
        for format in ["text", "json"] {
            let status = try await setup.capture(["status", "--config", config, "--format", format], environment: env)
            #expect(status.status == 0, "\(status.stderr)")
            scan(status, "status \(format)")
        }
        // A config that names a missing variable, and one with an error next to a secret.
        let missing = try await setup.capture(["once", "--config", config], environment: ["CW_OZON_API_KEY": E2EAccounts.ozonKey])
        #expect(missing.status == 1)
        scan(missing, "once with a missing variable")
        let original = try String(contentsOfFile: config, encoding: .utf8)
        try original.replacingOccurrences(of: "poll_interval: 1s}", with: "pol_interval: 1s}").write(
            toFile: config, atomically: true, encoding: .utf8)
        let typo = try await setup.capture(["check", "--config", config], environment: env)
        scan(typo, "check with a config error")
        let typoRun = try await setup.capture(["once", "--config", config], environment: env)
        #expect(typoRun.status == 1)
        scan(typoRun, "once with a config error")
        try original.write(toFile: config, atomically: true, encoding: .utf8)

        // The commands that take no config, with the secrets in their environment all the same.
        scan(try await setup.capture(["simulate", "--port", "0", "--duration", "1s"], environment: env), "simulate")
        scan(
            try await setup.capture(
                ["demo", "--duration", "3s", "--log-level", "trace", "--rules", packageRoot().appendingPathComponent("rules").path],
                environment: env, timeout: 60), "demo")
        scan(
            try await setup.capture(["test", packageRoot().appendingPathComponent("rules/tests").path], environment: env),
            "test")
        scan(try await setup.capture(["--help"], environment: env), "help")

        // What the sinks received, and the state file itself.
        for receipt in setup.receiver.allReceipts + telegram.allReceipts {
            leaks += Self.leaks(in: receipt.body, "an event body (\(receipt.event))")
        }
        for suffix in ["", "-wal"] {
            if let data = FileManager.default.contents(atPath: setup.statePath + suffix) {
                leaks += Self.leaks(in: String(decoding: data, as: UTF8.self), "the state file\(suffix)")
            }
        }
        #expect(!setup.receiver.allReceipts.isEmpty && !telegram.allReceipts.isEmpty)
        #expect(Set(setup.receiver.allReceipts.map(\.event)).isSuperset(of: ["firing", "source_down"]))
        #expect(ran.count >= 14)
        #expect(leaks.isEmpty, "\(Set(leaks).sorted().joined(separator: "\n"))")
    }
}
