import Foundation
import HTTPServing
import Synchronization

/// The status page with a token (`auth:`): sign-in, sessions, CSRF, and answering requests
/// through the running pipeline's ``Answerer`` (the path the command line and Telegram take).
///
/// - `GET /login`, `POST /login` (`token`, `name`): a signed session cookie (HttpOnly,
///   SameSite=Strict; Secure behind a proxy that says `X-Forwarded-Proto: https`).
/// - `POST /logout` (`csrf`): the cookie is cleared, and this process refuses the session from then on.
/// - Everything else but `/assets/…` needs the session cookie or `Authorization: Bearer
///   <token>`: without, the page answers 401 with the sign-in form, the API 401 in JSON.
/// - `GET /answer?source=…&id=…`: the request as its marketplace has it now, with Approve and
///   Refuse; `POST /answer` (`csrf`, `source`, `id`, `decision`, `comment`) sends the answer.
/// - `POST /api/v1/answers` (JSON `{source, id, decision, comment}`): the same for scripts,
///   with the bearer token, or a session and its `X-CSRF-Token`.
///
/// Every POST, and `GET /answer` (it asks the marketplace), from another site's page is refused
/// by its `Sec-Fetch-Site` (or, without one, its `Origin`), besides the CSRF token forms carry.
extension StatusPage {
    var throttle: LoginThrottle { metrics.board.guards.throttle }
    var signedOut: SignedOutSessions { metrics.board.guards.signedOut }
    var answering: AnswerSlots { metrics.board.guards.answering }

    /// The longest source name or request id taken from a form or query.
    static let fieldLimit = 256

