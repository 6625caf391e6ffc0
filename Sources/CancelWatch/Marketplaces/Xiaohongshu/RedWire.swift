import Foundation

/// Xiaohongshu Ark's envelope and canceling-package items, read leniently.
enum RedWire {
    struct Page {
        var items: [Item]
        var totalPage: Int
        var currentPage: Int
    }

    /// One item of `package_list`: the fields cancelwatch reads, and the item's own text.
    /// A class: an item is built once while its page is read, then only read, and passing
    /// it around costs one reference count instead of one per field.
    final class Item: ListItem {
        var raw: RawObject
        /// What the item is when it is not an object ("an array", "a string", …).
        var notAnObject: String?
        var packageID: String?
        var cancelTime: JSONValue?
        var status: String?
        var maxAuditTime: JSONValue?
        var initiator: String?
        var cancelReason: String?
        var logistics: String?
        var auditResult: String?
        var auditTime: JSONValue?

        /// An item given as a value (tests): read from its text as a page's items are.
        static func reading(_ value: JSONValue) -> Item {
            JSONParser.read(value) { (reader: inout JSONParser.Reader) throws(JSONParseError) in
                try RedWire.readItem(&reader, depth: 0)
            } ?? Item(raw: RawObject(value))
        }

        init(raw: RawObject) { self.raw = raw }
    }

    /// Reads the `{success, data, error_code, error_msg}` envelope. A call failed when
    /// `success` is false or `error_code` is not 0, whatever the HTTP status.
    /// One pass over the bytes: no tree is built, each item keeps its text.
    static func decodePage(_ body: Data) throws(RedEnvelopeFailure) -> Page {
        let envelope: Envelope
        switch JSONParser.readAnswer(body, readEnvelope) {
        case .success(let read): envelope = read
        case .failure(let unreadable): throw .decoding(unreadable.message)
        }
        if let failure = envelope.failure { throw failure }
        guard let data = envelope.data else { throw .decoding("'data' is missing or not an object") }
        if let type = data.notAnArray { throw .decoding("'data.package_list' is \(type), not an array") }
        return Page(
            items: data.items, totalPage: Int(clamping: data.totalPage ?? 1), currentPage: Int(clamping: data.currentPage ?? 1))
    }

    /// Reads an answer call's envelope (its `data` unread): nil when it says the call
    /// succeeded, else why not.
    static func failure(ofAnswer body: Data) -> RedEnvelopeFailure? {
        switch JSONParser.readAnswer(body, readEnvelope) {
        case .success(let envelope): return envelope.failure
        case .failure(let unreadable): return .decoding(unreadable.message)
        }
    }

    /// Whether an envelope's error message says the credentials or the signature were refused.
    static func isAuthFailure(_ message: String) -> Bool {
        let lowered = message.lowercased()
        return lowered.contains("sign") || lowered.contains("app-key") || lowered.contains("appkey") || lowered.contains("auth")
    }

    private struct Envelope {
        var success: JSONValue?
        var errorCode: JSONValue?
        var errorMsg: String?
        var msg: String?
        var data: DataPart?
        var errorMessage: String? { errorMsg ?? msg }

        /// A call failed when `success` is false or `error_code` is not 0.
        var failure: RedEnvelopeFailure? {
            let code = errorCode?.lenientInt64 ?? 0
            let succeeded = success?.boolValue ?? (code == 0)
            return succeeded && code == 0 ? nil : .api(code: code, message: errorMessage ?? "no error_msg")
        }
    }

    private struct DataPart {
        var items: [Item] = []
        var notAnArray: String?
        var totalPage: Int64?
        var currentPage: Int64?
    }

    private static func readEnvelope(_ reader: inout JSONParser.Reader) throws(JSONParseError) -> Envelope {
        var envelope = Envelope()
        try reader.members(depth: 0) { (reader: inout JSONParser.Reader, key) throws(JSONParseError) in
            if key.is("success") {
                envelope.success = try reader.scalar(depth: 1)
            } else if key.is("error_code") {
                envelope.errorCode = try reader.scalar(depth: 1)
            } else if key.is("error_msg") {
                envelope.errorMsg = try reader.string(depth: 1)
            } else if key.is("msg") {
                envelope.msg = try reader.string(depth: 1)
            } else if key.is("data") {
                var data = DataPart()
                let isObject = try reader.membersIfObject(depth: 1) { (reader: inout JSONParser.Reader, key) throws(JSONParseError) in
                    if key.is("package_list") {
                        (data.items, data.notAnArray) = try reader.list(depth: 2) { (reader: inout JSONParser.Reader) throws(JSONParseError) in
                            try readItem(&reader, depth: 3)
                        }
                    } else if key.is("total_page") {
                        data.totalPage = try reader.scalar(depth: 2).lenientInt64
                    } else if key.is("current_page") {
                        data.currentPage = try reader.scalar(depth: 2).lenientInt64
                    } else {
                        try reader.skipValue(depth: 2)
                    }
                }
                envelope.data = isObject ? data : nil
            } else {
                try reader.skipValue(depth: 1)
            }
        }
        return envelope
    }

