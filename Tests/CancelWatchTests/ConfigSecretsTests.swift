import Foundation
import Testing
@testable import CancelWatch

/// Every config value that can carry a credential stays out of every message `check`,
/// `run` and `once` print about the config: the headline, the quoted line, the warnings.
/// What counts as secret: the values of api_key, app_secret, secret, password and every
/// header; a webhook URL after its host (Telegram's /bot<token>/, Slack's hooks path,
/// DingTalk's ?access_token=); the user info of any URL.
@Suite struct ConfigSecretsTests {
    static let password = "hunter2-Pa55word"
    static let token = "123456789:AAE-TelegramBotToken"

    /// Every text a user can see of the config's diagnostics and warnings.
    func everything(_ yaml: String, environment: [String: String] = [:]) -> String {
        do {
            let config = try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: environment)
            return String(reflecting: config) + "\n" + config.warnings.map { $0.rendered + "\n" + $0.headline }.joined(separator: "\n")
        } catch {
            return error.description + "\n" + error.headlines
        }
    }

    func sink(_ body: String) -> String {
        """
        sources:
          - {name: shop, kind: ozon, client_id: 1, api_key: k}
        sinks:
        \(body)
        """
    }

    @Test(arguments: [
        // Not a URL at all: the port is not a number.
        "smtp://alerts:\(password)@mail.example.com:notaport",
        // The wrong scheme.
        "http://alerts:\(password)@mail.example.com",
        // A space in the host.
        "smtp://alerts:\(password)@mail example.com",
        // A valid URL with user info: refused, without quoting it.
        "smtp://alerts:\(password)@mail.example.com:587",
    ])
    func anEmailURLWithAPasswordIsNeverQuotedWithIt(url: String) {
        let text = everything(sink("  - {name: mail, kind: email, url: \"\(url)\", from: a@example.com, to: b@example.com}"))
        #expect(text.contains("'url' in sink 'mail'"), "\(text)")
        #expect(!text.contains(Self.password), "\(text)")
        #expect(!text.contains("Pa55"), "\(text)")
    }

    @Test func anEmailURLWithAPasswordFromTheEnvironmentIsNeverQuotedWithIt() {
        let text = everything(
            sink("  - {name: mail, kind: email, url: \"${MAIL_URL}\", from: a@example.com, to: b@example.com}"),
            environment: ["MAIL_URL": "ftp://alerts:\(Self.password)@mail.example.com"])
        #expect(text.contains("'url' in sink 'mail'"), "\(text)")
        #expect(!text.contains(Self.password), "\(text)")
    }

    @Test func anEmailURLWithAPasswordWrittenBesideAVariableIsNeverQuotedWithIt() {
        let text = everything(
            sink("  - {name: mail, kind: email, url: \"smtp://alerts:\(Self.password)@${MAIL_HOST}\", from: a@example.com, to: b@example.com}"),
            environment: ["MAIL_HOST": "mail.example.com:notaport"])
        #expect(text.contains("'url' in sink 'mail'"), "\(text)")
        #expect(!text.contains(Self.password), "\(text)")
    }

    @Test(arguments: [
        "ftp://api.telegram.org/bot\(token)/sendMessage",
        "https://",
        "https://oapi.dingtalk.com/robot/send?access_token=\(token)",
    ])
    func aWebhookURLIsShownNoFurtherThanItsHost(url: String) {
        let text = everything(sink("  - {name: hook, kind: webhook, url: \"\(url)\"}"))
        #expect(!text.contains(Self.token), "\(text)")
        #expect(!text.contains("TelegramBot"), "\(text)")
    }

    @Test func aWebhookURLToAnotherHostOverHTTPIsWarnedAboutWithoutItsToken() {
        let text = everything(sink("  - {name: hook, kind: webhook, url: \"http://hooks.example.com/services/\(Self.token)\"}"))
        #expect(text.contains("warning: 'url' in sink 'hook' is http://"), "\(text)")
        #expect(!text.contains(Self.token), "\(text)")
    }

    @Test func aBaseURLWithUserInfoIsRefusedWithoutQuotingIt() {
        let text = everything(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k, base_url: "https://ops:\(Self.password)@api.example.com"}
            """)
        #expect(text.contains("'base_url' in source 'shop' must not hold a user name or password"), "\(text)")
        #expect(!text.contains(Self.password), "\(text)")
    }

    @Test func aHeaderValueWrittenWithEscapesIsMaskedWholeInTheQuotedLine() {
        // The error is on the header line itself (a control character), and the value as written
        // differs from the value read, so only its position can mask it.
        let text = everything(sink(#"  - {name: hook, kind: webhook, url: "https://h.example.com", headers: {X-Token: "s3cr3t-\x41bc\r\nX: y"}}"#))
        #expect(text.contains("'X-Token' in headers of sink 'hook'"), "\(text)")
        #expect(!text.contains("s3cr3t"), "\(text)")
    }

    @Test func anAuthorizationHeaderIsMaskedInALineThatDidNotParse() {
        let text = everything(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - {name: hook, kind: webhook, url: "https://h.example.com", headers: {Authorization: "Bearer tok-0123456789"}
            """)
        #expect(text.contains("YAML"), "\(text)")
        #expect(!text.contains("tok-0123456789"), "\(text)")
    }

    /// When the YAML does not parse nothing has been read, so the quoted line is masked by
    /// its shape alone: every value in a `headers:` mapping (any header name), the values of
    /// secret keys to the end of a block line (a comma is part of a plain value there), a
    /// webhook URL after its host, and the user info of any URL.
    func quotedBrokenLine(_ yaml: String) -> String {
        do {
            _ = try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: [:])
            Issue.record("the config loaded:\n\(yaml)")
            return ""
        } catch {
            #expect(error.diagnostics.contains { $0.message.contains("YAML") && $0.sourceLine?.isEmpty == false }, "\(error)")
            return error.description + "\n" + error.headlines
        }
    }

    static let brokenStart = "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\nsinks:\n"

    @Test func aCustomHeaderInAFlowMappingIsMaskedInALineThatDidNotParse() {
        let text = quotedBrokenLine(
            Self.brokenStart + "  - {name: hook, kind: webhook, headers: {X-Shop-Token: s3cr3t-0123: x}}\n")
        #expect(text.contains("X-Shop-Token"), "\(text)")
        #expect(!text.contains("s3cr3t"), "\(text)")
    }

    @Test func aCustomHeaderInABlockMappingIsMaskedInALineThatDidNotParse() {
        let text = quotedBrokenLine(
            Self.brokenStart + "  - name: hook\n    kind: webhook\n    headers:\n      X-Shop-Token: s3cr3t-0123: x\n")
        #expect(text.contains("X-Shop-Token"), "\(text)")
        #expect(!text.contains("s3cr3t"), "\(text)")
    }

    @Test func aWebhookURLTokenIsMaskedInALineThatDidNotParse() {
        let text = quotedBrokenLine(
            Self.brokenStart + "  - name: hook\n    kind: webhook\n"
                + "    url: https://oapi.dingtalk.com/robot/send?sign=a,access_token=T0KEN-SECRET: x\n")
        #expect(text.contains("oapi.dingtalk.com"), "\(text)")
        #expect(!text.contains("T0KEN"), "\(text)")
    }

    @Test func aPasswordWithACommaIsMaskedWholeInALineThatDidNotParse() {
        let text = quotedBrokenLine(
            Self.brokenStart + "  - name: mail\n    kind: email\n    password: ab,Pa55-rest: x\n")
        #expect(!text.contains("Pa55"), "\(text)")
    }

    @Test func theUserInfoOfAnyURLIsMaskedInALineThatDidNotParse() {
        let text = quotedBrokenLine(
            Self.brokenStart + "  - name: mail\n    kind: email\n    relay_url: smtp://alerts:\(Self.password)@mail.example.com: x\n")
        #expect(text.contains("mail.example.com"), "\(text)")
        #expect(!text.contains("Pa55"), "\(text)")
    }
}
