import Foundation
import HTTPServing
import TestServers
import Testing
@testable import CancelWatch

/// A CR or LF (or any control character) in a config value would end a header line or an
/// SMTP command and start one of the attacker's choosing. The config refuses such values,
/// naming the field at its line and column; the transports refuse to send them.
@Suite struct HeaderInjectionTests {
    static let injected = "abc\r\nX-Injected: yes"

    func diagnostics(_ yaml: String, environment: [String: String] = [:]) -> [ConfigDiagnostic] {
        do {
            _ = try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: environment)
            Issue.record("the config loaded:\n\(yaml)")
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func anAPIKeyWithCRLFFromTheEnvironmentIsRefusedAtItsLineAndColumn() {
        let found = diagnostics(
            """
            sources:
              - name: shop
                kind: ozon
                client_id: 1
                api_key: "${OZON_API_KEY}"
            """, environment: ["OZON_API_KEY": Self.injected])
        let diagnostic = found.first { $0.message.contains("'api_key' in source 'shop'") }
        #expect(diagnostic?.line == 5, "\(found)")
        #expect(diagnostic?.column == 14, "\(found)")
        #expect(diagnostic?.message.contains("control character") == true, "\(found)")
        #expect(!"\(found)".contains("X-Injected"), "the value is secret: \(found)")
    }

    @Test func anAPIKeyWithCRLFWrittenAsYAMLEscapesIsRefused() {
        let found = diagnostics(
            #"""
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: "abc\r\nX-Injected: yes"}
            """#)
        #expect(found.contains { $0.line == 2 && $0.message.contains("'api_key' in source 'shop'") }, "\(found)")
    }

    /// Every value that reaches a request line, a header or an SMTP command, with every
    /// kind of control character: a lone LF, CRLF (one Character), NUL, ESC, DEL, a C1 control.
    static let wireFields: [(field: String, yaml: @Sendable (String) -> String)] = [
        ("'api_key' in source 'shop'", { "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: \"\($0)\"}" }),
        ("'app_key' in source 'red'", { "sources:\n  - {name: red, kind: red, app_key: \"\($0)\", app_secret: s}" }),
        ("'app_secret' in source 'red'", { "sources:\n  - {name: red, kind: red, app_key: k, app_secret: \"\($0)\"}" }),
        ("'base_url' in source 'shop'", {
            "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k, base_url: \"https://a.example.com/\($0)\"}"
        }),
        ("'secret' in sink 'hook'", { sink("{name: hook, kind: webhook, url: \"https://h.example.com\", secret: \"\($0)\"}") }),
        ("'X-Token' in headers of sink 'hook'", {
            sink("{name: hook, kind: webhook, url: \"https://h.example.com\", headers: {X-Token: \"\($0)\"}}")
        }),
        ("'chat_id' in sink 'tg'", {
            sink("{name: tg, kind: webhook, url: \"https://api.telegram.org/botX/sendMessage\", format: telegram, chat_id: \"\($0)\"}")
        }),
        ("'username' in sink 'mail'", { mail("username: \"\($0)\", password: p") }),
        ("'password' in sink 'mail'", { mail("username: u, password: \"\($0)\"") }),
        ("'from' in sink 'mail'", { sink("{name: mail, kind: email, url: \"smtp://m.example.com\", from: \"a@example.com\($0)\", to: b@example.com}") }),
        ("'to' in sink 'mail'", { sink("{name: mail, kind: email, url: \"smtp://m.example.com\", from: a@example.com, to: [\"b@example.com\($0)\"]}") }),
        ("'cc' in sink 'mail'", { mail("cc: \"c@example.com\($0)\"") }),
        ("'subject' in sink 'mail'", { mail("subject: \"alert \($0)\"") }),
    ]

    static func sink(_ item: String) -> String {
        "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k}\nsinks:\n  - \(item)"
    }

    static func mail(_ extra: String) -> String {
        sink("{name: mail, kind: email, url: \"smtp://m.example.com\", from: a@example.com, to: b@example.com, \(extra)}")
    }

    @Test(arguments: [
        #"\r\nX-Injected: yes"#, #"\nX-Injected: yes"#, #"\rX"#, #"\0"#, #"\e[2J"#, #"\x7F"#, #"\x85"#, #"\t"#,
        // The line and paragraph separators and the bidirectional controls TerminalText keeps off a terminal.
        #"\u2028"#, #"\u2029"#, #"\u202E"#, #"\u061C"#, #"\u200E"#, #"\u200F"#, #"\u202A"#, #"\u2066"#, #"\u2069"#,
    ])
    func everyValueThatReachesTheWireRefusesControlCharacters(escape: String) {
        for (field, yaml) in Self.wireFields {
            let found = diagnostics(yaml("v1\(escape)v2"))
            #expect(
                found.contains { $0.message.contains(field) && $0.message.contains("control character") && $0.line >= 2 },
                "\(field) with \(escape): \(found)")
        }
    }

    @Test func aRightToLeftOverrideIsRefusedNamingTheFieldAndTheCharacter() {
        let found = diagnostics(Self.sink(#"{name: hook, kind: webhook, url: "https://h.example.com", headers: {X-Team: "ops\u202Egpj.exe"}}"#))
        #expect(
            found.map(\.headline) == [
                "/etc/cw/cancelwatch.yaml:4:81: error: 'X-Team' in headers of sink 'hook' holds a control character, "
                    + "RIGHT-TO-LEFT OVERRIDE (U+202E): config values must be one line of text without control characters"
            ], "\(found)")
    }

    @Test func theSameValuesWithoutControlCharactersLoad() throws {
        for (field, yaml) in Self.wireFields {
            do {
                _ = try CancelWatchConfig.parse(yaml: yaml("v1-v2"), path: "/etc/cw/cancelwatch.yaml", environment: [:])
            } catch {
                Issue.record("\(field): \(error)")
            }
        }
    }

    /// On deb1852 the API key's CRLF went to the wire: the receiver saw a header named
    /// X-Injected. Now the transport refuses the request; the server sees only the clean one.
    @Test func aHeaderWithCRLFNeverReachesTheWire() async throws {
        let server = try ScriptedServer(fallback: { _ in .json(text: "{}") })
        let transport = CurlHTTPTransport(threads: 1)
        let url = server.baseURL + "/v2/conditional-cancellation/list"
        let bad = HTTPRequest(method: "GET", url: url, headers: [HTTPHeader("Api-Key", Self.injected)], timeout: 5)
        var refused: TransportError?
        do {
            _ = try await transport.send(bad)
        } catch {
            refused = error
        }
        let clean = HTTPRequest(method: "GET", url: url, headers: [HTTPHeader("Api-Key", "abc")], timeout: 5)
        _ = try await transport.send(clean)
        // The clean request was answered, so anything the bad one sent had arrived before it.
        #expect(!server.requests.contains { $0.header("X-Injected") != nil }, "\(server.requests.map(\.headers))")
        #expect(server.requests.count == 1)
        #expect(refused?.message.contains("control character") == true, "\(String(describing: refused))")
        #expect(refused?.message.contains("X-Injected") == false)
    }

    /// The webhook sink once stripped CR, LF and NUL from configured headers before the
    /// transport saw them, so its last guard could never fire and a value was sent altered.
    /// Given to the sink directly (past the config), such a header is refused by the
    /// transport, the attempt fails saying why, and the receiver sees only the clean delivery.
    @Test(arguments: [
        ["X-Shop-Token": "s3cr3t-token\r\nX-Injected: yes"],
        ["X-Shop-Token": "s3cr3t-token\0"],
        ["X-Shop-Token\r\nX-Injected": "yes"],
        ["X-Shop-Token": "s3cr3t-token\u{202E}"],
        ["X-Shop-Token": "s3cr3t-token\u{2028}X-Injected: yes"],
    ])
    func aWebhookHeaderWithAControlCharacterIsRefusedByTheTransportNotSentStripped(headers: [String: String]) async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text(status: 204, "") })
        let transport = CurlHTTPTransport(threads: 1)
        func sink(_ headers: [String: String]) -> WebhookSink {
            WebhookSink(
                name: "hook", config: WebhookSinkConfig(url: .url(receiver.baseURL + "/hook"), headers: headers),
                transport: transport)
        }
        var refused: DeliveryError?
        do {
            try await sink(headers).deliver(SinkTestEvents.firing())
        } catch {
            refused = error
        }
        try await sink(["X-Shop-Token": "clean"]).deliver(SinkTestEvents.firing())
        // The clean delivery was answered, so anything the refused one sent had arrived before it.
        #expect(receiver.requests.count == 1, "\(receiver.requests.map(\.headers))")
        #expect(receiver.requests.first?.header("X-Shop-Token") == "clean")
        #expect(!receiver.requests.contains { $0.header("X-Injected") != nil })
        let message = try #require(refused?.message, "the sink sent the header instead of refusing it")
        #expect(message.contains("control character"), "\(message)")
        #expect(!message.contains("s3cr3t"), "\(message)")
    }

    /// The email sink likewise once dropped controls from addresses, sending to an altered
    /// one. Given to it directly, such an address is refused by the SMTP transport.
    @Test(arguments: [
        (from: "watch@example.com\r\nRCPT TO:evil@example.com", to: "owner@example.com"),
        (from: "watch@example.com", to: "owner@example.com\r\n"),
        (from: "cancelwatch <watch@example.com\0>", to: "owner@example.com"),
    ])
    func anEmailAddressWithAControlCharacterIsRefusedByTheTransportNotSentStripped(from: String, to: String) async throws {
        let server = try await SMTPTestServer.start()
        let transport = CurlSMTPTransport(threads: 1)
        func sink(from: String, to: String) -> EmailSink {
            let config = EmailSinkConfig(
                url: URL(string: "smtp://127.0.0.1:\(server.port)")!, tls: .unencrypted, from: from, to: [to], timeout: 20)
            return EmailSink(name: "mail", config: config, transport: transport)
        }
        var refused: DeliveryError?
        do {
            try await sink(from: from, to: to).deliver(SinkTestEvents.firing())
        } catch {
            refused = error
        }
        try await sink(from: "watch@example.com", to: "owner@example.com").deliver(SinkTestEvents.firing())
        let delivered = try server.messages()
        #expect(delivered.count == 1, "\(delivered.map { ($0.mailFrom, $0.recipients) })")
        #expect(delivered.first?.mailFrom == "watch@example.com")
        let message = try #require(refused?.message, "the sink sent the message instead of refusing it")
        #expect(message.contains("control character"), "\(message)")
    }
}
