import CancelWatchTesting
import Foundation
import Logging
import Testing

@testable import CancelWatch

/// Waits that come from outside (`Retry-After`, a chat tool's `retry_after`) cannot stop a
/// loop or make it spin: read leniently, absurd values ignored, the rest clamped to the
/// backoff's cap; every wake time computed from them is finite and at least the floor.
@Suite struct OutsideDelayTests {
    static let now = Date(timeIntervalSince1970: 1_764_000_000)

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    @Test(arguments: [
        "1000000000", "-5", "-0.5", "nan", "NaN", "inf", "-inf", "Infinity", "1e308", "1e400", "abc", "", "   ", "0x10", "12abc",
        "99999999999999999999999", "Wed, 21 Oct 2057 07:28:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT extra",
    ])
    func absurdNegativeOrUnreadableWaitsCountAsAbsent(_ text: String) {
        #expect(OutsideDelay.parse(text, now: Self.now) == nil)
    }

    @Test func secondsAndHTTPDatesAreReadLenientlyAndClampedToTheCap() {
        #expect(OutsideDelay.parse("120", now: Self.now) == 120)
        #expect(OutsideDelay.parse(" 120\t", now: Self.now) == 120)
        #expect(OutsideDelay.parse("\"30\"", now: Self.now) == 30)
        #expect(OutsideDelay.parse("1.5", now: Self.now) == 1.5)
        #expect(OutsideDelay.parse("0", now: Self.now) == 0)
        #expect(OutsideDelay.parse("3600", now: Self.now) == OutsideDelay.cap)
        #expect(OutsideDelay.parse(Self.httpDate(Self.now.addingTimeInterval(60)), now: Self.now) == 60)
        #expect(OutsideDelay.parse(Self.httpDate(Self.now.addingTimeInterval(-60)), now: Self.now) == 0)
        #expect(OutsideDelay.parse(Self.httpDate(Self.now.addingTimeInterval(7200)), now: Self.now) == OutsideDelay.cap)
        // RFC 850 and asctime, which RFC 9110 asks a recipient to accept too.
        #expect(OutsideDelay.parse("Sunday, 16-Nov-25 16:01:00 GMT", now: Date(timeIntervalSince1970: 1_763_308_800)) == 60)
        #expect(OutsideDelay.parse("Sun Nov 16 16:01:00 2025", now: Date(timeIntervalSince1970: 1_763_308_800)) == 60)
        #expect(OutsideDelay.cap == 900)
    }

    @Test func aJSONFieldIsReadAsANumberOrAStringHoldingOne() {
        #expect(OutsideDelay.parse(.integer(30), now: Self.now) == 30)
        #expect(OutsideDelay.parse(.number(2.5), now: Self.now) == 2.5)
        #expect(OutsideDelay.parse(.string("45"), now: Self.now) == 45)
        #expect(OutsideDelay.parse(.integer(1_000_000_000), now: Self.now) == nil)
        #expect(OutsideDelay.parse(.number(-1), now: Self.now) == nil)
        #expect(OutsideDelay.parse(.string("nan"), now: Self.now) == nil)
        #expect(OutsideDelay.parse(.bool(true), now: Self.now) == nil)
        #expect(OutsideDelay.parse(nil as JSONValue?, now: Self.now) == nil)
        #expect(OutsideDelay.parse(nil as String?, now: Self.now) == nil)
    }

    /// The errors that carry a wait clamp it however they are built.
    @Test func pollAndDeliveryErrorsHoldOnlyASaneWait() {
        #expect(PollError(source: "s", kind: .rateLimited, message: "", retryAfter: 1_000_000_000).retryAfter == nil)
        #expect(PollError(source: "s", kind: .rateLimited, message: "", retryAfter: .nan).retryAfter == nil)
        #expect(PollError(source: "s", kind: .rateLimited, message: "", retryAfter: 3600).retryAfter == 900)
        #expect(DeliveryError(retryable: true, message: "", retryAfter: .nan).retryAfter == nil)
        #expect(DeliveryError(retryable: true, message: "", retryAfter: -.infinity).retryAfter == nil)
        #expect(DeliveryError(retryable: true, message: "", retryAfter: 5).retryAfter == 5)
    }

