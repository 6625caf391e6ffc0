import CancelWatch
import Foundation
import Logging
import TestServers
import Testing

/// A delivered message as Python's `email` package reads it (an independent parser).
struct ParsedMail: Decodable {
    /// Header names as they appear, in order.
    var names: [String]
    /// Decoded header values by lowercase name.
    var headers: [String: [String]]
    /// The decoded text body.
    var body: String
    var defects: [String]

    func header(_ name: String) -> String? { headers[name.lowercased()]?.first }

    static func parse(_ raw: Data) throws -> ParsedMail {
        let script = """
            import email, email.policy, json, sys
            raw = sys.stdin.buffer.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            headers = {}
            for name, value in msg.items():
                headers.setdefault(name.lower(), []).append(str(value))
            defects = [type(d).__name__ for d in msg.defects]
            for name, value in msg.items():
                defects += [type(d).__name__ for d in getattr(value, "defects", [])]
            body = msg.get_content().replace("\\r\\n", "\\n")
            json.dump({"names": list(msg.keys()), "headers": headers, "body": body, "defects": defects}, sys.stdout)
            """
        let output = try runPython(script, input: raw)
        return try JSONDecoder().decode(ParsedMail.self, from: Data(output.utf8))
    }
}

@Suite(.serialized) struct EmailSinkTests {
    /// 2026-11-23T19:01:05Z
    let clock = ManualClock(SinkTestEvents.occurredAt.addingTimeInterval(5))
    let smtp = CurlSMTPTransport(threads: 2)
    let moscow = TimeZone(identifier: "Europe/Moscow")!

    func sink(
        _ server: SMTPTestServer, scheme: String = "smtp", tls: EmailSinkConfig.TLSMode? = EmailSinkConfig.TLSMode.unencrypted,
        from: String = "cancelwatch <watch@example.com>", to: [String] = ["owner@example.com"], cc: [String] = [],
        subject: String = EmailSinkConfig.defaultSubject, username: String? = nil, password: String? = nil,
        caFile: String? = nil, timeout: TimeInterval = 20
    ) -> EmailSink {
        let config = EmailSinkConfig(
            url: URL(string: "\(scheme)://127.0.0.1:\(server.port)")!, tls: tls, username: username,
            password: password.map { Secret($0) }, from: from, to: to, cc: cc, subject: subject, timeout: timeout, caFile: caFile)
        return EmailSink(name: "mail", config: config, transport: smtp, clock: clock, timeZone: moscow)
    }

    /// Every line break is CRLF: no bare LF, no bare CR.
    func hasOnlyCRLF(_ data: Data) -> Bool {
        let bytes = Array(data)
        for (i, byte) in bytes.enumerated() {
            if byte == 0x0A && (i == 0 || bytes[i - 1] != 0x0D) { return false }
            if byte == 0x0D && (i + 1 >= bytes.count || bytes[i + 1] != 0x0A) { return false }
        }
        return true
    }

    func headerSection(_ delivered: SMTPTestServer.Delivered) -> String {
        let text = delivered.text
        return String(text[..<(text.range(of: "\r\n\r\n")?.lowerBound ?? text.endIndex)])
    }

