import Foundation

/// Ozon's `/v2/conditional-cancellation/list` answers, read leniently: int64 fields
/// as numbers or strings, dates with 0–6 fractional digits or null, unknown fields
/// kept in the raw object.
enum OzonWire {
    struct Page {
        var items: [JSONValue]
        var lastID: Int64?
        var counter: Int64?
    }

    static func decodePage(_ body: Data) throws(PollErrorReason) -> Page {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw PollErrorReason("the answer is not JSON (\(error.description))")
        }
        guard case .object = value else { throw PollErrorReason("the answer is a JSON \(value.typeName), not an object") }
        var items: [JSONValue] = []
        switch value["result"] {
        case nil, .null?: break
        case .array(let list)?: items = list
        case let other?: throw PollErrorReason("'result' is a \(other.typeName), not an array")
        }
        return Page(items: items, lastID: value["last_id"]?.lenientInt64, counter: value["counter"]?.lenientInt64)
    }

    /// An item's request id (`cancellation_id`, as the request's `id` is written), when readable.
    static func id(of item: JSONValue) -> String? {
        item["cancellation_id"]?.lenientInt64.map { String($0) }
    }

    /// What a listed item says about its request, read no further than an outcome needs:
    /// a decided item may lack `auto_approve_date` and still say how it ended.
    struct Listed: Equatable {
        var id: String
        /// Nil when the item's state is missing or not one Ozon documents.
        var state: RequestState?
        var approveDate: Date?
    }

    static func listed(_ item: JSONValue, id: String) -> Listed {
        let state: RequestState?
        switch item["state"]?["state"]?.stringValue {
        case "ON_APPROVAL"?: state = .pending
        case "APPROVED"?: state = .approved
        case "REJECTED"?: state = .rejected
        default: state = nil
        }
        return Listed(id: id, state: state, approveDate: (item["approve_date"]?.stringValue).flatMap(Timestamp.parse))
    }

    /// One item of `result` as a `CancellationRequest`, or why it cannot be one.
    static func request(from item: JSONValue, source: String) throws(PollErrorReason) -> CancellationRequest {
        // The members once: every field below is one lookup, with no copy of the object.
        guard case .object(let members) = item else {
            throw PollErrorReason("an item of 'result' is a \(item.typeName), not an object")
        }
        guard let id = members["cancellation_id"]?.lenientInt64 else {
            throw PollErrorReason("an item has no valid 'cancellation_id'")
        }
        let order = members["posting_number"]?.stringValue ?? ""
        guard let deadlineText = members["auto_approve_date"]?.stringValue else {
            throw PollErrorReason("request \(id) (\(order)) has no 'auto_approve_date'")
        }
        guard let deadline = Timestamp.parse(deadlineText) else {
            throw PollErrorReason("request \(id) (\(order)): 'auto_approve_date' \"\(deadlineText.prefix(40))\" is not an RFC 3339 date")
        }
        let rawState = members["state"]?["state"]?.stringValue ?? "ON_APPROVAL"
        var reasonName: String?
        var reasonID = ""
        if case .object(let reason)? = members["cancellation_reason"] {
            reasonName = reason["name"]?.stringValue
            switch reason["id"] {
            case .integer(let i)?: reasonID = String(i)
            case .string(let s)?: reasonID = s
            case .number(let d)?: reasonID = String(d)
            default: break
            }
        }
        let created = (members["cancelled_at"]?.stringValue).flatMap(Timestamp.parse)
            ?? (members["order_date"]?.stringValue).flatMap(Timestamp.parse)
        return CancellationRequest(
            marketplace: .ozon, source: source, id: String(id), order: order, state: state(rawState), rawState: rawState,
            initiator: members["cancellation_initiator"]?.stringValue ?? "",
            reason: reasonName ?? members["cancellation_reason_message"]?.stringValue ?? "",
            reasonID: reasonID, logistics: members["tpl_integration_type"]?.stringValue ?? "",
            createdAt: created, deadline: deadline, raw: item)
    }

    static func state(_ raw: String) -> RequestState {
        switch raw {
        case "APPROVED": return .approved
        case "REJECTED": return .rejected
        default: return .pending
        }
    }

    /// `{code, message, details}` with `details` as an array or a string.
    static func errorMessage(_ body: Data) -> String? {
        guard let value = try? JSONParser.parse(body), case .object = value else { return nil }
        var parts: [String] = []
        if let code = value["code"]?.lenientInt64 { parts.append("code \(code)") }
        if let message = value["message"]?.stringValue, !message.isEmpty { parts.append(message) }
        switch value["details"] {
        case .string(let s)? where !s.isEmpty: parts.append("details: \(s)")
        case .array(let list)? where !list.isEmpty:
            parts.append("details: " + list.map { $0.stringValue ?? $0.serialized() }.joined(separator: "; "))
        default: break
        }
        return parts.isEmpty ? nil : parts.joined(separator: ": ")
    }
}

/// A decoding problem, before the source name is attached.
struct PollErrorReason: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
