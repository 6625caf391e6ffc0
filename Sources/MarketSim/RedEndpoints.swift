import CancelWatch
import Foundation
import HTTPServing

/// The Xiaohongshu Ark API's canceling-package methods.
extension SimState {
    static let redListPath = "/ark/open_api/v0/packages/canceling/list"
    static let redAuditPath = "/ark/open_api/v0/packages/canceling/audit"

    static func redFailure(_ code: Int64, _ message: String, status: Int = 200) -> ServerResponse {
        .json(status: status, value: redError(code, message))
    }

    func handleRed(_ request: ServerRequest, now: Date, faults: AppliedFaults) -> ServerResponse {
        let isList = request.path == Self.redListPath
        guard isList || request.path == Self.redAuditPath else {
            return Self.redFailure(10404, "api not found: \(request.path)", status: 404)
        }
        guard let appKey = request.header("app-key"), !appKey.isEmpty,
            let timestamp = request.header("timestamp"), !timestamp.isEmpty,
            let sign = request.header("sign"), !sign.isEmpty
        else { return Self.redFailure(10001, "缺少必要参数 app-key, timestamp 或 sign (missing app-key, timestamp or sign)") }
        guard let account = redAccounts.first(where: { $0.appKey == appKey }) else {
            return Self.redFailure(10002, "app-key 不存在 (unknown app-key)")
        }
        guard let seconds = Int64(timestamp) else {
            return Self.redFailure(10001, "timestamp 格式错误 (timestamp must be Unix seconds)")
        }
        let expected = RedSigner.sign(
            path: request.path, query: request.query.map { ($0.name, $0.value) }, appKey: appKey, timestamp: timestamp,
            appSecret: account.appSecret)
        guard sign.lowercased() == expected else { return Self.redFailure(10003, "签名错误 (signature mismatch)") }
        if let tolerance = redTimestampTolerance, abs(Double(seconds) - now.timeIntervalSince1970) > tolerance {
            return Self.redFailure(10004, "timestamp 已过期 (timestamp too far from server time)")
        }
        if isList {
            guard request.method == "GET" else { return Self.redFailure(10404, "api not found: \(request.method) \(request.path)", status: 404) }
            return redList(request, account: account, now: now, faults: faults)
        }
        guard request.method == "PUT" || request.method == "POST" else {
            return Self.redFailure(10404, "api not found: \(request.method) \(request.path)", status: 404)
        }
        return redAudit(request, account: account, now: now)
    }

    private func redList(_ request: ServerRequest, account: SimRedAccount, now: Date, faults: AppliedFaults) -> ServerResponse {
        func invalid(_ message: String) -> ServerResponse { Self.redFailure(10005, "参数错误 (invalid parameter): \(message)") }
        let logistics = request.queryValue("logistics") ?? "red_auto"
        guard ["red_auto", "red_box"].contains(logistics) else { return invalid("logistics must be red_auto or red_box") }
        let status = request.queryValue("status")
        if let status, !["unaudited", "audited"].contains(status) { return invalid("status must be unaudited or audited") }
        var pageNo: Int64 = 1
        if let text = request.queryValue("page_no") {
            guard let value = Int64(text), value >= 1 else { return invalid("page_no must be an integer from 1") }
            pageNo = value
        }
        var pageSize: Int64 = 50
        if let text = request.queryValue("page_size") {
            guard let value = Int64(text), (1...100).contains(value) else { return invalid("page_size must be from 1 to 100") }
            pageSize = value
        }
        var startTime: Int64? = nil
        var endTime: Int64? = nil
        if let text = request.queryValue("start_time") {
            guard let value = Int64(text) else { return invalid("start_time must be Unix seconds") }
            startTime = value
        }
        if let text = request.queryValue("end_time") {
            guard let value = Int64(text) else { return invalid("end_time must be Unix seconds") }
            endTime = value
        }

        let matching = visible(.red, account: account.appKey, now: now).filter { entry in
            guard entry.record.logistics == logistics else { return false }
            let cancelTime = SimDates.unixSeconds(entry.record.created)
            if let startTime, cancelTime < startTime { return false }
            if let endTime, cancelTime > endTime { return false }
            switch status {
            case "unaudited": return entry.phase == .pending
            case "audited": return entry.phase != .pending
            default: return true
            }
        }.sorted {
            ($0.record.created, $0.record.packageID, $0.record.simID) < ($1.record.created, $1.record.packageID, $1.record.simID)
        }
        let total = Int64(matching.count)
        let totalPages = (total + pageSize - 1) / pageSize
        let servedPage = faults.repeatedPage ? 1 : pageNo
        let from = Int((servedPage - 1) * pageSize)
        let slice = from < matching.count ? Array(matching[from..<min(matching.count, from + Int(pageSize))]) : []
        var items = slice.map { redItem($0.record, phase: $0.phase, account: account, now: now) }
        if faults.unknownFields {
            items = items.map { item in
                guard case .object(var members) = item else { return item }
                members["sim_unknown_field"] = ["nested": true]
                members["sim_extra_code"] = 42
                return .object(members)
            }
        }
        var data: [String: JSONValue] = [
            "total_number": .integer(total),
            "current_page": .integer(pageNo),
            "total_page": .integer(totalPages),
            "page_size": .integer(pageSize),
            "package_list": .array(items),
        ]
        var envelope: [String: JSONValue] = ["success": true, "error_code": 0, "error_msg": "", "data": nil]
        if faults.unknownFields {
            data["sim_unknown_data_field"] = "新字段"
            envelope["request_id"] = .string("sim-\(SimDates.unixSeconds(now))")
        }
        envelope["data"] = .object(data)
        return .json(value: .object(envelope))
    }

