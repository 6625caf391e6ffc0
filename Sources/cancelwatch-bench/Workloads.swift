import CancelWatch
import CancelWatchTesting
import Foundation
import Logging
import MarketSim

// MARK: - rules

struct RulesOutcome {
    var seconds: Double
    var evaluations: Int
    var matches: Int
}

/// `CompiledRule.matches` over a varied request set (Ozon and RED, every rule band) on one core.
func rulesPass(requests: [CancellationRequest], rules: [CompiledRule], evaluations: Int, base: Date) -> RulesOutcome {
    precondition(!requests.isEmpty && !rules.isEmpty)
    // Instants from 2 h before the corpus's "now" to 30 h after it: remaining moves through every band.
    let nows = (0..<97).map { base.addingTimeInterval(Double($0 * 1190 - 7200)) }
    let rounds = max(1, evaluations / rules.count)
    var matches = 0
    let start = DispatchTime.now().uptimeNanoseconds
    // Each request once per round for every rule, rules borrowed from the array (a
    // `CompiledRule` is a class: no copy of its fields per call).
    requests.withUnsafeBufferPointer { requests in
        nows.withUnsafeBufferPointer { nows in
            var r = 0
            var n = 0
            for _ in 0..<rounds {
                let request = requests[r]
                let now = nows[n]
                for rule in rules where rule.matches(request, now: now) { matches += 1 }
                r += 1
                if r == requests.count { r = 0 }
                n += 1
                if n == nows.count { n = 0 }
            }
        }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    blackHole(matches)
    return RulesOutcome(seconds: seconds, evaluations: rounds * rules.count, matches: matches)
}

// MARK: - scale

/// A state store that keeps nothing: the scale workload measures memory held by the
/// engine's own structures, not SQLite's page cache.
final class NullStore: StateStore {
    func loadTracked() throws(StoreError) -> [TrackedRequest] { [] }
    func loadTracked(source: String, keepingRaw paths: RawPaths) throws(StoreError) -> [TrackedRequest] { [] }
    func commit(_ changes: StoreChanges, at now: Date) throws(StoreError) {}
    func delete(_ keys: [RequestKey]) throws(StoreError) {}
    func pruneOutbox(deliveredBefore: Date, deadBefore: Date) throws(StoreError) -> Int { 0 }
    func loadHealth() throws(StoreError) -> [SourceHealth] { [] }
    func loadAlerts() throws(StoreError) -> [AlertState] { [] }
    func loadAlerts(source: String) throws(StoreError) -> [AlertState] { [] }
    func dueDeliveries(sink: String, now: Date, limit: Int, claim: TimeInterval) throws(StoreError) -> DueDeliveries {
        DueDeliveries(deliveries: [])
    }
    func nextDeliveryAttempt(sink: String, after: Date?) throws(StoreError) -> Date? { nil }
    func recordDelivery(_ result: DeliveryResult) throws(StoreError) {}
    func formGroup(sink: String, members: [AlertEvent], now: Date) throws(StoreError) -> FormedGroup {
        FormedGroup(delivery: nil, withdrawn: [])
    }
    func outboxCounts() throws(StoreError) -> [OutboxCount] { [] }
    func beginAnswer(_ record: AnswerRecord) throws(StoreError) -> AnswerRecord? { nil }
    func finishAnswer(_ request: RequestKey, state: AnswerRecord.State, message: String, at: Date) throws(StoreError) {}
    func answers(for requests: [RequestKey]) throws(StoreError) -> [RequestKey: AnswerRecord] { [:] }
    func answerCount(by kind: AnswerActor.Kind, since: Date) throws(StoreError) -> Int { 0 }
}

/// Generates Ozon pages on demand (page `n` of account `k` is always the same), so a
/// million requests never sit in memory as JSON text at once.
final class GeneratingTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private let pagesPerAccount: Int
    private let now: Date
    private var cursor: [String: Int] = [:]

    init(pagesPerAccount: Int, now: Date) {
        self.pagesPerAccount = pagesPerAccount
        self.now = now
    }

    func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        let account = request.headers.first { $0.name == "Client-Id" }?.value ?? "0"
        let page: Int = lock.withLock {
            let i = cursor[account, default: 0]
            cursor[account] = (i + 1) % (pagesPerAccount + 1)
            return i
        }
        guard page < pagesPerAccount else { return HTTPResponse(status: 200, body: DataGen.ozonEndPage) }
        let index = Int(account) ?? 0
        var random = SeededGenerator(seed: UInt64(index * 100_003 + page))
        let first = Int64(index * pagesPerAccount + page) * Int64(OzonClient.pageLimit) + 1
        return HTTPResponse(status: 200, body: DataGen.ozonPage(firstSerial: first, items: OzonClient.pageLimit, random: &random, now: now))
    }
}

