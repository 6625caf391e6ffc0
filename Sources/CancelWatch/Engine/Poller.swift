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
public final class Poller: Sendable {
    private let sources: [PolledSource]
    private let ledger: Ledger
    private let clock: WatchClock
    private let logger: Logger

    public init(sources: [PolledSource], ledger: Ledger, clock: WatchClock, logger: Logger) {
        self.sources = sources
        self.ledger = ledger
        self.clock = clock
        self.logger = logger
    }

    /// Polls every source once, concurrently. Returns each source's report.
    public func pollAllOnce() async -> [PollReport] {
        await withTaskGroup(of: PollReport.self) { group in
            for source in sources {
                group.addTask { await self.poll(source.client) }
            }
            var reports: [PollReport] = []
            for await report in group { reports.append(report) }
            return reports.sorted { $0.source < $1.source }
        }
    }

    /// The sources it polls (the ledger leaves their deadlines to it while it runs).
    public var sourceNames: Set<String> { Set(sources.map(\.client.source)) }

    /// Polls each source on its interval until cancelled.
    public func run() async {
        await ledger.ask(sourceNames)
        await withTaskGroup(of: Void.self) { group in
            for source in sources {
                group.addTask { await self.pollLoop(source) }
            }
        }
        await ledger.ask([])
    }

    private func pollLoop(_ source: PolledSource) async {
        let waker = Waker()
        while !Task.isCancelled {
            let report = await poll(source.client)
            var next = clock.now().addingTimeInterval(nextPollDelay(after: report, interval: source.pollInterval))
            // A source that answers is asked again at its next deadline; one that failed
            // or is down waits its backoff (the ledger expires its deadlines meanwhile).
            if report.error == nil, !report.health.down, let deadline = await ledger.nearestDeadline(source: source.client.source) {
                // A deadline that came while this poll ran: asked again at once.
                if deadline <= clock.now() { continue }
                next = min(next, deadline)
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
