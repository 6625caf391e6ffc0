import Foundation

/// Xiaohongshu Ark's envelope and canceling-package items, read leniently.
enum RedWire {
    struct Page {
        var items: [JSONValue]
        var totalPage: Int
        var currentPage: Int
    }

    /// Reads the `{success, data, error_code, error_msg}` envelope. A call failed when
    /// `success` is false or `error_code` is not 0, whatever the HTTP status.
    static func decodePage(_ body: Data) throws(RedEnvelopeFailure) -> Page {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw .decoding("the answer is not JSON (\(error.description))")
        }
        guard case .object = value else { throw .decoding("the answer is a JSON \(value.typeName), not an object") }
        let code = value["error_code"]?.lenientInt64 ?? 0
        let success = value["success"]?.boolValue ?? (code == 0)
        if !success || code != 0 {
            let message = value["error_msg"]?.stringValue ?? value["msg"]?.stringValue ?? "no error_msg"
            throw .api(code: code, message: message)
        }
        guard let data = value["data"], case .object = data else {
            throw .decoding("'data' is missing or not an object")
        }
        var items: [JSONValue] = []
        switch data["package_list"] {
        case nil, .null?: break
        case .array(let list)?: items = list
        case let other?: throw .decoding("'data.package_list' is a \(other.typeName), not an array")
        }
        let total = data["total_page"]?.lenientInt64 ?? 1
        let current = data["current_page"]?.lenientInt64 ?? 1
        return Page(items: items, totalPage: Int(clamping: total), currentPage: Int(clamping: current))
    }

    /// An unaudited item as a pending request. `sentAt` is when the request that
    /// returned it was sent: the countdown cannot have started earlier.
    /// `logistics`: the mode that was queried, for an item that does not name its own.
    static func pendingRequest(
        from item: JSONValue, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> CancellationRequest {
        guard case .object(let members) = item else {
            throw PollErrorReason("an item of 'package_list' is a \(item.typeName), not an object")
        }
        return try pendingItem(item, members: members, source: source, sentAt: sentAt, unit: unit, logistics: logistics).request
    }

    /// A decoded unaudited item and its `max_audit_time` as sent.
    struct PendingItem {
        var request: CancellationRequest
        var left: Double
    }

    /// The item as a pending request, or nil when its own `status` says it is not unaudited.
    static func unauditedItem(
        from item: JSONValue, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> PendingItem? {
        guard case .object(let members) = item else {
            throw PollErrorReason("an item of 'package_list' is a \(item.typeName), not an object")
        }
        if case .string(let status)? = members["status"], status != "unaudited" { return nil }
        return try pendingItem(item, members: members, source: source, sentAt: sentAt, unit: unit, logistics: logistics)
    }

    /// `members` are `item`'s: every field is one lookup, with no copy of the object.
    private static func pendingItem(
        _ item: JSONValue, members: [String: JSONValue], source: String, sentAt: Date, unit: MaxAuditTimeUnit,
        logistics: String
    ) throws(PollErrorReason) -> PendingItem {
        guard let packageID = members["package_id"]?.stringValue, !packageID.isEmpty else {
            throw PollErrorReason("an item has no 'package_id'")
        }
        guard let cancelTime = members["cancel_time"]?.lenientInt64 else {
            throw PollErrorReason("package \(packageID) has no valid 'cancel_time'")
        }
        guard let left = members["max_audit_time"]?.lenientDouble, left.isFinite else {
            throw PollErrorReason("package \(packageID) has no valid 'max_audit_time'")
        }
        // Values no real request has (a countdown of centuries, a cancel time past year 9999)
        // are bounded so that every later use of the dates (formatting, arithmetic) is safe.
        let deadline = sentAt.addingTimeInterval(min(max(0, left) * unit.seconds, Self.longestAuditTime))
        let created = date(.integer(cancelTime))
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: source, id: requestID(packageID: packageID, cancelTime: cancelTime),
            order: packageID, state: .pending, rawState: members["status"]?.stringValue ?? "unaudited",
            initiator: members["initiator"]?.stringValue ?? "", reason: members["cancel_reason"]?.stringValue ?? "",
            reasonID: "", logistics: members["logistics"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? logistics,
            createdAt: created, deadline: deadline, raw: item)
        return PendingItem(request: request, left: left)
    }

    /// The longest countdown taken at face value: ten years.
    static let longestAuditTime: TimeInterval = 10 * 366 * 86400
    /// 9999-12-31T23:59:59Z, in seconds.
    static let latestCancelTime: Int64 = 253_402_300_799

    /// The identity of a listed item, read as `pendingRequest` reads it, when it can be.
    static func requestID(of item: JSONValue) -> String? {
        guard let packageID = item["package_id"]?.stringValue, !packageID.isEmpty,
            let cancelTime = item["cancel_time"]?.lenientInt64
        else { return nil }
        return requestID(packageID: packageID, cancelTime: cancelTime)
    }

    /// Unix seconds as a date, when within the years any real date falls in.
    static func date(_ value: JSONValue?) -> Date? {
        guard let seconds = value?.lenientInt64, (0...latestCancelTime).contains(seconds) else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// A request's identity: a package can be asked to cancel more than once.
    static func requestID(packageID: String, cancelTime: Int64) -> String { packageID + "@" + String(cancelTime) }
}

/// Why an envelope was not a success.
enum RedEnvelopeFailure: Error {
    case api(code: Int64, message: String)
    case decoding(String)
}
