import CancelWatch
import Foundation
import HTTPServing

/// A stand-in for the Ozon Seller API and the Xiaohongshu Ark API on one loopback
/// HTTP server, for the demo, `cancelwatch simulate` and tests.
///
/// Time comes from the injected clock: what a request's state is, how much
/// `max_audit_time` is left, whether it auto-approved, are all computed from
/// `clock.now()` when a request arrives, so a `ManualClock` drives it exactly.
///
/// Marketplace endpoints:
/// - `POST /v2/conditional-cancellation/list`, `…/approve`, `…/reject` (Ozon)
/// - `GET /ark/open_api/v0/packages/canceling/list`, `PUT …/canceling/audit` (RED)
///
/// Control endpoints (never faulted):
/// - `GET /_sim/state`: time, accounts, every request and its state, faults, request counts
///   (`?marketplace=ozon&account=100001&state=pending` narrows the requests).
/// - `GET|POST|DELETE /_sim/faults`: list, add (`{"kind": "rate_limit", "retry_after": 2,
///   "times": 3, "marketplace": "ozon", "account": "100001", "path": "/v2/…"}` or
///   `{"faults": [...]}`; `"always": true` instead of `times` until cleared), clear.
///   Kinds: `rate_limit` (`retry_after`), `server_error` (`status`, default 500), `slow`
///   (`delay`: seconds or `"2s"`), `malformed_json`, `truncated_body`, `drop_connection`,
///   `counter_as_string`, `unknown_fields`, `stuck_last_id`, `repeated_page`.
/// - `POST /_sim/requests`: add one request (the scenario's request format, times relative
///   to now) or `{"requests": [...]}`.
/// - `POST /_sim/resolve`: `{"marketplace": "ozon", "id": "283784001", "outcome":
///   "approved" | "rejected" | "canceled" | "refused" | "vanished", "comment": "..."}`
///   (`id`: Ozon cancellation_id or posting_number, RED package_id).
/// - `GET|DELETE /_sim/counts`: requests served per `METHOD path` (and per account); reset.
/// - `GET /_sim/config`: the `sources:` YAML for this simulator.
///
/// A Telegram Bot API double (``SimTelegramBot``) answers `/bot<TOKEN>/…` on the same server,
/// scripted under `/_sim/telegram`.
///
/// RED error codes (HTTP 200, `success: false`): 10001 missing `app-key`/`timestamp`/`sign`,
/// 10002 unknown app-key, 10003 wrong signature, 10004 timestamp too far from the server's
/// clock (only when `redTimestampTolerance` is set), 10005 invalid parameter, 10404 unknown API
/// path (HTTP 404); 429 and 500 with the faults. An audit of a package unknown (or another
/// seller's): -2000101; already audited, or past its audit time: -2000202 (as the vendor's).
/// Ozon's answer calls: 404 code 5 unknown id, 400 code 9 already decided, 409 code 9 approved
/// automatically at its deadline.
public final class MarketSimulator: Sendable {
    public let scenario: SimScenario
    /// The instant scenario offsets count from.
    public let startedAt: Date
    private let state: SimState
    private let server: HTTPServer
    /// The Telegram Bot API double on this server.
    public let telegram: SimTelegramBot

    /// Starts the simulator on `host:port` (port 0: an ephemeral one) with `scenario`'s
    /// accounts and requests, relative to `clock.now()`.
    public init(
        scenario: SimScenario = .standard, clock: any WatchClock, host: String = "127.0.0.1", port: Int = 0,
        redTimestampTolerance: TimeInterval? = nil, telegramToken: String = SimTelegramBot.defaultToken
    ) throws {
        let start = clock.now()
        let state = try SimState(scenario: scenario, clock: clock, start: start, redTimestampTolerance: redTimestampTolerance)
        let telegram = SimTelegramBot(token: telegramToken, clock: clock)
        self.scenario = scenario
        self.startedAt = start
        self.state = state
        self.telegram = telegram
        self.server = try HTTPServer(host: host, port: port) { request in
            telegram.handleBotAPI(request) ?? telegram.handleControl(request) ?? state.handle(request)
        }
    }

