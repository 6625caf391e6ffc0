import CancelWatch
import Foundation

/// A scenario or control request that cannot be used, naming where and which field.
public struct SimScenarioError: Error, Sendable, CustomStringConvertible {
    /// The file, or `request body` for the control endpoints.
    public var source: String
    /// The field's path, e.g. `requests[3].deadline`; empty for the whole document.
    public var field: String
    public var message: String

    public init(source: String, field: String, message: String) {
        self.source = source
        self.field = field
        self.message = message
    }

    public var description: String { field.isEmpty ? "\(source): \(message)" : "\(source): \(field): \(message)" }
}

/// Reads the members of one JSON object strictly, with field paths for errors.
struct JSONFields {
    let members: [String: JSONValue]
    let path: String
    let source: String

    init(_ value: JSONValue, path: String, source: String) throws(SimScenarioError) {
        guard case .object(let members) = value else {
            throw SimScenarioError(source: source, field: path, message: "expected an object, got \(value.typeName)")
        }
        self.members = members
        self.path = path
        self.source = source
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ message: String) -> SimScenarioError {
        SimScenarioError(source: source, field: fieldPath(key), message: message)
    }

    /// Refuses keys outside `allowed`, suggesting nothing but naming the allowed ones.
    func onlyKeys(_ allowed: Set<String>) throws(SimScenarioError) {
        for key in members.keys.sorted() where !allowed.contains(key) {
            throw error(key, "unknown field (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func present(_ key: String) -> Bool {
        if let value = members[key], !value.isNull { return true }
        return false
    }

    func string(_ key: String) throws(SimScenarioError) -> String? {
        guard let value = members[key], !value.isNull else { return nil }
        switch value {
        case .string(let s): return s
        case .integer(let i): return String(i)
        default: throw error(key, "expected a string, got \(value.typeName)")
        }
    }

    func requiredString(_ key: String) throws(SimScenarioError) -> String {
        guard let s = try string(key) else { throw error(key, "required") }
        return s
    }

    func int(_ key: String) throws(SimScenarioError) -> Int64? {
        guard let value = members[key], !value.isNull else { return nil }
        guard let i = value.lenientInt64 else { throw error(key, "expected an integer, got \(value.serialized())") }
        return i
    }

    func bool(_ key: String) throws(SimScenarioError) -> Bool? {
        guard let value = members[key], !value.isNull else { return nil }
        guard let b = value.boolValue else { throw error(key, "expected true or false, got \(value.serialized())") }
        return b
    }

    /// A duration in seconds: a number, or text like `2s`, `1500ms`, `1m30s`.
    func seconds(_ key: String) throws(SimScenarioError) -> TimeInterval? {
        guard let value = members[key], !value.isNull else { return nil }
        if let d = value.lenientDouble, value.stringValue == nil { return d }
        if let s = value.stringValue, let d = DurationText.parse(s) { return d }
        throw error(key, "expected a duration like \"2s\" or a number of seconds, got \(value.serialized())")
    }

    /// An instant: an offset (`"-30m"`, `"+2m"`, `"90s"`, `"now"`, or seconds as a number)
    /// from the anchor, or an absolute RFC 3339 time.
    func time(_ key: String) throws(SimScenarioError) -> SimTime? {
        guard let value = members[key], !value.isNull else { return nil }
        if let time = Self.parseTime(value) { return time }
        throw error(
            key, "expected an offset like \"+2m\" or \"-30m\", a number of seconds, or an RFC 3339 time, got \(value.serialized())")
    }

    func requiredTime(_ key: String) throws(SimScenarioError) -> SimTime {
        guard let t = try time(key) else { throw error(key, "required") }
        return t
    }

    func object(_ key: String) throws(SimScenarioError) -> JSONFields? {
        guard let value = members[key], !value.isNull else { return nil }
        return try JSONFields(value, path: fieldPath(key), source: source)
    }

    func array(_ key: String) throws(SimScenarioError) -> [JSONValue] {
        guard let value = members[key], !value.isNull else { return [] }
        guard let items = value.arrayValue else { throw error(key, "expected an array, got \(value.typeName)") }
        return items
    }

    static func parseTime(_ value: JSONValue) -> SimTime? {
        switch value {
        case .integer(let i): return .relative(Double(i))
        case .number(let d): return .relative(d)
        case .string(let text):
            let s = text.trimmingCharacters(in: .whitespaces)
            if s == "now" || s == "0" { return .relative(0) }
            if let date = Timestamp.parse(s) { return .absolute(date) }
            var rest = Substring(s)
            var sign = 1.0
            if rest.first == "-" {
                sign = -1
                rest = rest.dropFirst()
            } else if rest.first == "+" {
                rest = rest.dropFirst()
            }
            guard let d = DurationText.parse(String(rest)) else { return nil }
            return .relative(sign * d)
        default: return nil
        }
    }
}

extension SimScenario {
    /// Reads a scenario file (JSON; see `parse(_:source:)` for the format).
    public static func load(path: String) throws(SimScenarioError) -> SimScenario {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SimScenarioError(source: path, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(data)
        } catch {
            throw SimScenarioError(source: path, field: "", message: error.description)
        }
        return try parse(value, source: path)
    }

    /// Reads a scenario from JSON:
    ///
    /// ```json
    /// {
    ///   "seed": 42,
    ///   "ozon_accounts": [{"name": "ozon-main", "client_id": "100001", "api_key": "k1"}],
    ///   "red_accounts": [{"name": "red-shop", "app_key": "ak", "app_secret": "s",
    ///                     "max_audit_time_unit": "milliseconds"}],
    ///   "requests": [
    ///     {"marketplace": "ozon", "account": "100001", "created": "-30m", "deadline": "+2m",
    ///      "resolve": {"at": "+90s", "outcome": "approved", "comment": "ok"},
    ///      "initiator": "CLIENT", "reason": "Покупатель передумал", "reason_id": 352},
    ///     {"marketplace": "red", "account": "ak", "logistics": "red_box", "created": "-10m",
    ///      "deadline": "+50m", "reason": "用户不想要了", "vanish_at": "+5m"}
    ///   ],
    ///   "generate": [{"marketplace": "ozon", "account": "100001", "count": 600,
    ///                 "deadline_from": "+30h", "deadline_to": "+70h", "window": "72h"}]
    /// }
    /// ```
    ///
    /// Times are offsets from the simulator's start (`"-30m"`, `"+2m"`, `"90s"`, a number of
    /// seconds) or absolute RFC 3339 times. Unknown fields are errors.
    public static func parse(_ value: JSONValue, source: String) throws(SimScenarioError) -> SimScenario {
        let root = try JSONFields(value, path: "", source: source)
        try root.onlyKeys(["seed", "ozon_accounts", "red_accounts", "requests", "generate"])
        var scenario = SimScenario()
        if let seed = try root.int("seed") { scenario.seed = UInt64(bitPattern: seed) }
        for (index, item) in try root.array("ozon_accounts").enumerated() {
            let fields = try JSONFields(item, path: "ozon_accounts[\(index)]", source: source)
            try fields.onlyKeys(["name", "client_id", "api_key"])
            let clientID = try fields.requiredString("client_id")
            scenario.ozonAccounts.append(
                SimOzonAccount(
                    name: try fields.string("name") ?? "ozon-\(clientID)", clientID: clientID,
                    apiKey: try fields.requiredString("api_key")))
        }
        for (index, item) in try root.array("red_accounts").enumerated() {
            let fields = try JSONFields(item, path: "red_accounts[\(index)]", source: source)
            try fields.onlyKeys(["name", "app_key", "app_secret", "max_audit_time_unit"])
            let appKey = try fields.requiredString("app_key")
            var unit = SimAuditTimeUnit.milliseconds
            if let text = try fields.string("max_audit_time_unit") {
                guard let parsed = SimAuditTimeUnit(rawValue: text) else {
                    throw fields.error("max_audit_time_unit", "expected milliseconds or seconds, got \"\(text)\"")
                }
                unit = parsed
            }
            scenario.redAccounts.append(
                SimRedAccount(
                    name: try fields.string("name") ?? "red-\(appKey)", appKey: appKey,
                    appSecret: try fields.requiredString("app_secret"), auditTimeUnit: unit))
        }
        if scenario.ozonAccounts.isEmpty && scenario.redAccounts.isEmpty {
            throw SimScenarioError(source: source, field: "", message: "no accounts: add ozon_accounts or red_accounts")
        }
        for (index, item) in try root.array("requests").enumerated() {
            let fields = try JSONFields(item, path: "requests[\(index)]", source: source)
            scenario.requests.append(
                try requestPlan(fields, ozonAccounts: scenario.ozonAccounts, redAccounts: scenario.redAccounts))
        }
        for (index, item) in try root.array("generate").enumerated() {
            let fields = try JSONFields(item, path: "generate[\(index)]", source: source)
            try fields.onlyKeys(["marketplace", "account", "count", "deadline_from", "deadline_to", "window", "logistics"])
            let (marketplace, account) = try marketplaceAndAccount(
                fields, ozonAccounts: scenario.ozonAccounts, redAccounts: scenario.redAccounts)
            guard let count = try fields.int("count"), count >= 0, count <= 100_000 else {
                throw fields.error("count", "required, from 0 to 100000")
            }
            guard case .relative(let from) = try fields.requiredTime("deadline_from") else {
                throw fields.error("deadline_from", "must be an offset like \"+30h\"")
            }
            guard case .relative(let to) = try fields.requiredTime("deadline_to"), to >= from else {
                throw fields.error("deadline_to", "must be an offset no earlier than deadline_from")
            }
            let window = try fields.seconds("window") ?? 48 * 3600
            let logistics = try fields.string("logistics") ?? "red_auto"
            guard ["red_auto", "red_box"].contains(logistics) else {
                throw fields.error("logistics", "expected red_auto or red_box, got \"\(logistics)\"")
            }
            scenario.requests += bulkRequests(
                marketplace: marketplace, account: account, count: Int(count), deadlines: from...to, window: window,
                logistics: logistics, seed: scenario.seed &+ UInt64(index + 1))
        }
        return scenario
    }

    static func marketplaceAndAccount(
        _ fields: JSONFields, ozonAccounts: [SimOzonAccount], redAccounts: [SimRedAccount]
    ) throws(SimScenarioError) -> (SimMarketplace, String) {
        var marketplace: SimMarketplace? = nil
        if let text = try fields.string("marketplace") {
            guard let m = SimMarketplace(rawValue: text.lowercased()) else {
                throw fields.error("marketplace", "expected ozon or red, got \"\(text)\"")
            }
            marketplace = m
        }
        let account = try fields.string("account")
        if marketplace == nil, let account {
            if ozonAccounts.contains(where: { $0.clientID == account }) { marketplace = .ozon }
            if redAccounts.contains(where: { $0.appKey == account }) { marketplace = .red }
        }
        if marketplace == nil {
            if fields.present("package_id") || fields.present("logistics") {
                marketplace = .red
            } else if ozonAccounts.isEmpty {
                marketplace = .red
            } else if redAccounts.isEmpty {
                marketplace = .ozon
            }
        }
        guard let marketplace else { throw fields.error("marketplace", "required (ozon or red)") }
        let known = marketplace == .ozon ? ozonAccounts.map(\.clientID) : redAccounts.map(\.appKey)
        if let account {
            guard known.contains(account) else {
                let what = marketplace == .ozon ? "Ozon client_id" : "RED app_key"
                throw fields.error("account", "no \(what) \"\(account)\" among the accounts (\(known.joined(separator: ", ")))")
            }
            return (marketplace, account)
        }
        guard known.count == 1 else {
            throw fields.error(
                "account", known.isEmpty ? "no \(marketplace.rawValue) account is defined" : "required: there are several accounts")
        }
        return (marketplace, known[0])
    }

    /// One request object (scenario `requests[i]`, or the body of `POST /_sim/requests`).
    static func requestPlan(
        _ fields: JSONFields, ozonAccounts: [SimOzonAccount], redAccounts: [SimRedAccount]
    ) throws(SimScenarioError) -> SimRequestPlan {
        try fields.onlyKeys([
            "marketplace", "account", "created", "deadline", "resolve", "vanish_at", "reason", "reason_id", "initiator",
            "reason_message", "cancellation_id", "posting_number", "order_date", "fraction_digits", "package_id", "logistics",
        ])
        let (marketplace, account) = try marketplaceAndAccount(fields, ozonAccounts: ozonAccounts, redAccounts: redAccounts)
        var plan = SimRequestPlan(
            marketplace: marketplace, account: account, created: try fields.time("created") ?? .relative(0),
            deadline: try fields.requiredTime("deadline"))
        if let resolve = try fields.object("resolve") {
            try resolve.onlyKeys(["at", "outcome", "comment"])
            let text = try resolve.requiredString("outcome")
            guard let outcome = SimOutcome(text: text) else {
                throw resolve.error("outcome", "expected approved, rejected, canceled or refused, got \"\(text)\"")
            }
            plan.resolution = SimResolution(
                at: try resolve.requiredTime("at"), outcome: outcome, comment: try resolve.string("comment"))
        }
        plan.vanishAt = try fields.time("vanish_at")
        plan.reason = try fields.string("reason")
        plan.reasonID = try fields.int("reason_id")
        if let initiator = try fields.string("initiator") {
            guard ["CLIENT", "OZON", "SYSTEM", "DELIVERY", "SELLER"].contains(initiator) else {
                throw fields.error("initiator", "expected CLIENT, OZON, SYSTEM, DELIVERY or SELLER, got \"\(initiator)\"")
            }
            plan.initiator = initiator
        }
        plan.reasonMessage = try fields.string("reason_message")
        plan.cancellationID = try fields.int("cancellation_id")
        plan.postingNumber = try fields.string("posting_number")
        plan.orderDate = try fields.time("order_date")
        if let digits = try fields.int("fraction_digits") {
            guard (0...9).contains(digits) else { throw fields.error("fraction_digits", "expected 0 to 9") }
            plan.fractionDigits = Int(digits)
        }
        plan.packageID = try fields.string("package_id")
        if let logistics = try fields.string("logistics") {
            guard ["red_auto", "red_box"].contains(logistics) else {
                throw fields.error("logistics", "expected red_auto or red_box, got \"\(logistics)\"")
            }
            plan.logistics = logistics
        }
        return plan
    }
}
