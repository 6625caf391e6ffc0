import Foundation

/// A rule test file (`*.test.yaml`) as data: the rule files it tests, the time zone its
/// times are written in, and its test cases. `RuleTestParser` reads it; `RuleTestRunner`
/// runs it on a virtual clock.
public struct RuleTestFile: Sendable {
    /// The test file's path as given.
    public var path: String
    /// The rule files (or directories of `*.rules` files), resolved against the test file's directory.
    public var ruleFiles: [String]
    /// The zone local times in the file are read in, and printed in.
    public var timeZone: TimeZone
    /// Sink names `notify` may use; nil: not checked.
    public var sinks: Set<String>?
    public var cases: [RuleTestCase]

    public init(path: String, ruleFiles: [String], timeZone: TimeZone, sinks: Set<String>?, cases: [RuleTestCase]) {
        self.path = path
        self.ruleFiles = ruleFiles
        self.timeZone = timeZone
        self.sinks = sinks
        self.cases = cases
    }
}

/// One test: requests that appear and change on a virtual clock, and the events expected.
public struct RuleTestCase: Sendable {
    public var name: String
    /// Where the case starts in the test file.
    public var location: RuleSourceLocation
    /// The virtual clock's first instant.
    public var start: Date
    /// The last instant simulated (events at it still count); nil: until nothing more can happen.
    public var end: Date?
    public var requests: [RuleTestRequest]
    public var changes: [RuleTestChange]
    public var expected: [RuleTestExpectation]
    /// Only events of these rules are compared; nil: all rules.
    public var onlyRules: [String]?
    /// Where `only_rules` names each rule, for unknown-rule errors.
    public var onlyRuleLocations: [RuleSourceLocation]

    public init(
        name: String, location: RuleSourceLocation, start: Date, end: Date? = nil, requests: [RuleTestRequest] = [],
        changes: [RuleTestChange] = [], expected: [RuleTestExpectation] = [], onlyRules: [String]? = nil,
        onlyRuleLocations: [RuleSourceLocation] = []
    ) {
        self.name = name
        self.location = location
        self.start = start
        self.end = end
        self.requests = requests
        self.changes = changes
        self.expected = expected
        self.onlyRules = onlyRules
        self.onlyRuleLocations = onlyRuleLocations
    }
}

/// A request as the marketplace lists it, from the instant it first appears.
public struct RuleTestRequest: Sendable {
    /// When it first appears in the pending list.
    public var appearsAt: Date
    public var request: CancellationRequest
    public var location: RuleSourceLocation

    public init(appearsAt: Date, request: CancellationRequest, location: RuleSourceLocation) {
        self.appearsAt = appearsAt
        self.request = request
        self.location = location
    }
}

/// A field a test sets on a request, when it appears or in a later change.
public enum RuleTestField: Sendable, Hashable {
    case order(String)
    /// One of the request's details, by its member name (`CancellationRequest.Details.textNames`).
    case detail(String, String)
    case created(Date)
    case deadline(Date)
    /// Time left, counted from the instant the request appears or the change happens.
    case remaining(TimeInterval)
    case raw(JSONValue)

    /// Applies the field to `request`; `now` is when it is observed (for `remaining`).
    public func apply(to request: inout CancellationRequest, now: Date) {
        switch self {
        case .order(let v): request.order = v
        case .detail(let name, let v): request.details.setText(named: name, to: v)
        case .created(let v): request.createdAt = v
        case .deadline(let v): request.deadline = v
        case .remaining(let v): request.deadline = now.addingTimeInterval(v)
        case .raw(let v): request.raw = v
        }
    }
}

/// Something that happens to a request after it appeared.
public struct RuleTestChange: Sendable {
    public enum Action: Sendable, Hashable {
        /// It leaves the pending list: approved, rejected, or gone without a trace (vanished).
        case resolve(Outcome)
        /// It stays pending with these fields changed (a new deadline, say).
        case update([RuleTestField])
    }

    public var at: Date
    public var request: RequestKey
    public var action: Action
    public var location: RuleSourceLocation

    public init(at: Date, request: RequestKey, action: Action, location: RuleSourceLocation) {
        self.at = at
        self.request = request
        self.action = action
        self.location = location
    }
}

/// An event a test expects at an instant.
public struct RuleTestExpectation: Sendable, Hashable {
    public var at: Date
    public var kind: AlertEvent.Kind
    public var rule: String
    /// The request it is about; for a `digest`, none (empty source and id).
    public var request: RequestKey
    /// For `digest`: the requests it must list, in its order; nil for every other kind.
    public var listed: [RequestKey]?
    /// For `resolved` (how it closed) and `action` (what the answer asks for): the outcome it must carry; nil: any.
    public var outcome: Outcome?
    /// Text the event's message must contain; nil: any.
    public var messageContains: String?
    public var location: RuleSourceLocation
    /// Where the rule name is written, for unknown-rule errors.
    public var ruleLocation: RuleSourceLocation

    public init(
        at: Date, kind: AlertEvent.Kind, rule: String, request: RequestKey, listed: [RequestKey]? = nil, outcome: Outcome? = nil,
        messageContains: String? = nil, location: RuleSourceLocation, ruleLocation: RuleSourceLocation? = nil
    ) {
        self.at = at
        self.kind = kind
        self.rule = rule
        self.request = request
        self.listed = listed
        self.outcome = outcome
        self.messageContains = messageContains
        self.location = location
        self.ruleLocation = ruleLocation ?? location
    }
}