    /// Telegram's `parameters.retry_after`, in an error status and in a 200 `ok: false`.
    @Test(arguments: [429, 200])
    func aTelegramRetryAfterThatIsNotANumberIsIgnored(_ status: Int) {
        let body = Data(#"{"ok":false,"error_code":429,"parameters":{"retry_after":"nan"}}"#.utf8)
        let failure = WebhookSink.failure(
            of: HTTPResponse(status: status, body: body), format: .telegram, now: Self.now, scrubber: SecretScrubber([]))
        #expect(failure?.retryable == true)
        #expect(failure?.retryAfter == nil)
        let sane = Data(#"{"ok":false,"error_code":429,"parameters":{"retry_after":"7"}}"#.utf8)
        #expect(
            WebhookSink.failure(of: HTTPResponse(status: status, body: sane), format: .telegram, now: Self.now, scrubber: SecretScrubber([]))?
                .retryAfter == 7)
    }

    @Test func aWebhookRetryAfterOfThirtyYearsIsIgnored() {
        let response = HTTPResponse(status: 429, headers: [HTTPHeader("Retry-After", "1000000000")])
        #expect(WebhookSink.failure(of: response, format: .generic, now: Self.now, scrubber: SecretScrubber([]))?.retryAfter == nil)
    }

    @Test(arguments: [Double.nan, -.infinity, .infinity, -1, 0, 1e300])
    func everyComputedWaitIsFiniteAndAtLeastTheFloor(_ retryAfter: Double) {
        for policy in [RetryPolicy.standard, .marketplaceCall, RetryPolicy(initialDelay: 0.001, maxDelay: 0.001)] {
            for attempt in [1, 2, 30, Int.max] {
                let wait = policy.delay(afterAttempt: attempt, retryAfter: retryAfter)
                #expect(wait.isFinite && wait >= WakeTime.floor, "\(policy) attempt \(attempt): \(wait)")
            }
        }
        #expect(WakeTime.delay(retryAfter).isFinite)
        #expect(WakeTime.delay(retryAfter) >= WakeTime.floor)
        let instant = WakeTime.after(retryAfter, from: Self.now)
        #expect(instant.timeIntervalSince1970.isFinite && instant.timeIntervalSince(Self.now) >= WakeTime.floor)
        let bounded = WakeTime.bounded(Date(timeIntervalSince1970: retryAfter), now: Self.now)
        #expect(bounded.timeIntervalSince1970.isFinite && bounded.timeIntervalSince(Self.now) >= WakeTime.floor)
    }

    /// One 429 asking for thirty years: the next poll still comes within the backoff's cap.
    @Test func theNextPollComesWithinTheCapWhateverTheMarketplaceAsked() throws {
        let clock = ManualClock()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let ledger = try Ledger(rules: [], store: SQLiteStateStore(path: temporaryStatePath("cw-outside")), clock: clock, logger: logger)
        let poller = Poller(sources: [], ledger: ledger, clock: clock, logger: logger)
        for retryAfter in [1_000_000_000, Double.nan, .infinity, 3600] {
            let error = PollError(source: "s", kind: .rateLimited, status: 429, message: "", retryAfter: retryAfter)
            let report = PollReport(
                source: "s", changes: [], pending: 0, error: error,
                health: SourceHealth(source: "s", marketplace: .ozon, consecutiveFailures: 1))
            let wait = poller.nextPollDelay(after: report, interval: 60)
            #expect(wait.isFinite && wait >= WakeTime.floor && wait <= OutsideDelay.cap, "Retry-After \(retryAfter): \(wait)")
        }
    }

    /// A receiver asking for NaN seconds on every answer: the error drops the wait where it
    /// is set, so the queue backs off by its policy: one try, then it sleeps (on this manual
    /// clock, until it moves), with a finite next attempt at least the floor away.
    @Test func aRetryAfterOfNaNIsDroppedAndTheSinkBacksOffInsteadOfLoopingHot() async throws {
        let clock = ManualClock(SinkTestEvents.occurredAt)
        var event = SinkTestEvents.firing(id: String(format: "%032x", 1), order: "0123-0001-1")
        event.sinks = ["memory"]
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-hot"))
        try store.commit(alerts: [], events: [event], health: nil, at: clock.now())
        let sink = InMemorySink(clock: clock)
        var nan = DeliveryError(retryable: true, message: "telegram replied ok=false")
        nan.retryAfter = .nan
        #expect(nan.retryAfter == nil)
        sink.failNext(1000, with: nan)
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink, retry: RetryPolicy(initialDelay: 1, maxDelay: 60))], store: store, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let attempts = AttemptLog()
        let running = await attempts.run(queue)
        defer { running.cancel() }
        // The signal: the sink's loop waits on the clock (a hot loop never does), and the log
        // has heard of every attempt the state file holds.
        _ = try await eventually { try clock.sleeperCount > 0 && attempts.results.count > 0 && attempts.heardEveryAttempt(in: store) }
        #expect(clock.sleeperCount > 0, "the sink never waited: \(attempts.results.count) attempts")
        #expect(attempts.results.count == 1, "\(attempts.results.count) attempts without the clock moving")
        let next = try #require(try store.nextDeliveryAttempt(sink: "memory"))
        #expect(next.timeIntervalSince(clock.now()) >= WakeTime.floor)
    }
}