    func redItem(_ r: SimRecord, phase: SimRecord.Phase, account: SimRedAccount, now: Date) -> JSONValue {
        var item: [String: JSONValue] = [
            "package_id": .string(r.packageID),
            "cancel_time": .integer(SimDates.unixSeconds(r.created)),
            "logistics": .string(r.logistics),
            "cancel_reason": .string(r.reason),
        ]
        switch phase {
        case .decided(let outcome, let at, let automatic):
            item["status"] = "audited"
            item["audit_time"] = .integer(SimDates.unixSeconds(at))
            item["audit_result"] = outcome == .approved ? "canceled" : "refused"
            let stock = automatic ? StockTexts.redAutoCanceledReason : outcome == .approved ? StockTexts.redCanceledReason : StockTexts.redRefusedReason
            item["audit_reason"] = .string(automatic ? stock : (r.resolution?.comment ?? stock))
        default:
            let left = max(0, r.deadline.timeIntervalSince(now))
            let value = account.auditTimeUnit == .milliseconds ? (left * 1000).rounded(.down) : left.rounded(.down)
            item["status"] = "unaudited"
            item["max_audit_time"] = .integer(Int64(value))
        }
        return .object(item)
    }

    private func redAudit(_ request: ServerRequest, account: SimRedAccount, now: Date) -> ServerResponse {
        func invalid(_ message: String) -> ServerResponse { Self.redFailure(10005, "参数错误 (invalid parameter): \(message)") }
        guard let body = try? JSONParser.parse(request.body), let object = body.objectValue else {
            return invalid("body must be a JSON object")
        }
        guard let packageID = object["package_id"]?.stringValue else { return invalid("package_id is required") }
        guard let resultText = object["audit_result"]?.stringValue, ["canceled", "refused"].contains(resultText),
            let outcome = SimOutcome(text: resultText)
        else { return invalid("audit_result must be canceled or refused") }
        let failure = decide(
            where: { $0.marketplace == .red && $0.account == account.appKey && $0.packageID == packageID },
            outcome: outcome, comment: object["audit_reason"]?.stringValue, now: now)
        switch failure {
        case .notFound:
            return Self.redFailure(-2000101, "包裹 \(packageID) 不存在或不属于该商家 (package unknown or not the seller's)")
        case .notPending:
            return Self.redFailure(-2000202, "包裹 \(packageID) 状态错误，已审核 (wrong status: already audited)")
        case .deadlinePassed:
            return Self.redFailure(-2000202, "包裹 \(packageID) 审核时间已过 (wrong status: the audit time is over)")
        case nil: break
        }
        return .json(value: ["success": true, "error_code": 0, "error_msg": "", "data": nil])
    }
}
