import Foundation
import HTTPServing

/// The status page on the `listen:` server: `GET /` (HTML, readable without JavaScript), its
/// script and style sheet (`/assets/…`, in the binary), and the JSON API it refreshes from
/// (`/api/v1/requests`, `/sources`, `/deliveries`, `/events?since=`). It answers from the
/// ``StatusBoard`` and the metrics' outbox counts alone: a view never waits for the ledger
/// or reads the state file.
///
/// Every response carries a strict Content-Security-Policy (scripts and styles from this
/// server only, nothing inline), `nosniff`, `no-referrer` and `no-store`; every text from
/// outside is escaped (``HTMLText``) in the page and built with `textContent` by the script.
public struct StatusPage: Sendable {
    /// Who may see the page and its API.
    public enum Access: Sendable, Equatable {
        /// Anyone who can connect (a loopback address without `auth:`: this machine's users).
        /// No answer buttons; requests that came through a proxy are refused.
        case open
        /// Whoever holds the token (`auth:`): a bearer token for the API, a sign-in and a
        /// session cookie for the page, which then has answer buttons.
        case token(StatusAuth)
        /// Nobody: 403 (an address other machines can reach without `auth:`, which the config refuses).
        case refused
    }

    /// The most events `/api/v1/events` answers with.
    public static let maxEvents = 100
    /// The most bytes of one outside text (a reason, an error, a message) the page shows.
    public static let textLimit = 500

    /// The events the page shows above the requests (its script shows as many).
    public static let pageEvents = 5

    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; "
        + "form-action 'self'; frame-ancestors 'none'"

    let metrics: CancelWatchMetrics
    let clock: WatchClock
    /// Whether the server listens on a loopback address.
    let loopback: Bool

    /// A page for a server on a loopback address or not; its access follows the `auth:` of
    /// the running pipeline's config (``StatusBoard/Configured/auth``), so a reload that
    /// changes the token takes effect at once.
    public init(metrics: CancelWatchMetrics, clock: WatchClock, loopback: Bool) {
        self.metrics = metrics
        self.clock = clock
        self.loopback = loopback
    }

    /// With a token, by token; without, open on a loopback address and refused on any other.
    public static func access(loopback: Bool, auth: StatusAuth?) -> Access {
        if let auth { return .token(auth) }
        return loopback ? .open : .refused
    }

    /// Whether `path` is the page's (`/`, `/assets/…`, `/api/…`, `/login`, `/logout`, `/answer`).
    public static func serves(_ path: String) -> Bool {
        path == "/" || path.hasPrefix("/assets/") || path == "/api" || path.hasPrefix("/api/") || path == "/login"
            || path == "/logout" || path == "/answer"
    }

    /// The answer to a request for one of the page's paths (``serves(_:)``).
    public func respond(to request: ServerRequest) -> ServerResponse {
        switch Self.access(loopback: loopback, auth: metrics.board.configured.auth) {
        case .refused:
            return secured(
                .text(
                    status: 403,
                    "forbidden: the status page and its API are served to other machines only with a token "
                        + "(auth: {token: \"${STATUS_TOKEN}\"} in the config), or on a loopback listen: address "
                        + "(e.g. 127.0.0.1:9464); this address serves /metrics and /healthz\n"))
        case .token(let auth):
            return secured(respondWithToken(to: request, auth: auth))
        case .open:
            // Open means this machine only: a proxy in front would hand it to whoever reaches the proxy.
            if let header = Self.proxyHeaders.first(where: { request.header($0) != nil }) {
                return secured(
                    .text(
                        status: 403,
                        "forbidden: this request came through a proxy (\(header)); without a token the status page is "
                            + "served to this machine only. Set auth: {token: \"${STATUS_TOKEN}\"} to serve it through one\n"))
            }
            // A page of another site whose name it points at 127.0.0.1 (DNS rebinding) sends its own name.
            guard Self.namesLoopback(host: request.header("Host")) else {
                return secured(
                    .text(status: 403, "forbidden: the Host header must name this machine (127.0.0.1, localhost or [::1])\n"))
            }
            guard request.method == "GET" || request.method == "HEAD" else { return secured(Self.methodNotAllowed("GET, HEAD")) }
            return secured(view(request, session: nil))
        }
    }

