import CancelWatch
import Foundation
import HTTPServing

/// `/_sim/…`: inspect and drive the simulator over HTTP (for end-to-end tests of the binary).
extension SimState {
    func handleControl(_ request: ServerRequest, now: Date) -> ServerResponse {
        switch (request.method, request.path) {
        case ("GET", "/_sim/state"):
            var filters: [String: String] = [:]
            for item in request.query { filters[item.name] = item.value }
            return .json(value: stateJSON(filters: filters))
        case ("GET", "/_sim/faults"):
            return .json(value: ["faults": .array(activeFaults().map(Self.faultJSON))])
        case ("POST", "/_sim/faults"):
            return controlAddFaults(request)
        case ("DELETE", "/_sim/faults"), ("POST", "/_sim/faults/clear"):
            clearFaults()
            return .json(value: ["faults": []])
        case ("POST", "/_sim/requests"):
            return controlAddRequests(request)
        case ("POST", "/_sim/resolve"):
            return controlResolve(request)
        case ("GET", "/_sim/counts"):
            return .json(value: countsJSON())
        case ("DELETE", "/_sim/counts"), ("POST", "/_sim/counts/reset"):
            resetCounts()
            return .json(value: countsJSON())
        case ("GET", "/_sim/config"):
            let host = request.header("Host") ?? "127.0.0.1"
            return .text(configYAML("http://\(host)"), headers: ["Content-Type": "application/yaml; charset=utf-8"])
        default:
            return Self.controlError(404, "no control endpoint \(request.method) \(request.path)")
        }
    }

    static func controlError(_ status: Int, _ message: String) -> ServerResponse {
        .json(status: status, value: ["error": .string(message)])
    }

    private func parseBody(_ request: ServerRequest) -> Result<JSONValue, SimScenarioError> {
        do {
            return .success(try JSONParser.parse(request.body))
        } catch {
            return .failure(SimScenarioError(source: "request body", field: "", message: error.description))
        }
    }

    private func controlAddFaults(_ request: ServerRequest) -> ServerResponse {
        let body: JSONValue
        switch parseBody(request) {
        case .success(let value): body = value
        case .failure(let error): return Self.controlError(400, error.description)
        }
        var items: [(JSONValue, String)] = [(body, "")]
        if let list = body["faults"]?.arrayValue {
            items = list.enumerated().map { ($0.element, "faults[\($0.offset)]") }
        }
        var parsed: [SimFault] = []
        for (item, path) in items {
            do {
                parsed.append(try Self.parseFault(JSONFields(item, path: path, source: "request body")))
            } catch {
                return Self.controlError(400, error.description)
            }
        }
        for fault in parsed { _ = addFault(fault) }
        return .json(value: ["faults": .array(activeFaults().map(Self.faultJSON))])
    }

    static func parseFault(_ fields: JSONFields) throws(SimScenarioError) -> SimFault {
        try fields.onlyKeys(["kind", "retry_after", "status", "delay", "marketplace", "account", "path", "times", "always"])
        let name = try fields.requiredString("kind")
        let kind: SimFault.Kind
        switch name {
        case "rate_limit": kind = .rateLimited(retryAfter: try fields.int("retry_after").map { Int($0) })
        case "server_error":
            let status = try fields.int("status") ?? 500
            guard (500...599).contains(status) else { throw fields.error("status", "expected a 5xx status") }
            kind = .serverError(status: Int(status))
        case "slow":
            guard let delay = try fields.seconds("delay"), delay >= 0, delay <= 600 else {
                throw fields.error("delay", "required: seconds (or \"2s\") from 0 to 600")
            }
            kind = .slow(seconds: delay)
        case "malformed_json": kind = .malformedJSON
        case "truncated_body": kind = .truncatedBody
        case "drop_connection": kind = .dropConnection
        case "counter_as_string": kind = .counterAsString
        case "unknown_fields": kind = .unknownFields
        case "stuck_last_id": kind = .stuckLastID
        case "repeated_page": kind = .repeatedPage
        default:
            throw fields.error(
                "kind",
                "unknown fault \"\(name)\" (rate_limit, server_error, slow, malformed_json, truncated_body, drop_connection, "
                    + "counter_as_string, unknown_fields, stuck_last_id, repeated_page)")
        }
        var marketplace: SimMarketplace? = nil
        if let text = try fields.string("marketplace") {
            guard let m = SimMarketplace(rawValue: text) else { throw fields.error("marketplace", "expected ozon or red") }
            marketplace = m
        }
        var times: Int? = 1
        if try fields.bool("always") == true {
            times = nil
        } else if let n = try fields.int("times") {
            guard n >= 1 else { throw fields.error("times", "expected at least 1") }
            times = Int(n)
        }
        return SimFault(kind, marketplace: marketplace, account: try fields.string("account"), path: try fields.string("path"), times: times)
    }

