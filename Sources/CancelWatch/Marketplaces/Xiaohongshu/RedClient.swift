import Foundation

/// Xiaohongshu Ark credentials, endpoint and settings for one shop.
public struct RedAccount: Sendable {
    public var source: String
    public var baseURL: String
    public var appKey: String
    public var appSecret: String
    /// Logistics modes to poll (`red_auto`, `red_box`).
    public var logistics: [String]
    public var maxAuditTimeUnit: MaxAuditTimeUnit
    public var pageSize: Int
    public var timeout: TimeInterval

    public init(
        source: String, baseURL: String = "https://ark.xiaohongshu.com", appKey: String, appSecret: String,
        logistics: [String] = ["red_auto"], maxAuditTimeUnit: MaxAuditTimeUnit = .milliseconds, pageSize: Int = 50,
        timeout: TimeInterval = 30
    ) {
        self.source = source
        self.baseURL = baseURL
        self.appKey = appKey
        self.appSecret = appSecret
        self.logistics = logistics
        self.maxAuditTimeUnit = maxAuditTimeUnit
        self.pageSize = pageSize
        self.timeout = timeout
    }
}

/// Polls one Xiaohongshu shop's canceling packages
/// (`GET /ark/open_api/v0/packages/canceling/list`, signed).
public final class RedClient: MarketplaceClient {
    public static let listPath = "/ark/open_api/v0/packages/canceling/list"
    /// Request headers that carry credentials (taken out of every error).
    static let secretHeaders: Set<String> = ["app-key", "sign"]
    /// The list is searched by time in windows of at most this long (client code seen
    /// allows 7 days per call); a window `[s, s + auditWindow - 1]` spans less than that.
    static let auditWindow: Int64 = 7 * 86400
    /// How far back an outcome is searched for: a request asked longer ago than this (or
    /// with a cancel time as far ahead) is not looked up, so it is never called vanished.
    static let lookupHorizon: Int64 = 30 * 86400
    /// Searched past the local clock's now: the marketplace's clock may run ahead.
    static let lookupSlack: Int64 = 60
    /// Searches for outcomes: a request found in no list is searched once more (a list that
    /// shifted while it was paged) before it is called vanished.
    static let lookupRounds = 2
    static let maxPages = 10_000
    /// The logistics mode the API assumes when none is given.
    static let defaultLogistics = "red_auto"

    public let account: RedAccount
    let transport: HTTPTransport
    let clock: WatchClock
    let retry: RetryPolicy
    let scrubber: SecretScrubber
    private let unitWarning = UnitWarningLatch()

    public var source: String { account.source }
    public var marketplace: Marketplace { .xiaohongshu }

    public init(account: RedAccount, transport: HTTPTransport, clock: WatchClock, retry: RetryPolicy = .marketplaceCall) {
        self.account = account
        self.transport = transport
        self.clock = clock
        self.retry = retry
        self.scrubber = SecretScrubber([account.appSecret, account.appKey])
    }

    public func fetchPending() async throws(PollError) -> PendingSnapshot {
        var requests: [CancellationRequest] = []
        var warnings: [String] = []
        var unitWarnings: [String] = []
        var pages = 0
        // Ids by their bytes, hashed with the fast digest (ids are long; a poll lists thousands).
        var seen = TextSet()
        var skipped: [String] = []
        var complete = true
        for logistics in account.logistics {
            pages += try await forEachPage(query: [("logistics", logistics), ("status", "unaudited")]) { items, sentAt, pagesLeft in
                reserve(&requests, adding: items.count * pagesLeft)
                for item in items {
                    let request: CancellationRequest
                    let left: Double
                    do throws(PollErrorReason) {
                        // The vendor's own example mixes audited items into the list.
                        guard let unaudited = try RedWire.unauditedItem(
                            from: item, source: source, sentAt: sentAt, unit: account.maxAuditTimeUnit, logistics: logistics)
                        else { continue }
                        (request, left) = (unaudited.request, unaudited.left)
                    } catch {
                        // Still listed: whatever it is, it has not left the list.
                        if let id = RedWire.requestID(of: item) {
                            if !seen.contains(id) { skipped.append(id) }
                        } else {
                            complete = false
                        }
                        warnings.append(scrubber.scrub("source '\(source)': skipped an item: \(error.message)"))
                        continue
                    }
                    guard seen.insert(request.id) else { continue }
                    if let warning = unitWarning.check(request, left: left, unit: account.maxAuditTimeUnit, now: sentAt, source: source) {
                        unitWarnings.append(warning)
                    }
                    requests.append(request)
                }
            }
        }
        return PendingSnapshot(
            requests: requests, warnings: warnings + unitWarnings, pages: pages, skippedIDs: skipped,
            complete: complete)
    }

