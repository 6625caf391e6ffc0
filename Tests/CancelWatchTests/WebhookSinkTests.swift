import CancelWatch
import CancelWatchTesting
import Foundation
import HTTPServing
import Logging
import Synchronization
import Testing

@Suite struct WebhookSinkTests {
    let clock = ManualClock(SinkTestEvents.occurredAt.addingTimeInterval(2))
    let transport = CurlHTTPTransport(threads: 2)

    func sink(_ url: String, secret: String? = nil, headers: [String: String] = [:], timeout: TimeInterval = 10) -> WebhookSink {
        WebhookSink(
            name: "hook",
            config: WebhookSinkConfig(url: .url(url), secret: secret.map { Secret($0) }, timeout: timeout, headers: headers),
            transport: transport, clock: clock)
    }

    /// A queue over a fresh state file with `event` already in its outbox for `sink`.
    func queue(
        _ sink: AlertSink, retry: RetryPolicy, clock: WatchClock, event: AlertEvent
    ) throws -> (DeliveryQueue, SQLiteStateStore, AttemptLog) {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-webhook"))
        var queued = event
        queued.sinks = [sink.name]
        try store.commit(alerts: [], events: [queued], health: nil, at: clock.now())
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: retry)], store: store, clock: clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (queue, store, AttemptLog())
    }

    @Test func genericBodyAndEveryHeaderArriveAndTheSignatureVerifies() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text(status: 204, "") })
        let event = SinkTestEvents.firing()
        let sink = sink(
            receiver.baseURL + "/hooks/cw", secret: "whsec_5f1e2d3c",
            headers: ["Authorization": "Bearer token-123456", "X-Team": "ops"])
        try await sink.deliver(event)

        // Only its own: a probe from another test of a port it just closed can land here.
        let own = receiver.requests.filter { $0.path == "/hooks/cw" }
        let request = try #require(own.first)
        #expect(own.count == 1)
        #expect(request.method == "POST")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("User-Agent") == "cancelwatch/\(CancelWatchVersion.current)")
        #expect(request.header("Idempotency-Key") == event.id)
        #expect(request.header("Authorization") == "Bearer token-123456")
        #expect(request.header("X-Team") == "ops")

        // The body is the generic body (`AlertEvent.webhookBody`), compact.
        #expect(request.bodyText == event.webhookBody.serialized())
        let body = try JSONParser.parse(request.body)
        #expect(body["version"]?.stringValue == "1")
        #expect(body["id"]?.stringValue == event.id)
        #expect(body["event"]?.stringValue == "firing")
        #expect(body["rule"]?.stringValue == "final-hour")
        #expect(body["severity"]?.stringValue == "critical")
        #expect(body["request"]?["order"]?.stringValue == "0123-0001-1")
        #expect(body["request"]?["reason"]?.stringValue == "Передумал покупать")
        #expect(body["deadline"]?.stringValue == "2026-11-23T20:06:00Z")
        #expect(body["remaining_seconds"] == .integer(3900))
        #expect(body["occurred_at"]?.stringValue == "2026-11-23T19:01:00Z")
        #expect(body["outcome"] == .null)

        // t=<unix seconds of the sink's clock>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>, recomputed with Python.
        let signature = try #require(request.header("X-Cancelwatch-Signature"))
        let parts = Dictionary(
            uniqueKeysWithValues: signature.split(separator: ",").map {
                let pair = $0.split(separator: "=", maxSplits: 1)
                return (String(pair[0]), String(pair[1]))
            })
        #expect(parts["t"] == "1795460462")
        let expected = try IndependentHMAC.sha256Hex(key: "whsec_5f1e2d3c", message: "1795460462." + request.bodyText)
        #expect(parts["v1"] == expected)
    }

    @Test func withoutASecretThereIsNoSignatureHeader() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text("ok") })
        try await sink(receiver.baseURL + "/x").deliver(SinkTestEvents.firing())
        #expect(receiver.requests.first?.header("X-Cancelwatch-Signature") == nil)
    }

    @Test func configuredHeadersCannotReplaceTheContractHeaders() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .text("ok") })
        let event = SinkTestEvents.firing()
        try await sink(
            receiver.baseURL, headers: ["content-type": "text/plain", "Idempotency-Key": "mine", "X-Team": "ops"]
        ).deliver(event)
        let request = try #require(receiver.requests.first)
        #expect(request.headers.values(for: "Content-Type") == ["application/json"])
        #expect(request.headers.values(for: "Idempotency-Key") == [event.id])
        #expect(request.header("X-Team") == "ops")
    }

    @Test func anyTwoHundredAcknowledges() async throws {
        for status in [200, 201, 202, 204, 299] {
            let receiver = try ScriptedServer(fallback: { _ in ServerResponse(status: status) })
            try await sink(receiver.baseURL).deliver(SinkTestEvents.firing())
        }
    }

    @Test func aLongReplyIsCutAndJudgedByItsStatus() async throws {
        // Asked for: at most 1 MiB, cut rather than failed.
        final class Spy: HTTPTransport {
            let asked = Mutex<[HTTPRequest]>([])
            func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
                asked.withLock { $0.append(request) }
                return HTTPResponse(status: 200, body: Data("ok".utf8))
            }
        }
        let spy = Spy()
        try await WebhookSink(name: "hook", config: WebhookSinkConfig(url: .url("http://127.0.0.1:9/x")), transport: spy)
            .deliver(SinkTestEvents.firing())
        #expect(spy.asked.withLock { $0.map { [$0.maxResponseBytes, $0.cutsLongAnswer ? 1 : 0] } } == [[1 << 20, 1]])
        // Over curl: a 2xx with megabytes after it was taken (not sent again, not a transfer
        // failure); a 400 with megabytes is refused.
        let long = String(repeating: "x", count: 3 << 20)
        let taken = try ScriptedServer(fallback: { _ in .text(status: 200, long) })
        try await sink(taken.baseURL).deliver(SinkTestEvents.firing())
        #expect(taken.requests.count == 1)
        let refused = try ScriptedServer(fallback: { _ in .text(status: 400, long) })
        let error = await #expect(throws: DeliveryError.self) { try await sink(refused.baseURL).deliver(SinkTestEvents.firing()) }
        #expect(error?.retryable == false && error?.message.contains("HTTP 400: xxx") == true, "\(String(describing: error))")
    }

    @Test func aReceiverThatFailsWith503IsRetriedUntilItRecoversWithTheSameID() async throws {
        let receiver = try ScriptedServer(
            [{ _ in .text(status: 503, "maintenance") }, { _ in .text(status: 503, "maintenance") }, { _ in .text(status: 200, "ok") }])
        let event = SinkTestEvents.firing()
        let realClock = SystemClock()
        let sink = WebhookSink(
            name: "hook", config: WebhookSinkConfig(url: .url(receiver.baseURL + "/cw"), secret: "s3cr3t-value"),
            transport: transport, clock: realClock)
        let (queue, store, log) = try queue(
            sink, retry: RetryPolicy(initialDelay: 0.05, maxDelay: 0.2), clock: realClock, event: event)
        let running = await log.run(queue)
        defer { running.cancel() }

        // The queue reports an attempt after the state file recorded it, and the log reads the
        // reports on a task of its own: wait for both.
        let delivered = try await eventually {
            try store.outboxCounts().contains { $0.sink == "hook" && $0.status == "delivered" && $0.count == 1 }
                && log.results.last?.status == .delivered
        }
        running.cancel()
        #expect(delivered)
        #expect(log.results.map(\.status) == [.retry, .retry, .delivered])
        #expect(log.results.first?.error?.contains("HTTP 503: maintenance") == true)
        #expect(receiver.requests.count == 3)
        #expect(receiver.requests.allSatisfy { $0.header("Idempotency-Key") == event.id })
        #expect(try receiver.requests.allSatisfy { try JSONParser.parse($0.body)["id"]?.stringValue == event.id })
    }

    @Test func tooManyRequestsWithRetryAfterSchedulesTheNextTryThen() async throws {
        // The sink reports the wait the receiver asked for…
        let limited = try ScriptedServer(fallback: { _ in .text(status: 429, "slow down", headers: ["Retry-After": "7"]) })
        do {
            try await sink(limited.baseURL).deliver(SinkTestEvents.firing())
            Issue.record("a 429 must not acknowledge")
        } catch {
            #expect(error.retryable)
            #expect(error.retryAfter == 7)
            #expect(error.message == "HTTP 429: slow down")
        }

        // …and the queue waits exactly that long (no backoff guess, no jitter) before the next try.
        let receiver = try ScriptedServer(
            [{ _ in .text(status: 429, "slow down", headers: ["Retry-After": "7"]) }, { _ in .text(status: 200, "ok") }])
        let (queue, store, log) = try queue(
            sink(receiver.baseURL), retry: RetryPolicy(initialDelay: 1, maxDelay: 60), clock: clock,
            event: SinkTestEvents.firing())
        log.add(await queue.deliverDueOnce())
        let first = try #require(log.results.first)
        #expect(first.status == .retry)
        #expect(first.nextAttemptAt == clock.now().addingTimeInterval(7))
        clock.advance(by: 6)
        log.add(await queue.deliverDueOnce())
        #expect(log.results.count == 1)  // not due yet
        clock.advance(by: 1)
        log.add(await queue.deliverDueOnce())
        #expect(log.results.map(\.status) == [.retry, .delivered])
        #expect(try store.outboxCounts().map { "\($0.sink)/\($0.status)/\($0.count)" } == ["hook/delivered/1"])
        #expect(receiver.requests.count == 2)
    }

    @Test func aBadRequestBecomesADeadLetterWithStatusAndReply() async throws {
        let receiver = try ScriptedServer(fallback: { _ in .json(status: 400, text: #"{"error":"unknown field 'rule'"}"#) })
        let sink = sink(receiver.baseURL)
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("a 400 must not acknowledge")
        } catch {
            #expect(!error.retryable)
            #expect(error.message == #"HTTP 400: {"error":"unknown field 'rule'"}"#)
        }

        let (queue, store, log) = try queue(sink, retry: .standard, clock: clock, event: SinkTestEvents.firing())
        log.add(await queue.deliverDueOnce())
        #expect(log.results.map(\.status) == [.dead])
        #expect(log.results.first?.error?.hasPrefix("HTTP 400: ") == true)
        #expect(try store.outboxCounts().map { "\($0.sink)/\($0.status)/\($0.count)" } == ["hook/dead/1"])
        clock.advance(by: 3600)
        log.add(await queue.deliverDueOnce())
        #expect(receiver.requests.count == 2)  // the direct try and the queue's one; never again
    }

    @Test func retryableAndPermanentStatusesAreTold() async throws {
        for (status, retryable) in [(408, true), (425, true), (500, true), (502, true), (504, true), (401, false), (404, false), (410, false), (422, false)] {
            let receiver = try ScriptedServer(fallback: { _ in .text(status: status, "no") })
            do {
                try await sink(receiver.baseURL).deliver(SinkTestEvents.firing())
                Issue.record("HTTP \(status) must not acknowledge")
            } catch {
                #expect(error.retryable == retryable, "HTTP \(status)")
            }
        }
    }

    @Test func aReceiverSlowerThanTheTimeoutIsARetryableFailure() async throws {
        let receiver = try ScriptedServer(fallback: { _ in ServerResponse.text("late").delayed(by: 10) })
        do {
            try await sink(receiver.baseURL, timeout: 0.3).deliver(SinkTestEvents.firing())
            Issue.record("a timeout must not acknowledge")
        } catch {
            #expect(error.retryable)
            #expect(error.message.contains("timeout"))
        }
        receiver.server.shutdown()
    }

    @Test func aReceiverThatIsDownIsARetryableFailure() async throws {
        let receiver = try ScriptedServer()
        let url = receiver.baseURL
        receiver.server.shutdown()
        do {
            try await sink(url).deliver(SinkTestEvents.firing())
            Issue.record("nothing listening must not acknowledge")
        } catch {
            #expect(error.retryable)
        }
    }

    @Test func errorsNeverShowTheURLTokenTheSecretOrHeaderValues() async throws {
        // A receiver that echoes what it was sent.
        let receiver = try ScriptedServer(fallback: { request in
            .text(status: 403, "denied \(request.target) \(request.header("Authorization") ?? "")")
        })
        let sink = sink(
            receiver.baseURL + "/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", secret: "whsec_abcdef",
            headers: ["Authorization": "Bearer abcdefgh"])
        do {
            try await sink.deliver(SinkTestEvents.firing())
            Issue.record("a 403 must not acknowledge")
        } catch {
            #expect(error.message.hasPrefix("HTTP 403: denied /"))
            #expect(!error.message.contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"))
            #expect(!error.message.contains("abcdefgh"))
            #expect(!error.message.contains("whsec_abcdef"))
        }
        #expect(!"\(sink.config)".contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"))
    }
}
