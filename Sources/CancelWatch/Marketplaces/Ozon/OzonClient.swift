import Foundation

/// Ozon Seller API credentials and endpoint for one account.
public struct OzonAccount: Sendable {
    public var source: String
    public var baseURL: String
    public var clientID: String
    public var apiKey: String
    public var timeout: TimeInterval

    public init(source: String, baseURL: String = "https://api-seller.ozon.ru", clientID: String, apiKey: String, timeout: TimeInterval = 30) {
        self.source = source
        self.baseURL = baseURL
        self.clientID = clientID
        self.apiKey = apiKey
        self.timeout = timeout
    }
}

/// Polls one Ozon account's rFBS conditional cancellations
/// (`POST /v2/conditional-cancellation/list`).
public struct OzonClient: MarketplaceClient {
    public static let listPath = "/v2/conditional-cancellation/list"
    public static let pageLimit = 500
    /// Posting numbers per outcome lookup call.
    static let lookupBatch = 50
    /// A runaway pager stops here whatever the API says.
    static let maxPages = 10_000
    /// Request headers that carry the account's credentials (taken out of every error).
    static let secretHeaders: Set<String> = ["client-id", "api-key"]

    public let account: OzonAccount
    let transport: HTTPTransport
    let clock: WatchClock
    let retry: RetryPolicy
    let scrubber: SecretScrubber

    public var source: String { account.source }
    public var marketplace: Marketplace { .ozon }

    public init(account: OzonAccount, transport: HTTPTransport, clock: WatchClock, retry: RetryPolicy = .marketplaceCall) {
        self.account = account
        self.transport = transport
        self.clock = clock
        self.retry = retry
        self.scrubber = SecretScrubber([account.apiKey, account.clientID])
    }

    public func fetchPending() async throws(PollError) -> PendingSnapshot {
        var result = try await list(filters: ["state": "ON_APPROVAL"])
        // In place: no copy of the requests kept (each looked at through its index: a
        // request handed to a closure would be copied).
        if result.requests.indices.contains(where: { result.requests[$0].state != .pending }) {
            result.requests.removeAll { $0.state != .pending }
        }
        return PendingSnapshot(
            requests: result.requests, warnings: result.warnings, pages: result.pages,
            skippedIDs: Array(result.skippedIDs), complete: result.complete)
    }

    /// Looks the requests up by posting number with state `ALL`. A request listed as decided
    /// is resolved, one listed as pending comes back `.stillPending`; only one that a complete
    /// listing does not hold is `.vanished`. What cannot be told (an item whose id or state
    /// cannot be read, a pending item that cannot be decoded) is left out of the answer.
    public func lookupOutcomes(of requests: [CancellationRequest]) async throws(PollError) -> [RequestKey: OutcomeLookup] {
        let orders = Array(Set(requests.map(\.order))).sorted()
        var listed: [String: OzonWire.Listed] = [:]
        var decoded: [String: CancellationRequest] = [:]
        var unreadableOrders = Set<String>()
        var start = 0
        while start < orders.count {
            let batch = Array(orders[start..<min(start + Self.lookupBatch, orders.count)])
            start += Self.lookupBatch
            let result = try await list(
                filters: ["state": "ALL", "posting_number": .array(batch.map { .string($0) })], outcomes: true)
            for request in result.requests { decoded[request.id] = request }
            listed.merge(result.listed) { _, new in new }
            // An item with no readable id could be any request of the batch.
            if !result.complete { unreadableOrders.formUnion(batch) }
        }
        var outcomes: [RequestKey: OutcomeLookup] = [:]
        for request in requests {
            guard let now = listed[request.id] else {
                if !unreadableOrders.contains(request.order) { outcomes[request.key] = .resolved(.vanished, at: nil) }
                continue
            }
            switch now.state {
            case .pending?:
                if let still = decoded[request.id], still.state == .pending { outcomes[request.key] = .stillPending(still) }
            case .approved?: outcomes[request.key] = .resolved(.approved, at: now.approveDate)
            case .rejected?: outcomes[request.key] = .resolved(.rejected, at: now.approveDate)
            case nil: break  // listed, in a state that cannot be read
            }
        }
        return outcomes
    }