    @Test func aPlainDeliveryIsAProperRFC5322Message() async throws {
        let server = try await SMTPTestServer.start()
        let event = SinkTestEvents.firing()
        try await sink(server, to: ["owner@example.com", "Ops Team <ops@example.com>"], cc: ["boss@example.com"])
            .deliver(event)

        let delivered = try #require(try server.messages().first)
        #expect(delivered.mailFrom == "watch@example.com")
        #expect(delivered.recipients == ["owner@example.com", "ops@example.com", "boss@example.com"])
        #expect(hasOnlyCRLF(delivered.raw))
        #expect(delivered.text.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 78 })

        let mail = try ParsedMail.parse(delivered.raw)
        #expect(mail.defects.isEmpty)
        #expect(mail.header("Date") == "Mon, 23 Nov 2026 22:01:05 +0300")
        #expect(mail.header("From") == "cancelwatch <watch@example.com>")
        #expect(mail.header("To") == "owner@example.com, Ops Team <ops@example.com>")
        #expect(mail.header("Cc") == "boss@example.com")
        #expect(mail.header("Subject") == "[cancelwatch] critical: final-hour 0123-0001-1")
        #expect(mail.header("Message-ID") == "<\(event.id)@cancelwatch>")
        #expect(mail.header("MIME-Version") == "1.0")
        #expect(mail.header("Content-Type") == "text/plain; charset=\"UTF-8\"")
        #expect(headerSection(delivered).contains("\r\nContent-Type: text/plain; charset=UTF-8\r\n"))
        #expect(mail.header("Content-Transfer-Encoding") == "quoted-printable")
        #expect(mail.headers["bcc"] == nil)
        #expect(mail.body.hasPrefix("ozon 0123-0001-1 auto-approves in 1h 05m\n\n"))
        #expect(mail.body.contains("Reason:     Передумал покупать\n"))
        #expect(mail.body.contains("Deadline:   2026-11-23T23:06:00+03:00 (1h 05m left)\n"))
        #expect(mail.body.contains("Event ID:   \(event.id)"))
    }

    @Test func theMessageIDIsTheSameOnEveryTry() async throws {
        let server = try await SMTPTestServer.start()
        let event = SinkTestEvents.firing()
        let sink = sink(server)
        try await sink.deliver(event)
        clock.advance(by: 60)
        try await sink.deliver(event)
        let ids = try server.messages().map { try ParsedMail.parse($0.raw).header("Message-ID") }
        #expect(ids == ["<\(event.id)@cancelwatch>", "<\(event.id)@cancelwatch>"])
    }

    @Test func chineseAndRussianSubjectsDecodeExactly() async throws {
        let server = try await SMTPTestServer.start()
        let chinese = "买家申请取消订单：商品与描述不符，需要在截止时间之前处理，否则平台将自动同意退款申请"
        let russian = "Покупатель отменил заказ: передумал, нашёл дешевле в другом магазине — срочно проверьте"
        let sink = sink(server, from: "Оповещения 提醒 <watch@example.com>", subject: "{{reason}} · {{order}}")
        try await sink.deliver(SinkTestEvents.firing(reason: chinese))
        try await sink.deliver(SinkTestEvents.firing(reason: russian))

        let messages = try server.messages()
        #expect(messages.count == 2)
        for (delivered, reason) in zip(messages, [chinese, russian]) {
            #expect(hasOnlyCRLF(delivered.raw))
            let mail = try ParsedMail.parse(delivered.raw)
            #expect(mail.defects.isEmpty)
            #expect(mail.header("Subject") == "\(reason) · 0123-0001-1")
            #expect(mail.header("From") == "Оповещения 提醒 <watch@example.com>")
            // Every encoded-word is at most 75 characters and decodes to whole UTF-8 characters;
            // every header line holding them is at most 76.
            let headers = headerSection(delivered)
            #expect(headers.split(separator: "\r\n").allSatisfy { $0.utf8.count <= 76 })
            let words = headers.split(whereSeparator: { $0 == " " || $0 == "\r\n" }).filter { $0.hasPrefix("=?UTF-8?B?") }
            #expect(words.count > 2)
            for word in words {
                #expect(word.count <= 75)
                let payload = word.dropFirst("=?UTF-8?B?".count).dropLast(2)
                let bytes = try #require(Data(base64Encoded: String(payload)))
                #expect(String(data: bytes, encoding: .utf8) != nil, "a word split a UTF-8 sequence: \(word)")
            }
        }
    }

