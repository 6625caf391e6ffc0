import Foundation
import Logging

/// Runs rule tests on a virtual clock (``ManualClock``): the real ``Ledger`` over the
/// compiled rules and a temporary SQLite state store, each scripted moment of the
/// marketplace's pending list applied as a poll would be.
///
/// The clock jumps from one instant to the next: the ledger's next timer (`nextWake`)
/// or the next scripted appearance or change, whichever is first. At an instant where both
/// fall, what is due by time goes first, then the change. Without an `end`, a test runs
/// until no request is pending and nothing is scripted (and, with digests, no event is
/// expected later).
public struct RuleTestRunner: Sendable {
    /// A safety stop: no test takes more steps than this.
    public var maximumSteps = 200_000

    public init() {}

    /// Reads the test file at `path`, loads the rule files it names, and runs every test case.
    public func run(path: String) async -> RuleTestFileResult {
        let (file, fileDiagnostics, source) = RuleTestParser.load(path: path)
        let renderer = RuleDiagnosticRenderer(sources: source.map { [$0] } ?? [])
        guard let file else {
            return RuleTestFileResult(path: path, diagnostics: fileDiagnostics, renderedDiagnostics: renderer.render(fileDiagnostics), cases: [])
        }
        let loader = RuleLoader(knownSinks: file.sinks, timeZone: file.timeZone)
        let loaded = loader.load(paths: file.ruleFiles)
        var rendered = loaded.renderDiagnostics()
        guard let ruleSet = loaded.ruleSet else {
            return RuleTestFileResult(path: path, diagnostics: loaded.diagnostics, renderedDiagnostics: rendered, cases: [])
        }
        let names = Self.unknownRuleDiagnostics(file, ruleSet: ruleSet)
        if !names.isEmpty {
            rendered += renderer.render(names)
            return RuleTestFileResult(path: path, diagnostics: loaded.diagnostics + names, renderedDiagnostics: rendered, cases: [])
        }
        var results: [RuleTestCaseResult] = []
        for testCase in file.cases {
            results.append(await run(testCase, rules: ruleSet.rules, digests: ruleSet.digests, timeZone: file.timeZone))
        }
        return RuleTestFileResult(path: path, diagnostics: loaded.diagnostics, renderedDiagnostics: rendered, cases: results)
    }

    /// Errors for rule names in `expect` and `only_rules` that no loaded rule has (digest
    /// names for expected digests; either in `only_rules`).
    static func unknownRuleDiagnostics(_ file: RuleTestFile, ruleSet: RuleSet) -> [RuleDiagnostic] {
        let rules = ruleSet.rules.map(\.name)
        let digests = ruleSet.digests.map(\.name)
        var diagnostics: [RuleDiagnostic] = []
        func check(_ name: String, at place: RuleSourceLocation, among known: [String], noun: String) {
            guard !known.contains(name) else { return }
            let hint = NameSuggester.closest(to: name, among: known)
            diagnostics.append(
                RuleDiagnostic(
                    severity: .error, path: place.path, line: place.line, column: place.column, length: name.unicodeScalars.count,
                    message: "no \(noun) named '\(name)' in the rule files"
                        + (hint.map { "; did you mean '\($0)'?" } ?? " (\(noun)s: \(known.joined(separator: ", ")))"),
                    suggestion: hint))
        }
        for testCase in file.cases {
            for expectation in testCase.expected {
                if expectation.kind == .digest {
                    check(expectation.rule, at: expectation.ruleLocation, among: digests, noun: "digest")
                } else {
                    check(expectation.rule, at: expectation.ruleLocation, among: rules, noun: "rule")
                }
            }
            for (name, place) in zip(testCase.onlyRules ?? [], testCase.onlyRuleLocations) {
                check(name, at: place, among: rules + digests, noun: digests.isEmpty ? "rule" : "rule or digest")
            }
        }
        return diagnostics
    }