    static func methodNotAllowed(_ allowed: String) -> ServerResponse {
        .text(status: 405, "method not allowed: \(allowed)\n", headers: ["Allow": allowed])
    }

    /// An outside text as the page shows it: cut to ``textLimit`` bytes, then escaped (a
    /// marketplace's reason may be megabytes, and a thousand rows of them would make every
    /// view that big).
    static func shown(_ text: String) -> String { HTMLText.escaped(TextCut.cut(text, limit: textLimit)) }

    /// Headers a proxy adds: a request carrying one did not come from this machine's own browser.
    static let proxyHeaders = ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP", "Via"]

    /// What a GET of the page, an asset or the API answers; `session` signed in (answer links shown).
    func view(_ request: ServerRequest, session: StatusAuth.Session?) -> ServerResponse {
        let now = clock.now()
        switch request.path {
        case "/": return ServerResponse(status: 200, headers: ["Content-Type": "text/html; charset=utf-8"], body: Data(html(now: now, session: session).utf8))
        case "/assets/status.js": return ServerResponse(status: 200, headers: ["Content-Type": "text/javascript; charset=utf-8"], body: Data(StatusAssets.script.utf8))
        case "/assets/status.css": return ServerResponse(status: 200, headers: ["Content-Type": "text/css; charset=utf-8"], body: Data(StatusAssets.styleSheet.utf8))
        case "/api/v1/requests": return .json(requestsJSON(now: now).serializedData())
        case "/api/v1/sources": return .json(sourcesJSON(now: now).serializedData())
        case "/api/v1/deliveries": return .json(deliveriesJSON().serializedData())
        case "/api/v1/events":
            var since: StatusBoard.EventsSince?
            if let text = request.queryValue("since") {
                guard let parsed = StatusBoard.EventsSince(parsing: text) else {
                    let error: JSONValue = [
                        "error": .string(
                            "bad parameter since: give an event cursor (a whole number, the `cursor` of an earlier answer) "
                                + "or an RFC 3339 time such as 2026-11-23T20:00:00Z")
                    ]
                    return .json(status: 400, error.serializedData())
                }
                since = parsed
            }
            return .json(eventsJSON(since: since).serializedData())
        default:
            return .text(status: 404, "not found: try /, /api/v1/requests, /api/v1/sources, /api/v1/deliveries or /api/v1/events\n")
        }
    }