    @Test func aReasonWithCRLFBccStaysInTheBodyAndNeverMakesAHeader() async throws {
        let server = try await SMTPTestServer.start()
        let reason = "не нужен\r\nBcc: x@y\r\nX-Injected: 1"
        try await sink(server, subject: "{{reason}} {{order}}").deliver(
            SinkTestEvents.firing(message: "cancel: \(reason)", reason: reason, order: "A\r\nBcc: z@w"))

        let delivered = try #require(try server.messages().first)
        #expect(delivered.recipients == ["owner@example.com"])
        #expect(hasOnlyCRLF(delivered.raw))
        let headers = headerSection(delivered)
        #expect(!headers.contains("\r\nBcc"))
        #expect(!headers.contains("\r\nX-Injected"))
        let mail = try ParsedMail.parse(delivered.raw)
        #expect(mail.headers["bcc"] == nil)
        #expect(mail.headers["x-injected"] == nil)
        #expect(mail.header("Subject") == "не нужен Bcc: x@y X-Injected: 1 A Bcc: z@w")
        #expect(mail.body.contains("cancel: не нужен\nBcc: x@y\nX-Injected: 1\n"))
    }

    @Test func longLinesAndDotsSurviveTheTransferEncoding() async throws {
        let server = try await SMTPTestServer.start()
        let long = String(repeating: "детали заказа 0123-0001-1 ", count: 20) + "end "
        let message = "\(long)\n.\n..leading dots\nтаб\tи пробел в конце "
        try await sink(server).deliver(SinkTestEvents.firing(message: message))
        let delivered = try #require(try server.messages().first)
        #expect(delivered.text.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 76 })
        let mail = try ParsedMail.parse(delivered.raw)
        #expect(mail.body.hasPrefix(message + "\n\n"))
    }

    @Test func aRefusedRecipientIsAPermanentErrorNamingTheServersReply() async throws {
        let server = try await SMTPTestServer.start(refuse: ["nobody@example.com"])
        do {
            try await sink(server, to: ["nobody@example.com"]).deliver(SinkTestEvents.firing())
            Issue.record("a refused recipient must not acknowledge")
        } catch {
            #expect(!error.retryable)
            #expect(error.message.contains("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"))
            #expect(error.message.hasPrefix("SMTP 127.0.0.1:\(server.port): "))
        }
        #expect(try server.messages().isEmpty)
    }

