import Foundation
import Logging

/// One source the poller polls, and how often.
public struct PolledSource: Sendable {
    public var client: MarketplaceClient
    public var pollInterval: TimeInterval

    public init(client: MarketplaceClient, pollInterval: TimeInterval) {
        self.client = client
        self.pollInterval = pollInterval
    }
}

/// Polls every source and hands each result to the ledger: the listing, then the outcomes
/// of the requests that left it. Each source is polled on its own interval, with backoff
/// after failures, and at the instant one of its pending requests reaches its deadline
/// (so that a seller's answer just before it is seen).
///
/// Where replicas share the database (`leases`), it polls only the sources whose leases this
/// replica holds, following each lease round: the ledger reads a source's state before its
/// first poll here and forgets it once the lease is gone.
public final class Poller: Sendable {
    private let sources: [PolledSource]
    private let bySource: [String: PolledSource]
    private let ledger: Ledger
    private let clock: WatchClock
    private let logger: Logger
    private let leases: LeaseKeeper?

    public init(sources: [PolledSource], ledger: Ledger, clock: WatchClock, logger: Logger, leases: LeaseKeeper? = nil) {
        var seen: Set<String> = []
        self.sources = sources.filter { seen.insert($0.client.source).inserted }
        bySource = Dictionary(self.sources.map { ($0.client.source, $0) }, uniquingKeysWith: { first, _ in first })
        self.ledger = ledger
        self.clock = clock
        self.logger = logger
        self.leases = leases
    }

    /// Polls every source once, concurrently (where sources are leased: those this replica
    /// holds after one lease round; ``letGo()`` gives them back). Returns each source's report.
    public func pollAllOnce() async -> [PollReport] {
        var polled = sources
        if let leases {
            let held = (await leases.round() ?? []).filter { bySource[$0.source] != nil }
            let adopted = await ledger.adopt(held.map { $0.claim(ttl: leases.ttl) })
            polled = sources.filter { adopted.contains($0.client.source) }
        }
        return await withTaskGroup(of: PollReport.self) { group in
            for source in polled {
                group.addTask { await self.poll(source.client) }
            }
            var reports: [PollReport] = []
            for await report in group { reports.append(report) }
            return reports.sorted { $0.source < $1.source }
        }
    }

    /// After ``pollAllOnce()``: where sources are leased, gives back every lease it took.
    public func letGo() async {
        guard let leases else { return }
        await ledger.release(sources.map(\.client.source))
        await leases.releaseAll()
    }

    /// The sources the ledger may leave their deadlines to from the start (every source,
    /// unless they are leased: then each once its lease is taken).
    public var polledFromStart: Set<String> { leases == nil ? Set(sources.map(\.client.source)) : [] }

    /// One source being polled: its poll loop, and the lease holding it was started for.
    private struct Polling {
        var token: Int64
        var task: Task<Void, Never>
    }

    /// Polls each source on its interval until cancelled (where sources are leased, those
    /// this replica holds, after a lease round every ``LeaseKeeper/period``), then gives
    /// back what it holds.
    public func run() async {
        var polling: [String: Polling] = [:]
        if let leases {
            // Sources held but not taken over (their state could not be read) are given back
            // at the next round, so that they do not stay held by a replica that does not poll them.
            var unread: Set<String> = []
            while !Task.isCancelled {
                if let held = await leases.round(givingBack: unread) {
                    await follow(held, ttl: leases.ttl, polling: &polling)
                    unread = Set(held.map(\.source)).subtracting(polling.keys)
                }
                try? await clock.sleep(for: leases.period)
            }
        } else {
            let every = sources.map { SourceLease(source: $0.client.source, holder: "", expiresAt: .distantFuture, token: 0) }
            await follow(every, ttl: 0, polling: &polling)
            let waker = Waker()
            while !Task.isCancelled { await waker.wait(until: nil, clock: clock) }
        }
        await stop(Array(polling.keys), polling: &polling)
        await leases?.releaseAll()
    }

    /// Polls exactly the sources of `held`: stops those no longer held, or held again since
    /// (another token: another replica may have written their state meanwhile), and starts
    /// those newly held once the ledger has read their state.
    private func follow(_ held: [SourceLease], ttl: TimeInterval, polling: inout [String: Polling]) async {
        var tokens: [String: Int64] = [:]
        for lease in held { tokens[lease.source] = lease.token }
        // Not waited for: a poll in flight cannot be cut short, and the next round (which
        // renews the leases kept) must not wait for it; the ledger records nothing of it.
        await stop(polling.filter { tokens[$0.key] != $0.value.token }.map(\.key), polling: &polling, waiting: false)
        let new = held.filter { polling[$0.source] == nil && bySource[$0.source] != nil }
        guard !new.isEmpty else { return }
        let adopted = await ledger.adopt(new.map { $0.claim(ttl: ttl) })
        for lease in new where adopted.contains(lease.source) {
            guard let source = bySource[lease.source] else { continue }
            polling[lease.source] = Polling(token: lease.token, task: Task { await self.pollLoop(source) })
        }
    }

