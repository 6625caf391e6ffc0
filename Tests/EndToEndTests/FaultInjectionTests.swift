import CancelWatch
import Foundation
import MarketSim
import Testing

/// A marketplace fault the simulator plays while `cancelwatch run` watches it.
enum MarketplaceFault: String, CaseIterable, Sendable, CustomStringConvertible {
    case rateLimitWithRetryAfter = "429 with Retry-After"
    case rateLimitWithoutRetryAfter = "429 without Retry-After"
    case serverErrors = "a burst of 503s"
    case slowerThanTheTimeout = "answers slower than the source timeout"
    case malformedJSON = "malformed JSON"
    case truncatedBody = "truncated bodies"
    case droppedConnections = "dropped connections"
    case connectionRefused = "connection refused (simulator stopped, restarted on the same port)"

    var description: String { rawValue }

    var simFault: SimFault.Kind? {
        switch self {
        case .rateLimitWithRetryAfter: .rateLimited(retryAfter: 2)
        case .rateLimitWithoutRetryAfter: .rateLimited(retryAfter: nil)
        case .serverErrors: .serverError(status: 503)
        case .slowerThanTheTimeout: .slow(seconds: 4)
        case .malformedJSON: .malformedJSON
        case .truncatedBody: .truncatedBody
        case .droppedConnections: .dropConnection
        case .connectionRefused: nil
        }
    }
}

/// The real binary against the simulator's fault modes and receivers that fail on
/// purpose. Every scenario ends by comparing, by `id`, the events the receiver
/// acknowledged with the events that were due: none missing, none twice.
@Suite struct FaultInjectionTests {
    /// Every acknowledged id exactly once, and exactly the `due` ones.
    static func expectEachDueEventAcknowledgedOnce(
        _ receiver: WebhookReceiver, due: Set<String>, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let acknowledged = receiver.acknowledged
        let counts = multiplicities(acknowledged)
        let missing = due.subtracting(counts.keys)
        let unexpected = Set(counts.keys).subtracting(due)
        let twice = counts.filter { $0.value > 1 }
        #expect(missing.isEmpty, "due but never acknowledged: \(missing.sorted())", sourceLocation: sourceLocation)
        #expect(unexpected.isEmpty, "acknowledged but not due: \(unexpected.sorted()) \(receiver.allReceipts.filter { unexpected.contains($0.id) }.map(\.body))", sourceLocation: sourceLocation)
        #expect(twice.isEmpty, "acknowledged more than once: \(twice)", sourceLocation: sourceLocation)
    }