    /// Runs one test case over `rules` and `digests` and compares what happened with what it expects.
    public func run(
        _ testCase: RuleTestCase, rules: [AlertRule], digests: [CompiledDigest] = [], timeZone: TimeZone
    ) async -> RuleTestCaseResult {
        var result = RuleTestCaseResult(testCase: testCase, timeZone: timeZone)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // SQLite blocks (fsync): its calls out of the ledger run on the shared blocking thread.
        let storeThread = BlockingWorkers.shared
        let store: SQLiteStateStore
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let path = directory.appendingPathComponent("state.sqlite").path
            store = try await storeThread.run { () throws(StoreError) in try SQLiteStateStore(path: path) }
        } catch {
            result.error = "cannot create a temporary state store: \(error)"
            return result
        }

        let clock = ManualClock(testCase.start)
        let logs = CollectedLogs()
        let logger = Logger(label: "cancelwatch.test") { _ in CollectingLogHandler(logs: logs) }
        let ledger: Ledger
        do {
            // A test says when a request vanished: no second listing is needed to believe it.
            ledger = try await storeThread.run { () throws(StoreError) in
                try Ledger(rules: rules, digests: digests, store: store, clock: clock, logger: logger, vanishConfirmations: 1)
            }
        } catch {
            result.error = "cannot read the temporary state store: \(error)"
            return result
        }
        var collected = await ledger.start()

        // Everything scripted, in time order: appearances before changes at the same instant.
        enum Step {
            case appear(CancellationRequest)
            case change(RuleTestChange)
        }
        let script: [(at: Date, step: Step)] =
            (testCase.requests.map { ($0.appearsAt, Step.appear($0.request)) } + testCase.changes.map { ($0.at, Step.change($0)) })
            .enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }.map { ($0.element.0, $0.element.1) }
        var world: [String: [RequestKey: CancellationRequest]] = [:]
        var next = 0
        var steps = 0
        // Digests come every day: without an `end`, only while something may still happen.
        let lastExpected = testCase.expected.map(\.at).max() ?? testCase.start
        while true {
            let timer = await ledger.nextWake
            let scripted = next < script.count ? script[next].at : nil
            guard let instant = [timer, scripted].compactMap({ $0 }).min() else { break }
            if let end = testCase.end, instant > end { break }
            if testCase.end == nil, !digests.isEmpty, scripted == nil, instant > lastExpected,
                await ledger.statusCounts()[.pending, default: 0] == 0
            {
                break
            }
            steps += 1
            if steps > maximumSteps {
                result.error = "stopped after \(maximumSteps) steps of the virtual clock; give the test an 'end'"
                break
            }
            if instant > clock.now() { clock.advance(to: instant) }
            collected += await ledger.processDue()

            let now = clock.now()
            var polled = Set<String>()
            var outcomes: [RequestKey: OutcomeLookup] = [:]
            while next < script.count, script[next].at <= now {
                switch script[next].step {
                case .appear(let request):
                    world[request.source, default: [:]][request.key] = request
                    polled.insert(request.source)
                case .change(let change):
                    let source = change.request.source
                    polled.insert(source)
                    switch change.action {
                    case .resolve(let outcome):
                        world[source]?[change.request] = nil
                        outcomes[change.request] = .resolved(outcome, at: outcome == .vanished ? nil : now)
                    case .update(let fields):
                        if var request = world[source]?[change.request] {
                            for field in fields { field.apply(to: &request, now: now) }
                            world[source]?[change.request] = request
                        }
                    }
                }
                next += 1
            }
            for source in polled.sorted() {
                let listed = (world[source] ?? [:]).values.sorted { $0.key < $1.key }
                let listing = PollResult.Listing(
                    snapshot: PendingSnapshot(requests: listed), outcomes: outcomes.filter { $0.key.source == source }, listedAt: now)
                let marketplace = listed.first?.marketplace ?? Marketplace.ozon
                collected += await ledger.apply(
                    PollResult(source: source, marketplace: marketplace, startedAt: now, listing: listing)).events
            }
        }
        if let problem = logs.errors.first, result.error == nil { result.error = "the ledger reported: \(problem)" }

        var actual = collected.map(RuleTestActualEvent.init)
        if let only = testCase.onlyRules { actual = actual.filter { only.contains($0.rule) } }
        result.compare(expected: testCase.expected, actual: actual)
        return result
    }
}