    /// Stops polling `names` (a poll in flight ends unrecorded) and lets the ledger forget
    /// them; `waiting`: returns once their polls have ended.
    private func stop(_ names: [String], polling: inout [String: Polling], waiting: Bool = true) async {
        let stopping = names.compactMap { polling.removeValue(forKey: $0)?.task }
        guard !stopping.isEmpty else { return }
        for task in stopping { task.cancel() }
        if waiting {
            for task in stopping { await task.value }
        }
        await ledger.release(names)
    }

    private func pollLoop(_ source: PolledSource) async {
        let waker = Waker()
        while !Task.isCancelled {
            let report = await poll(source.client)
            var next = clock.now().addingTimeInterval(nextPollDelay(after: report, interval: source.pollInterval))
            // A source that answers is asked again at its next deadline; one that failed
            // or is down waits its backoff (the ledger expires its deadlines meanwhile).
            if report.error == nil, !report.health.down, let deadline = await ledger.nearestDeadline(source: source.client.source) {
                // A deadline that came while this poll ran: asked again at once, unless the
                // poll could not be recorded (the deadline stays, and would be asked forever).
                if deadline <= clock.now() {
                    if report.recorded { continue }
                    next = clock.now().addingTimeInterval(Ledger.storeRetry)
                } else {
                    next = min(next, deadline)
                }
            }
            await waker.wait(until: next, clock: clock)
        }
    }

    /// The wait before the next poll: the interval after a success; after failures,
    /// exponential backoff with jitter (capped at 15 minutes), `Retry-After` honoured,
    /// and at least 5 minutes after an authentication failure.
    /// `interval` is bounded by the config and `Retry-After` where it came in; the poll
    /// loop's waker keeps the wake time finite and at least the floor away.
    func nextPollDelay(after report: PollReport, interval: TimeInterval) -> TimeInterval {
        guard let error = report.error else { return interval }
        let failures = max(1, report.health.consecutiveFailures)
        let backoff = min(OutsideDelay.cap, interval * pow(2, Double(min(failures - 1, 10))))
        var wait = backoff * Double.random(in: 0.75...1)
        if let retryAfter = error.retryAfter { wait = max(wait, retryAfter) }
        if error.kind == .auth { wait = max(wait, 300) }
        return max(wait, min(interval, 1))
    }

    /// One poll of one source: the pending list, then outcomes of what left it, applied
    /// by the ledger as one transaction.
    @discardableResult
    public func poll(_ client: MarketplaceClient) async -> PollReport {
        let source = client.source
        let started = clock.now()
        do throws(PollError) {
            let listedAt = clock.now()
            let snapshot = try await client.fetchPending()
            for warning in snapshot.warnings { logger.warning("\(TextCut.cut(warning, limit: TextCut.errorTextLimit))") }
            if !snapshot.complete {
                logger.warning(
                    "an item of the listing could not be read, not even its id: no request is taken for gone this poll",
                    metadata: ["source": "\(source)"])
            }
            let missing = await ledger.missing(from: snapshot, source: source)
            var outcomes: [RequestKey: OutcomeLookup] = [:]
            var failure: PollError?
            if !missing.isEmpty {
                do throws(PollError) {
                    outcomes = try await client.lookupOutcomes(of: missing)
                } catch {
                    if Task.isCancelled { throw error }
                    // The listing itself is good: what it shows is applied; the requests that
                    // left it stay pending until a lookup succeeds. The poll counts as failed.
                    failure = error
                }
            }
            let report = await ledger.apply(
                PollResult(
                    source: source, marketplace: client.marketplace, startedAt: started,
                    listing: PollResult.Listing(snapshot: snapshot, outcomes: outcomes, listedAt: listedAt), failure: failure))
            logger.debug(
                "polled source",
                metadata: ["source": "\(source)", "pending": "\(snapshot.requests.count)", "pages": "\(snapshot.pages)",
                    "changes": "\(report.changes.count)"])
            return report
        } catch {
            if Task.isCancelled {
                // Shutting down mid-poll is not the source's fault: record nothing.
                return await ledger.unrecordedPoll(of: source, marketplace: client.marketplace, error: error)
            }
            return await ledger.apply(
                PollResult(source: source, marketplace: client.marketplace, startedAt: started, listing: nil, failure: error))
        }
    }
}