    /// One item, its fields read as `JSONValue` accessors would read them (a repeated key
    /// counts by its last value).
    static func readItem(_ reader: inout JSONParser.Reader, depth: Int) throws(JSONParseError) -> Item {
        let inner = depth + 1
        return try reader.listItem(depth: depth, volatile: Marketplace.xiaohongshu.volatileRawKeys) {
            (reader: inout JSONParser.Reader, key, item: Item) throws(JSONParseError) in
            if key.is("package_id") {
                item.packageID = try reader.string(depth: inner)
            } else if key.is("cancel_time") {
                item.cancelTime = try reader.scalar(depth: inner)
            } else if key.is("status") {
                item.status = try reader.string(depth: inner)
            } else if key.is("max_audit_time") {
                item.maxAuditTime = try reader.scalar(depth: inner)
            } else if key.is("initiator") {
                item.initiator = try reader.string(depth: inner)
            } else if key.is("cancel_reason") {
                item.cancelReason = try reader.string(depth: inner)
            } else if key.is("logistics") {
                item.logistics = try reader.string(depth: inner)
            } else if key.is("audit_result") {
                item.auditResult = try reader.string(depth: inner)
            } else if key.is("audit_time") {
                item.auditTime = try reader.scalar(depth: inner)
            } else {
                try reader.skipValue(depth: inner)
            }
        }
    }

    /// An unaudited item given as a value (tests) as a pending request.
    static func pendingRequest(
        from item: JSONValue, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> CancellationRequest {
        try pendingRequest(from: Item.reading(item), source: source, sentAt: sentAt, unit: unit, logistics: logistics)
    }

    /// An unaudited item as a pending request. `sentAt` is when the request that
    /// returned it was sent: the countdown cannot have started earlier.
    /// `logistics`: the mode that was queried, for an item that does not name its own.
    static func pendingRequest(
        from item: Item, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> CancellationRequest {
        try pendingItem(item, source: source, sentAt: sentAt, unit: unit, logistics: logistics).request
    }

    /// A decoded unaudited item and its `max_audit_time` as sent.
    struct PendingItem {
        var request: CancellationRequest
        var left: Double
    }

    /// The item as a pending request, or nil when its own `status` says it is not unaudited.
    static func unauditedItem(
        from item: Item, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> PendingItem? {
        if item.notAnObject == nil, let status = item.status, status != "unaudited" { return nil }
        return try pendingItem(item, source: source, sentAt: sentAt, unit: unit, logistics: logistics)
    }

    private static func pendingItem(
        _ item: Item, source: String, sentAt: Date, unit: MaxAuditTimeUnit, logistics: String
    ) throws(PollErrorReason) -> PendingItem {
        if let type = item.notAnObject {
            throw PollErrorReason("an item of 'package_list' is \(type), not an object")
        }
        guard let packageID = item.packageID, !packageID.isEmpty else {
            throw PollErrorReason("an item has no 'package_id'")
        }
        guard let cancelTime = item.cancelTime?.lenientInt64 else {
            throw PollErrorReason("package \(packageID) has no valid 'cancel_time'")
        }
        guard let left = item.maxAuditTime?.lenientDouble, left.isFinite else {
            throw PollErrorReason("package \(packageID) has no valid 'max_audit_time'")
        }
        // Values no real request has (a countdown of centuries, a cancel time past year 9999)
        // are bounded so that every later use of the dates (formatting, arithmetic) is safe.
        let deadline = sentAt.addingTimeInterval(min(max(0, left) * unit.seconds, Self.longestAuditTime))
        let created = date(.integer(cancelTime))
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: source, id: requestID(packageID: packageID, cancelTime: cancelTime),
            order: packageID, state: .pending, rawState: item.status ?? "unaudited",
            initiator: item.initiator ?? "", reason: item.cancelReason ?? "",
            reasonID: "", logistics: item.logistics.flatMap { $0.isEmpty ? nil : $0 } ?? logistics,
            createdAt: created, deadline: deadline, rawObject: item.raw)
        return PendingItem(request: request, left: left)
    }

    /// The longest countdown taken at face value: ten years.
    static let longestAuditTime: TimeInterval = 10 * 366 * 86400
    /// 9999-12-31T23:59:59Z, in seconds.
    static let latestCancelTime: Int64 = 253_402_300_799

    /// The identity of a listed item, read as `pendingRequest` reads it, when it can be.
    static func requestID(of item: Item) -> String? {
        guard let packageID = item.packageID, !packageID.isEmpty, let cancelTime = item.cancelTime?.lenientInt64
        else { return nil }
        return requestID(packageID: packageID, cancelTime: cancelTime)
    }

    /// Unix seconds as a date, when within the years any real date falls in.
    static func date(_ value: JSONValue?) -> Date? {
        guard let seconds = value?.lenientInt64, (0...latestCancelTime).contains(seconds) else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// A request's identity: a package can be asked to cancel more than once.
    static func requestID(packageID: String, cancelTime: Int64) -> String {
        var package = packageID
        return package.withUTF8 { package in
            // One string written in place: the package id, `@`, the decimal digits. (Appending to a
            // copy of the id with its capacity reserved measured ~1 ms slower over 20,000 RED ids.)
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int64
            let count = withUnsafeMutableBytes(of: &digits) { buffer -> Int in
                var magnitude = cancelTime.magnitude
                var end = buffer.count
                repeat {
                    end -= 1
                    buffer[end] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                if cancelTime < 0 {
                    end -= 1
                    buffer[end] = UInt8(ascii: "-")
                }
                return buffer.count - end
            }
            return String(unsafeUninitializedCapacity: package.count + 1 + count) { out in
                _ = out.initialize(fromContentsOf: package)
                out[package.count] = UInt8(ascii: "@")
                withUnsafeBytes(of: &digits) { buffer in
                    for i in 0..<count { out[package.count + 1 + i] = buffer[buffer.count - count + i] }
                }
                return package.count + 1 + count
            }
        }
    }
}

/// Why an envelope was not a success.
enum RedEnvelopeFailure: Error {
    case api(code: Int64, message: String)
    case decoding(String)
}