/// One event the ledger produced during a test.
public struct RuleTestActualEvent: Sendable, Hashable {
    /// `occurredAt` to the nearest second (a `<` threshold turns 1 ms after its instant).
    public var at: Date
    public var kind: AlertEvent.Kind
    public var rule: String
    public var request: RequestKey
    /// For a `digest`: the requests it lists, in its order.
    public var listed: [RequestKey]
    public var outcome: Outcome?
    public var message: String

    public init(
        at: Date, kind: AlertEvent.Kind, rule: String, request: RequestKey, listed: [RequestKey] = [], outcome: Outcome?,
        message: String
    ) {
        self.at = at
        self.kind = kind
        self.rule = rule
        self.request = request
        self.listed = listed
        self.outcome = outcome
        self.message = message
    }

    init(_ event: AlertEvent) {
        self.init(
            at: Date(timeIntervalSince1970: event.occurredAt.timeIntervalSince1970.rounded()), kind: event.kind, rule: event.rule,
            request: RequestKey(source: event.source, id: event.request?.id ?? ""), listed: event.listed.map(\.key),
            outcome: event.outcome, message: event.message)
    }

    /// Whether this event is the one `expectation` describes.
    func satisfies(_ expectation: RuleTestExpectation) -> Bool {
        at == expectation.at && kind == expectation.kind && rule == expectation.rule && request == expectation.request
            && (expectation.listed == nil || listed == expectation.listed)
            && (expectation.outcome == nil || outcome == expectation.outcome)
            && (expectation.messageContains.map { message.contains($0) } ?? true)
    }
}

/// What one test case came to.
public struct RuleTestCaseResult: Sendable {
    public var name: String
    public var location: RuleSourceLocation
    public var start: Date
    public var timeZone: TimeZone
    /// Expected events that happened, with the event that matched each.
    public var matched: [(expected: RuleTestExpectation, actual: RuleTestActualEvent)] = []
    /// Expected but not produced.
    public var missing: [RuleTestExpectation] = []
    /// Produced but not expected.
    public var unexpected: [RuleTestActualEvent] = []
    /// The run itself went wrong (not a mismatch).
    public var error: String?

    init(testCase: RuleTestCase, timeZone: TimeZone) {
        self.name = testCase.name
        self.location = testCase.location
        self.start = testCase.start
        self.timeZone = timeZone
    }

    public var passed: Bool { error == nil && missing.isEmpty && unexpected.isEmpty }

    /// Pairs each expectation with the first unused event that satisfies it.
    mutating func compare(expected: [RuleTestExpectation], actual: [RuleTestActualEvent]) {
        var unused = actual
        for expectation in expected {
            if let index = unused.firstIndex(where: { $0.satisfies(expectation) }) {
                matched.append((expectation, unused.remove(at: index)))
            } else {
                missing.append(expectation)
            }
        }
        unexpected = unused
    }

