import Foundation

/// How events are kept in the outbox: the event's Codable form (the webhook body's) in the
/// state file's form (dates to the microsecond as seconds since 1970, the request with every
/// member), its sinks in a column of their own.
/// Every attempt, the first and any after a restart, is made from the stored row.
extension AlertEvent {
    func outboxText() throws(StoreError) -> String {
        do {
            return try JSONValueEncoder(form: .stateFile).encodeText(self)
        } catch {
            throw StoreError("event \(id): \(codingProblem(error))")
        }
    }

    /// The event an outbox row holds: `text` in the event's Codable form with its `sinks`
    /// beside it, or a row written before schema 2 (its own form, sinks inside).
    init(outboxText text: String, sinks: String?) throws(StoreError) {
        let json: JSONValue
        do throws(JSONParseError) {
            json = try JSONParser.parse(text)
        } catch {
            throw StoreError("not JSON: \(error.description)")
        }
        guard json["version"] != nil else {
            try self.init(schema1Storage: json)
            return
        }
        do {
            self = try JSONValueDecoder().decode(AlertEvent.self, from: json)
        } catch {
            throw StoreError("an outbox event does not read: \(codingProblem(error))")
        }
        self.sinks = (sinks.flatMap { try? JSONParser.parse($0) }?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// The group of `members` for `sink` as its outbox row keeps it (its text and sinks), and
    /// as that row reads back: the first attempt sends what a restart would.
    static func storedGroup(of members: [AlertEvent], sink: String, at now: Date) throws(StoreError)
        -> (event: AlertEvent, text: String, sinks: String)
    {
        let group = AlertEvent.group(members, sink: sink, at: now)
        let text = try group.outboxText()
        let sinks = outboxSinks(group.sinks)
        return (try AlertEvent(outboxText: text, sinks: sinks), text, sinks)
    }

    static func outboxSinks(_ sinks: [String]) -> String { JSONValue.array(sinks.map { .string($0) }).serialized() }

    /// An outbox row as schema 1 wrote it: its own member names, dates as seconds since 1970.
    private init(schema1Storage storage: JSONValue) throws(StoreError) {
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

/// How a request is kept in the state file's `requests` row: its Codable form with the
/// raw object left out (the row keeps it whole in a column of its own) and dates to the
/// microsecond.
extension CancellationRequest {
    func storedFields() throws(StoreError) -> String {
        do {
            return try JSONValueEncoder(form: .stateFile, omitsRawObjects: true).encodeText(self)
        } catch {
            throw StoreError("request \(key): \(codingProblem(error))")
        }
    }

    init(storedFields text: String, raw: RawObject) throws(StoreError) {
        do {
            guard case .object(var members) = try JSONParser.parse(text) else { throw StoreError("not a JSON object") }
            members[CodingKeys.rawObject.stringValue] = .object([:])
            self = try JSONValueDecoder().decode(CancellationRequest.self, from: .object(members))
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(codingProblem(error))
        }
        rawObject = raw
    }
}

/// What an encoding or decoding error says, with where (`request.deadline: not a finite instant`).
private func codingProblem(_ error: any Error) -> String {
    let context: (path: [any CodingKey], text: String)
    switch error {
    case EncodingError.invalidValue(_, let c): context = (c.codingPath, c.debugDescription)
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.keyNotFound(_, let c),
        DecodingError.dataCorrupted(let c):
        context = (c.codingPath, c.debugDescription)
    case let error as JSONParseError: return "not JSON: \(error.description)"
    default: return "\(error)"
    }
    let path = context.path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    return path.isEmpty ? context.text : "\(path): \(context.text)"
}