    /// What a request answers with a token configured (before the page's security headers).
    func respondWithToken(to request: ServerRequest, auth: StatusAuth) -> ServerResponse {
        let now = clock.now()
        let path = request.path
        let method = request.method
        if path.hasPrefix("/assets/") {
            guard method == "GET" || method == "HEAD" else { return Self.methodNotAllowed("GET, HEAD") }
            return view(request, session: nil)
        }
        // Every POST, and GET /answer, which asks the marketplace: none may come from another site's page.
        if method == "POST" || path == "/answer", let refusal = Self.crossSiteRefusal(request) { return refusal }
        switch (method, path) {
        case ("GET", "/login"), ("HEAD", "/login"):
            return loginPage(status: 200, problem: nil)
        case ("POST", "/login"):
            return login(request, auth: auth, now: now)
        case (_, "/login"):
            return Self.methodNotAllowed("GET, HEAD, POST")
        default:
            break
        }
        let session = auth.session(cookieHeader: request.header("Cookie"), now: now).flatMap { signedOut.contains($0) ? nil : $0 }
        var bearer = false
        // A bearer token is read only without a session, and a wrong one counts as a wrong sign-in
        // does; another scheme (a proxy's Basic credentials) is not the page's business.
        if session == nil, let given = request.header("Authorization").flatMap(StatusAuth.bearerToken) {
            let client = LoginThrottle.client(request.remoteAddress)
            if let until = throttle.blockedUntil(client: client, now: now) { return tooManyWrongTokens(until: until, now: now, page: false) }
            bearer = auth.accepts(token: given)
            if !bearer { throttle.recordFailure(client: client, now: now) }
        }
        guard session != nil || bearer else {
            if path == "/api" || path.hasPrefix("/api/") {
                let error: JSONValue = [
                    "error": .string("unauthorized: send the config's auth token as `Authorization: Bearer <token>`, or sign in on /login")
                ]
                return .json(status: 401, error.serializedData(), headers: ["WWW-Authenticate": "Bearer realm=\"cancelwatch\""])
            }
            return loginPage(status: 401, problem: nil)
        }
        switch (method, path) {
        case ("POST", "/logout"):
            guard let session, auth.acceptsCSRF(Self.form(request)["csrf"], for: session) else { return csrfRefusal() }
            signedOut.add(session, now: now)
            var headers: HTTPHeaderFields = ["Location": "/login"]
            headers.add("Set-Cookie", "\(StatusAuth.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
            return ServerResponse(status: 303, headers: headers)
        case ("GET", "/answer"):
            guard let session else { return signInToAnswer() }
            return answerForm(request, session: session)
        case ("POST", "/answer"):
            guard let session else { return signInToAnswer() }
            return answerFromForm(request, session: session, auth: auth)
        case ("POST", "/api/v1/answers"):
            return answerFromAPI(request, session: session, bearer: bearer, auth: auth)
        case ("GET", _), ("HEAD", _):
            return view(request, session: session)
        default:
            return Self.methodNotAllowed("GET, HEAD")
        }
    }

    // MARK: - Signing in

    private func login(_ request: ServerRequest, auth: StatusAuth, now: Date) -> ServerResponse {
        let client = LoginThrottle.client(request.remoteAddress)
        if let until = throttle.blockedUntil(client: client, now: now) { return tooManyWrongTokens(until: until, now: now, page: true) }
        let fields = Self.form(request)
        guard auth.accepts(token: fields["token"] ?? "") else {
            throttle.recordFailure(client: client, now: now)
            return loginPage(status: 401, problem: "That is not the token.")
        }
        let name = (fields["name"] ?? "").trimmingCharacters(in: .whitespaces)
        guard StatusAuth.isValidName(name) else {
            return loginPage(
                status: 400,
                problem: "Give your name (letters, digits, . _ - @; at most \(StatusAuth.nameLimit); not api): the answer journal names you by it.")
        }
        var cookie = "\(StatusAuth.cookieName)=\(auth.newSessionCookie(name: name, now: now)); Path=/; Max-Age=\(Int(StatusAuth.sessionLifetime)); HttpOnly; SameSite=Strict"
        if request.header("X-Forwarded-Proto")?.lowercased() == "https" { cookie += "; Secure" }
        var headers: HTTPHeaderFields = ["Location": "/"]
        headers.add("Set-Cookie", cookie)
        return ServerResponse(status: 303, headers: headers)
    }

    /// 429 with `Retry-After`: the sign-in page, or JSON for the API.
    private func tooManyWrongTokens(until: Date, now: Date, page: Bool) -> ServerResponse {
        let wait = max(1, Int(min(until.timeIntervalSince(now), LoginThrottle.window).rounded(.up)))
        var response =
            page
            ? loginPage(status: 429, problem: "Too many wrong tokens from this address; try again in \(wait) s.")
            : .json(status: 429, (["error": .string("too many wrong tokens from this address; try again in \(wait) s")] as JSONValue).serializedData())
        response.headers["Retry-After"] = "\(wait)"
        return response
    }

    func loginPage(status: Int, problem: String?) -> ServerResponse {
        var body = "<main class=\"login\">\n<h1>cancelwatch</h1>\n"
        body += "<p>Sign in with the status page's token (the config's <code>auth: token</code>).</p>\n"
        if let problem { body += "<p class=\"problem\" role=\"alert\">\(HTMLText.escaped(problem))</p>\n" }
        body += """
            <form method="post" action="/login" id="login">
            <label>Token <input type="password" name="token" autocomplete="current-password" required></label>
            <label>Your name <input name="name" autocomplete="username" required maxlength="\(StatusAuth.nameLimit)" pattern="[A-Za-z0-9._@\\-]+"></label>
            <button type="submit">Sign in</button>
            </form>
            </main>

            """
        return page(status: status, title: "cancelwatch: sign in", body: body)
    }

    // MARK: - Answering

    private func answerForm(_ request: ServerRequest, session: StatusAuth.Session) -> ServerResponse {
        guard let answerer = metrics.board.configured.answerer else { return answeringUnavailable() }
        guard let source = Self.field(request.queryValue("source")), let id = Self.field(request.queryValue("id")) else {
            return page(status: 400, title: "cancelwatch: answer", body: "<main><p class=\"problem\">Name the request: /answer?source=…&amp;id=…</p>\(backLink)</main>\n")
        }
        let e = Self.shown
        let prepared: Result<CancellationRequest, AnswerStop>
        switch answering.run(within: answering.lookupWait, { await answerer.prepare(source: source, id: id) }) {
        case .busy: return answeringBusy()
        case .late:
            return page(
                status: 504, title: "cancelwatch: answer",
                body: "<main><p class=\"problem\">The marketplace did not tell the request's state within \(Int(answering.lookupWait)) s; nothing was sent. Try again later.</p>\(backLink)</main>\n")
        case .done(let result): prepared = result
        }
        switch prepared {
        case .failure(let stop):
            let line: String
            if case .unknownSource = stop { line = stop.reason } else { line = "\(source) request \(id): cannot be answered: \(stop.reason)" }
            return page(
                status: 409, title: "cancelwatch: answer",
                body: "<main><p class=\"problem\">\(e(line))</p>\(backLink)</main>\n")
        case .success(let current):
            let now = clock.now()
            let formatter = Self.localTime(metrics.board.configured.timeZone)
            let hidden = """
                <input type="hidden" name="csrf" value="\(e(session.csrf))"><input type="hidden" name="source" value="\(e(source))"><input type="hidden" name="id" value="\(e(id))">
                """
            var body = "<main class=\"answer\">\n<h1>Answer a cancellation request</h1>\n<dl>\n"
            for (term, value) in [
                ("Source", current.source), ("Marketplace", current.marketplace.rawValue), ("Order", current.order),
                ("Request", current.id), ("Reason", current.reason), ("Initiator", current.initiator),
                (
                    "Deadline",
                    "\(formatter.string(from: current.deadline)) \(formatter.timeZone.identifier) "
                        + "(\(DurationText.format(current.deadline.timeIntervalSince(now))) left)"
                ),
            ] {
                body += "<dt>\(term)</dt><dd>\(e(value))</dd>\n"
            }
            body += "</dl>\n<p>The marketplace reports it pending now. An answer is sent once and cannot be taken back.</p>\n"
            // The row's link chose one; without a choice, both.
            let chosen = request.queryValue("decision").flatMap(Decision.init(rawValue:))
            if chosen != .refuse {
                body += "<form method=\"post\" action=\"/answer\" class=\"approve\">\(hidden)<input type=\"hidden\" name=\"decision\" value=\"approve\">"
                body += "<button type=\"submit\">Approve: cancel the order and refund the buyer</button></form>\n"
            }
            if chosen != .approve {
                body += "<form method=\"post\" action=\"/answer\" class=\"refuse\">\(hidden)<input type=\"hidden\" name=\"decision\" value=\"refuse\">"
                body += "<label>Reason for the buyer <input name=\"comment\" required maxlength=\"\(Answer.commentLimit)\"></label> "
                body += "<button type=\"submit\">Refuse: the order stands</button></form>\n"
            }
            body += "\(backLink)</main>\n"
            return page(status: 200, title: "cancelwatch: answer \(TextCut.cut(current.order, limit: Self.textLimit))", body: body)
        }
    }

    private func answerFromForm(_ request: ServerRequest, session: StatusAuth.Session, auth: StatusAuth) -> ServerResponse {
        let fields = Self.form(request)
        guard auth.acceptsCSRF(fields["csrf"], for: session) else { return csrfRefusal() }
        let outcome = answer(
            source: fields["source"], id: fields["id"], decision: fields["decision"], comment: fields["comment"] ?? "",
            actor: AnswerActor(.web, session.name))
        let (status, line, done): (Int, String, Bool)
        switch outcome {
        case .busy: return answeringBusy()
        case .invalid(let code, let message): (status, line, done) = (code, message, false)
        case .late: (status, line, done) = (202, lateText, false)
        case .done(let result): (status, line, done) = (Self.status(of: result), result.line, result.accepted)
        }
        return page(
            status: status, title: "cancelwatch: answer",
            body: "<main><p class=\"\(done ? "done" : "problem")\" role=\"status\">\(Self.shown(line))</p>\(backLink)</main>\n")
    }

    private func answerFromAPI(_ request: ServerRequest, session: StatusAuth.Session?, bearer: Bool, auth: StatusAuth) -> ServerResponse {
        let actor: AnswerActor
        if bearer {
            actor = AnswerActor(.web, "api")
        } else if let session, auth.acceptsCSRF(request.header("X-CSRF-Token"), for: session) {
            actor = AnswerActor(.web, session.name)
        } else {
            return .json(status: 403, (["error": "forbidden: a signed-in page sends its CSRF token as X-CSRF-Token"] as JSONValue).serializedData())
        }
        guard case .object(let body)? = try? JSONParser.parse(request.body) else {
            return .json(
                status: 400,
                (["error": "the body must be a JSON object: {\"source\": …, \"id\": …, \"decision\": \"approve\" or \"refuse\", \"comment\": …}"]
                    as JSONValue).serializedData())
        }
        let outcome = answer(
            source: body["source"]?.stringValue, id: body["id"]?.stringValue, decision: body["decision"]?.stringValue,
            comment: body["comment"]?.stringValue ?? "", actor: actor)
        switch outcome {
        case .busy:
            return .json(status: 503, (["error": .string(Self.busyText)] as JSONValue).serializedData(), headers: ["Retry-After": "5"])
        case .invalid(let status, let message):
            return .json(status: status, (["error": .string(message)] as JSONValue).serializedData())
        case .late(let source, let id, let decision):
            let answer: JSONValue = [
                "source": .string(source), "id": .string(id), "decision": .string(decision.rawValue), "outcome": "sending",
                "refusal": .null, "accepted": false, "message": .string(lateText),
            ]
            return .json(status: 202, answer.serializedData())
        case .done(let result):
            let kind: String
            let detail: JSONValue
            switch result.kind {
            case .sent(.accepted): (kind, detail) = ("accepted", .null)
            case .sent(.refused(let refusal)): (kind, detail) = ("refused", .string(refusal.kind.rawValue))
            case .sent(.unknown): (kind, detail) = ("unknown", .null)
            case .notSent: (kind, detail) = ("not_sent", .null)
            }
            let answer: JSONValue = [
                "source": .string(result.source), "id": .string(result.id), "decision": .string(result.answer.decision.rawValue),
                "outcome": .string(kind), "refusal": detail, "accepted": .bool(result.accepted),
                "message": .string(TextCut.cut(result.line, limit: TextCut.errorTextLimit)),
            ]
            return .json(status: Self.status(of: result), answer.serializedData())
        }
    }

    /// What an answer from the page came to.
    enum PageAnswer {
        /// The answerer's result.
        case done(AnswerResult)
        /// Every slot was taken: nothing was started.
        case busy
        /// Still waiting for the marketplace: it goes on, and the journal records its outcome.
        case late(source: String, id: String, decision: Decision)
        /// Nothing was sent: the input (400) or the watcher (503) could not take it.
        case invalid(status: Int, message: String)
    }

    /// Checks the fields and sends the answer through the pipeline's ``Answerer``.
    private func answer(source: String?, id: String?, decision: String?, comment: String, actor: AnswerActor) -> PageAnswer {
        guard let answerer = metrics.board.configured.answerer else {
            return .invalid(status: 503, message: "answering is not available yet: the watcher is starting")
        }
        guard let source = Self.field(source), let id = Self.field(id) else {
            return .invalid(status: 400, message: "name the request: its source and id (at most \(Self.fieldLimit) bytes each)")
        }
        guard let decision = decision.flatMap(Decision.init(rawValue:)) else {
            return .invalid(status: 400, message: "the decision must be approve or refuse")
        }
        let answer: Answer
        do {
            answer = try Answer(decision, comment: comment)
        } catch {
            return .invalid(status: 400, message: error.description)
        }
        switch answering.run(within: answering.answerWait, { await answerer.answer(source: source, id: id, with: answer, by: actor) }) {
        case .busy: return .busy
        case .late: return .late(source: source, id: id, decision: decision)
        case .done(let result): return .done(result)
        }
    }

    var lateText: String {
        "the answer is being sent and the marketplace has not replied within \(Int(answering.answerWait)) s; it is never sent twice, "
            + "and the journal records its outcome: the page lists the request until the marketplace's next listing shows it decided"
    }

    static let busyText = "other answers from the page are still waiting for the marketplace; try again in a moment"

    private func answeringBusy() -> ServerResponse {
        var response = page(
            status: 503, title: "cancelwatch: answer", body: "<main><p class=\"problem\">\(Self.shown(Self.busyText)).</p>\(backLink)</main>\n")
        response.headers["Retry-After"] = "5"
        return response
    }

    /// 200 taken; 409 not sent (nothing reached the marketplace); 502 refused by it; 202 sent, outcome not known.
    static func status(of result: AnswerResult) -> Int {
        switch result.kind {
        case .sent(.accepted): 200
        case .sent(.refused): 502
        case .sent(.unknown): 202
        case .notSent: 409
        }
    }


    private func answeringUnavailable() -> ServerResponse {
        page(status: 503, title: "cancelwatch: answer", body: "<main><p class=\"problem\">Answering is not available yet: the watcher is starting.</p>\(backLink)</main>\n")
    }

    private func signInToAnswer() -> ServerResponse {
        .text(status: 403, "forbidden: sign in on /login to answer from the page; scripts POST /api/v1/answers with the bearer token\n")
    }

    private func csrfRefusal() -> ServerResponse {
        .text(status: 403, "forbidden: the form's CSRF token is missing or not this session's; reload the page and try again\n")
    }


    private var backLink: String { "<p><a href=\"/\">Back to the status page</a></p>" }

    /// A small page in the status page's style.
    func page(status: Int, title: String, body: String) -> ServerResponse {
        let html = Self.head(title: title, script: false) + "<body>\n\(body)</body>\n</html>\n"
        return ServerResponse(status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: Data(html.utf8))
    }

    // MARK: - Requests from other sites

    /// A POST another site's page sent: its `Sec-Fetch-Site` is not this origin, or (from a
    /// browser that sends no `Sec-Fetch-Site`) its `Origin` names another host than `Host`.
    /// `Origin: null` says nothing: a browser sends it for its own form under the page's
    /// `Referrer-Policy: no-referrer`, with `Sec-Fetch-Site: same-origin`.
    static func crossSiteRefusal(_ request: ServerRequest) -> ServerResponse? {
        if let site = request.header("Sec-Fetch-Site")?.lowercased() {
            guard site == "same-origin" || site == "none" else {
                return .text(status: 403, "forbidden: a form of another site (Sec-Fetch-Site: \(site == "same-site" ? site : "cross-site"))\n")
            }
            return nil
        }
        if let origin = request.header("Origin"), origin != "null" {
            let host = request.header("Host") ?? ""
            let own = ["http://" + host, "https://" + host].map { $0.lowercased() }
            guard !host.isEmpty, own.contains(origin.lowercased()) else {
                return .text(status: 403, "forbidden: a form of another origin (Origin does not name this server's Host)\n")
            }
        }
        return nil
    }

    // MARK: - Reading input

    /// The fields of an `application/x-www-form-urlencoded` body (the first of each name).
    static func form(_ request: ServerRequest) -> [String: String] {
        var fields: [String: String] = [:]
        for item in request.formFields where fields[item.name] == nil {
            fields[item.name] = item.value
        }
        return fields
    }

    /// A source name or request id from outside: non-empty, at most ``fieldLimit`` bytes, no control characters.
    static func field(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= fieldLimit, ControlScalars.first(in: value) == nil else { return nil }
        return value
    }

}

/// The page's answer work in flight (each asks the marketplace, on the transport the sources
/// poll with): at most ``limit`` at once, and a request waits for its own at most a while. A
/// slot is held until the work ends, not until the page gives up waiting, so a marketplace
/// that hangs holds at most ``limit`` of the transport's threads, never the sources' polls.
final class AnswerSlots: Sendable {
    static let limit = 2
    /// How long a page waits for the marketplace to tell a request's state (30 s).
    let lookupWait: TimeInterval
    /// How long a page waits for an answer's outcome (60 s; it goes on after).
    let answerWait: TimeInterval

