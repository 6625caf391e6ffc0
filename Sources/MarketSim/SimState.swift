import CancelWatch
import Foundation
import HTTPServing

/// Everything the simulator knows, behind one lock. Handlers compute answers from
/// `clock.now()`; nothing runs on a timer.
final class SimState: @unchecked Sendable {
    let clock: any WatchClock
    let start: Date
    let ozonAccounts: [SimOzonAccount]
    let redAccounts: [SimRedAccount]
    private let ozonAccountKeys: Set<String>
    private let redAccountKeys: Set<String>
    let redTimestampTolerance: TimeInterval?
    let configYAML: @Sendable (String) -> String

    private let lock = NSLock()
    // Guarded by `lock`.
    private var records: [SimRecord] = []
    /// Indexes into `records` by marketplace and account, in insertion order: a listing
    /// reads one account's records, not every account's (a fleet has hundreds of thousands).
    private var byAccount: [AccountKey: [Int]] = [:]
    private var random: SeededGenerator
    private var nextCancellationID: Int64 = 283_784_000
    private var faults: [(id: Int, fault: SimFault)] = []
    private var nextFaultID = 0
    private var counts: [String: Int] = [:]

    struct ActiveFault {
        var id: Int
        var fault: SimFault
    }

    init(scenario: SimScenario, clock: any WatchClock, start: Date, redTimestampTolerance: TimeInterval?) throws(SimScenarioError) {
        self.clock = clock
        self.start = start
        self.ozonAccounts = scenario.ozonAccounts
        self.redAccounts = scenario.redAccounts
        self.ozonAccountKeys = Set(scenario.ozonAccounts.map(\.clientID))
        self.redAccountKeys = Set(scenario.redAccounts.map(\.appKey))
        self.redTimestampTolerance = redTimestampTolerance
        self.random = SeededGenerator(seed: scenario.seed)
        let scenarioCopy = scenario
        self.configYAML = { baseURL in scenarioCopy.configSourcesYAML(baseURL: baseURL) }
        for (index, plan) in scenario.requests.enumerated() {
            do {
                try validateAccount(plan)
            } catch {
                throw SimScenarioError(source: "scenario", field: "requests[\(index)].account", message: error.message)
            }
            append(materialize(plan, anchor: start))
        }
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Requests

    private func validateAccount(_ plan: SimRequestPlan) throws(SimScenarioError) {
        let known = plan.marketplace == .ozon ? ozonAccountKeys : redAccountKeys
        guard known.contains(plan.account) else {
            throw SimScenarioError(
                source: "request", field: "account", message: "no \(plan.marketplace.rawValue) account \"\(plan.account)\"")
        }
    }

    /// Gives a plan absolute times and ids. Call with the lock held (or during init).
    private func materialize(_ plan: SimRequestPlan, anchor: Date) -> SimRecord {
        let simID = records.count + 1
        let digits = plan.fractionDigits ?? [0, 3, 6][simID % 3]
        let precision = plan.marketplace == .ozon ? digits : 0
        func at(_ time: SimTime) -> Date { SimDates.truncate(time.date(anchor: anchor), digits: precision) }

        let cancellationID: Int64
        if let given = plan.cancellationID {
            cancellationID = given
            nextCancellationID = max(nextCancellationID, given)
        } else {
            nextCancellationID += Int64.random(in: 1...9, using: &random)
            cancellationID = nextCancellationID
        }
        let posting =
            plan.postingNumber
            ?? String(format: "%08d-%04d-%d", Int.random(in: 10_000_000...99_999_999, using: &random),
                Int.random(in: 1...9999, using: &random), Int.random(in: 1...3, using: &random))
        let packageID = plan.packageID ?? "P" + String(UInt64.random(in: 100_000_000_000_000...999_999_999_999_999, using: &random))

        var reason = plan.reason
        var reasonID = plan.reasonID
        if plan.marketplace == .ozon {
            if reason == nil || reasonID == nil {
                let stock =
                    plan.initiator == "CLIENT"
                    ? StockTexts.ozonReasons[Int.random(in: 0..<StockTexts.ozonReasons.count, using: &random)]
                    : StockTexts.ozonServiceReasons[plan.initiator] ?? StockTexts.ozonReasons[0]
                reason = reason ?? stock.name
                reasonID = reasonID ?? stock.id
            }
        } else if reason == nil {
            reason = StockTexts.redReasons[Int.random(in: 0..<StockTexts.redReasons.count, using: &random)]
        }
        let message =
            plan.reasonMessage
            ?? (plan.initiator == "CLIENT"
                ? StockTexts.ozonReasonMessages[Int.random(in: 0..<StockTexts.ozonReasonMessages.count, using: &random)] : "")
        let created = at(plan.created)
        let orderDate =
            plan.orderDate.map(at)
            ?? SimDates.truncate(created.addingTimeInterval(-Double(Int.random(in: 2 * 3600...30 * 3600, using: &random))), digits: precision)
        return SimRecord(
            simID: simID, marketplace: plan.marketplace, account: plan.account, created: created, deadline: at(plan.deadline),
            resolution: plan.resolution.map { (at: at($0.at), outcome: $0.outcome, comment: $0.comment) },
            vanishAt: plan.vanishAt.map(at), reason: reason ?? "", reasonID: reasonID ?? 0, initiator: plan.initiator,
            reasonMessage: message, cancellationID: cancellationID, postingNumber: posting, orderDate: orderDate,
            fractionDigits: precision, sourceID: Int64.random(in: 10_000_000...99_999_999, using: &random),
            tplIntegrationType: ["non_integrated", "ozon", "aggregator"][simID % 3], packageID: packageID,
            logistics: plan.logistics)
    }

    func addRequest(_ plan: SimRequestPlan, anchor: Date?) throws(SimScenarioError) -> SimRequestInfo {
        try validateAccount(plan)
        let now = clock.now()
        return withLock {
            let record = materialize(plan, anchor: anchor ?? now)
            append(record)
            return info(record, now: now)
        }
    }

    func resolve(_ marketplace: SimMarketplace, id: String, outcome: SimOutcome?, comment: String?) -> Bool {
        let now = clock.now()
        return withLock {
            let candidates = records.indices.filter { i in
                let r = records[i]
                guard r.marketplace == marketplace, r.phase(at: now) == .pending else { return false }
                return marketplace == .ozon ? (String(r.cancellationID) == id || r.postingNumber == id) : r.packageID == id
            }
            guard let index = candidates.max(by: { records[$0].created < records[$1].created }) else { return false }
            if let outcome {
                records[index].resolution = (at: now, outcome: outcome, comment: comment)
            } else {
                records[index].vanishAt = now
            }
            return true
        }
    }

    /// Records a seller's decision through the marketplace API. Returns nil when done, else why not.
    func decide(where match: (SimRecord) -> Bool, outcome: SimOutcome, comment: String?, now: Date) -> DecideFailure? {
        withLock {
            let visible = records.indices.filter { match(records[$0]) && records[$0].phase(at: now) != .hidden }
            guard !visible.isEmpty else { return .notFound }
            guard let index = visible.last(where: { records[$0].phase(at: now) == .pending }) else {
                if let last = visible.last, case .decided(_, let at, true) = records[last].phase(at: now) { return .deadlinePassed(at) }
                return .notPending
            }
            records[index].resolution = (at: now, outcome: outcome, comment: comment)
            return nil
        }
    }

    enum DecideFailure: Equatable {
        case notFound
        /// Decided already, by the seller.
        case notPending
        /// Decided by the marketplace itself at its deadline, at this instant.
        case deadlinePassed(Date)
    }

    struct AccountKey: Hashable {
        var marketplace: SimMarketplace
        var account: String
    }

    /// Adds a record and indexes it. Call with the lock held (or during init).
    private func append(_ record: SimRecord) {
        byAccount[AccountKey(marketplace: record.marketplace, account: record.account), default: []].append(records.count)
        records.append(record)
    }

    /// The records of one account visible now, with their phase.
    func visible(_ marketplace: SimMarketplace, account: String, now: Date) -> [(record: SimRecord, phase: SimRecord.Phase)] {
        withLock {
            (byAccount[AccountKey(marketplace: marketplace, account: account)] ?? []).compactMap { i in
                let r = records[i]
                let phase = r.phase(at: now)
                return phase == .hidden ? nil : (r, phase)
            }
        }
    }

    func info(_ r: SimRecord, now: Date) -> SimRequestInfo {
        var state = "pending"
        var automatic = false
        var decidedAt: Date? = nil
        switch r.phase(at: now) {
        case .hidden: state = "hidden"
        case .pending: break
        case .decided(let outcome, let at, let auto):
            state = outcome.rawValue
            automatic = auto
            decidedAt = at
        }
        return SimRequestInfo(
            simID: r.simID, marketplace: r.marketplace, account: r.account, id: r.publicID, order: r.order, state: state,
            automatic: automatic, created: r.created, deadline: r.deadline, decidedAt: decidedAt,
            logistics: r.marketplace == .red ? r.logistics : nil)
    }

    func requestInfos() -> [SimRequestInfo] {
        let now = clock.now()
        return withLock { records.map { info($0, now: now) } }
    }

    // MARK: Faults

    func addFault(_ fault: SimFault) -> Int {
        withLock {
            nextFaultID += 1
            faults.append((nextFaultID, fault))
            return nextFaultID
        }
    }

    func clearFaults() { withLock { faults.removeAll() } }

    func activeFaults() -> [ActiveFault] { withLock { faults.map { ActiveFault(id: $0.id, fault: $0.fault) } } }

    /// Counts the request and takes the faults that apply to it (using up their counts).
    func admit(method: String, path: String, marketplace: SimMarketplace?, account: String?) -> AppliedFaults {
        withLock {
            counts["\(method) \(path)", default: 0] += 1
            if let account { counts["\(method) \(path) \(account)", default: 0] += 1 }
            var applied = AppliedFaults()
            guard let marketplace else { return applied }
            var kept: [(id: Int, fault: SimFault)] = []
            for entry in faults {
                var entry = entry
                if entry.fault.matches(marketplace: marketplace, account: account, path: path) {
                    applied.add(entry.fault)
                    if let times = entry.fault.times {
                        entry.fault.times = times - 1
                        if times - 1 <= 0 { continue }
                    }
                }
                kept.append(entry)
            }
            faults = kept
            return applied
        }
    }

    // MARK: Counts

    func requestCount(method: String?, path: String, account: String?) -> Int {
        withLock {
            let methods = method.map { [$0] } ?? ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
            return methods.reduce(0) { sum, m in
                sum + (counts[account.map { "\(m) \(path) \($0)" } ?? "\(m) \(path)"] ?? 0)
            }
        }
    }

    func countsByEndpoint() -> [String: Int] {
        withLock { counts.filter { $0.key.split(separator: " ").count == 2 } }
    }

    func countsByAccount() -> [String: Int] {
        withLock { counts.filter { $0.key.split(separator: " ").count == 3 } }
    }

    func resetCounts() { withLock { counts.removeAll() } }

    // MARK: Dispatch

    func handle(_ request: ServerRequest) -> ServerResponse {
        let now = clock.now()
        if request.path == "/_sim" || request.path.hasPrefix("/_sim/") {
            return handleControl(request, now: now)
        }
        let marketplace: SimMarketplace?
        let account: String?
        if request.path.hasPrefix("/v1/") || request.path.hasPrefix("/v2/") || request.path.hasPrefix("/v3/") {
            marketplace = .ozon
            account = request.header("Client-Id")
        } else if request.path.hasPrefix("/ark/") {
            marketplace = .red
            account = request.header("app-key")
        } else {
            marketplace = nil
            account = nil
        }
        let faults = admit(method: request.method, path: request.path, marketplace: marketplace, account: account)
        guard let marketplace else {
            return .json(status: 404, value: ["code": 5, "message": "Not Found", "details": []])
        }
        var response: ServerResponse
        if let retryAfter = faults.rateLimited {
            var headers = HTTPHeaderFields()
            if let retryAfter { headers["Retry-After"] = String(retryAfter) }
            response =
                marketplace == .ozon
                ? .json(
                    status: 429, value: ["code": 8, "message": "You have reached request rate limit per second", "details": []],
                    headers: headers)
                : .json(status: 429, value: Self.redError(429, "请求过于频繁,请稍后再试 (rate limited)"), headers: headers)
        } else if let status = faults.serverError {
            if status == 500 {
                response =
                    marketplace == .ozon
                    ? .json(status: 500, value: ["code": 13, "message": "internal error", "details": []])
                    : .json(status: 500, value: Self.redError(500, "系统繁忙,请稍后再试 (internal error)"))
            } else {
                let phrase = ServerResponse.reasonPhrase(status)
                response = ServerResponse(
                    status: status, headers: ["Content-Type": "text/html"],
                    body: Data("<html><head><title>\(status) \(phrase)</title></head><body><center><h1>\(status) \(phrase)</h1></center></body></html>\n".utf8))
            }
        } else {
            response = marketplace == .ozon ? handleOzon(request, now: now, faults: faults) : handleRed(request, now: now, faults: faults)
        }
        if faults.malformedJSON {
            let text = String(decoding: response.body, as: UTF8.self)
            let cut = text.count > 8 ? String(text.prefix(text.count / 2)) : "{\"result\": ["
            response.body = Data((cut + "\u{0}<!-- upstream error").utf8)
        }
        if faults.truncatedBody { response = response.truncated(afterBytes: response.body.count / 2) }
        if faults.dropConnection { response.fault = .dropConnection }
        if faults.delay > 0 { response.delay = faults.delay }
        return response
    }

    static func redError(_ code: Int64, _ message: String) -> JSONValue {
        ["success": false, "error_code": .integer(code), "error_msg": .string(message), "data": nil]
    }
}