    struct ListResult {
        var requests: [CancellationRequest] = []
        /// Every listed item whose id could be read, with its state where readable.
        var listed: [String: OzonWire.Listed] = [:]
        var warnings: [String] = []
        var pages = 0
        var skippedIDs = Set<String>()
        var complete = true
    }

    /// Every page of the list for `filters`, following `last_id` to the end. The end is
    /// not documented: stop on an empty page, a short page, `last_id` 0 or unchanged.
    /// `outcomes`: also note every listed item's state (for lookups).
    func list(filters: [String: JSONValue], outcomes: Bool = false) async throws(PollError) -> ListResult {
        var result = ListResult()
        // Cancellation ids listed so far (as numbers: no string made to ask).
        var seen = Set<Int64>()
        var lastID: Int64 = 0
        while result.pages < Self.maxPages {
            let body: JSONValue = [
                "filters": .object(filters), "limit": .integer(Int64(Self.pageLimit)), "last_id": .integer(lastID),
                "with": ["counter": true],
            ]
            let request = post(Self.listPath, body)
            let page = try await sendWithRetry(
                source: source, transport: transport, clock: clock, policy: retry, scrubber: scrubber, secretHeaders: Self.secretHeaders,
                makeRequest: { _ in request }
            ) { (response, scrubber) throws(PollError) -> OzonWire.Page in try interpret(response, scrubber: scrubber) }.value
            result.pages += 1
            if result.pages == 1, let counter = page.counter { reserve(&result.requests, adding: Int(clamping: counter)) }
            var fresh = 0
            for item in page.items {
                if let number = item.id {
                    if outcomes {
                        let id = String(number)
                        result.listed[id] = OzonWire.listed(item, id: id)
                    }
                    if seen.insert(number).inserted {
                        fresh += 1
                    } else if result.skippedIDs.isEmpty || !result.skippedIDs.contains(String(number)) {
                        continue  // listed again, and already decoded
                    }
                }
                do {
                    let request = try OzonWire.request(from: item, source: source)
                    if !result.skippedIDs.isEmpty { result.skippedIDs.remove(request.id) }
                    result.requests.append(request)
                } catch {
                    // Still listed: whatever it is, it has not left the list.
                    if let number = item.id {
                        result.skippedIDs.insert(String(number))
                    } else {
                        result.complete = false
                    }
                    result.warnings.append(scrubber.scrub("source '\(source)': skipped an item: \(error.message)"))
                }
            }
            if page.items.isEmpty || page.items.count < Self.pageLimit { break }
            guard let next = page.lastID, next != 0 else {
                // A documented end, but a full page: what follows (if anything) is looked up by
                // posting number before it is called resolved.
                result.warnings.append(
                    "source '\(source)': a full page of \(page.items.count) ended with last_id 0; treated as the end of the list")
                break
            }
            if next == lastID || fresh == 0 {
                result.warnings.append(
                    "source '\(source)': the list did not advance (last_id \(next)); stopped paging after \(result.pages) pages")
                break
            }
            lastID = next
        }
        return result
    }

    /// A call to `path` with `body`, the account's credentials and timeout.
    func post(_ path: String, _ body: JSONValue) -> HTTPRequest {
        HTTPRequest(
            method: "POST", url: account.baseURL + path,
            headers: [
                HTTPHeader("Client-Id", account.clientID), HTTPHeader("Api-Key", account.apiKey),
                HTTPHeader("Content-Type", "application/json"), HTTPHeader("Accept", "application/json"),
            ],
            body: body.serializedData(), timeout: account.timeout)
    }

