import CancelWatch
import Foundation
import MarketSim

/// Deterministic marketplace pages, shaped like the simulator's (and the vendors') answers.
enum DataGen {
    /// The instant every generated workload is relative to (2026-11-23T12:00:00Z).
    static let epoch = Date(timeIntervalSince1970: 1_795_435_200)

    static let ozonReasons: [(Int64, String)] = [
        (501, "Покупатель передумал"), (502, "Нашёл дешевле в другом магазине"), (503, "Долгая доставка"),
        (504, "Ошибся при оформлении заказа"), (505, "Хочу изменить адрес доставки"), (506, "Товар больше не нужен"),
    ]
    static let ozonMessages = [
        "", "Прошу отменить, заказал по ошибке", "Срок доставки слишком большой", "Передумал покупать",
    ]
    static let redReasons = ["不想要了", "拍错了/多拍了", "地址填写错误", "商家发货太慢", "其他渠道价格更低", "买家协商一致退款"]
    static let initiators = ["CLIENT", "CLIENT", "CLIENT", "OZON", "SYSTEM", "DELIVERY"]
    static let tplTypes = ["non_integrated", "ozon", "aggregator"]

    /// `2026-11-23T20:00:00.123Z` with 0, 3 or 6 fractional digits.
    static func rfc3339(_ seconds: Double, digits: Int) -> String {
        let whole = Int64(seconds.rounded(.down))
        let micros = Int64(((seconds - Double(whole)) * 1_000_000).rounded(.down))
        let days = Int(whole >= 0 ? whole / 86400 : (whole - 86399) / 86400)
        let secs = Int(whole - Int64(days) * 86400)
        let (y, m, d) = civil(days)
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, secs / 3600, (secs % 3600) / 60, secs % 60)
        switch digits {
        case 3: text += String(format: ".%03d", Int(micros / 1000))
        case 6: text += String(format: ".%06d", Int(micros))
        default: break
        }
        return text + "Z"
    }

    private static func civil(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// One Ozon `conditional-cancellation/list` item, every field the vendor documents.
    static func ozonItem(serial: Int64, random: inout SeededGenerator, now: Date) -> JSONValue {
        let digits = [0, 3, 6][Int(serial % 3)]
        // Deadlines from an hour ago to three days ahead: every rule band is represented.
        let deadline = now.timeIntervalSince1970 + Double(Int.random(in: -3600...(72 * 3600), using: &random))
            + Double(Int.random(in: 0..<1_000_000, using: &random)) / 1e6
        let created = deadline - 48 * 3600
        let reason = ozonReasons[Int.random(in: 0..<ozonReasons.count, using: &random)]
        let initiator = initiators[Int.random(in: 0..<initiators.count, using: &random)]
        let posting = String(
            format: "%08d-%04d-%d", Int.random(in: 10_000_000...99_999_999, using: &random),
            Int.random(in: 1...9999, using: &random), Int.random(in: 1...3, using: &random))
        return [
            "approve_comment": "",
            "approve_date": nil,
            "auto_approve_date": .string(rfc3339(deadline, digits: digits)),
            "cancellation_id": .integer(283_784_000 + serial),
            "cancellation_initiator": .string(initiator),
            "cancellation_reason": ["id": .integer(reason.0), "name": .string(reason.1)],
            "cancellation_reason_message": .string(
                initiator == "CLIENT" ? ozonMessages[Int.random(in: 0..<ozonMessages.count, using: &random)] : ""),
            "cancelled_at": .string(rfc3339(created, digits: digits)),
            "order_date": .string(rfc3339(created - Double(Int.random(in: 7200...108_000, using: &random)), digits: digits)),
            "posting_number": .string(posting),
            "state": ["id": 1, "name": "На согласовании", "state": "ON_APPROVAL"],
            "tpl_integration_type": .string(tplTypes[Int(serial % 3)]),
            "source_id": .integer(Int64.random(in: 10_000_000...99_999_999, using: &random)),
        ]
    }

    /// One Xiaohongshu unaudited canceling package (`max_audit_time` in milliseconds).
    static func redItem(serial: Int64, random: inout SeededGenerator, now: Date) -> JSONValue {
        let left = Int64.random(in: 0...(72 * 3600 * 1000), using: &random)
        let created = Int64(now.timeIntervalSince1970) - Int64.random(in: 60...(48 * 3600), using: &random)
        return [
            "package_id": .string("P" + String(100_000_000_000_000 + serial * 7919)),
            "cancel_time": .integer(created),
            "logistics": "red_auto",
            "cancel_reason": .string(redReasons[Int.random(in: 0..<redReasons.count, using: &random)]),
            "status": "unaudited",
            "max_audit_time": .integer(left),
        ]
    }

    /// An Ozon list page of `items` items starting at `firstSerial`.
    static func ozonPage(firstSerial: Int64, items: Int, random: inout SeededGenerator, now: Date) -> Data {
        let list = (0..<Int64(items)).map { ozonItem(serial: firstSerial + $0, random: &random, now: now) }
        let last = list.last?["cancellation_id"]?.lenientInt64 ?? 0
        let page: JSONValue = ["result": .array(list), "last_id": .integer(last), "counter": .integer(Int64(items))]
        return page.serializedData()
    }

    /// The page that ends an Ozon listing.
    static let ozonEndPage = Data(#"{"counter":0,"last_id":0,"result":[]}"#.utf8)

    /// A Xiaohongshu list page (`page_no` of `totalPages`).
    static func redPage(firstSerial: Int64, items: Int, pageNo: Int, totalPages: Int, random: inout SeededGenerator, now: Date) -> Data {
        let list = (0..<Int64(items)).map { redItem(serial: firstSerial + $0, random: &random, now: now) }
        let page: JSONValue = [
            "success": true, "error_code": 0, "error_msg": "",
            "data": [
                "total_number": .integer(Int64(items * totalPages)), "current_page": .integer(Int64(pageNo)),
                "total_page": .integer(Int64(totalPages)), "page_size": .integer(Int64(items)), "package_list": .array(list),
            ],
        ]
        return page.serializedData()
    }
}

/// Answers marketplace calls with pre-generated pages, in order, per account: no network.
/// Ozon accounts are told apart by `Client-Id`, RED shops by `app-key`.
final class PageTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var pages: [String: [Data]]
    private var cursor: [String: Int] = [:]

    init(pages: [String: [Data]]) { self.pages = pages }

    func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        let account = request.headers.first { $0.name == "Client-Id" || $0.name == "app-key" }?.value ?? ""
        let body: Data? = lock.withLock {
            guard let list = pages[account], !list.isEmpty else { return nil }
            let i = cursor[account, default: 0]
            cursor[account] = (i + 1) % list.count
            return list[i]
        }
        guard let body else { return HTTPResponse(status: 404, body: Data(#"{"code":5,"message":"Not Found"}"#.utf8)) }
        return HTTPResponse(status: 200, headers: [HTTPHeader("Content-Type", "application/json")], body: body)
    }
}