/// `/proc/self/status` figures, in bytes, from one read of the file: the kernel reports
/// VmHWM as at least the VmRSS it reports beside it, which two separate reads do not
/// promise (the resident count moves between them while other threads allocate and free).
struct ProcStatus {
    var rss = 0
    var peak = 0

    static func read() -> ProcStatus {
        var status = ProcStatus()
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return status }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let digits = parts[1].trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "0"
            let bytes = (Int(digits) ?? 0) * 1024
            switch parts[0] {
            case "VmRSS": status.rss = bytes
            case "VmHWM": status.peak = bytes
            default: break
            }
        }
        return status
    }
}

struct ScaleOutcome {
    var count: Int
    var pending: Int
    var baselineRSS: Int
    var rss: Int
    var peak: Int
    var seconds: Double
    var bytesPerRequest: Double { Double(rss - baselineRSS) / Double(max(1, pending)) }
}

/// Tracks `count` pending Ozon requests (10,000 per account, as a fleet would) through the
/// real client and the Ledger with the shipped rules (keeping of each raw object what they
/// read) over a store that keeps nothing. With `dropRaw`, each request's raw object is
/// dropped before tracking.
func scalePass(count: Int, dropRaw: Bool = false) async throws -> ScaleOutcome {
    let rules = try loadShippedRules()
    // Two hours before the generated deadlines begin: every request is still pending.
    let now = DataGen.epoch.addingTimeInterval(-7200)
    let perAccount = min(count, 10_000)
    let pagesPerAccount = max(1, perAccount / OzonClient.pageLimit)
    let accounts = max(1, count / (pagesPerAccount * OzonClient.pageLimit))
    let transport = GeneratingTransport(pagesPerAccount: pagesPerAccount, now: DataGen.epoch)
    let clock = FixedClock(instant: now)
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let baseline = ProcStatus.read().rss
    let ledger = try Ledger(rules: rules, store: NullStore(), clock: clock, logger: logger)
    let start = DispatchTime.now().uptimeNanoseconds
    for a in 0..<accounts {
        let client = OzonClient(
            account: OzonAccount(source: "ozon-\(a)", baseURL: "http://127.0.0.1:9", clientID: String(a), apiKey: "k"),
            transport: transport, clock: clock)
        var snapshot = try await client.fetchPending()
        if dropRaw {
            for i in snapshot.requests.indices { snapshot.requests[i].raw = .null }
        }
        await ledger.apply(
            PollResult(
                source: client.source, marketplace: client.marketplace, startedAt: now,
                listing: PollResult.Listing(snapshot: snapshot, listedAt: now)))
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let counts = await ledger.statusCounts()
    let status = ProcStatus.read()
    return ScaleOutcome(
        count: counts.values.reduce(0, +), pending: counts[.pending] ?? 0, baselineRSS: baseline, rss: status.rss,
        peak: status.peak, seconds: seconds)
}

// MARK: - on time

struct OnTimeOutcome {
    var count: Int
    var delivered: Int
    /// Sorted delays, seconds.
    var delays: [Double]
    var window: Double

    func percentile(_ p: Double) -> Double {
        guard !delays.isEmpty else { return .nan }
        return delays[min(delays.count - 1, Int((Double(delays.count) * p).rounded(.up)) - 1)]
    }
}

/// `count` requests whose `heads-up` threshold (remaining <= 24h) falls within `window`
/// seconds starting `lead` seconds from now, on the real clock, through the Ledger,
/// the SQLite outbox and DeliveryQueue into an in-memory sink.
/// `grace`: how long after the window it waits for the last deliveries (it ends as soon as all came).
func onTimePass(count: Int, window: Double, lead: Double, statePath: String, grace: Double = 30) async throws -> OnTimeOutcome {
    let rules = try loadShippedRules()
    let clock = SystemClock()
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let store = try SQLiteStateStore(path: statePath)
    let sink = InMemorySink(name: "console", clock: clock)
    let delivery = DeliveryQueue(routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock, logger: logger)
    let ledger = try Ledger(rules: rules, store: store, clock: clock, logger: logger, delivery: delivery)
    let start = clock.now()
    let firstDue = start.addingTimeInterval(lead)
    var listed: [String: [CancellationRequest]] = [:]
    for i in 0..<count {
        let due = firstDue.addingTimeInterval(window * Double(i) / Double(count))
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: "red-\(i % 50)", id: "P\(100_000_000 + i)@\(Int(start.timeIntervalSince1970))",
            order: "P\(100_000_000 + i)", state: .pending, rawState: "unaudited", reason: DataGen.redReasons[i % 6],
            logistics: "red_auto", createdAt: start.addingTimeInterval(-3600), deadline: due.addingTimeInterval(86400),
            raw: ["package_id": .string("P\(100_000_000 + i)"), "status": "unaudited"])
        listed[request.source, default: []].append(request)
    }
    for (source, requests) in listed.sorted(by: { $0.key < $1.key }) {
        await ledger.apply(
            PollResult(
                source: source, marketplace: .xiaohongshu, startedAt: start,
                listing: PollResult.Listing(snapshot: PendingSnapshot(requests: requests), listedAt: start)))
    }
    let loops = Task {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await ledger.run() }
            group.addTask { await delivery.run() }
        }
    }
    // Bounded: the window, its lead, and the grace.
    let giveUp = firstDue.addingTimeInterval(window + max(0, grace))
    while sink.deliveries.count < count && clock.now() < giveUp {
        try await Task.sleep(for: .milliseconds(200))
    }
    loops.cancel()
    await loops.value
    var delays: [Double] = []
    for (event, at) in sink.deliveries where event.kind == .firing && event.rule == "heads-up" {
        guard let deadline = event.request?.deadline else { continue }
        delays.append(at.timeIntervalSince(deadline.addingTimeInterval(-86400)))
    }
    delays.sort()
    return OnTimeOutcome(count: count, delivered: delays.count, delays: delays, window: window)
}