    /// Searches both lists, `unaudited` first and then `audited`, by logistics mode, over
    /// `[earliest cancel_time - 1 s, now]` in windows of at most 7 days: whether the API's
    /// time filter reads the cancel time or the audit time, an audit is not missed. A request
    /// found audited is resolved; one still listed unaudited (the pending list lagged) comes
    /// back `.stillPending`; one found in neither, twice, is `.vanished`. What cannot be told
    /// (no usable cancel time, an unreadable item that could be it) is left out of the answer.
    public func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        var outcomes: [RequestKey: OutcomeLookup] = [:]
        var unsettled = requests
        for _ in 0..<Self.lookupRounds where !unsettled.isEmpty {
            let now = clock.now()
            let searchable = unsettled.filter { request in
                Self.cancelSeconds(request).map { abs($0 - Self.seconds(now)) <= Self.lookupHorizon } ?? false
            }
            let findings = try await search(for: searchable, now: now)
            var notFound: [CancellationRequest] = []
            for request in searchable {
                let id = ExactText(request.id)
                if let (outcome, at) = findings.audited[id] {
                    outcomes[request.key] = .resolved(outcome, at: at)
                } else if let still = findings.pending[id] {
                    outcomes[request.key] = .stillPending(still)
                } else if !findings.unreadable.contains(id),
                    !findings.incompleteModes.contains(Self.logistics(of: request))
                {
                    notFound.append(request)
                }
            }
            unsettled = notFound
        }
        for request in unsettled { outcomes[request.key] = .resolved(.vanished, at: nil) }
        return outcomes
    }

    /// What the lists said about the requests being looked up, by request id (its bytes).
    struct LookupFindings {
        var audited: [ExactText: (Outcome, Date?)] = [:]
        var pending: [ExactText: CancellationRequest] = [:]
        /// Listed, but what became of it cannot be read.
        var unreadable = Set<ExactText>()
        /// Modes in which an item without a readable id was listed: it could be any request.
        var incompleteModes = Set<String>()
    }

    private func search(for requests: [CancellationRequest], now: Date) async throws(PollError) -> LookupFindings {
        var findings = LookupFindings()
        let byLogistics = Dictionary(grouping: requests, by: Self.logistics(of:))
        for (logistics, group) in byLogistics.sorted(by: { $0.key < $1.key }) {
            let times = group.compactMap(Self.cancelSeconds)
            guard let earliest = times.min(), let latest = times.max() else { continue }
            let windows = Self.windows(from: earliest - 1, through: max(Self.seconds(now), latest) + Self.lookupSlack)
            // Unaudited first: a request audited between the two searches is then found audited.
            for status in ["unaudited", "audited"] {
                for window in windows {
                    let query = [
                        ("logistics", logistics), ("status", status), ("start_time", String(window.lowerBound)),
                        ("end_time", String(window.upperBound)),
                    ]
                    _ = try await forEachPage(query: query) { items, sentAt, _ in
                        for item in items {
                            record(item, queried: status, logistics: logistics, sentAt: sentAt, into: &findings)
                        }
                    }
                }
            }
        }
        return findings
    }

    private func record(_ item: RedWire.Item, queried status: String, logistics: String, sentAt: Date, into findings: inout LookupFindings) {
        guard let id = RedWire.requestID(of: item).map(ExactText.init) else {
            findings.incompleteModes.insert(logistics)
            return
        }
        if (item.status ?? status) == "unaudited" {
            guard findings.audited[id] == nil else { return }
            if let request = try? RedWire.pendingRequest(
                from: item, source: source, sentAt: sentAt, unit: account.maxAuditTimeUnit, logistics: logistics)
            {
                findings.pending[id] = request
            } else {
                findings.unreadable.insert(id)
            }
            return
        }
        let outcome: Outcome
        switch item.auditResult {
        case "canceled"?: outcome = .approved
        case "refused"?: outcome = .rejected
        default:
            if findings.pending[id] == nil { findings.unreadable.insert(id) }
            return
        }
        findings.audited[id] = (outcome, RedWire.date(item.auditTime))
        findings.pending[id] = nil
        findings.unreadable.remove(id)
    }

    /// `[start, end]` in consecutive windows of at most `auditWindow` seconds.
    static func windows(from start: Int64, through end: Int64) -> [ClosedRange<Int64>] {
        var windows: [ClosedRange<Int64>] = []
        var from = start
        while from <= end {
            let to = min(end, from + auditWindow - 1)
            windows.append(from...to)
            from = to + 1
        }
        return windows
    }

    static func logistics(of request: CancellationRequest) -> String {
        request.logistics.isEmpty ? defaultLogistics : request.logistics
    }

    static func cancelSeconds(_ request: CancellationRequest) -> Int64? {
        request.createdAt.map(seconds)
    }

    /// Whole Unix seconds, rounded down; dates in use stay far inside Int64.
    static func seconds(_ date: Date) -> Int64 {
        let value = date.timeIntervalSince1970.rounded(.down)
        return value.isFinite ? Int64(max(-9e18, min(9e18, value))) : 0
    }

    /// Calls the list for every page up to `total_page`, handing each page's items to
    /// `body` with the instant the try that returned them was sent and the pages left.
    private func forEachPage(
        query: [(String, String)], _ body: ([RedWire.Item], Date, Int) -> Void
    ) async throws(PollError) -> Int {
        var pages = 0
        var pageNo = 1
        var totalPage = 1
        // The items of the pages read so far, by each page's first item.
        var earlier: [ItemKey: [ItemKey]] = [:]
        repeat {
            let pageQuery = query + [("page_no", String(pageNo)), ("page_size", String(account.pageSize))]
            // Signed afresh for every try: a retry never reuses an old timestamp.
            let call = try await sendWithRetry(
                source: source, transport: transport, clock: clock, policy: retry, scrubber: scrubber, secretHeaders: Self.secretHeaders,
                makeRequest: { sentAt in signedRequest(method: "GET", path: Self.listPath, query: pageQuery, sentAt: sentAt) }
            ) { (response, scrubber) throws(PollError) -> RedWire.Page in try interpret(response, scrubber: scrubber) }
            let page = call.value
            pages += 1
            // A later page that lists again the items of an earlier one means the cursor was
            // ignored: what the pages after it hold is unknown, so this listing cannot say what
            // left it. (Compared by first item, then whole: no per-item cost on a normal page.)
            if let first = page.items.first.map(ItemKey.init) {
                if let before = earlier[first] {
                    if before == page.items.map(ItemKey.init) {
                        throw PollError(
                            source: source, kind: .decoding,
                            message: "page \(pageNo) of \(totalPage) repeated items of earlier pages; the listing is incomplete")
                    }
                } else {
                    earlier[first] = page.items.map(ItemKey.init)
                }
            }
            // The countdown started no earlier than the send of the try that succeeded.
            totalPage = page.totalPage
            // The pages left, this one included (as the marketplace says: bounded before use).
            body(page.items, call.sentAt, min(max(1, totalPage - pageNo + 1), Self.maxPages))
            pageNo += 1
        } while pageNo <= totalPage && pageNo <= Self.maxPages
        return pages
    }

    /// A call signed at `sentAt`: the query and the `app-key` and `timestamp` headers signed,
    /// the body not.
    private func signedRequest(method: String, path: String, query: [(String, String)], body: Data? = nil, sentAt: Date)
        -> HTTPRequest
    {
        let timestamp = String(Self.seconds(sentAt))
        let sign = RedSigner.sign(
            path: path, query: query, appKey: account.appKey, timestamp: timestamp, appSecret: account.appSecret)
        let queryString = query.map { "\(PercentEncoding.encoded($0.0))=\(PercentEncoding.encoded($0.1))" }.joined(separator: "&")
        return HTTPRequest(
            method: method, url: account.baseURL + path + (query.isEmpty ? "" : "?" + queryString),
            headers: [
                HTTPHeader("app-key", account.appKey), HTTPHeader("timestamp", timestamp), HTTPHeader("sign", sign),
                HTTPHeader("Content-Type", "application/json;charset=utf-8"),
            ],
            body: body, timeout: account.timeout)
    }

    /// `scrubber` knows this try's credentials: a body excerpt is scrubbed before it is cut
    /// (`sendWithRetry` scrubs every error that leaves, then cuts it).
    private func interpret(_ response: HTTPResponse, scrubber: SecretScrubber) throws(PollError) -> RedWire.Page {
        let status = response.status
        let retryAfter = OutsideDelay.parse(response.header("Retry-After"), now: clock.now())
        guard (200..<300).contains(status) else {
            let kind: PollError.Kind
            switch status {
            case 429: kind = .rateLimited
            case 401, 403: kind = .auth
            case 500...599: kind = .server
            default: kind = .api
            }
            var message = "body: \(scrubber.excerpt(of: response.body, limit: 160))"
            if let envelope = try? JSONParser.parse(response.body), let text = envelope["error_msg"]?.stringValue {
                message = "error_code \(envelope["error_code"]?.lenientInt64 ?? 0): \(text)"
            }
            throw PollError(source: source, kind: kind, status: status, message: message, retryAfter: retryAfter)
        }
        do {
            return try RedWire.decodePage(response.body)
        } catch {
            switch error {
            case .decoding(let message):
                throw PollError(source: source, kind: .decoding, status: status, message: message)
            case .api(let code, let message):
                let auth = RedWire.isAuthFailure(message)
                throw PollError(
                    source: source, kind: auth ? .auth : .api, status: status,
                    message: "error_code \(code): \(message)" + (auth ? " (check app_key and app_secret)" : ""))
            }
        }
    }
}

