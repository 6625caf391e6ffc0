import Foundation
import Logging
import Testing

@testable import CancelWatch

/// When the ledger sends a rule file's digests (at their local time, in the config's zone,
/// on their days, across a change of summer time, late after a restart but once) and what
/// each lists (every source's pending requests its `include` matches, by deadline).
@Suite struct LedgerDigestTests {
    static let moscow = TimeZone(identifier: "Europe/Moscow")!
    static let berlin = TimeZone(identifier: "Europe/Berlin")!
    /// Monday 2026-11-23, 03:00 in Moscow.
    static let mondayNight = Timestamp.parse("2026-11-23T00:00:00Z")!
    /// 09:00 in Moscow that Monday.
    static let mondayNine = Timestamp.parse("2026-11-23T06:00:00Z")!

    let store: SQLiteStateStore

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-digest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteStateStore(path: directory.appendingPathComponent("state.sqlite").path)
    }

    static func digest(_ text: String, timeZone: TimeZone = moscow) throws -> CompiledDigest {
        let result = RulesFixture.compile(text, timeZone: timeZone)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
        return try #require(result.ruleSet?.digests.first)
    }

    static let morning = #"digest "morning" { at 09:00 on mon-fri; notify owner-mail; include state == "pending" and remaining <= 48h }"#

    func ledger(_ digest: CompiledDigest, clock: ManualClock, leased: Bool = false) throws -> Ledger {
        try Ledger(
            rules: [], digests: [digest], store: store, clock: clock, logger: Logger(label: "test"), leased: leased,
            vanishConfirmations: 1)
    }

    func request(_ id: String, source: String = "ozon-main", marketplace: Marketplace = .ozon, deadline: Date) -> CancellationRequest {
        CancellationRequest(
            marketplace: marketplace, source: source, id: id, order: "order-\(id)", state: .pending, rawState: "ON_APPROVAL",
            deadline: deadline)
    }

    static func id(of digest: String, at instant: Date) -> String {
        AlertEvent.makeID(
            source: "", request: "digest:\(digest)", rule: digest, kind: .digest, occurrence: Int(instant.timeIntervalSince1970))
    }

    /// The outbox rows waiting for `sink`.
    func queued(for sink: String) throws -> [AlertEvent] {
        try store.dueDeliveries(sink: sink, now: .distantFuture, limit: 100, claim: 0).deliveries.map(\.event)
    }

    // MARK: When

    @Test func aDigestIsSentAtItsLocalTimeInTheConfiguredZone() async throws {
        let clock = ManualClock(Self.mondayNight)
        let ledger = try ledger(try Self.digest(Self.morning), clock: clock)
        await ledger.apply(.listing([request("1", deadline: Self.mondayNine.addingTimeInterval(40 * 3600))], at: clock.now()))
        #expect(await ledger.nextWake == Self.mondayNine)
        clock.advance(to: Self.mondayNine.addingTimeInterval(-0.001))
        #expect(await ledger.processDue().isEmpty)
        clock.advance(to: Self.mondayNine)
        let events = await ledger.processDue()
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.kind == .digest)
        #expect(event.id == Self.id(of: "morning", at: Self.mondayNine))
        #expect(event.rule == "morning")
        #expect(event.severity == .info)
        #expect(event.sinks == ["owner-mail"])
        #expect(event.occurredAt == Self.mondayNine)
        #expect(event.listed.map(\.id) == ["1"])
        #expect(event.message == "digest morning: 1 request (ozon-main 1), earliest deadline in 1d 16h")
        #expect(try queued(for: "owner-mail").map(\.id) == [event.id])
        // Then the next working day at 09:00.
        #expect(await ledger.nextWake == Self.mondayNine.addingTimeInterval(86400))
    }

    @Test func aWeekdayDigestSkipsTheWeekend() async throws {
        // Friday 2026-11-20, 15:00 in Moscow: the next is Monday's, not Saturday's.
        let clock = ManualClock(Timestamp.parse("2026-11-20T12:00:00Z")!)
        let ledger = try ledger(try Self.digest(Self.morning), clock: clock)
        #expect(await ledger.nextWake == Self.mondayNine)
        let weekend = try Self.digest(#"digest "weekend" { at 09:00 on sat,sun; notify ops; always }"#)
        #expect(weekend.next(after: Timestamp.parse("2026-11-20T12:00:00Z")!) == Timestamp.parse("2026-11-21T06:00:00Z")!)
        #expect(weekend.next(after: Timestamp.parse("2026-11-22T06:00:00Z")!) == Timestamp.parse("2026-11-28T06:00:00Z")!)
    }

    @Test func noDigestIsSentWhenNothingMatches() async throws {
        let clock = ManualClock(Self.mondayNight)
        let ledger = try ledger(try Self.digest(Self.morning), clock: clock)
        // Three days left: outside `remaining <= 48h`.
        await ledger.apply(.listing([request("1", deadline: Self.mondayNine.addingTimeInterval(72 * 3600))], at: clock.now()))
        clock.advance(to: Self.mondayNine)
        #expect(await ledger.processDue().isEmpty)
        #expect(try queued(for: "owner-mail").isEmpty)
        #expect(await ledger.nextWake == Self.mondayNine.addingTimeInterval(86400))
    }

    @Test func anAlwaysDigestIsSentEmpty() async throws {
        let clock = ManualClock(Self.mondayNight)
        let ledger = try ledger(try Self.digest(#"digest "morning" { at 09:00; notify owner-mail; always }"#), clock: clock)
        clock.advance(to: Self.mondayNine)
        let event = try #require(await ledger.processDue().first)
        #expect(event.kind == .digest)
        #expect(event.listed.isEmpty)
        #expect(event.message == "digest morning: no requests match")
    }

    @Test func aWatcherStartedWithinTheHourAfterSendsTheDigestLateAndOnce() async throws {
        let digest = try Self.digest(Self.morning)
        let clock = ManualClock(Self.mondayNight)
        let first = try ledger(digest, clock: clock)
        await first.apply(.listing([request("1", deadline: Self.mondayNine.addingTimeInterval(40 * 3600))], at: clock.now()))
        clock.advance(to: Self.mondayNine)
        let sent = try #require(await first.processDue().first)

        // Restarted at 09:30: the same digest (same id) again, which the outbox keeps once.
        clock.advance(to: Self.mondayNine.addingTimeInterval(1800))
        let restarted = try ledger(digest, clock: clock)
        let again = await restarted.processDue()
        #expect(again.map(\.id) == [sent.id])
        #expect(again.first?.occurredAt == clock.now())
        #expect(try queued(for: "owner-mail").map(\.id) == [sent.id])
        #expect(await restarted.nextWake == Self.mondayNine.addingTimeInterval(86400))
    }

    @Test func aWatcherDownAtTheInstantSendsItLateWithinTheHourAndSkipsItAfter() async throws {
        let digest = try Self.digest(#"digest "morning" { at 09:00; notify owner-mail; always }"#)
        let late = ManualClock(Self.mondayNine.addingTimeInterval(40 * 60))
        let event = try #require(await ledger(digest, clock: late).processDue().first)
        #expect(event.id == Self.id(of: "morning", at: Self.mondayNine))

        let tooLate = ManualClock(Self.mondayNine.addingTimeInterval(3600 + 1))
        let skipping = try ledger(digest, clock: tooLate)
        #expect(await skipping.processDue().isEmpty)
        #expect(await skipping.nextWake == Self.mondayNine.addingTimeInterval(86400))
    }

    @Test func aTimeTheClockSkipsIsSentAtTheFirstInstantAfterTheSkip() async throws {
        // Berlin moves from 02:00 to 03:00 on 2026-03-29: 02:30 does not exist that day.
        let digest = try Self.digest(#"digest "night" { at 02:30; notify ops; always }"#, timeZone: Self.berlin)
        let clock = ManualClock(Timestamp.parse("2026-03-28T12:00:00Z")!)
        let ledger = try ledger(digest, clock: clock)
        let skip = Timestamp.parse("2026-03-29T01:00:00Z")!  // 03:00 summer time
        #expect(await ledger.nextWake == skip)
        clock.advance(to: skip)
        #expect(await ledger.processDue().map(\.id) == [Self.id(of: "night", at: skip)])
        #expect(await ledger.nextWake == Timestamp.parse("2026-03-30T00:30:00Z")!)
    }

    @Test func aTimeTheClockRepeatsIsSentOnce() async throws {
        // Berlin goes back from 03:00 to 02:00 on 2026-10-25: 02:30 comes twice.
        let digest = try Self.digest(#"digest "night" { at 02:30; notify ops; always }"#, timeZone: Self.berlin)
        let clock = ManualClock(Timestamp.parse("2026-10-24T12:00:00Z")!)
        let ledger = try ledger(digest, clock: clock)
        let first = Timestamp.parse("2026-10-25T00:30:00Z")!
        #expect(await ledger.nextWake == first)
        clock.advance(to: first)
        #expect(await ledger.processDue().count == 1)
        // Not at the second 02:30 (01:30 UTC): the next night's.
        #expect(await ledger.nextWake == Timestamp.parse("2026-10-26T01:30:00Z")!)
        clock.advance(to: Timestamp.parse("2026-10-25T01:30:00Z")!)
        #expect(await ledger.processDue().isEmpty)
    }

    /// A watcher restarted within the hour the clock repeats (the first 02:30 went out before)
    /// does not send the second 02:30 as another digest.
    @Test func aRestartDuringTheRepeatedHourSendsNoSecondDigest() async throws {
        let digest = try Self.digest(#"digest "night" { at 02:30; notify ops; always }"#, timeZone: Self.berlin)
        // 01:35 UTC is the second 02:35 in Berlin that night: the first 02:30 (00:30 UTC) went
        // out over an hour ago, and 01:30 UTC is the second 02:30.
        let clock = ManualClock(Timestamp.parse("2026-10-25T01:35:00Z")!)
        let ledger = try ledger(digest, clock: clock)
        #expect(await ledger.nextWake == Timestamp.parse("2026-10-26T01:30:00Z")!)
        #expect(await ledger.processDue().isEmpty)
    }

    // MARK: What

    @Test func aDigestListsEverySourcesMatchingPendingRequestsByDeadline() async throws {
        let clock = ManualClock(Self.mondayNight)
        let ledger = try ledger(try Self.digest(Self.morning), clock: clock)
        let at = Self.mondayNine
        let later = request("later", deadline: at.addingTimeInterval(30 * 3600))
        let sooner = request("sooner", deadline: at.addingTimeInterval(10 * 3600))
        let farOff = request("far-off", deadline: at.addingTimeInterval(60 * 3600))
        let approved = request("approved", deadline: at.addingTimeInterval(3600))
        let red = request("red", source: "red-shop", marketplace: .xiaohongshu, deadline: at.addingTimeInterval(20 * 3600))
        await ledger.apply(.listing([later, sooner, farOff, approved], at: clock.now()))
        await ledger.apply(.listing([red], source: "red-shop", marketplace: .xiaohongshu, at: clock.now()))
        clock.advance(by: 60)
        await ledger.apply(
            .listing([later, sooner, farOff], outcomes: [approved.key: .resolved(.approved, at: clock.now())], at: clock.now()))
        clock.advance(to: at)
        let event = try #require(await ledger.processDue().first)
        #expect(event.listed.map(\.id) == ["sooner", "red", "later"])
        #expect(event.message == "digest morning: 3 requests (ozon-main 2, red-shop 1), earliest deadline in 10h 00m")
    }

    @Test func aReplicaThatHoldsNoSourceListsWhatTheStoreHolds() async throws {
        let digest = try Self.digest(Self.morning)
        let clock = ManualClock(Self.mondayNight)
        let holder = try ledger(digest, clock: clock)
        await holder.apply(.listing([request("1", deadline: Self.mondayNine.addingTimeInterval(5 * 3600))], at: clock.now()))
        // Leased: it starts knowing nothing, and is given no source.
        let other = try ledger(digest, clock: clock, leased: true)
        #expect(await other.tracked.isEmpty)
        clock.advance(to: Self.mondayNine)
        let fromOther = try #require(await other.processDue().first)
        let fromHolder = try #require(await holder.processDue().first)
        #expect(fromOther.listed.map(\.id) == ["1"])
        #expect(fromOther.id == fromHolder.id)
        #expect(try queued(for: "owner-mail").count == 1)
    }
}

extension LedgerDigestTests {
    /// A state store that refuses every read of the tracked requests once told to.
    final class UnreadableStore: ObservedStore, @unchecked Sendable {
        private let lock = NSLock()
        private var refusing = false
        func refuse() { lock.withLock { refusing = true } }
        func readAgain() { lock.withLock { refusing = false } }
        override func willCall(_ name: String) throws(StoreError) {
            if name == "loadTracked", lock.withLock({ refusing }) { throw StoreError("disk I/O error") }
        }
    }

    /// The morning digest's ledger on a store that refuses reads when told, a minute before nine.
    func unreadableMorning() throws -> (Ledger, UnreadableStore, ManualClock, CollectedLogs) {
        let logs = CollectedLogs()
        let clock = ManualClock(Self.mondayNine.addingTimeInterval(-60))
        let unreadable = UnreadableStore(store)
        let ledger = try Ledger(
            rules: [], digests: [try Self.digest(Self.morning)], store: unreadable, clock: clock,
            logger: Logger(label: "test", factory: { _ in CollectingLogHandler(logs: logs) }), vanishConfirmations: 1)
        return (ledger, unreadable, clock, logs)
    }

    /// A store that cannot be read says so once at error while it lasts, not at every try.
    @Test func aStoreThatCannotBeReadForADigestIsLoggedOnceWhileItLasts() async throws {
        let (ledger, unreadable, clock, logs) = try unreadableMorning()
        await ledger.apply(.listing([request("1", deadline: Self.mondayNine.addingTimeInterval(40 * 3600))], at: clock.now()))
        unreadable.refuse()
        clock.advance(to: Self.mondayNine)
        for _ in 0..<5 {
            #expect(await ledger.processDue().isEmpty)
            clock.advance(by: 5)
        }
        #expect(logs.errors.filter { $0.contains("could not read the pending requests for a digest") }.count == 1, "\(logs.errors)")
        // Read again, the digest goes out late.
        unreadable.readAgain()
        clock.advance(by: 60)
        #expect(await ledger.processDue().contains { $0.kind == .digest })
    }

    /// A store that does not answer for over an hour after a digest's time: the digest is
    /// given up, and the log says so once.
    @Test func aDigestGivenUpAfterAnHourOfAStoreThatDoesNotAnswerIsLoggedOnce() async throws {
        let (ledger, unreadable, clock, logs) = try unreadableMorning()
        unreadable.refuse()
        clock.advance(to: Self.mondayNine)
        #expect(await ledger.processDue().isEmpty)
        clock.advance(to: Self.mondayNine.addingTimeInterval(3601))
        #expect(await ledger.processDue().isEmpty)
        let given = logs.errors.filter { $0.contains("was not sent") }
        #expect(given == ["digest 'morning' of 2026-11-23T06:00:00Z was not sent: not within an hour of its time (the state store did not answer)"])
        #expect(await ledger.nextWake == Self.mondayNine.addingTimeInterval(86400), "the next day's")
    }
}

@Suite struct RepeatedFailureTests {
    @Test func aFailureIsSaidWhenItBeginsAgainEveryTenMinutesWhileItLastsAndAfterItEnds() {
        var failure = RepeatedFailure()
        let start = Date(timeIntervalSince1970: 1_764_000_000)
        #expect(failure.failed(at: .error, now: start) == .error)
        #expect(failure.failed(at: .error, now: start.addingTimeInterval(5)) == .debug)
        #expect(failure.failed(at: .error, now: start.addingTimeInterval(RepeatedFailure.remindEvery - 1)) == .debug)
        // A read that runs once a day never sees the end of yesterday's failure: today's is said.
        #expect(failure.failed(at: .error, now: start.addingTimeInterval(86400)) == .error)
        let ended = failure.ended()
        let endedTwice = failure.ended()
        #expect(ended && !endedTwice)
        #expect(failure.failed(at: .warning, now: start.addingTimeInterval(86401)) == .warning)
    }
}