// MARK: - fleet

struct FleetOutcome {
    var accounts: Int
    var perAccount: Int
    var setupSeconds: Double
    var firstCycle: Double
    var secondCycle: Double
    var pending: Int
    var failures: Int
    var httpCalls: Int
}

/// `ozon + red` simulated accounts with `perAccount` pending each, on one simulator on
/// loopback, polled through libcurl by one Poller into a Ledger (no rules) with a SQLite state file.
func fleetPass(ozon: Int, red: Int, perAccount: Int, statePath: String, curlThreads: Int = 8) async throws -> FleetOutcome {
    let setupStart = DispatchTime.now().uptimeNanoseconds
    let scenario = SimScenario.fleet(ozonAccounts: ozon, redAccounts: red, pendingPerAccount: perAccount, seed: 6)
    let clock = SystemClock()
    let simulator = try MarketSimulator(scenario: scenario, clock: clock)
    defer { simulator.shutdown() }
    let transport = CurlHTTPTransport(threads: curlThreads)
    var sources: [PolledSource] = []
    for account in scenario.ozonAccounts {
        sources.append(PolledSource(client: OzonClient(
            account: OzonAccount(source: account.name, baseURL: simulator.baseURL, clientID: account.clientID, apiKey: account.apiKey),
            transport: transport, clock: clock), pollInterval: 60))
    }
    for account in scenario.redAccounts {
        sources.append(PolledSource(client: RedClient(
            account: RedAccount(
                source: account.name, baseURL: simulator.baseURL, appKey: account.appKey, appSecret: account.appSecret,
                logistics: ["red_auto"], pageSize: 100),
            transport: transport, clock: clock), pollInterval: 60))
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let store = try SQLiteStateStore(path: statePath)
    let ledger = try Ledger(rules: [], store: store, clock: clock, logger: logger, sources: sources)
    let poller = Poller(sources: sources, ledger: ledger, clock: clock, logger: logger)
    let setup = Double(DispatchTime.now().uptimeNanoseconds - setupStart) / 1e9
    simulator.resetRequestCounts()

    var start = DispatchTime.now().uptimeNanoseconds
    let first = await poller.pollAllOnce()
    let firstCycle = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let calls = simulator.requestCounts.values.reduce(0, +)
    start = DispatchTime.now().uptimeNanoseconds
    let second = await poller.pollAllOnce()
    let secondCycle = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return FleetOutcome(
        accounts: sources.count, perAccount: perAccount, setupSeconds: setup, firstCycle: firstCycle, secondCycle: secondCycle,
        pending: first.reduce(0) { $0 + $1.pending },
        failures: (first + second).filter { $0.error != nil }.count, httpCalls: calls)
}