extension RedClient: AnsweringClient {
    public static let auditPath = "/ark/open_api/v0/packages/canceling/audit"

    /// `PUT …/canceling/audit` with `{package_id, audit_result, audit_reason}` (`canceled`
    /// approves, `refused` refuses), signed afresh for every try. The package is the
    /// request's `order` (its id is `package_id@cancel_time`).
    public func answer(_ request: CancellationRequest, with answer: Answer) async -> AnswerOutcome {
        guard !request.order.isEmpty else {
            return scrubber.oneLine(
                .refused(
                    AnswerRefusal(
                        kind: .unknownRequest, message: "not sent: request '\(TextCut.cut(request.id, limit: 64))' names no package")))
        }
        let body: JSONValue = [
            "package_id": .string(request.order), "audit_result": answer.decision == .approve ? "canceled" : "refused",
            "audit_reason": .string(answer.comment),
        ]
        let data = body.serializedData()
        return await sendAnswer(
            transport: transport, clock: clock, policy: retry, scrubber: scrubber, secretHeaders: Self.secretHeaders,
            makeRequest: { sentAt in signedRequest(method: "PUT", path: Self.auditPath, query: [], body: data, sentAt: sentAt) }
        ) { response, scrubber in Self.answerOutcome(response, scrubber: scrubber) }
    }

