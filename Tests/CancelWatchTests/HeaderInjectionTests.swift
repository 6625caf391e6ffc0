import Foundation
import HTTPServing
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

    @Test(arguments: [#"\r\nX-Injected: yes"#, #"\nX-Injected: yes"#, #"\rX"#, #"\0"#, #"\e[2J"#, #"\x7F"#, #"\x85"#, #"\t"#])
    func everyValueThatReachesTheWireRefusesControlCharacters(escape: String) {
        for (field, yaml) in Self.wireFields {
            let found = diagnostics(yaml("v1\(escape)v2"))
            #expect(
                found.contains { $0.message.contains(field) && $0.message.contains("control character") && $0.line >= 2 },
                "\(field) with \(escape): \(found)")
        }
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
}