    init(lookupWait: TimeInterval = 30, answerWait: TimeInterval = 60) {
        self.lookupWait = lookupWait
        self.answerWait = answerWait
    }

    enum Outcome<T: Sendable>: Sendable {
        case done(T)
        /// Every slot was taken: nothing was started.
        case busy
        /// Still running after the wait; it finishes on its own.
        case late
    }

    private let inFlight = Mutex(0)

    /// Runs `work` in a slot and waits for it on the calling thread, at most `seconds`. The
    /// server runs each request's handler on a thread of its own, never on Swift's cooperative pool.
    func run<T: Sendable>(within seconds: TimeInterval, _ work: @escaping @Sendable () async -> T) -> Outcome<T> {
        let taken = inFlight.withLock { count in
            guard count < Self.limit else { return false }
            count += 1
            return true
        }
        guard taken else { return .busy }
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<T?>(nil)
        Task {
            let value = await work()
            result.withLock { $0 = value }
            inFlight.withLock { $0 -= 1 }
            done.signal()
        }
        _ = done.wait(timeout: .now() + seconds)
        // Done just as the wait ended is done.
        guard let value = result.withLock({ $0 }) else { return .late }
        return .done(value)
    }

    /// Work in flight now.
    var running: Int { inFlight.withLock { $0 } }
}
