import Foundation
import Testing

@testable import CancelWatch

/// How `cancelwatch check` reads a config: unset variables are warnings with placeholders.
@Suite struct RulesCheckConfigTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-checkcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func write(_ text: String) throws -> String {
        let url = directory.appendingPathComponent("cancelwatch.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    let config = """
        timezone: Europe/Moscow
        sources:
          - {name: ozon-main, kind: ozon, client_id: "${OZON_CLIENT}", api_key: "${OZON_KEY}"}
        sinks:
          - {name: ops, kind: webhook, url: "${OPS_HOOK}", secret: "${OPS_SECRET}"}
          - {name: mail, kind: email, url: "${SMTP_URL}", from: "${MAIL_FROM}", to: [owner@example.com]}
          - {name: chat, kind: webhook, url: "https://hooks.example.com/${CHAT_TOKEN}"}
        """

    @Test func missingVariablesBecomeWarningsAndTheSinksStillLoad() throws {
        let path = try write(config)
        let (loaded, missing) = try CancelWatchConfig.loadAllowingMissingVariables(path: path, environment: ["OZON_KEY": "k"])
        #expect(loaded.sinkNames == ["ops", "mail", "chat"])
        #expect(loaded.timezone.identifier == "Europe/Moscow")
        #expect(missing.map(\.headline) == [
            "\(path):3:47: warning: environment variable 'OZON_CLIENT' is not set (used by 'client_id'); checked with a placeholder, but `run` and `once` need it",
            "\(path):5:38: warning: environment variable 'OPS_HOOK' is not set (used by 'url'); checked with a placeholder, but `run` and `once` need it",
            "\(path):5:61: warning: environment variable 'OPS_SECRET' is not set (used by 'secret'); checked with a placeholder, but `run` and `once` need it",
            "\(path):6:37: warning: environment variable 'SMTP_URL' is not set (used by 'url'); checked with a placeholder, but `run` and `once` need it",
            "\(path):6:58: warning: environment variable 'MAIL_FROM' is not set (used by 'from'); checked with a placeholder, but `run` and `once` need it",
            "\(path):7:65: warning: environment variable 'CHAT_TOKEN' is not set (used by 'url'); checked with a placeholder, but `run` and `once` need it",
        ])
        #expect(missing.first?.sourceLine == #"  - {name: ozon-main, kind: ozon, client_id: "${OZON_CLIENT}", api_key: "${OZON_KEY}"}"#)
        #expect(missing.first?.caretColumn == 47)
    }

    @Test func anUnsetStatusPageTokenIsAWarningAndItsPlaceholderIsLongEnoughToBeTaken() throws {
        let path = try write(config + "\nlisten: 0.0.0.0:9464\nauth: {token: \"${STATUS_TOKEN}\"}\n")
        let (loaded, missing) = try CancelWatchConfig.loadAllowingMissingVariables(path: path, environment: ["OZON_KEY": "k"])
        #expect(loaded.auth != nil)
        #expect(missing.last?.headline == "\(path):9:16: warning: environment variable 'STATUS_TOKEN' is not set (used by 'token'); checked with a placeholder, but `run` and `once` need it")
    }

    @Test func theOrdinaryLoadStillFailsOnAMissingVariable() throws {
        let path = try write(config)
        #expect(throws: ConfigError.self) { try CancelWatchConfig.load(path: path, environment: ["OZON_KEY": "k"]) }
    }

    @Test func otherErrorsAreStillErrors() throws {
        let path = try write(config + "\n  - {name: bad, kind: stdot}\n")
        do {
            _ = try CancelWatchConfig.loadAllowingMissingVariables(path: path, environment: [:])
            Issue.record("a bad sink kind must still fail")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics.first?.message.contains("stdot") == true)
        }
    }

    @Test func withEverythingSetItIsTheOrdinaryLoad() throws {
        let path = try write(config)
        let environment = [
            "OZON_CLIENT": "123", "OZON_KEY": "k", "OPS_HOOK": "https://h.example.com/x", "OPS_SECRET": "s",
            "SMTP_URL": "smtps://smtp.example.com", "MAIL_FROM": "w@example.com", "CHAT_TOKEN": "t",
        ]
        let (loaded, missing) = try CancelWatchConfig.loadAllowingMissingVariables(path: path, environment: environment)
        #expect(missing.isEmpty)
        #expect(loaded.sources.count == 1)
    }
}