    static func faultJSON(_ entry: ActiveFault) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .integer(Int64(entry.id)),
            "kind": .string(entry.fault.kindName),
            "marketplace": entry.fault.marketplace.map { .string($0.rawValue) } ?? .null,
            "account": entry.fault.account.map { .string($0) } ?? .null,
            "path": entry.fault.path.map { .string($0) } ?? .null,
            "remaining": entry.fault.times.map { .integer(Int64($0)) } ?? .string("always"),
        ]
        switch entry.fault.kind {
        case .rateLimited(let retryAfter): object["retry_after"] = retryAfter.map { .integer(Int64($0)) } ?? .null
        case .serverError(let status): object["status"] = .integer(Int64(status))
        case .slow(let seconds): object["delay"] = .number(seconds)
        default: break
        }
        return .object(object)
    }

    private func controlAddRequests(_ request: ServerRequest) -> ServerResponse {
        let body: JSONValue
        switch parseBody(request) {
        case .success(let value): body = value
        case .failure(let error): return Self.controlError(400, error.description)
        }
        var items: [(JSONValue, String)] = [(body, "")]
        if let list = body["requests"]?.arrayValue {
            items = list.enumerated().map { ($0.element, "requests[\($0.offset)]") }
        }
        var plans: [SimRequestPlan] = []
        for (item, path) in items {
            do {
                let fields = try JSONFields(item, path: path, source: "request body")
                plans.append(try SimScenario.requestPlan(fields, ozonAccounts: ozonAccounts, redAccounts: redAccounts))
            } catch {
                return Self.controlError(400, error.description)
            }
        }
        var added: [JSONValue] = []
        for plan in plans {
            do {
                added.append(Self.infoJSON(try addRequest(plan, anchor: nil)))
            } catch {
                return Self.controlError(400, error.description)
            }
        }
        return .json(status: 201, value: ["requests": .array(added)])
    }

    private func controlResolve(_ request: ServerRequest) -> ServerResponse {
        let body: JSONValue
        switch parseBody(request) {
        case .success(let value): body = value
        case .failure(let error): return Self.controlError(400, error.description)
        }
        do {
            let fields = try JSONFields(body, path: "", source: "request body")
            try fields.onlyKeys(["marketplace", "id", "outcome", "comment"])
            let text = try fields.requiredString("marketplace")
            guard let marketplace = SimMarketplace(rawValue: text) else { throw fields.error("marketplace", "expected ozon or red") }
            let id = try fields.requiredString("id")
            let outcomeText = try fields.requiredString("outcome")
            var outcome: SimOutcome? = nil
            if outcomeText != "vanished" {
                guard let parsed = SimOutcome(text: outcomeText) else {
                    throw fields.error("outcome", "expected approved, rejected, canceled, refused or vanished")
                }
                outcome = parsed
            }
            guard resolve(marketplace, id: id, outcome: outcome, comment: try fields.string("comment")) else {
                return Self.controlError(404, "no pending \(marketplace.rawValue) request \(id)")
            }
            return .json(value: ["resolved": .string(id), "outcome": .string(outcomeText)])
        } catch {
            return Self.controlError(400, "\(error)")
        }
    }

    static func infoJSON(_ info: SimRequestInfo) -> JSONValue {
        var object: [String: JSONValue] = [
            "sim_id": .integer(Int64(info.simID)),
            "marketplace": .string(info.marketplace.rawValue),
            "account": .string(info.account),
            "id": .string(info.id),
            "order": .string(info.order),
            "state": .string(info.state),
            "automatic": .bool(info.automatic),
            "created": .string(SimDates.rfc3339(info.created, digits: 3)),
            "deadline": .string(SimDates.rfc3339(info.deadline, digits: 3)),
            "decided_at": info.decidedAt.map { .string(SimDates.rfc3339($0, digits: 3)) } ?? .null,
        ]
        if let logistics = info.logistics { object["logistics"] = .string(logistics) }
        return .object(object)
    }

    func countsJSON() -> JSONValue {
        [
            "by_endpoint": .object(countsByEndpoint().mapValues { .integer(Int64($0)) }),
            "by_account": .object(countsByAccount().mapValues { .integer(Int64($0)) }),
        ]
    }

    func stateJSON(filters: [String: String]) -> JSONValue {
        let now = clock.now()
        let infos = requestInfos().filter { info in
            if let m = filters["marketplace"], info.marketplace.rawValue != m { return false }
            if let a = filters["account"], info.account != a { return false }
            if let s = filters["state"], info.state != s { return false }
            if let l = filters["logistics"], info.logistics != l { return false }
            return true
        }
        return [
            "now": .string(SimDates.rfc3339(now, digits: 3)),
            "started_at": .string(SimDates.rfc3339(start, digits: 3)),
            "accounts": [
                "ozon": .array(
                    ozonAccounts.map {
                        ["name": .string($0.name), "client_id": .string($0.clientID), "api_key": .string($0.apiKey)]
                    }),
                "red": .array(
                    redAccounts.map {
                        [
                            "name": .string($0.name), "app_key": .string($0.appKey), "app_secret": .string($0.appSecret),
                            "max_audit_time_unit": .string($0.auditTimeUnit.rawValue),
                        ]
                    }),
            ],
            "requests": .array(infos.map(Self.infoJSON)),
            "faults": .array(activeFaults().map(Self.faultJSON)),
            "request_counts": countsJSON(),
        ]
    }
}
