import Foundation
import Testing
@testable import CancelWatch

/// What weakens the config is said out loud: `insecure: true`, `tls: none`, and `http://`
/// to a host that is not this machine, each a warning at its line and column. The config
/// still loads; `check` prints these warnings and `run` logs them (see the end-to-end
/// DowngradeWarningsLoggedTests).
@Suite struct DowngradeWarningTests {
    func warnings(_ yaml: String) throws -> [ConfigDiagnostic] {
        try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: [:]).warnings
    }

    static func sink(_ item: String) -> String {
        "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\nsinks:\n  - \(item)"
    }

    @Test func insecureTrueIsAWarningAtItsValue() throws {
        let found = try warnings(Self.sink("{name: hook, kind: webhook, url: \"https://h.example.com\", insecure: true}"))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.severity == .warning)
        #expect(found.first?.message.contains("insecure: true in sink 'hook' turns off TLS certificate verification") == true)
        #expect(found.first?.line == 4)
        #expect(found.first?.headline.hasPrefix("/etc/cw/cancelwatch.yaml:4:") == true)
        #expect(found.first?.headline.contains(": warning: ") == true)
    }

    @Test func insecureOnAnEmailSinkIsAWarningToo() throws {
        let found = try warnings(
            Self.sink("{name: mail, kind: email, url: \"smtps://m.example.com\", from: a@example.com, to: b@example.com, insecure: yes}"))
        #expect(found.map(\.message).contains { $0.hasPrefix("insecure: true in sink 'mail'") }, "\(found)")
    }

    @Test func tlsNoneWithAPasswordSaysThePasswordGoesInClear() throws {
        let found = try warnings(
            """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - name: mail
                kind: email
                url: smtp://m.example.com:25
                tls: none
                username: alerts
                password: pw-1234
                from: a@example.com
                to: b@example.com
            """)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message.contains("password in clear (AUTH PLAIN)") == true, "\(found)")
        #expect(found.first?.line == 7)
        #expect(found.first?.column == 10)
        #expect(!"\(found)".contains("pw-1234"))
    }

    @Test func tlsNoneWithoutAPasswordStillWarns() throws {
        let found = try warnings(
            Self.sink("{name: mail, kind: email, url: \"smtp://m.example.com\", tls: none, from: a@example.com, to: b@example.com}"))
        #expect(found.map(\.message) == ["tls: none in sink 'mail' sends every message unencrypted; use smtps:// or STARTTLS"])
    }

    @Test(arguments: ["http://api.example.com", "http://10.0.0.5:8080", "http://[2001:db8::1]:80", "HTTP://Example.com"])
    func anHTTPBaseURLToAnotherHostWarns(url: String) throws {
        let found = try warnings("sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k, base_url: \"\(url)\"}")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message.hasPrefix("'base_url' in source 'shop' is http://") == true, "\(found)")
    }

    @Test(arguments: ["https://hooks.example.com/x", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x", "http://127.1.2.3/x"])
    func httpsAndLoopbackAreNotDowngrades(url: String) throws {
        #expect(try warnings(Self.sink("{name: hook, kind: webhook, url: \"\(url)\"}")).isEmpty)
        #expect(try warnings("sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k, base_url: \"\(url)\"}").isEmpty)
    }

    @Test func anHTTPWebhookToAnotherHostWarnsWithoutItsPath() throws {
        let found = try warnings(Self.sink("{name: hook, kind: webhook, url: \"http://hooks.example.com/services/T0/B0/secret-path\"}"))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message.contains("hooks.example.com") == true)
        #expect(!"\(found)".contains("secret-path"))
    }

    @Test func aConfigWithNoDowngradeHasNoWarnings() throws {
        #expect(try warnings(Self.sink("{name: hook, kind: webhook, url: \"https://h.example.com\", insecure: false}")).isEmpty)
    }
}
