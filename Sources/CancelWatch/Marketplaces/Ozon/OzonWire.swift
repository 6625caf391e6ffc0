import Foundation

/// Ozon's `/v2/conditional-cancellation/list` answers, read leniently: int64 fields
/// as numbers or strings, dates with 0–6 fractional digits or null, unknown fields
/// kept in the raw object.
enum OzonWire {
    struct Page {
        var items: [Item]
        var lastID: Int64?
        var counter: Int64?
        /// What `result` was when it was neither an array nor null.
        var resultNotAnArray: String?
    }

    /// One item of `result`: the fields cancelwatch reads, and the item's own text.
    /// A class: an item is built once while its page is read, then only read, and passing
    /// it around costs one reference count instead of one per field.
    final class Item: ListItem {
        var raw: RawObject
        /// What the item is when it is not an object ("an array", "a string", …).
        var notAnObject: String?
        var id: Int64?
        var postingNumber: String?
        var deadline: DateField = .missing
        /// `state.state`.
        var state: String?
        var reasonName: String?
        var reasonID = ""
        var reasonMessage: String?
        var initiator: String?
        var logistics: String?
        var cancelledAt: Date?
        /// Where `order_date`'s value starts in the item's text: read only when needed (it is
        /// `created` only for an item without `cancelled_at`).
        var orderDateAt: Int?
        var approveDate: Date?

        /// `order_date` as a date, when it is one.
        var orderDate: Date? {
            guard let offset = orderDateAt else { return nil }
            return raw.withText { buffer in
                var reader = JSONParser.Reader(bytes: buffer)
                reader.index = offset
                return (try? OzonWire.readDate(&reader, depth: 1))?.date
            } ?? nil
        }

        /// An item given as a value (tests): read from its text as a page's items are.
        static func reading(_ value: JSONValue) -> Item {
            JSONParser.read(value) { (reader: inout JSONParser.Reader) throws(JSONParseError) in
                try OzonWire.readItem(&reader, depth: 0)
            } ?? Item(raw: RawObject(value))
        }

        init(raw: RawObject) { self.raw = raw }
    }

    /// A date field: absent (or not a string), an RFC 3339 date, or text that is not one.
    enum DateField {
        case missing
        case date(Date)
        case invalid(String)

        var date: Date? {
            if case .date(let date) = self { return date }
            return nil
        }
    }

    /// Reads the page in one pass over its bytes: no tree is built, each item keeps its text.
    static func decodePage(_ body: Data) throws(PollErrorReason) -> Page {
        let page: Page
        switch JSONParser.readAnswer(body, readPage) {
        case .success(let read): page = read
        case .failure(let unreadable): throw PollErrorReason(unreadable.message)
        }
        if let type = page.resultNotAnArray { throw PollErrorReason("'result' is \(type), not an array") }
        return page
    }

    private static func readPage(_ reader: inout JSONParser.Reader) throws(JSONParseError) -> Page {
        var page = Page(items: [])
        try reader.members(depth: 0) { (reader: inout JSONParser.Reader, key) throws(JSONParseError) in
            if key.is("result") {
                // A repeated key counts by its last value, as the parser keeps it.
                (page.items, page.resultNotAnArray) = try reader.list(depth: 1) { (reader: inout JSONParser.Reader) throws(JSONParseError) in
                    try readItem(&reader, depth: 2)
                }
            } else if key.is("last_id") {
                page.lastID = try reader.scalar(depth: 1).lenientInt64
            } else if key.is("counter") {
                page.counter = try reader.scalar(depth: 1).lenientInt64
            } else {
                try reader.skipValue(depth: 1)
            }
        }
        return page
    }

    /// One item, its fields read as `JSONValue` accessors would read them (a repeated key
    /// counts by its last value).
    static func readItem(_ reader: inout JSONParser.Reader, depth: Int) throws(JSONParseError) -> Item {
        let start = reader.index
        let inner = depth + 1
        return try reader.listItem(depth: depth, volatile: Marketplace.ozon.volatileRawKeys) {
            (reader: inout JSONParser.Reader, key, item: Item) throws(JSONParseError) in
            if key.is("cancellation_id") {
                item.id = try reader.scalar(depth: inner).lenientInt64
            } else if key.is("posting_number") {
                item.postingNumber = try reader.string(depth: inner)
            } else if key.is("auto_approve_date") {
                item.deadline = try readDate(&reader, depth: inner)
            } else if key.is("state") {
                item.state = nil
                try reader.membersIfObject(depth: inner) { (reader: inout JSONParser.Reader, key) throws(JSONParseError) in
                    if key.is("state") { item.state = try reader.string(depth: inner + 1) } else { try reader.skipValue(depth: inner + 1) }
                }
            } else if key.is("cancellation_reason") {
                item.reasonName = nil
                item.reasonID = ""
                try reader.membersIfObject(depth: inner) { (reader: inout JSONParser.Reader, key) throws(JSONParseError) in
                    if key.is("name") {
                        item.reasonName = try reader.string(depth: inner + 1)
                    } else if key.is("id") {
                        switch try reader.scalar(depth: inner + 1) {
                        case .integer(let i): item.reasonID = String(i)
                        case .string(let s): item.reasonID = s
                        case .number(let d): item.reasonID = String(d)
                        default: item.reasonID = ""
                        }
                    } else {
                        try reader.skipValue(depth: inner + 1)
                    }
                }
            } else if key.is("cancellation_reason_message") {
                item.reasonMessage = try reader.string(depth: inner)
            } else if key.is("cancellation_initiator") {
                item.initiator = try reader.string(depth: inner)
            } else if key.is("tpl_integration_type") {
                item.logistics = try reader.string(depth: inner)
            } else if key.is("cancelled_at") {
                item.cancelledAt = try readDate(&reader, depth: inner).date
            } else if key.is("order_date") {
                item.orderDateAt = reader.index - start
                try reader.skipValue(depth: inner)
            } else if key.is("approve_date") {
                item.approveDate = try readDate(&reader, depth: inner).date
            } else {
                try reader.skipValue(depth: inner)
            }
        }
    }