    /// What the envelope says: success with `error_code` 0 took it; -2000101 unknown package,
    /// -2000202 audited already (or its audit time over), -2000401 no permission; HTTP 404 or
    /// "method offline" is the call itself gone; a 5xx or an unreadable answer may have applied it.
    static func answerOutcome(_ response: HTTPResponse, scrubber: SecretScrubber) -> AnswerOutcome {
        let status = response.status
        let failure = RedWire.failure(ofAnswer: response.body)
        var code: String?
        let text: String
        switch failure {
        case .api(let number, let message)?:
            code = String(number)
            text = message
        case .decoding?, nil: text = scrubber.answerExcerpt(of: response.body)
        }
        func refused(_ kind: AnswerRefusal.Kind, _ message: String = text) -> AnswerOutcome {
            .refused(AnswerRefusal(kind: kind, status: (200..<300).contains(status) ? nil : status, code: code, message: message))
        }
        switch status {
        case 500...: return .unknown("HTTP \(status): \(text); \(AnswerOutcome.mayHaveApplied)")
        case 429: return refused(.rateLimited)
        case 404: return refused(.endpointGone, "PUT \(auditPath) is not there (\(text))")
        default: break
        }
        switch failure {
        case nil where (200..<300).contains(status): return .accepted
        case .api(let number, let message)?:
            let lowered = message.lowercased()
            switch number {
            case -2000101: return refused(.unknownRequest)
            case -2000202:
                let late = ["audit time", "审核时间", "超时", "expired", "deadline"].contains { lowered.contains($0) }
                return refused(late ? .deadlinePassed : .alreadyDecided)
            case -2000401: return refused(.noPermission)
            case 429: return refused(.rateLimited)
            case 10404: return refused(.endpointGone)
            default: break
            }
            if lowered.contains("offline") || message.contains("下线") { return refused(.endpointGone) }
            if RedWire.isAuthFailure(message) { return refused(.auth, message + " (check app_key and app_secret)") }
            return refused(status == 401 || status == 403 ? .auth : .other)
        default:
            switch status {
            case 401, 403: return refused(.auth)
            case 400..<500: return refused(.other)
            default:
                return .unknown("HTTP \(status) with an answer that cannot be read (\(text)); \(AnswerOutcome.mayHaveApplied)")
            }
        }
    }
}