    func interpret(_ response: HTTPResponse, scrubber: SecretScrubber) throws(PollError) -> OzonWire.Page {
        let status = response.status
        guard (200..<300).contains(status) else {
            // The vendor may echo the request's headers: an excerpt is scrubbed before it is cut;
            // `sendWithRetry` scrubs every error that leaves, then cuts it.
            let detail = OzonWire.errorMessage(response.body)
                ?? "body: \(scrubber.excerpt(of: response.body, limit: 160))"
            let kind: PollError.Kind
            switch status {
            case 429: kind = .rateLimited
            case 401, 403: kind = .auth
            case 500...599: kind = .server
            default: kind = .api
            }
            var message = detail
            if kind == .auth { message += " (check client_id and api_key, and that the seller accepted Ozon's current offer)" }
            throw PollError(
                source: source, kind: kind, status: status, message: message,
                retryAfter: OutsideDelay.parse(response.header("Retry-After"), now: clock.now()))
        }
        do {
            return try OzonWire.decodePage(response.body)
        } catch {
            throw PollError(source: source, kind: .decoding, status: status, message: error.message)
        }
    }
}

extension OzonClient: AnsweringClient {
    public static let approvePath = "/v2/conditional-cancellation/approve"
    public static let rejectPath = "/v2/conditional-cancellation/reject"

    /// `POST …/approve` or `…/reject` with `{cancellation_id, comment}` (the comment left out
    /// of an approval without one). An id that is not a cancellation id is refused unsent.
    public func answer(_ request: CancellationRequest, with answer: Answer) async -> AnswerOutcome {
        guard let id = OzonWire.cancellationID(request.id) else {
            return scrubber.oneLine(
                .refused(
                    AnswerRefusal(
                        kind: .unknownRequest,
                        message: "not sent: '\(TextCut.cut(request.id, limit: 64))' is not an Ozon cancellation id (decimal digits)")))
        }
        var body: [String: JSONValue] = ["cancellation_id": .integer(id)]
        if answer.decision == .refuse || !answer.comment.isEmpty { body["comment"] = .string(answer.comment) }
        let path = answer.decision == .approve ? Self.approvePath : Self.rejectPath
        let call = post(path, .object(body))
        return await sendAnswer(
            transport: transport, clock: clock, policy: retry, scrubber: scrubber, secretHeaders: Self.secretHeaders,
            makeRequest: { _ in call }
        ) { response, scrubber in Self.answerOutcome(response, path: path, scrubber: scrubber) }
    }

    /// What Ozon's answer to an answer call says: 200 (an empty body or any JSON object) took
    /// it; a `{code, message}` error says why not (404 unknown id, 400 code 9 decided already,
    /// 409 past its deadline, 403 no permission or the offer not signed); a 404 without a
    /// `code` (a proxy's page) is the call itself gone; a 5xx or an unreadable 200 may have applied it.
    static func answerOutcome(_ response: HTTPResponse, path: String, scrubber: SecretScrubber) -> AnswerOutcome {
        let status = response.status
        let body = response.body
        if (200..<300).contains(status) {
            if body.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) { return .accepted }
            if case .object? = try? JSONParser.parse(body) { return .accepted }
            return .unknown(
                "HTTP \(status) with an answer that is not a JSON object (\(scrubber.answerExcerpt(of: body))); \(AnswerOutcome.mayHaveApplied)")
        }
        let error = OzonWire.errorBody(body)
        let text = error.map { $0.text.isEmpty ? "no message" : $0.text } ?? scrubber.answerExcerpt(of: body)
        func refused(_ kind: AnswerRefusal.Kind, _ message: String = text) -> AnswerOutcome {
            .refused(AnswerRefusal(kind: kind, status: status, code: error?.code.map { String($0) }, message: message))
        }
        switch status {
        case 404 where error?.code == nil: return refused(.endpointGone, "POST \(path) is not there (\(text))")
        case 404: return refused(.unknownRequest)
        case 409: return refused(.deadlinePassed)
        case 401: return refused(.auth, text + " (check client_id and api_key)")
        case 403:
            let lowered = text.lowercased()
            let credentials = lowered.contains("api-key") || lowered.contains("api key") || lowered.contains("client-id")
            return credentials ? refused(.auth, text + " (check client_id and api_key)") : refused(.noPermission)
        case 429: return refused(.rateLimited)
        case 400 where error?.code == 9 || text.lowercased().contains("already"): return refused(.alreadyDecided)
        case 400..<500: return refused(.other)
        default: return .unknown("HTTP \(status): \(text); \(AnswerOutcome.mayHaveApplied)")
        }
    }
}
