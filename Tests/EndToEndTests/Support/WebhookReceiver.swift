import Foundation
import HTTPServing
import TestServers

/// A webhook receiver in the test process on 127.0.0.1 that records every event it is
/// sent and which ids it acknowledged (answered 2xx), and fails on purpose when told:
/// 503 or 429 answers, answers slower than the sink's timeout, or requests held open
/// until the test releases them.
final class WebhookReceiver: @unchecked Sendable {
    enum Mode: Sendable, Equatable {
        /// 200: acknowledged.
        case accept
        /// This status (with `Retry-After` when given): not acknowledged.
        case fail(status: Int, retryAfter: Int?)
        /// A 503 sent only after `seconds` (beyond the sink's timeout): a timeout, not acknowledged.
        case slow(seconds: TimeInterval)
        /// The request is held open until `release(with:)` (or the receiver stops).
        case hold
        /// This status and body (a chat tool's error object, a marketplace's error), as JSON.
        case reply(status: Int, body: String)
        /// `status` to the next `times` requests, then `accept`.
        case failTimes(Int, status: Int)
    }

    /// One request the receiver got.
    struct Receipt: Sendable {
        var id: String
        var event: String
        var source: String
        var order: String?
        var requestID: String?
        var message: String
        var body: String
        var headers: [String: String]
        var status: Int
        /// When the request arrived (the receiver's wall clock).
        var receivedAt: Date
    }

    private let condition = NSCondition()
    private var server: HTTPServer?
    private var mode: Mode = .accept
    private var receipts: [Receipt] = []
    private var held = 0
    private var releaseStatus: Int?
    private var stopping = false
    /// While stopped: a socket bound to the port and not listening. Connections are refused,
    /// and no other server of the test run is given the port meanwhile (a simulator answering
    /// 404 there once turned a "down" receiver's events into dead letters).
    private var portHold: PortHold?
    /// The port, kept for a restart on the same one.
    private(set) var port: Int = 0
    /// The path events are taken on, its own: a `cancelwatch run` of an earlier test still
    /// posting to the port it knew (now this receiver's) gets 421 and is not recorded. One
    /// whose simulator was gone once put its `source_down` events among a later test's.
    let path = "/hook-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)

    init(port: Int = 0) throws {
        try start(port: port)
    }

    deinit {
        stop()
        releasePort()
    }

    /// Where to send events; a test using the receiver as another service (a marketplace, a
    /// bot) puts its paths under it.
    var url: String { "http://127.0.0.1:\(port)\(path)" }

    /// (Re)starts listening, on the same port after `stop()` when `port` is that port.
    func start(port: Int) throws {
        condition.withLock { stopping = false }
        releasePort()
        let server = try HTTPServer(host: "127.0.0.1", port: port) { [weak self] request in
            self?.handle(request) ?? .text(status: 503, "gone")
        }
        self.port = server.port
        condition.withLock { self.server = server }
    }

    /// Stops listening (held requests are answered 503 first).
    func stop() {
        let server: HTTPServer? = condition.withLock {
            stopping = true
            condition.broadcast()
            let s = self.server
            self.server = nil
            return s
        }
        server?.shutdown()
        if server != nil { holdPort() }
    }

    private func holdPort() {
        let hold = PortHold(port: port)
        condition.withLock { portHold = hold }
    }

    private func releasePort() {
        condition.withLock { portHold = nil }
    }

    func setMode(_ mode: Mode) {
        condition.withLock {
            self.mode = mode
            if mode != .hold { releaseStatus = nil }
        }
    }

    /// Answers every held request (and later ones while the mode stays `hold`) with `status`.
    func release(with status: Int) {
        condition.withLock {
            releaseStatus = status
            condition.broadcast()
        }
    }

    /// Requests held open right now.
    var holding: Int { condition.withLock { held } }

    var allReceipts: [Receipt] { condition.withLock { receipts } }

    /// Ids answered 2xx, once per acknowledgement (in order).
    var acknowledged: [String] { condition.withLock { receipts.filter { (200..<300).contains($0.status) }.map(\.id) } }

    /// Acknowledged receipts.
    var acknowledgedReceipts: [Receipt] { condition.withLock { receipts.filter { (200..<300).contains($0.status) } } }

    private func handle(_ request: ServerRequest) -> ServerResponse {
        guard request.path == path || request.path.hasPrefix(path + "/") else { return .text(status: 421, "not this test's receiver") }
        var headers: [String: String] = [:]
        for field in request.headers.fields { headers[field.name.lowercased()] = field.value }
        let object = (try? JSONSerialization.jsonObject(with: request.body)) as? [String: Any] ?? [:]
        let requestObject = object["request"] as? [String: Any]
        var receipt = Receipt(
            id: object["id"] as? String ?? "", event: object["event"] as? String ?? "", source: object["source"] as? String ?? "",
            order: requestObject?["order"] as? String, requestID: requestObject?["id"] as? String,
            message: object["message"] as? String ?? "", body: request.bodyText, headers: headers, status: 0,
            receivedAt: Date())
        condition.lock()
        let mode = self.mode
        var response: ServerResponse
        switch mode {
        case .accept:
            response = .json(text: "{\"ok\":true}")
        case .fail(let status, let retryAfter):
            var fields = HTTPHeaderFields()
            if let retryAfter { fields["Retry-After"] = String(retryAfter) }
            response = .text(status: status, "failing on purpose", headers: fields)
        case .slow(let seconds):
            response = ServerResponse.text(status: 503, "too slow on purpose").delayed(by: seconds)
        case .hold:
            held += 1
            let limit = Date().addingTimeInterval(120)
            while releaseStatus == nil && !stopping && Date() < limit { _ = condition.wait(until: limit) }
            held -= 1
            let status = stopping ? 503 : (releaseStatus ?? 503)
            response = (200..<300).contains(status) ? .json(status: status, text: "{\"ok\":true}") : .text(status: status, "released")
        case .reply(let status, let body):
            response = .json(status: status, text: body)
        case .failTimes(let times, let status):
            self.mode = times > 1 ? .failTimes(times - 1, status: status) : .accept
            response = .text(status: status, "failing on purpose")
        }
        receipt.status = response.status
        receipts.append(receipt)
        condition.unlock()
        return response
    }
}
