import CancelWatch
import Foundation
import HTTPServing
import MarketSim
import Testing

/// The real binary's status page on an address other machines can reach (`0.0.0.0`, with
/// `auth: {token}`), used as a seller would: nothing without the token, a sign-in, the answer
/// link of a row, Approve and Refuse with the page's CSRF token, and the bearer-token API.
/// Each answer reaches the simulator once, the next poll resolves it naming who answered, and
/// the command line will not answer it again; a form without the CSRF token or posted from
/// another site sends nothing.
@Suite struct StatusPageAnswersEndToEndTests {
    let http = CurlHTTPTransport(threads: 1)

    func get(_ url: String, _ headers: [HTTPHeader] = []) async throws -> HTTPResponse {
        try await http.send(HTTPRequest(method: "GET", url: url, headers: headers))
    }

    /// A form as a browser posts it (`application/x-www-form-urlencoded`).
    func post(_ url: String, form: [(String, String)], _ headers: [HTTPHeader] = []) async throws -> HTTPResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
        return try await http.send(
            HTTPRequest(
                method: "POST", url: url, headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")] + headers,
                body: Data(body.utf8)))
    }

    func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    /// An attribute value as a browser reads it from the page's markup.
    func unescaped(_ html: Substring) -> String {
        html.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The link of the page's row for `order` to answer it with `decision` (Approve… or Refuse…).
    func answerLink(in page: String, order: String, _ decision: Decision) throws -> String {
        let row = try #require(page.split(separator: "\n").first { $0.hasPrefix("<tr class=\"band-") && $0.contains("<td>\(order)</td>") }, "\(page)")
        let start = try #require(row.range(of: "<a class=\"\(decision.rawValue)\" href=\"")?.upperBound, "\(row)")
        return unescaped(row[start...].prefix { $0 != "\"" })
    }

    /// The hidden fields of the answer page's form for `decision`, as a browser submits them.
    func hiddenFields(in page: String, form decision: Decision) throws -> [(String, String)] {
        let start = try #require(page.range(of: "<form method=\"post\" action=\"/answer\" class=\"\(decision.rawValue)\">")?.upperBound, "\(page)")
        let form = page[start...].prefix { $0 != "\n" }
        return form.components(separatedBy: "<input type=\"hidden\" ").dropFirst().compactMap { input in
            let parts = input.components(separatedBy: "\"")
            guard parts.count >= 4, parts[0] == "name=" else { return nil }
            return (parts[1], unescaped(Substring(parts[3])))
        }
    }

    /// What the simulator's RED account reports decided, as the marketplace lists it.
    func redAudited(_ simulator: MarketSimulator) throws -> [JSONValue] {
        let query = [("logistics", "red_auto"), ("status", "audited")]
        let timestamp = String(Int64(Date().timeIntervalSince1970))
        let sign = RedSigner.sign(
            path: RedClient.listPath, query: query, appKey: E2EAccounts.redAppKey, timestamp: timestamp, appSecret: E2EAccounts.redSecret)
        let target = RedClient.listPath + "?" + query.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let response = simulator.handle(
            ServerRequest(method: "GET", target: target, headers: ["app-key": E2EAccounts.redAppKey, "timestamp": timestamp, "sign": sign]))
        return try JSONParser.parse(response.body)["data"]?["package_list"]?.arrayValue ?? []
    }

    @Test func aSignedInSellerAnswersFromThePageAndAScriptFromTheAPIEachOnceAndNeverFromAnotherSite() async throws {
        let setup = try WatchSetup(ozon: 2, red: 1, options: .onEveryInterfaceWithAToken)
        defer { setup.shutdown() }
        let simulator = try setup.simulator
        let token = WatchOptions.statusToken
        let environment = WatchOptions.statusTokenEnvironment
        let run = try setup.startRun(environment: environment)
        let url = try await run.metricsURL()
        let bearer = HTTPHeader("Authorization", "Bearer \(token)")
        let requests = try setup.pendingRequests()
        let ids = Set(requests.map(WatchSetup.requestID(of:)))
        #expect(ids.count == 3)

        // 1. Without the token: the sign-in form and a 401 from the API; with it, the simulator's requests.
        let page = try await get(url + "/")
        #expect(page.status == 401)
        #expect(text(page).contains(#"<form method="post" action="/login" id="login">"#), "\(text(page))")
        #expect(!requests.contains { text(page).contains($0.order) }, "no order shown without the token")
        let api = try await get(url + "/api/v1/requests")
        #expect(api.status == 401 && api.header("WWW-Authenticate") == #"Bearer realm="cancelwatch""#)
        try await eventually("the API listing the simulator's requests\n\(run.stderr)") {
            let listed = try await get(url + "/api/v1/requests", [bearer])
            let rows = try JSONParser.parse(listed.body)["requests"]?.arrayValue ?? []
            return listed.status == 200 && Set(rows.compactMap { $0["id"]?.stringValue }) == ids
        }

        // 2. Sign in: a cookie the script cannot read and other sites do not get sent.
        let signIn = try await post(url + "/login", form: [("token", token), ("name", "alice")])
        #expect(signIn.status == 303 && signIn.header("Location") == "/")
        let setCookie = try #require(signIn.header("Set-Cookie"))
        let attributes = setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"), "\(setCookie)")
        let cookie = HTTPHeader("Cookie", try #require(attributes.first { $0.hasPrefix("cw_session=") }))
        let signedIn = text(try await get(url + "/", [cookie]))
        #expect(signedIn.contains(#"data-answers="on""#) && signedIn.contains("Signed in as alice"), "\(signedIn)")

        // Approve an Ozon request from its row's answer page.
        let ozon = try #require(requests.first { $0.marketplace == .ozon })
        let ozonForm = try await get(url + (try answerLink(in: signedIn, order: ozon.order, .approve)), [cookie])
        #expect(ozonForm.status == 200, "\(text(ozonForm))")
        #expect(text(ozonForm).contains("<dd>\(ozon.order)</dd>"))
        #expect(!text(ozonForm).contains(#"class="refuse""#), "the row's Approve… asks to confirm that alone")
        let approve = try hiddenFields(in: text(ozonForm), form: .approve)
        #expect(approve.map(\.0) == ["csrf", "source", "id", "decision"])
        #expect(simulator.requestCount(path: OzonClient.approvePath) == 0, "showing the form sends nothing")
        let approved = try await post(url + "/answer", form: approve, [cookie])
        #expect(approved.status == 200, "\(text(approved))")
        #expect(text(approved).contains("ozon request \(ozon.id) (order \(ozon.order)): approved; the marketplace accepted the answer"))

        // Refuse the RED request, with the reason the buyer reads.
        let red = try #require(requests.first { $0.marketplace == .red })
        let redForm = try await get(url + (try answerLink(in: signedIn, order: red.order, .refuse)), [cookie])
        #expect(redForm.status == 200, "\(text(redForm))")
        let comment = "The parcel has left the warehouse"
        let refuse = try hiddenFields(in: text(redForm), form: .refuse) + [("comment", comment)]
        let refused = try await post(url + "/answer", form: refuse, [cookie])
        #expect(refused.status == 200, "\(text(refused))")
        #expect(text(refused).contains("): refused; the marketplace accepted the answer"), "\(text(refused))")

        // The simulator got exactly those two answers.
        #expect(simulator.requests().first { $0.simID == ozon.simID }?.state == "approved")
        #expect(simulator.requests().first { $0.simID == red.simID }?.state == "rejected")
        #expect(simulator.requestCount(path: OzonClient.approvePath) == 1)
        #expect(simulator.requestCount(path: OzonClient.rejectPath) == 0)
        #expect(simulator.requestCount(path: RedClient.auditPath) == 1)
        let audited = try #require(try redAudited(simulator).first { $0["package_id"]?.stringValue == red.id })
        #expect(audited["audit_result"] == "refused" && audited["audit_reason"]?.stringValue == comment)

        // 3. A form without the CSRF token, or with it from another site, sends nothing.
        let other = try #require(requests.first { $0.marketplace == .ozon && $0.simID != ozon.simID })
        let otherID = WatchSetup.requestID(of: other)
        let fields = [("source", "ozon"), ("id", otherID), ("decision", "approve")]
        let csrf = try #require(approve.first { $0.0 == "csrf" }?.1)
        let noToken = try await post(url + "/answer", form: fields, [cookie])
        #expect(noToken.status == 403 && text(noToken).contains("CSRF"), "\(text(noToken))")
        let crossSite = try await post(url + "/answer", form: [("csrf", csrf)] + fields, [cookie, HTTPHeader("Origin", "https://evil.example")])
        #expect(crossSite.status == 403, "\(text(crossSite))")
        #expect(simulator.requestCount(path: OzonClient.approvePath) == 1 && simulator.requestCount(path: OzonClient.rejectPath) == 0)
        #expect(simulator.requests().first { $0.simID == other.simID }?.state == "pending")

        // 4. A script approves it with the bearer token.
        let scripted = try await http.send(
            HTTPRequest(
                method: "POST", url: url + "/api/v1/answers", headers: [bearer, HTTPHeader("Content-Type", "application/json")],
                body: Data(#"{"source":"ozon","id":"\#(otherID)","decision":"approve"}"#.utf8)))
        #expect(scripted.status == 200, "\(text(scripted))")
        let outcome = try JSONParser.parse(scripted.body)
        #expect(outcome["outcome"] == "accepted" && outcome["accepted"] == true, "\(text(scripted))")
        #expect(simulator.requests().first { $0.simID == other.simID }?.state == "approved")
        #expect(simulator.requestCount(path: OzonClient.approvePath) == 2)

        // The next poll resolves all three, each naming who answered, and nothing is pending.
        let answered = [
            WatchSetup.requestID(of: ozon): ["approved", "web:alice"], WatchSetup.requestID(of: red): ["rejected", "web:alice"],
            otherID: ["approved", "web:api"],
        ]
        try await eventually("three resolved events\n\(run.stderr)") {
            setup.receiver.acknowledgedReceipts.filter { $0.event == "resolved" }.count == 3
        }
        for receipt in setup.receiver.acknowledgedReceipts where receipt.event == "resolved" {
            let body = try JSONParser.parse(Data(receipt.body.utf8))
            let told = [body["outcome"]?.stringValue, body["actor"]?.stringValue].compactMap { $0 }
            #expect(told == receipt.requestID.flatMap { answered[$0] }, "\(receipt.body)")
        }
        try await eventually("nothing pending on the page\n\(run.stderr)") {
            let listed = try await get(url + "/api/v1/requests", [bearer])
            return try listed.status == 200 && JSONParser.parse(listed.body)["requests"]?.arrayValue?.isEmpty == true
        }
        #expect(try await setup.status(environment: environment).isEmpty)

        // The command line will not answer again what the page answered.
        let again = try await setup.capture(
            ["approve", "ozon", WatchSetup.requestID(of: ozon), "--config", setup.configPath, "--yes"], environment: environment)
        #expect(again.status == 1)
        #expect(again.stderr.contains("web:alice answered it before"), "\(again.stderr)")
        #expect(simulator.requestCount(path: OzonClient.approvePath) == 2)
        #expect(!run.stderr.contains(token), "the token never reaches the log")
        #expect(try await run.stop() == 0)
    }
}
