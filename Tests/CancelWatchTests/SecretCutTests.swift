import CancelWatch
import Foundation
import HTTPServing
import Testing
import TestServers

@testable import CancelWatch

/// Every text that may hold a secret is scrubbed, then cut: a credential that straddles
/// a cut is taken out whole, never left as a readable prefix.
@Suite struct SecretCutTests {
    static let secret = "S3CRET-straddles-the-cut-0123456789"

    /// `total` bytes of text with `secret` starting `before` bytes ahead of byte `cut`.
    static func text(cut: Int, before: Int = 12, total: Int) -> String {
        let head = String(repeating: "a", count: cut - before)
        return head + secret + String(repeating: "b", count: max(0, total - head.utf8.count - secret.utf8.count))
    }

    static func leaksPrefix(_ text: String) -> Bool {
        text.contains(String(secret.prefix(8)))
    }

    @Test(arguments: [10, 200, 1024])
    func aSecretAcrossTheCutIsTakenOutWholeAndTheCutKeepsWholeCharacters(_ limit: Int) {
        let scrubber = SecretScrubber([Self.secret])
        let cutText = scrubber.scrub(Self.text(cut: limit, before: 6, total: limit * 3 + 100), limit: limit)
        #expect(!Self.leaksPrefix(cutText), "\(cutText)")
        #expect(cutText.contains(Secret.placeholder))
        #expect(cutText.hasSuffix("…"))
        // A cut never splits a character: 2-, 3- and 4-byte ones on every offset.
        for filler in ["Ж", "€", "😀"] {
            for shift in 0..<4 {
                let text = String(repeating: "a", count: shift) + String(repeating: filler, count: limit)
                let cut = SecretScrubber([]).scrub(text, limit: limit)
                #expect(!cut.unicodeScalars.contains("\u{FFFD}"), "\(filler) shifted \(shift)")
                #expect(cut.utf8.count <= limit + "…".utf8.count)
            }
        }
    }

    /// A webhook reply is cut at 200 bytes for the message: the URL's token across it is
    /// scrubbed first, in an error status and in a chat tool's 200 `ok: false`.
    @Test(arguments: [(WebhookSinkConfig.Format.generic, 400), (.telegram, 400), (.telegram, 200), (.slack, 200)])
    func aWebhookTokenAcrossTheCutOfTheReplyLeavesNoPrefix(_ format: WebhookSinkConfig.Format, _ status: Int) async throws {
        let head = #"{"ok":false,"error_code":400,"description":"bad "#
        let body = head + Self.text(cut: 200 - head.utf8.count, total: 400) + #""}"#
        let reply = Data(body.utf8)
        let server = try ScriptedServer(fallback: { _ in .json(status: status, reply) })
        let sink = WebhookSink(
            name: "hook", config: WebhookSinkConfig(url: .url(server.baseURL + "/bot\(Self.secret)/sendMessage"), format: format),
            transport: CurlHTTPTransport(threads: 1), clock: ManualClock())
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("the reply refuses the event")
        } catch {
            #expect(!Self.leaksPrefix(error.message), "\(error.message)")
            #expect(error.message.contains("bad aaa"), "\(error.message)")
        }
    }

    /// A receiver that echoes the URL as it was sent (percent-encoded) leaks nothing either:
    /// the token's encoded form, in the path and in the query, is as secret as its decoded one.
    @Test func aWebhookTokenEchoedPercentEncodedIsTakenOut() async throws {
        let server = try ScriptedServer(fallback: { request in .text(status: 404, "no such hook: \(request.target)") })
        let sink = WebhookSink(
            name: "hook",
            config: WebhookSinkConfig(url: .url(server.baseURL + "/bot123456%3AAAbbCC-dd/send?key=k3y%2Fvalue%2Bx")),
            transport: CurlHTTPTransport(threads: 1), clock: ManualClock())
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("the receiver refuses the event")
        } catch {
            #expect(error.message.contains("404"), "\(error.message)")
            for leak in ["123456%3AAAbbCC-dd", "AAbbCC-dd", "k3y%2Fvalue%2Bx", "value%2B"] {
                #expect(!error.message.contains(leak), "\(leak) in \(error.message)")
            }
        }
    }

    /// An SMTP reply is kept to 300 bytes: the password it echoes across that is scrubbed first.
    @Test func anSMTPPasswordAcrossTheCutOfTheReplyLeavesNoPrefix() async throws {
        let refusal = "5.7.1 <%s> refused: " + Self.text(cut: 300 - 44, total: 340)
        let server = try SMTPTestServer(refuse: ["owner@example.com"], refusal: refusal)
        defer { server.stop() }
        let config = EmailSinkConfig(
            url: URL(string: "smtp://127.0.0.1:\(server.port)")!, tls: .unencrypted, password: Secret(Self.secret),
            from: "watch@example.com", to: ["owner@example.com"], timeout: 20)
        let sink = EmailSink(name: "mail", config: config, transport: CurlSMTPTransport(threads: 1), clock: ManualClock())
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("the recipient is refused")
        } catch {
            #expect(error.message.contains("refused: aaa"), "\(error.message)")
            #expect(!Self.leaksPrefix(error.message), "\(error.message)")
        }
    }

    /// A text someone else cut (curl's 256-byte error buffer), marked with `…`: the start of
    /// a secret right before the mark is taken out too.
    @Test func theStartOfASecretCutShortByCurlIsTakenOut() {
        var buffer = [CChar](repeating: 0, count: 257)
        let curlText = String(repeating: "e", count: 240) + Self.secret
        for (index, byte) in curlText.utf8.prefix(255).enumerated() { buffer[index] = CChar(bitPattern: byte) }
        let detail = curlErrorText(buffer)
        #expect(detail.hasSuffix("…"))
        #expect(detail.contains(String(Self.secret.prefix(8))), "the test's own premise: curl cut the secret")
        let message = SecretScrubber([Self.secret]).scrub("source 'x': transport error (curl 3): \(detail)")
        #expect(!Self.leaksPrefix(message), "\(message)")
        #expect(message.hasSuffix(Secret.placeholder + "…"), "\(message)")
        // Ordinary text before a `…` is left alone.
        #expect(SecretScrubber([Self.secret]).scrub("see S3C…") == "see S3C…")
    }
}