    /// A string value read as an RFC 3339 date, straight from its bytes when it has no escapes.
    static func readDate(_ reader: inout JSONParser.Reader, depth: Int) throws(JSONParseError) -> DateField {
        if reader.next == UInt8(ascii: "\""), let text = reader.plainString() {
            if let date = Timestamp.parse(utf8: text) { return .date(date) }
            return .invalid(String(decoding: text, as: UTF8.self))
        }
        guard case .string(let text) = try reader.scalar(depth: depth) else { return .missing }
        return Timestamp.parse(text).map { .date($0) } ?? .invalid(text)
    }

    /// What a listed item says about its request, read no further than an outcome needs:
    /// a decided item may lack `auto_approve_date` and still say how it ended.
    struct Listed: Equatable {
        var id: String
        /// Nil when the item's state is missing or not one Ozon documents.
        var state: RequestState?
        var approveDate: Date?
    }

    static func listed(_ item: Item, id: String) -> Listed {
        let state: RequestState?
        switch item.state {
        case "ON_APPROVAL"?: state = .pending
        case "APPROVED"?: state = .approved
        case "REJECTED"?: state = .rejected
        default: state = nil
        }
        return Listed(id: id, state: state, approveDate: item.approveDate)
    }

    /// One item of `result` given as a value (tests).
    static func request(from item: JSONValue, source: String) throws(PollErrorReason) -> CancellationRequest {
        try request(from: Item.reading(item), source: source)
    }

    /// One item of `result` as a `CancellationRequest`, or why it cannot be one.
    static func request(from item: Item, source: String) throws(PollErrorReason) -> CancellationRequest {
        if let type = item.notAnObject {
            throw PollErrorReason("an item of 'result' is \(type), not an object")
        }
        guard let id = item.id else {
            throw PollErrorReason("an item has no valid 'cancellation_id'")
        }
        let order = item.postingNumber ?? ""
        let deadline: Date
        switch item.deadline {
        case .missing: throw PollErrorReason("request \(id) (\(order)) has no 'auto_approve_date'")
        case .invalid(let text):
            throw PollErrorReason("request \(id) (\(order)): 'auto_approve_date' \"\(TextCut.cut(text, limit: 40))\" is not an RFC 3339 date")
        case .date(let date): deadline = date
        }
        let rawState = item.state ?? "ON_APPROVAL"
        return CancellationRequest(
            marketplace: .ozon, source: source, id: String(id), order: order, state: state(rawState), rawState: rawState,
            initiator: item.initiator ?? "", reason: item.reasonName ?? item.reasonMessage ?? "",
            reasonID: item.reasonID, logistics: item.logistics ?? "", reasonMessage: item.reasonMessage ?? "",
            createdAt: item.cancelledAt ?? item.orderDate, deadline: deadline, rawObject: item.raw)
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
        guard let error = errorBody(body) else { return nil }
        return ([error.code.map { "code \($0)" }] + [error.text.isEmpty ? nil : error.text]).compactMap { $0 }
            .joined(separator: ": ")
    }

    /// An error answer's `code`, and its `message` and `details` as one text.
    struct ErrorBody {
        var code: Int64?
        var text: String
    }

    /// The `{code, message, details}` body, or nil when the body is not one (a proxy's page).
    static func errorBody(_ body: Data) -> ErrorBody? {
        guard let value = try? JSONParser.parse(body), case .object = value else { return nil }
        var parts: [String] = []
        let code = value["code"]?.lenientInt64
        if let message = value["message"]?.stringValue, !message.isEmpty { parts.append(message) }
        switch value["details"] {
        case .string(let s)? where !s.isEmpty: parts.append("details: \(s)")
        case .array(let list)? where !list.isEmpty:
            parts.append("details: " + list.map { $0.stringValue ?? $0.serialized() }.joined(separator: "; "))
        default: break
        }
        return code == nil && parts.isEmpty ? nil : ErrorBody(code: code, text: parts.joined(separator: ": "))
    }

    /// A request id as a `cancellation_id`: decimal digits only, as Ozon lists them (no sign,
    /// no leading zero, within Int64); nil for anything else.
    static func cancellationID(_ id: String) -> Int64? {
        guard !id.isEmpty, id.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int64(id), String(value) == id
        else { return nil }
        return value
    }
}

/// A decoding problem, before the source name is attached.
struct PollErrorReason: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
