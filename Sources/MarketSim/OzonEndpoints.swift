import CancelWatch
import Foundation
import HTTPServing

/// The Ozon Seller API's conditional-cancellation methods.
extension SimState {
    static let ozonListPath = "/v2/conditional-cancellation/list"
    static let ozonApprovePath = "/v2/conditional-cancellation/approve"
    static let ozonRejectPath = "/v2/conditional-cancellation/reject"

    static func ozonError(_ status: Int, code: Int64, _ message: String) -> ServerResponse {
        .json(status: status, value: ["code": .integer(code), "message": .string(message), "details": []])
    }

    func handleOzon(_ request: ServerRequest, now: Date, faults: AppliedFaults) -> ServerResponse {
        let paths = [Self.ozonListPath, Self.ozonApprovePath, Self.ozonRejectPath]
        guard paths.contains(request.path) else { return Self.ozonError(404, code: 5, "Not Found") }
        guard request.method == "POST" else { return Self.ozonError(405, code: 12, "Method Not Allowed") }
        guard let clientID = request.header("Client-Id"), !clientID.isEmpty, let apiKey = request.header("Api-Key"), !apiKey.isEmpty
        else { return Self.ozonError(401, code: 16, "Client-Id and Api-Key headers are required") }
        guard let account = ozonAccounts.first(where: { $0.clientID == clientID }), account.apiKey == apiKey else {
            return Self.ozonError(403, code: 7, "Invalid Api-Key, please contact support")
        }
        let body: [String: JSONValue]
        do {
            let text = request.bodyText.trimmingCharacters(in: .whitespacesAndNewlines)
            let value = try JSONParser.parse(text.isEmpty ? "{}" : text)
            guard let object = value.objectValue else {
                return Self.ozonError(400, code: 3, "invalid request body: expected a JSON object")
            }
            body = object
        } catch {
            return Self.ozonError(400, code: 3, "invalid request body: \(error.description)")
        }
        switch request.path {
        case Self.ozonListPath: return ozonList(body, account: account, now: now, faults: faults)
        default: return ozonDecide(body, account: account, approve: request.path == Self.ozonApprovePath, now: now)
        }
    }

    private func ozonList(_ body: [String: JSONValue], account: SimOzonAccount, now: Date, faults: AppliedFaults) -> ServerResponse {
        let limitRange = "invalid GetConditionalCancellationListV2Request.Limit: value must be inside range (0, 500]"
        guard let limitValue = body["limit"], !limitValue.isNull else { return Self.ozonError(400, code: 3, limitRange) }
        guard let limit = limitValue.lenientInt64, (1...500).contains(limit) else { return Self.ozonError(400, code: 3, limitRange) }
        var lastID: Int64 = 0
        if let value = body["last_id"], !value.isNull, value != .string("") {
            guard let parsed = value.lenientInt64, parsed >= 0 else {
                return Self.ozonError(400, code: 3, "invalid GetConditionalCancellationListV2Request.LastId: not an integer")
            }
            lastID = parsed
        }
        var stateFilter = "ALL"
        var postings: Set<String>? = nil
        var initiators: Set<String>? = nil
        if let filters = body["filters"], !filters.isNull {
            guard let object = filters.objectValue else {
                return Self.ozonError(400, code: 3, "invalid GetConditionalCancellationListV2Request.Filters: expected an object")
            }
            if let state = object["state"], !state.isNull {
                guard let text = state.stringValue, ["ALL", "ON_APPROVAL", "APPROVED", "REJECTED"].contains(text) else {
                    return Self.ozonError(
                        400, code: 3, "invalid value for enum filters.state: \(state.serialized()) (ALL, ON_APPROVAL, APPROVED, REJECTED)")
                }
                stateFilter = text
            }
            if let list = object["posting_number"], !list.isNull {
                guard let items = list.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                    return Self.ozonError(400, code: 3, "invalid filters.posting_number: expected an array of strings")
                }
                if !items.isEmpty { postings = Set(items.compactMap(\.stringValue)) }
            }
            if let list = object["cancellation_initiator"], !list.isNull {
                let known: Set<String> = ["OZON", "SELLER", "CLIENT", "SYSTEM", "DELIVERY"]
                guard let items = list.arrayValue, items.allSatisfy({ known.contains($0.stringValue ?? "") }) else {
                    return Self.ozonError(
                        400, code: 3, "invalid filters.cancellation_initiator: expected OZON, SELLER, CLIENT, SYSTEM or DELIVERY")
                }
                if !items.isEmpty { initiators = Set(items.compactMap(\.stringValue)) }
            }
        }
        let withCounter = body["with"]?["counter"]?.boolValue ?? false

