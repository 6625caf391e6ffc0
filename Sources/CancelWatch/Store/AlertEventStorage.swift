import Foundation

/// How events are kept in the outbox: every field, so that a delivery after a
/// restart sends exactly what the first attempt would have.
extension AlertEvent {
    var storageJSON: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "kind": .string(kind.rawValue), "rule": .string(rule), "severity": .string(severity.rawValue),
            "source": .string(source), "marketplace": .string(marketplace.rawValue),
            "outcome": outcome.map { .string($0.rawValue) } ?? .null,
            "occurred_at": .number(occurredAt.timeIntervalSince1970), "message": .string(message),
            "sinks": .array(sinks.map { .string($0) }),
        ]
        if let r = request {
            object["request"] = [
                "marketplace": .string(r.marketplace.rawValue), "source": .string(r.source), "id": .string(r.id),
                "order": .string(r.order), "state": .string(r.state.rawValue), "raw_state": .string(r.rawState),
                "initiator": .string(r.initiator), "reason": .string(r.reason), "reason_id": .string(r.reasonID),
                "logistics": .string(r.logistics), "created_at": r.createdAt.map { .number($0.timeIntervalSince1970) } ?? .null,
                "deadline": .number(r.deadline.timeIntervalSince1970), "raw": r.raw,
            ]
        }
        return .object(object)
    }

    init(storage: JSONValue) throws(StoreError) {
        func string(_ key: String, in value: JSONValue = storage) throws(StoreError) -> String {
            guard let text = value[key]?.stringValue else { throw StoreError("an outbox event lacks '\(key)'") }
            return text
        }
        guard let kind = Kind(rawValue: try string("kind")), let severity = Severity(rawValue: try string("severity")),
            let marketplace = Marketplace(rawValue: try string("marketplace")),
            let occurred = storage["occurred_at"]?.lenientDouble
        else { throw StoreError("an outbox event has values this cancelwatch does not know") }
        var request: CancellationRequest?
        if let r = storage["request"], case .object = r {
            guard let m = Marketplace(rawValue: try string("marketplace", in: r)), let state = RequestState(rawValue: try string("state", in: r)),
                let deadline = r["deadline"]?.lenientDouble
            else { throw StoreError("an outbox event's request has values this cancelwatch does not know") }
            request = CancellationRequest(
                marketplace: m, source: try string("source", in: r), id: try string("id", in: r), order: try string("order", in: r),
                state: state, rawState: try string("raw_state", in: r), initiator: try string("initiator", in: r),
                reason: try string("reason", in: r), reasonID: try string("reason_id", in: r), logistics: try string("logistics", in: r),
                createdAt: r["created_at"]?.lenientDouble.map { Date(timeIntervalSince1970: $0) },
                deadline: Date(timeIntervalSince1970: deadline), raw: r["raw"] ?? .null)
        }
        self.init(
            id: try string("id"), kind: kind, rule: try string("rule"), severity: severity, source: try string("source"),
            marketplace: marketplace, request: request, outcome: storage["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:)),
            occurredAt: Date(timeIntervalSince1970: occurred), message: try string("message"),
            sinks: storage["sinks"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