    deinit {
        telegram.stop()
        server.shutdown()
    }

    /// `http://127.0.0.1:PORT`: the `base_url` for both marketplaces.
    public var baseURL: String { server.baseURL }
    public var port: Int { server.port }

    /// `http://127.0.0.1:PORT/bot<TOKEN>/METHOD`: a Bot API method of the Telegram double.
    public func telegramURL(_ method: String) -> String { "\(baseURL)/bot\(telegram.token)/\(method)" }

    /// Stops the server.
    public func shutdown() {
        telegram.stop()
        server.shutdown()
    }

    /// Stops serving and closes every connection, without blocking a thread.
    public func close() async {
        telegram.stop()
        await server.close()
    }

    /// Runs `body`, then closes the simulator (without blocking a thread), however `body` ends.
    public func serving<T>(_ body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            await close()
            throw error
        }
        await close()
        return result
    }

    /// Answers one request without going through a socket (same logic as the server).
    public func handle(_ request: ServerRequest) -> ServerResponse {
        telegram.handleBotAPI(request) ?? telegram.handleControl(request) ?? state.handle(request)
    }

    // MARK: Faults

    /// Adds a fault; returns its id.
    @discardableResult
    public func addFault(_ fault: SimFault) -> Int { state.addFault(fault) }

    /// Removes every fault.
    public func clearFaults() { state.clearFaults() }

    /// The faults still active (with their remaining counts in `times`).
    public var activeFaults: [SimFault] { state.activeFaults().map(\.fault) }

    // MARK: Requests

    /// Adds a request; relative times count from `anchor` (now when nil).
    @discardableResult
    public func addRequest(_ plan: SimRequestPlan, anchor: Date? = nil) throws(SimScenarioError) -> SimRequestInfo {
        try state.addRequest(plan, anchor: anchor)
    }

    /// Has the seller decide a pending request now (`outcome` nil: it vanishes).
    /// `id`: Ozon cancellation_id or posting_number, RED package_id. False when no such request is pending.
    @discardableResult
    public func resolve(_ marketplace: SimMarketplace, id: String, outcome: SimOutcome?, comment: String? = nil) -> Bool {
        state.resolve(marketplace, id: id, outcome: outcome, comment: comment)
    }

    /// Every request and its state now.
    public func requests() -> [SimRequestInfo] { state.requestInfos() }

    // MARK: Counts

    /// Requests served for `path` (any method when nil), for one account when given
    /// (Ozon `Client-Id`, RED `app-key`), whatever the answer was.
    public func requestCount(method: String? = nil, path: String, account: String? = nil) -> Int {
        state.requestCount(method: method, path: path, account: account)
    }

    /// Every count, keyed `METHOD path`.
    public var requestCounts: [String: Int] { state.countsByEndpoint() }

    public func resetRequestCounts() { state.resetCounts() }

    /// The `sources:` YAML for this simulator's accounts.
    public func configSourcesYAML(pollInterval: String = "10s") -> String {
        scenario.configSourcesYAML(baseURL: baseURL, pollInterval: pollInterval)
    }
}

/// One request as the simulator sees it now.
public struct SimRequestInfo: Sendable, Hashable {
    public var simID: Int
    public var marketplace: SimMarketplace
    public var account: String
    /// Ozon cancellation_id, RED package_id.
    public var id: String
    /// Ozon posting_number, RED package_id.
    public var order: String
    /// `hidden` (not yet created, or vanished), `pending`, `approved` or `rejected`.
    public var state: String
    /// Whether the marketplace decided it at the deadline.
    public var automatic: Bool
    public var created: Date
    public var deadline: Date
    public var decidedAt: Date?
    public var logistics: String?
}

extension ServerResponse {
    /// A JSON value as the body.
    static func json(status: Int = 200, value: JSONValue, headers: HTTPHeaderFields = HTTPHeaderFields()) -> ServerResponse {
        .json(status: status, value.serializedData(), headers: headers)
    }
}