    /// The failure as people read it: every event in time order, `-` for expected but not
    /// produced, `+` for produced but not expected; nothing when the case passed.
    public func report() -> String {
        guard !passed else { return "" }
        var out = "FAIL \(location): \"\(name)\"\n"
        if let error { out += "  error: \(error)\n" }
        guard !missing.isEmpty || !unexpected.isEmpty else { return out }
        out += "  events (times in \(timeZone.identifier); - expected but not produced, + produced but not expected):\n"
        struct Row {
            var sign: String
            var at: Date
            var kind: String
            var rule: String
            var request: String
            var note: String
            var order: Int
        }
        var rows: [Row] = []
        func request(_ key: RequestKey) -> String { "\(key.source)/\(key.id)" }
        // A digest shows what it lists.
        func listing(_ keys: [RequestKey]?) -> String { "[" + (keys ?? []).map(request).joined(separator: ", ") + "]" }
        func kind(_ kind: AlertEvent.Kind, _ outcome: Outcome?) -> String {
            outcome.map { "\(kind.rawValue) (\($0.rawValue))" } ?? kind.rawValue
        }
        for (i, pair) in matched.enumerated() {
            let shown = pair.actual.kind == .digest ? listing(pair.actual.listed) : request(pair.actual.request)
            rows.append(Row(sign: " ", at: pair.actual.at, kind: kind(pair.actual.kind, pair.actual.outcome), rule: pair.actual.rule, request: shown, note: "", order: i))
        }
        for (i, e) in missing.enumerated() {
            var note = "line \(e.location.line)"
            if let text = e.messageContains { note += ", message containing \"\(text)\"" }
            let shown = e.kind == .digest ? listing(e.listed) : request(e.request)
            rows.append(Row(sign: "-", at: e.at, kind: kind(e.kind, e.outcome), rule: e.rule, request: shown, note: note, order: 100_000 + i))
        }
        for (i, a) in unexpected.enumerated() {
            // Show the message when an expectation nearly matched (same instant, kind, rule, request).
            let near = missing.contains { $0.at == a.at && $0.kind == a.kind && $0.rule == a.rule && $0.request == a.request }
            rows.append(
                Row(sign: "+", at: a.at, kind: kind(a.kind, a.outcome), rule: a.rule,
                    request: a.kind == .digest ? listing(a.listed) : request(a.request),
                    note: near ? "message: \"\(a.message)\"" : "", order: 200_000 + i))
        }
        rows.sort { ($0.at, $0.order) < ($1.at, $1.order) }
        let times = rows.map { RuleTestTime.format($0.at, timeZone: timeZone) }
        let offsets = rows.map { RuleTestTime.offset($0.at.timeIntervalSince(start)) }
        let offsetWidth = offsets.map(\.count).max() ?? 0
        let kindWidth = rows.map(\.kind.count).max() ?? 0
        let ruleWidth = rows.map(\.rule.count).max() ?? 0
        let requestWidth = rows.map(\.request.count).max() ?? 0
        func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        for (i, row) in rows.enumerated() {
            var line = "  \(row.sign) \(times[i])  \(pad(offsets[i], offsetWidth))  \(pad(row.kind, kindWidth))  \(pad(row.rule, ruleWidth))  "
            line += row.note.isEmpty ? row.request : "\(pad(row.request, requestWidth))  (\(row.note))"
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        out += "  \(missing.count) expected event\(missing.count == 1 ? "" : "s") missing, \(unexpected.count) unexpected\n"
        return out
    }
}

/// What one test file came to.
public struct RuleTestFileResult: Sendable {
    public var path: String
    /// Problems in the test file or the rule files it names (warnings included).
    public var diagnostics: [RuleDiagnostic]
    /// The diagnostics as `cancelwatch check` prints them.
    public var renderedDiagnostics: String
    public var cases: [RuleTestCaseResult]

    /// The test file or its rules have errors: nothing ran.
    public var hasErrors: Bool { diagnostics.contains(where: \.isError) }
    public var passed: Bool { !hasErrors && cases.allSatisfy(\.passed) }
    /// Expected events checked over all cases.
    public var eventsChecked: Int { cases.reduce(0) { $0 + $1.matched.count + $1.missing.count } }
}

/// Error-level log messages of a test run (a store failure would silently drop events).
final class CollectedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var errors: [String] { lock.withLock { stored } }
    func add(_ message: String) { lock.withLock { stored.append(message) } }
}

struct CollectingLogHandler: LogHandler {
    let logs: CollectedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .error

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if event.level >= .error { logs.add(event.message.description) }
    }
}