    /// Whether a `Host` header names a loopback address (`127.0.0.1:9464`, `localhost`,
    /// `[::1]:9464`), as a browser sends it for a page it loaded from this server.
    static func namesLoopback(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return false }
        var name = Substring(host)
        var port: Substring = ""
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            port = name[name.index(after: close)...]
            name = name[name.index(after: name.startIndex)..<close]
        } else if let colon = name.lastIndex(of: ":") {
            port = name[colon...]
            name = name[..<colon]
        }
        // Nothing after the name but a port: `[::1]x` or `localhost:abc` is no host a browser sends.
        if !port.isEmpty {
            let digits = port.dropFirst()
            guard port.first == ":", !digits.isEmpty, digits.count <= 5, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return false }
        }
        return ListenAddress(host: name.lowercased(), port: 0).isLoopback
    }

    /// `response` with the page's security headers.
    func secured(_ response: ServerResponse) -> ServerResponse {
        var response = response
        response.headers["Content-Security-Policy"] = Self.contentSecurityPolicy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response
    }

    // MARK: - The JSON API

    func requestsJSON(now: Date) -> JSONValue {
        let board = metrics.board
        let pending = board.pending
        let formatter = Self.localTime(board.configured.timeZone)
        let rows: [JSONValue] = pending.requests.map { item in
            guard case .object(var row) = item.request.statusJSON(now: now) else { return .null }
            // The marketplace's texts as the page shows them (its script builds rows from
            // these): cut, as a reason may be megabytes. The id stays whole: answers name it.
            for field in ["order", "reason", "initiator", "logistics", "raw_state"] {
                if case .string(let text)? = row[field] { row[field] = .string(TextCut.cut(text, limit: Self.textLimit)) }
            }
            row["deadline_local"] = .string(formatter.string(from: item.request.deadline))
            row["alerts"] = .array(
                item.alerts.map { alert in
                    [
                        "rule": .string(alert.rule), "firings": .integer(Int64(alert.firings)), "repeats": .integer(Int64(alert.repeats)),
                        "active": .bool(alert.active), "last_fired_at": alert.lastFiredAt.map { .string(Timestamp.format($0)) } ?? .null,
                    ]
                })
            return .object(row)
        }
        return [
            "generated_at": .string(Timestamp.format(now)), "updated_at": pending.at.map { .string(Timestamp.format($0)) } ?? .null,
            "time_zone": .string(board.configured.timeZone.identifier), "pending": .integer(Int64(pending.total)),
            "truncated": .bool(pending.total > rows.count), "requests": .array(rows),
        ]
    }

    func sourcesJSON(now: Date) -> JSONValue {
        let rows: [JSONValue] = sources().map { name, health in
            [
                "source": .string(name), "marketplace": health.map { .string($0.marketplace.rawValue) } ?? .null,
                "polled": .bool(health?.lastPollAt != nil),
                "last_poll_at": health?.lastPollAt.map { .string(Timestamp.format($0)) } ?? .null,
                "last_success_at": health?.lastSuccessAt.map { .string(Timestamp.format($0)) } ?? .null,
                "consecutive_failures": .integer(Int64(health?.consecutiveFailures ?? 0)),
                "last_error": health?.lastError.map { .string($0) } ?? .null, "down": .bool(health?.down ?? false),
            ]
        }
        return ["generated_at": .string(Timestamp.format(now)), "sources": .array(rows)]
    }

    func deliveriesJSON() -> JSONValue {
        let counts = metrics.outboxCounts()
        let configured = metrics.board.configured.sinks
        let sinks: [JSONValue] = counts.sinks(configured: configured).map { name in
            func count(_ status: String) -> Int64 { Int64(counts.count(sink: name, status: status)) }
            var byStatus: [String: JSONValue] = [:]
            for entry in counts where entry.sink == name { byStatus[entry.status] = .integer(Int64(entry.count)) }
            return [
                "sink": .string(name), "configured": .bool(configured.contains(name)), "pending": .integer(count("pending")),
                "dead": .integer(count("dead")), "delivered": .integer(count("delivered")), "counts": .object(byStatus),
            ]
        }
        let letters: [JSONValue] = metrics.board.deadLetters.map { letter in
            [
                "sink": .string(letter.sink), "event_id": .string(letter.eventID),
                "event": letter.event.map { .string($0.kind.rawValue) } ?? .null,
                "rule": letter.event.map { .string($0.rule) } ?? .null, "source": letter.event.map { .string($0.source) } ?? .null,
                "order": letter.event?.request.map { .string($0.order) } ?? .null, "attempts": .integer(Int64(letter.attempts)),
                "at": letter.at.map { .string(Timestamp.format($0)) } ?? .null,
                "error": .string(TextCut.cut(letter.error, limit: TextCut.errorTextLimit)),
            ]
        }
        let dead = counts.dead
        return ["sinks": .array(sinks), "dead_letters": .array(letters), "dead_total": .integer(Int64(dead))]
    }

    func eventsJSON(since: StatusBoard.EventsSince?) -> JSONValue {
        let page = metrics.board.events(since: since, limit: Self.maxEvents)
        return [
            "cursor": .integer(Int64(page.cursor)), "truncated": .bool(page.truncated), "more": .bool(page.more),
            "reset": .bool(page.reset),
            "events": .array(
                page.events.map { event in
                    [
                        "cursor": .integer(Int64(event.cursor)), "id": .string(event.id), "event": .string(event.kind.rawValue),
                        "rule": .string(event.rule), "severity": .string(event.severity.rawValue), "source": .string(event.source),
                        "order": event.order.map { .string($0) } ?? .null, "occurred_at": .string(Timestamp.format(event.occurredAt)),
                        "message": .string(event.message),
                    ]
                }),
        ]
    }

    /// The configured sources in order with their health, then any other the ledger reports.
    private func sources() -> [(String, SourceHealth?)] {
        let board = metrics.board
        let health = board.pending.health
        let known = Dictionary(health.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        var names = board.configured.sources
        for item in health where !names.contains(item.source) { names.append(item.source) }
        return names.map { ($0, known[$0]) }
    }


    /// `2026-11-23 23:00:00` in `timeZone` (what `status` shows too).
    public static func localTime(_ timeZone: TimeZone) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter
    }

    // MARK: - The page

    /// How near a deadline is: the row's class (`band-…`), as the script recomputes it.
    static func band(_ remaining: TimeInterval) -> String {
        switch remaining {
        case ..<0: "past"
        case ..<1800: "soon"
        case ..<10800: "hours"
        case ..<86400: "day"
        default: "later"
        }
    }

    func html(now: Date, session: StatusAuth.Session? = nil) -> String {
        let board = metrics.board
        let configured = board.configured
        let pending = board.pending
        let formatter = Self.localTime(configured.timeZone)
        // Answer links for a signed-in user, when the pipeline can answer.
        let answers = session != nil && configured.answerer != nil
        let e = Self.shown
        func time(_ date: Date?) -> String { date.map { e(formatter.string(from: $0)) } ?? "never" }
        func ago(_ date: Date?) -> String { date.map { "\(DurationText.format(now.timeIntervalSince($0))) ago" } ?? "" }

        var out = Self.head(title: "cancelwatch: \(pending.total) pending", script: true) + """
            <body data-now="\(Timestamp.format(now))" data-time-zone="\(e(configured.timeZone.identifier))"\(answers ? " data-answers=\"on\"" : "")>
            <header><h1>cancelwatch</h1><p>Times in \(e(configured.timeZone.identifier)); shown \(e(formatter.string(from: now))).</p>

            """
        if let session {
            out += "<form method=\"post\" action=\"/logout\" class=\"signed-in\">Signed in as \(e(session.name)). "
            out += "<input type=\"hidden\" name=\"csrf\" value=\"\(e(session.csrf))\"><button type=\"submit\">Sign out</button></form>\n"
        }
        out += "</header>\n"

        out += "<section id=\"sources\"><h2>Sources</h2>\n<table>\n<thead><tr><th>Source</th><th>State</th><th>Last success</th><th>Last poll</th><th>Failures in a row</th><th>Last error</th></tr></thead>\n<tbody>\n"
        for (name, health) in sources() {
            let state: String
            if let health, health.down {
                state = "down"
            } else if let health, health.consecutiveFailures > 0 {
                state = "failing"
            } else if health?.lastPollAt == nil {
                state = "not polled yet"
            } else {
                state = "ok"
            }
            out += "<tr class=\"source-\(state == "not polled yet" ? "waiting" : state)\"><td>\(e(name))</td><td>\(state)</td>"
            out += "<td>\(time(health?.lastSuccessAt)) \(ago(health?.lastSuccessAt))</td><td>\(time(health?.lastPollAt))</td>"
            out += "<td>\(health?.consecutiveFailures ?? 0)</td><td>\(e(health?.lastError ?? ""))</td></tr>\n"
        }
        out += "</tbody>\n</table></section>\n"

        let counts = metrics.outboxCounts()
        out += "<section id=\"deliveries\"><h2>Deliveries</h2>\n<table>\n<thead><tr><th>Sink</th><th>Waiting</th><th>Dead letters</th></tr></thead>\n<tbody>\n"
        for name in counts.sinks(configured: configured.sinks) {
            func count(_ status: String) -> Int { counts.count(sink: name, status: status) }
            let gone = configured.sinks.contains(name) ? "" : " (no longer configured)"
            out += "<tr class=\"\(count("dead") > 0 ? "sink-dead" : "sink-ok")\"><td>\(e(name))\(gone)</td><td>\(count("pending"))</td><td>\(count("dead"))</td></tr>\n"
        }
        out += "</tbody>\n</table>\n"
        let letters = board.deadLetters
        out += "<h3>Latest dead letters</h3>\n<ul class=\"dead-letters\">\n"
        for letter in letters {
            let what = letter.event.map { event in
                "\(event.kind.rawValue)\(event.rule.isEmpty ? "" : " \(event.rule)") \(event.request.map { "\($0.source) \($0.order)" } ?? event.source)"
            } ?? "event \(letter.eventID)"
            out += "<li>\(time(letter.at)) \(e(letter.sink)) \(e(what)), \(letter.attempts) attempt\(letter.attempts == 1 ? "" : "s"): "
            out += "\(e(letter.error))</li>\n"
        }
        if letters.isEmpty { out += "<li>None.</li>\n" }
        out += "</ul>\n</section>\n"

        let events = board.events(since: nil, limit: Self.pageEvents).events
        out += "<section id=\"events\"><h2>Last events</h2>\n<ol class=\"events\">\n"
        for event in events {
            let about = event.order.map { "\(event.source) \($0)" } ?? event.source
            out += "<li class=\"severity-\(event.severity.rawValue)\">\(time(event.occurredAt)) \(event.kind.rawValue)"
            out += "\(event.rule.isEmpty ? "" : " \(e(event.rule))") \(e(about)): \(e(event.message))</li>\n"
        }
        if events.isEmpty { out += "<li>No events yet.</li>\n" }
        out += "</ol></section>\n"

        out += "<section id=\"requests\"><h2>Pending requests: \(pending.total)</h2>\n"
        out += "<table>\n<thead><tr><th>Time left</th><th>Deadline (\(e(configured.timeZone.identifier)))</th><th>Source</th><th>Marketplace</th><th>Order</th><th>Reason</th><th>Initiator</th><th>Rules fired</th>\(answers ? "<th>Answer</th>" : "")</tr></thead>\n<tbody>\n"
        for item in pending.requests {
            let request = item.request
            let left = request.deadline.timeIntervalSince(now)
            let rules = item.alerts.map { e($0.rule) }.joined(separator: ", ")
            out += "<tr class=\"band-\(Self.band(left))\" data-deadline=\"\(e(Timestamp.format(request.deadline)))\">"
            out += "<td class=\"left\">\(e(DurationText.format(left)))</td><td>\(e(formatter.string(from: request.deadline)))</td>"
            out += "<td>\(e(request.source))</td><td>\(e(request.marketplace.rawValue))</td><td>\(e(request.order))</td>"
            out += "<td>\(e(request.reason))</td><td>\(e(request.initiator))</td><td>\(rules)</td>"
            if answers {
                out += "<td class=\"answer\">"
                for decision in Decision.allCases {
                    let link = Self.answerLink(source: request.source, id: request.id, decision: decision)
                    out += "<a class=\"\(decision.rawValue)\" href=\"\(e(link))\">\(decision == .approve ? "Approve…" : "Refuse…")</a> "
                }
                out += "</td>"
            }
            out += "</tr>\n"
        }
        out += "</tbody>\n</table>\n"
        out += "<p class=\"none\">\(pending.requests.isEmpty ? "No pending cancellation requests." : "")</p>\n"
        let cut = pending.total > pending.requests.count
        out += "<p class=\"truncated\">\(cut ? "Showing the \(pending.requests.count) nearest deadlines of \(pending.total)." : "")</p>\n"
        out += "</section>\n</body>\n</html>\n"
        return out
    }
}