    @Test func aServerThatIsDownIsRetryableAndTheEventStaysInTheOutbox() async throws {
        // A port nothing listens on: start a server, note its port, stop it.
        let closedPort: Int
        do {
            let server = try await SMTPTestServer.start()
            closedPort = server.port
            server.stop()
        }
        try await Task.sleep(for: .milliseconds(300))
        let config = EmailSinkConfig(
            url: URL(string: "smtp://127.0.0.1:\(closedPort)")!, tls: .unencrypted, from: "watch@example.com",
            to: ["owner@example.com"], timeout: 5)
        let sink = EmailSink(name: "mail", config: config, transport: smtp, clock: clock)
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("a closed port must not acknowledge")
        } catch {
            #expect(error.retryable)
            #expect(error.message.contains("connection"))
        }

        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-email"))
        var event = SinkTestEvents.firing()
        event.sinks = ["mail"]
        try store.commit(alerts: [], events: [event], health: nil, at: clock.now())
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: RetryPolicy(initialDelay: 1, maxDelay: 5))], store: store,
            clock: clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let log = AttemptLog()
        log.add(await queue.deliverDueOnce())
        clock.advance(by: 10)
        log.add(await queue.deliverDueOnce())
        #expect(log.results.map(\.status) == [.retry, .retry])
        #expect(try store.outboxCounts().map { "\($0.sink)/\($0.status)/\($0.count)" } == ["mail/pending/1"])
        let due = try store.dueDeliveries(sink: "mail", now: clock.now().addingTimeInterval(60), limit: 10).deliveries
        #expect(due.map(\.event.id) == [event.id])
    }

    @Test func starttlsWithTheCAFileAndAuthDelivers() async throws {
        let server = try await SMTPTestServer.start(security: .starttls, credentials: ("watcher", "pa55-w0rd"))
        try await sink(
            server, tls: nil, username: "watcher", password: "pa55-w0rd", caFile: server.certificatePath
        ).deliver(SinkTestEvents.firing())
        let delivered = try #require(try server.messages().first)
        #expect(try ParsedMail.parse(delivered.raw).header("Subject") == "[cancelwatch] critical: final-hour 0123-0001-1")
    }

    @Test func aWrongPasswordIsNamedWithoutShowingIt() async throws {
        let server = try await SMTPTestServer.start(security: .starttls, credentials: ("watcher", "pa55-w0rd"))
        do {
            try await sink(server, tls: nil, username: "watcher", password: "wrong-secret", caFile: server.certificatePath)
                .deliver(SinkTestEvents.firing())
            Issue.record("refused credentials must not acknowledge")
        } catch {
            #expect(error.message.contains("535"))
            #expect(!error.retryable)
            #expect(!error.message.contains("wrong-secret"))
        }
        #expect(try server.messages().isEmpty)
    }

    @Test func starttlsIsRequiredNotTried() async throws {
        // A server without STARTTLS: the default for smtp:// must refuse to send in clear.
        let server = try await SMTPTestServer.start(security: .plain)
        do {
            try await sink(server, tls: nil).deliver(SinkTestEvents.firing())
            Issue.record("mail must not go out unencrypted unless tls: none says so")
        } catch {
            #expect(error.retryable)
            #expect(error.message.contains("tls"))
        }
        #expect(try server.messages().isEmpty)
    }

    @Test func anUntrustedCertificateIsRefused() async throws {
        let server = try await SMTPTestServer.start(security: .starttls)
        do {
            try await sink(server, tls: nil).deliver(SinkTestEvents.firing())
            Issue.record("an unverified certificate must not be accepted")
        } catch {
            #expect(error.message.contains("tls"))
        }
        #expect(try server.messages().isEmpty)
    }

    @Test func implicitTLSDeliversOverSMTPS() async throws {
        let server = try await SMTPTestServer.start(security: .implicitTLS)
        try await sink(server, scheme: "smtps", tls: nil, caFile: server.certificatePath).deliver(SinkTestEvents.firing())
        #expect(try server.messages().count == 1)
    }

    @Test func sourceEventsGetASubjectOfTheirOwn() {
        let config = EmailSinkConfig(url: URL(string: "smtp://127.0.0.1:25")!, from: "w@example.com", to: ["o@example.com"])
        let sink = EmailSink(name: "mail", config: config, transport: smtp, clock: clock)
        #expect(sink.subject(for: SinkTestEvents.sourceDown()) == "[cancelwatch] critical: source_down red-shop")
    }

    @Test func aGroupIsOneMailListingItsRequestsByDeadline() {
        let config = EmailSinkConfig(url: URL(string: "smtp://127.0.0.1:25")!, from: "w@example.com", to: ["o@example.com"])
        let sink = EmailSink(name: "mail", config: config, transport: smtp, clock: clock)
        let group = AlertEvent.group(
            [RequestListTests.event(1, deadlineIn: 300), RequestListTests.event(2, deadlineIn: 65, source: "red-shop")], sink: "mail",
            at: SinkTestEvents.occurredAt)
        #expect(sink.subject(for: group) == "[cancelwatch] warning: 2 cancellation requests, earliest deadline in 1h 05m")
        let body = sink.body(for: group)
        #expect(body.hasPrefix("2 cancellation requests, earliest deadline in 1h 05m\norder-2 · red-shop · 1h 05m left · reason 2\norder-1 · ozon-main · 5h 00m left · reason 1\n"), "\(body)")
        #expect(!body.contains("Source:"), "a group of two sources names none")
        #expect(body.contains("Event ID:   \(group.id)"))
    }

    @Test func aSubjectTemplateWithAnUnknownFieldIsAConfigError() {
        let yaml = """
            sources:
              - {name: shop, kind: ozon, client_id: 1, api_key: k}
            sinks:
              - {name: mail, kind: email, url: "smtp://127.0.0.1:2525", from: w@example.com, to: [o@example.com],
                 subject: "{{ordr}} is due"}
            """
        do {
            _ = try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cancelwatch.yaml", environment: [:])
            Issue.record("a broken subject template must not load")
        } catch {
            #expect(error.description.contains("unknown field 'ordr' in template; did you mean 'order'?"))
        }
    }
}
