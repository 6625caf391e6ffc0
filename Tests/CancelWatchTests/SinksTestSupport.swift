import CancelWatch
import Foundation

/// Events for sink tests: a fixed instant, an Ozon request with an hour and five minutes left.
enum SinkTestEvents {
    /// 2026-11-23T19:01:00Z
    static let occurredAt = Date(timeIntervalSince1970: 1_795_460_460)

    static func request(reason: String = "Передумал покупать", order: String = "0123-0001-1") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "91001", order: order, state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: reason, reasonID: "501", createdAt: occurredAt.addingTimeInterval(-7200),
            deadline: occurredAt.addingTimeInterval(3900), raw: ["cancellation_id": 91001, "state": ["state": "ON_APPROVAL"]])
    }

    static func firing(
        id: String = "3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7", severity: Severity = .critical, message: String = "ozon 0123-0001-1 auto-approves in 1h 05m",
        reason: String = "Передумал покупать", order: String = "0123-0001-1", kind: AlertEvent.Kind = .firing
    ) -> AlertEvent {
        AlertEvent(
            id: id, kind: kind, rule: "final-hour", severity: severity, source: "ozon-main", marketplace: .ozon,
            request: request(reason: reason, order: order), occurredAt: occurredAt, message: message, sinks: ["test"])
    }

    static func sourceDown() -> AlertEvent {
        AlertEvent(
            id: "aa00", kind: .sourceDown, rule: "", severity: .critical, source: "red-shop", marketplace: .xiaohongshu,
            request: nil, occurredAt: occurredAt, message: "5 polls failed", sinks: ["test"])
    }
}