extension StatusPage {
    /// A page's start, up to its `<body>`: `title` is escaped; `script` adds the page's script.
    static func head(title: String, script: Bool) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escaped(title))</title>
        <link rel="stylesheet" href="/assets/status.css">
        \(script ? "<script src=\"/assets/status.js\" defer></script>\n" : "")</head>

        """
    }

    /// `/answer?source=…&id=…&decision=…`, each value percent-encoded: the page that asks to confirm.
    static func answerLink(source: String, id: String, decision: Decision) -> String {
        "/answer?source=\(PercentEncoding.encoded(source))&id=\(PercentEncoding.encoded(id))&decision=\(decision.rawValue)"
    }
}

extension CancellationRequest {
    /// The request as `status --format json` prints it and `/api/v1/requests` lists it.
    public func statusJSON(now: Date) -> JSONValue {
        [
            "source": .string(source), "marketplace": .string(marketplace.rawValue), "id": .string(id), "order": .string(order),
            "state": .string(state.rawValue), "raw_state": .string(rawState), "initiator": .string(initiator),
            "reason": .string(reason), "logistics": .string(logistics),
            "created_at": createdAt.map { .string(Timestamp.format($0)) } ?? .null, "deadline": .string(Timestamp.format(deadline)),
            "remaining_seconds": .integer(Int64(clampingFloor: remaining(at: now))),
        ]
    }
}

extension ListenAddress {
    /// Whether only this machine can connect: 127.0.0.0/8, `::1` (or `localhost`).
    public var isLoopback: Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
    }
}