/// A listed item's package and cancel time, whatever they are, to notice a page listed again.
private struct ItemKey: Hashable {
    var packageID: String?
    var cancelTime: Int64?
    init(_ item: RedWire.Item) {
        packageID = item.packageID
        cancelTime = item.cancelTime?.lenientInt64
    }
}


/// Warns once per source when `max_audit_time` values look like the other unit.
final class UnitWarningLatch: @unchecked Sendable {
    private let lock = NSLock()
    private var warned = false

    func check(_ request: CancellationRequest, left: Double, unit: MaxAuditTimeUnit, now: Date, source: String) -> String? {
        let age = request.createdAt.map { now.timeIntervalSince($0) } ?? .infinity
        let suspicious: String?
        switch unit {
        case .milliseconds:
            // A fresh request with under a minute to audit: the value is probably seconds.
            suspicious = age < 600 && left > 0 && left < 60_000
                ? "max_audit_time \(whole(left)) for package \(request.order), asked \(whole(age))s ago, would leave \(whole(left / 1000))s to audit if milliseconds; the values look like seconds (set max_audit_time_unit: seconds if so; alerts now come early, never late)"
                : nil
        case .seconds:
            // More than 30 days to audit: the value is probably milliseconds.
            suspicious = left > 30 * 86400
                ? "max_audit_time \(whole(left)) for package \(request.order) is \(whole(left / 86400)) days if seconds; the values look like milliseconds (deadlines may be late: consider max_audit_time_unit: milliseconds)"
                : nil
        }
        guard let suspicious else { return nil }
        return lock.withLock {
            if warned { return nil }
            warned = true
            return "source '\(source)': \(suspicious)"
        }
    }

    /// A number for a message, whole, however large or odd the value the API sent.
    private func whole(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        let truncated = value.rounded(.towardZero)
        return abs(truncated) < 1e18 ? String(Int64(truncated)) : String(format: "%.3g", truncated)
    }
}