        let all = visible(.ozon, account: account.clientID, now: now)
        let pendingCount = all.filter { $0.phase == .pending }.count
        let matching = all.filter { entry in
            if let postings, !postings.contains(entry.record.postingNumber) { return false }
            if let initiators, !initiators.contains(entry.record.initiator) { return false }
            switch stateFilter {
            case "ON_APPROVAL": return entry.phase == .pending
            case "APPROVED": if case .decided(.approved, _, _) = entry.phase { return true } else { return false }
            case "REJECTED": if case .decided(.rejected, _, _) = entry.phase { return true } else { return false }
            default: return true
            }
        }.sorted { $0.record.cancellationID < $1.record.cancellationID }
        let cursor = faults.repeatedPage ? 0 : lastID
        let page = Array(matching.filter { $0.record.cancellationID > cursor }.prefix(Int(limit)))

        var items = page.map { ozonItem($0.record, phase: $0.phase) }
        if faults.unknownFields {
            items = items.map { item in
                guard case .object(var members) = item else { return item }
                members["sim_unknown_field"] = ["nested": [1, "two"], "flag": true]
                members["legal_entity_type"] = "ООО"
                if case .object(var state) = members["state"] ?? .null {
                    state["sim_unknown_state_field"] = 7
                    members["state"] = .object(state)
                }
                return .object(members)
            }
        }
        var response: [String: JSONValue] = [
            "result": .array(items),
            "last_id": .integer(faults.stuckLastID ? lastID : (page.last?.record.cancellationID ?? 0)),
        ]
        if withCounter {
            response["counter"] = faults.counterAsString ? .string(String(pendingCount)) : .integer(Int64(pendingCount))
        }
        if faults.unknownFields {
            response["sim_unknown_top_level"] = ["added_in": "2026-01", "values": [1, 2, 3]]
            response["has_next"] = .bool(false)
        }
        return .json(value: .object(response))
    }

    /// One item with exactly the fields of the vendor's page (plus `source_id`).
    func ozonItem(_ r: SimRecord, phase: SimRecord.Phase) -> JSONValue {
        let digits = r.fractionDigits
        func date(_ d: Date) -> JSONValue { .string(SimDates.rfc3339(d, digits: digits)) }
        var stateName = "ON_APPROVAL"
        var approveDate: JSONValue = .null
        var comment = ""
        if case .decided(let outcome, let at, let automatic) = phase {
            stateName = outcome == .approved ? "APPROVED" : "REJECTED"
            approveDate = date(at)
            if !automatic {
                comment = r.resolution?.comment ?? (outcome == .approved ? StockTexts.ozonApprovedComment : StockTexts.ozonRejectedComment)
            }
        }
        let state = StockTexts.ozonState(stateName)
        return [
            "approve_comment": .string(comment),
            "approve_date": approveDate,
            "auto_approve_date": date(r.deadline),
            "cancellation_id": .integer(r.cancellationID),
            "cancellation_initiator": .string(r.initiator),
            "cancellation_reason": ["id": .integer(r.reasonID), "name": .string(r.reason)],
            "cancellation_reason_message": .string(r.reasonMessage),
            "cancelled_at": date(r.created),
            "order_date": date(r.orderDate),
            "posting_number": .string(r.postingNumber),
            "state": ["id": .integer(state.id), "name": .string(state.name), "state": .string(stateName)],
            "tpl_integration_type": .string(r.tplIntegrationType),
            "source_id": .integer(r.sourceID),
        ]
    }

    private func ozonDecide(_ body: [String: JSONValue], account: SimOzonAccount, approve: Bool, now: Date) -> ServerResponse {
        guard let id = body["cancellation_id"]?.lenientInt64 else {
            return Self.ozonError(400, code: 3, "cancellation_id is required")
        }
        let comment = body["comment"]?.stringValue
        if !approve && (comment ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            return Self.ozonError(400, code: 3, "comment is required to reject a cancellation request")
        }
        let failure = decide(
            where: { $0.marketplace == .ozon && $0.account == account.clientID && $0.cancellationID == id },
            outcome: approve ? .approved : .rejected, comment: comment, now: now)
        switch failure {
        case .notFound: return Self.ozonError(404, code: 5, "cancellation request \(id) not found")
        case .notPending: return Self.ozonError(400, code: 9, "cancellation request \(id) is not in state ON_APPROVAL")
        case .deadlinePassed(let at):
            return Self.ozonError(
                409, code: 9, "cancellation request \(id) was approved automatically at \(SimDates.rfc3339(at, digits: 0))")
        case nil: return .json(value: [:])
        }
    }
}