    @Test(arguments: MarketplaceFault.allCases)
    func aFailingMarketplaceIsBackedOffReportedDownAndUpAndNoAlertIsLostOrDoubled(_ fault: MarketplaceFault) async throws {
        var options = WatchOptions()
        options.sourceTimeout = fault == .slowerThanTheTimeout ? "1s" : "5s"
        let setup = try WatchSetup(ozon: 3, red: 2, options: options)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let initiallyDue = try setup.dueFirings()
        #expect(initiallyDue.count == 5)
        try await eventually("the first firings: \(setup.receiver.acknowledged)\n\(run.stderr)") {
            Set(setup.receiver.acknowledged).isSuperset(of: initiallyDue)
        }
        let tracked = try setup.pendingOrders()
        #expect(try await setup.statusOrders() == tracked)

        // The fault, on the Ozon account only.
        if let kind = fault.simFault {
            try setup.simulator.addFault(SimFault(kind, marketplace: .ozon, times: nil))
        } else {
            setup.stopSimulator()
        }
        let down = WatchSetup.healthID(source: "ozon", kind: .sourceDown)
        try await eventually("source_down for ozon\n\(run.stderr)", timeout: 90) { setup.receiver.acknowledged.contains(down) }
        let downEvent = try #require(setup.receiver.acknowledgedReceipts.first { $0.id == down })
        // It names the earliest pending deadline at risk: the first Ozon request's.
        let earliest = try #require(setup.scenario.requests.filter { $0.marketplace == .ozon }.map { $0.deadline.date(anchor: Date()) }.min())
        #expect(downEvent.event == "source_down")
        #expect(downEvent.message.contains("earliest pending deadline at risk"), "\(downEvent.message)")
        #expect(downEvent.message.contains(Timestamp.format(earliest)), "\(downEvent.message)")

        // While it fails: no tracked request is dropped, and the poller does not loop hot.
        if fault != .connectionRefused {
            try setup.simulator.resetRequestCounts()
            try await Task.sleep(for: .seconds(8))
            let calls = try setup.simulator.requestCount(path: OzonClient.listPath, account: E2EAccounts.ozonClientID)
            // Backoff: at most a few polls of at most 4 tries each in 8 s; a hot loop makes hundreds.
            #expect(calls <= 24, "\(calls) list calls in 8 s while failing")
        } else {
            try await Task.sleep(for: .seconds(3))
        }
        #expect(try await setup.statusOrders().isSuperset(of: tracked), "a failed poll dropped tracked requests")
        #expect(!setup.receiver.allReceipts.contains { $0.event == "resolved" || $0.event == "expired" })

        // It recovers: source_up, and a request that appeared meanwhile fires.
        if fault.simFault != nil {
            try setup.simulator.clearFaults()
        } else {
            try await setup.restartSimulator()
        }
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-60), deadline: .relative(5 * 3600)))
        let up = WatchSetup.healthID(source: "ozon", kind: .sourceUp)
        var due = try setup.dueFirings().union([down, up])
        if fault == .connectionRefused {
            // Both sources were on the stopped simulator.
            due.formUnion([
                WatchSetup.healthID(source: "red", kind: .sourceDown), WatchSetup.healthID(source: "red", kind: .sourceUp),
            ])
        }
        try await eventually("source_up and the new firing\n\(run.stderr)", timeout: 120) {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(2))  // anything extra would come now
        Self.expectEachDueEventAcknowledgedOnce(setup.receiver, due: due)
        #expect(try await setup.statusOrders() == setup.pendingOrders())
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }

    /// The listing misbehaves without failing: Ozon's `last_id` does not advance, or
    /// either marketplace serves its first page whatever the cursor says. Nothing tracked
    /// may be taken for resolved or vanished, and the poller must not spin.
    @Test(arguments: ["stuck_last_id", "repeated_page"])
    func aListingThatDoesNotAdvanceNeverResolvesOrLosesTrackedRequests(_ faultName: String) async throws {
        var options = WatchOptions()
        // Several pages on each marketplace: Ozon pages are 500 long, RED pages as short as asked.
        options.rules = """
            rule "pending" {
              when     state == "pending" and remaining <= 6h5m
              notify   hook
            }
            """
        let setup = try WatchSetup(ozon: 0, red: 0, options: options)
        defer { setup.shutdown() }
        // 510 Ozon requests (two pages), 7 RED ones on pages of 3.
        let now = Date()
        for plan in SimScenario.bulkRequests(
            marketplace: .ozon, account: E2EAccounts.ozonClientID, count: 510, deadlines: (6 * 3600)...(30 * 3600), window: 40 * 3600,
            seed: 5)
        {
            try setup.simulator.addRequest(plan, anchor: now)
        }
        for i in 0..<7 {
            try setup.simulator.addRequest(
                SimRequestPlan(
                    marketplace: .red, account: E2EAccounts.redAppKey, created: .relative(-600 - Double(i)),
                    deadline: .relative(6 * 3600 + Double(i) * 3600), logistics: "red_auto"), anchor: now)
        }
        var config = try String(contentsOfFile: setup.configPath, encoding: .utf8)
        config = config.replacingOccurrences(of: "logistics: [red_auto],", with: "logistics: [red_auto], page_size: 3,")
        try config.write(toFile: setup.configPath, atomically: true, encoding: .utf8)

        let run = try setup.startRun()
        let all = try setup.pendingOrders()
        #expect(all.count == 517)
        try await eventually("every request tracked\n\(run.stderr)") { (try? await setup.statusOrders()) == all }
        let due = Set(setup.receiver.acknowledged)

        let kind: SimFault.Kind = faultName == "stuck_last_id" ? .stuckLastID : .repeatedPage
        try setup.simulator.addFault(SimFault(kind, times: nil))
        try setup.simulator.resetRequestCounts()
        try await Task.sleep(for: .seconds(8))
        let calls = try setup.simulator.requestCounts.values.reduce(0, +)
        #expect(calls <= 200, "\(calls) marketplace calls in 8 s with a listing that does not advance")
        #expect(try await setup.statusOrders() == all, "requests were dropped while the listing did not advance")
        let closing = setup.receiver.allReceipts.filter { $0.event == "resolved" || $0.event == "expired" }
        #expect(closing.isEmpty, "closed while still pending: \(closing.map(\.message))")

        try setup.simulator.clearFaults()
        try await Task.sleep(for: .seconds(3))
        #expect(try await setup.statusOrders() == all)
        // Only health events (a listing that cannot be trusted may count as a failed poll) and the
        // firings of requests whose time left crossed 6h5m meanwhile (deadlines start at 6h) may have been added.
        let extra = Set(setup.receiver.acknowledged).subtracting(due)
        #expect(
            extra.allSatisfy { id in
                setup.receiver.allReceipts.contains { $0.id == id && ($0.event.hasPrefix("source_") || $0.event == "firing") }
            }, "\(setup.receiver.allReceipts.filter { extra.contains($0.id) }.map { "\($0.event) \($0.message)" })")
        Self.expectEachDueEventAcknowledgedOnce(setup.receiver, due: Set(setup.receiver.acknowledged))
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }

    /// A receiver that fails on purpose: 503s, 429s with Retry-After, answers slower
    /// than the sink's timeout, then down altogether (connection refused) for 20 s. The
    /// deliveries wait in the outbox and all arrive when it comes back, with the same ids.
    @Test(arguments: ["503", "429", "timeout", "down"])
    func aSinkThatIsDownForAWhileGetsEveryEventWhenItComesBackWithTheSameIDs(_ failure: String) async throws {
        var options = WatchOptions()
        options.sinkTimeout = "1s"
        let setup = try WatchSetup(ozon: 3, red: 2, options: options)
        defer { setup.shutdown() }
        switch failure {
        case "503": setup.receiver.setMode(.fail(status: 503, retryAfter: nil))
        case "429": setup.receiver.setMode(.fail(status: 429, retryAfter: 1))
        case "timeout": setup.receiver.setMode(.slow(seconds: 3))
        default: setup.receiver.stop()
        }
        let run = try setup.startRun()
        let due = try setup.dueFirings()
        // Every due event is queued for the sink while it is failing...
        try await eventually("all due events in the outbox\n\(run.stderr)") {
            Set(try setup.outbox().filter { $0.sink == "hook" }.map(\.id)).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(failure == "down" ? 20 : 6))
        #expect(setup.receiver.acknowledged.isEmpty)
        #expect(try setup.outbox().filter { $0.status == "dead" }.isEmpty, "a retryable failure became a dead letter")
        if failure != "down" {
            // ...and retried, with backoff: a handful of tries per event, not a flood.
            let tries = setup.receiver.allReceipts.count
            #expect(tries >= due.count, "\(tries) tries")
            #expect(tries <= due.count * 12, "\(tries) tries for \(due.count) events in a few seconds")
        }
        let triedIDs = Set(setup.receiver.allReceipts.map(\.id))
        #expect(triedIDs.isSubset(of: due))

        if failure == "down" { try setup.receiver.start(port: setup.receiver.port) }
        setup.receiver.setMode(.accept)
        try await eventually("every delivery after the sink came back\n\(run.stderr)", timeout: 90) {
            Set(setup.receiver.acknowledged).isSuperset(of: due)
        }
        try await Task.sleep(for: .seconds(2))
        Self.expectEachDueEventAcknowledgedOnce(setup.receiver, due: due)
        // The same ids as the failed tries.
        #expect(triedIDs.isSubset(of: Set(setup.receiver.acknowledged)))
        try await eventually("the outbox drained") {
            try setup.outbox().allSatisfy { $0.status == "delivered" }
        }
        #expect(try await run.stop() == 0, "\(run.stderr)")
    }
}
