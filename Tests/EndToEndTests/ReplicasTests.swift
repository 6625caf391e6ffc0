import CancelWatch
import Foundation
import MarketSim
import Testing
import TestServers

/// Three `cancelwatch run` replicas with one config share a PostgreSQL state and watch 60
/// accounts of the simulator; one is killed with SIGKILL mid-run. Every alert that falls due
/// reaches the webhook receiver once, no event id is POSTed twice (Alertmanager's cluster
/// promises only at-least-once), and the dead replica's sources are polled again by the
/// others within `lease_ttl` plus one poll interval.
@Suite struct ReplicasTests {
    static let leaseTTL: TimeInterval = 6
    static let pollInterval: TimeInterval = 1
    /// What the machine's load may add to a takeover: 2 cores run the three replicas, the
    /// database, the simulator and the receiver, and other tests of a full run besides (a
    /// full run on a machine also building took 11 s, against 5.6 to 7.2 s alone).
    static let loadMargin: TimeInterval = 5

    @Test func threeReplicasOneKilledMidRunAcknowledgeEveryDueAlertOnceAndTheDeadOnesSourcesArePolledAgainWithinTheLeaseTTLAndAPollInterval()
        async throws
    {
        let world = try await ReplicaWorld.start(ozonAccounts: 30, redAccounts: 30)
        defer { world.shutdown() }
        let instances = ["replica-a", "replica-b", "replica-c"]
        for instance in instances { try world.startReplica(instance) }

        // Every source leased, spread evenly (ceil(60 / 3) each).
        var holders: [String: String] = [:]
        try await eventually("the sources spread 20/20/20 over the three replicas\n\(world.logs())", timeout: 60) {
            holders = try await world.liveHolders()
            let counts = multiplicities(Array(holders.values))
            return holders.count == world.sources.count && Set(counts.keys) == Set(instances) && counts.values.allSatisfy { $0 == 20 }
        }

        // The replica to kill, and requests whose thresholds and deadlines fall due around the
        // kill (most of them its sources'), seen by every source's holder before it (each
        // source polled since they were added).
        let victim = try #require(instances.max { a, b in
            holders.values.filter { $0 == a }.count < holders.values.filter { $0 == b }.count
        })
        let plan = try world.addRequestsAroundTheKill(of: Set(holders.filter { $0.value == victim }.keys))
        try await eventually("every source polled since the requests were added\n\(world.logs())", timeout: 60) {
            let polls = try await world.polls()
            return polls.count == world.sources.count && polls.values.allSatisfy { $0.succeededAt > plan.added.timeIntervalSince1970 }
        }

        // The kill comes while nothing is in flight (everything due so far delivered, nothing
        // due for a while): every POST of this run is then the first of its event, and a
        // second one is a duplicate, never an acknowledgement lost with the dead replica.
        let (killedAt, waited) = try await world.killAtAQuietMoment(victim, plan)
        let orphaned = try await world.holders().filter { $0.value == victim }.map(\.key)
        #expect(orphaned.count == 20, "\(victim) held \(orphaned.count) sources at its death")
        let survivors = Set(instances).subtracting([victim])

        // Each of its sources is polled again, by a survivor under a lease of its own.
        var repolledAt: [String: Date] = [:]
        try await eventually("every source of \(victim) polled again\n\(world.logs())", timeout: 60) {
            let holders = try await world.holders()
            for (source, poll) in try await world.polls() where orphaned.contains(source) && repolledAt[source] == nil {
                if let holder = holders[source], survivors.contains(holder), poll.polledAt > killedAt.timeIntervalSince1970 {
                    repolledAt[source] = Date(timeIntervalSince1970: poll.polledAt)
                }
            }
            return repolledAt.count == orphaned.count
        }
        // `status` names the survivor holding each of them now.
        let status = try await world.status()
        for source in orphaned {
            let line = status.split(separator: "\n").first { $0.hasPrefix("  \(source): ") }.map(String.init) ?? "no line"
            #expect(survivors.contains { line.contains("; held by \($0) for ") }, "\(source): \(line)")
        }
        let bound = Self.leaseTTL + Self.pollInterval + Self.loadMargin
        for (source, at) in repolledAt.sorted(by: { $0.key < $1.key }) {
            #expect(at.timeIntervalSince(killedAt) <= bound, "\(source) polled again \(at.timeIntervalSince(killedAt)) s after the kill")
        }

        // The run goes on until every deadline has passed and every due event is acknowledged.
        let due = world.dueEvents()
        let lastDeadline = world.lastDeadline
        try await eventually("every due event acknowledged\n\(world.logs())", timeout: lastDeadline.timeIntervalSinceNow + 30) {
            lastDeadline < Date() && due.areAcknowledged(Set(world.receiver.acknowledged))
        }
        for instance in survivors.sorted() {
            let status = try await world.replicas[instance]!.stop()
            #expect(status == 0, "\(instance) did not stop cleanly\n\(world.replicas[instance]!.stderr)")
        }

        // Nothing can be sent any more: every POST the receiver got is counted.
        let receipts = world.receiver.allReceipts
        let repeated = multiplicities(receipts.map(\.id)).filter { $0.value > 1 }
        #expect(repeated.isEmpty, "event ids POSTed more than once: \(repeated.sorted { $0.key < $1.key })")
        for receipt in receipts {
            #expect(receipt.headers["idempotency-key"] == receipt.id, "\(receipt.id): \(receipt.headers)")
            #expect((200..<300).contains(receipt.status))
        }
        let acknowledged = Set(world.receiver.acknowledged)
        #expect(due.areAcknowledged(acknowledged), "due but never acknowledged: \(due.missing(from: acknowledged))")
        let unexpected = acknowledged.subtracting(due.all)
        #expect(unexpected.isEmpty, "acknowledged but never due: \(unexpected.sorted())")
        let closedTwice = due.closings.filter { $0.ids.intersection(acknowledged).count > 1 }
        #expect(closedTwice.isEmpty, "requests both resolved and expired: \(closedTwice.map { $0.ids.sorted() })")
        let outbox = try await world.outbox()
        #expect(outbox.values.allSatisfy { $0 == "delivered" }, "\(outbox.filter { $0.value != "delivered" })")
        #expect(Set(outbox.keys) == acknowledged)

        // What the test is about happened: thresholds and deadlines of the dead replica's
        // sources fell due while nobody held them.
        let gaps = world.timed.filter { orphaned.contains($0.source) }.map { request -> (threshold: Bool, deadline: Bool) in
            let gap = killedAt...repolledAt[request.source]!
            return (gap.contains(request.deadline.addingTimeInterval(-ReplicaWorld.threshold)), gap.contains(request.deadline))
        }
        let takeovers = repolledAt.values.map { $0.timeIntervalSince(killedAt) }.sorted()
        let timing = "killed \(killedAt.timeIntervalSince(plan.killAfter)) s after the earliest moment (waited for: \(waited)), taken over after \(takeovers.first ?? 0)–\(takeovers.last ?? 0) s"
        #expect(gaps.contains { $0.threshold }, "no threshold of \(victim)'s sources fell due between the kill and the takeover: \(timing)")
        #expect(gaps.contains { $0.deadline }, "no deadline of \(victim)'s sources passed between the kill and the takeover: \(timing)")
    }
}

/// The world of ``ReplicasTests``: a database of the test process's PostgreSQL cluster, a
/// simulator of `SimScenario.fleet` accounts plus requests timed to fall due during the run,
/// a webhook receiver, one config, and the replicas started on it.
final class ReplicaWorld: @unchecked Sendable {
    /// The rule fires this long before each deadline.
    static let threshold: TimeInterval = 20
    static let rule = "due-soon"

    /// One source: the config's name, its marketplace and its simulator account.
    struct Source: Sendable {
        var name: String
        var marketplace: SimMarketplace
        var account: String
    }

    /// A request timed to fall due during the run.
    struct Timed: Sendable {
        var source: String
        var info: SimRequestInfo
        var deadline: Date { info.deadline }
    }

    let directory: URL
    let cluster: PostgresCluster
    let database: String
    let simulator: MarketSimulator
    let receiver: WebhookReceiver
    let sources: [Source]
    /// Whole seconds; every timed instant (threshold or deadline) is an even number of seconds after it.
    let start: Date
    private let lock = NSLock()
    private var started: [String: RunningCommand] = [:]

    private init(
        directory: URL, cluster: PostgresCluster, database: String, simulator: MarketSimulator, receiver: WebhookReceiver,
        sources: [Source], start: Date
    ) {
        (self.directory, self.cluster, self.database, self.simulator) = (directory, cluster, database, simulator)
        (self.receiver, self.sources, self.start) = (receiver, sources, start)
    }

    deinit { shutdown() }

    /// The simulator with `ozonAccounts` + `redAccounts` fleet accounts (a few requests days
    /// away each); the config and rules written.
    static func start(ozonAccounts: Int, redAccounts: Int) async throws -> ReplicaWorld {
        let (cluster, database) = try await offPool {
            let cluster = try PostgresCluster.shared()
            return (cluster, try cluster.createDatabase())
        }
        let scenario = SimScenario.fleet(ozonAccounts: ozonAccounts, redAccounts: redAccounts, pendingPerAccount: 2, seed: 14)
        let sources =
            scenario.ozonAccounts.map { Source(name: $0.name, marketplace: .ozon, account: $0.clientID) }
            + scenario.redAccounts.map { Source(name: $0.name, marketplace: .red, account: $0.appKey) }
        let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 1).rounded(.up))
        let simulator = try MarketSimulator(scenario: scenario, clock: SystemClock())
        let world = ReplicaWorld(
            directory: try temporaryDirectory(), cluster: cluster, database: database, simulator: simulator,
            receiver: try WebhookReceiver(), sources: sources, start: start)
        try world.writeConfig(sourcesYAML: scenario.configSourcesYAML(baseURL: simulator.baseURL, pollInterval: "1s"))
        return world
    }

    /// A pending request of `source` whose deadline is `deadline`, asked an hour before it.
    private static func plan(_ source: Source, deadline: Date) -> SimRequestPlan {
        SimRequestPlan(
            marketplace: source.marketplace, account: source.account, created: .absolute(deadline.addingTimeInterval(-3600)),
            deadline: .absolute(deadline))
    }

    private func writeConfig(sourcesYAML: String) throws {
        let rules = directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        try """
            rule "\(Self.rule)" {
              when     remaining <= \(Int(Self.threshold))s
              severity critical
              notify   hook
              message  "{{source}} {{order}} auto-approves in {{remaining}}"
            }
            """.write(to: rules.appendingPathComponent("main.rules"), atomically: true, encoding: .utf8)
        try """
            state: \(cluster.url(database: database))
            lease_ttl: \(Int(ReplicasTests.leaseTTL))s
            rules: [./rules]
            timezone: UTC
            \(sourcesYAML)
            sinks:
              - {name: hook, kind: webhook, url: "\(receiver.url)", timeout: 3s, retry: {initial_delay: 300ms, max_delay: 2s}}
            health: {notify: [hook], down_after: 2}
            """.write(to: configURL, atomically: true, encoding: .utf8)
    }

    var configURL: URL { directory.appendingPathComponent("cancelwatch.yaml") }

    /// Starts `cancelwatch run` as replica `instance`.
    @discardableResult
    func startReplica(_ instance: String) throws -> RunningCommand {
        let command = try RunningCommand(
            ["run", "--config", configURL.path], directory: directory, environment: ["CANCELWATCH_INSTANCE": instance])
        lock.withLock { started[instance] = command }
        return command
    }

    var replicas: [String: RunningCommand] { lock.withLock { started } }

    /// What `cancelwatch status` prints for this config.
    func status() async throws -> String {
        let result = try await RunningCommand.run(["status", "--config", configURL.path], directory: directory, timeout: 30)
        guard result.status == 0 else { throw CommandFailure("status failed: \(result.stderr)") }
        return result.stdout
    }

    /// The end of each replica's log, for failure messages.
    func logs() -> String {
        replicas.sorted { $0.key < $1.key }.map { instance, command in
            "--- \(instance)\(command.process.isRunning ? "" : " (exited)"):\n"
                + command.stderr.split(separator: "\n").suffix(15).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Kills every replica still running (SIGKILL), stops the simulator and the receiver.
    func shutdown() {
        for command in replicas.values where command.process.isRunning {
            kill(command.process.processIdentifier, SIGKILL)
            command.process.waitUntilExit()
        }
        simulator.shutdown()
        receiver.stop()
    }

    // MARK: The schedule

    /// When the requests around the kill were added, and the kill's earliest moment.
    struct KillPlan {
        var added: Date
        var killAfter: Date
    }

    /// Adds requests that fall due from 2 s after the kill's earliest moment on: for the
    /// sources in `dense`, every 2 s up to 24 s after it, half of them a threshold and the
    /// other half a deadline by turns, so that any 2 s from that moment on hold both; for the
    /// others, a threshold and a deadline 6 s apart. A threshold's request has its deadline 20 s later; a
    /// deadline's is already inside the threshold, so it fires when first seen. Nothing else
    /// falls due meanwhile: the kill's earliest moment, 8 s or more from now (time to poll and
    /// deliver on a loaded machine), starts 2 s with nothing due.
    func addRequestsAroundTheKill(of dense: Set<String>) throws -> KillPlan {
        let now = Date()
        let killAfter = start.addingTimeInterval(2 * (now.timeIntervalSince(start) / 2 + 4).rounded(.up))
        let denseOrder = Dictionary(uniqueKeysWithValues: dense.sorted().enumerated().map { ($1, $0) })
        for (index, source) in sources.enumerated() {
            let steps = denseOrder[source.name] == nil ? [0, 3] : Array(0..<12)
            let index = denseOrder[source.name] ?? index
            for step in steps {
                let instant = killAfter.addingTimeInterval(2 + 2 * Double(step))
                let deadline = (index + step) % 2 == 0 ? instant : instant.addingTimeInterval(Self.threshold)
                try simulator.addRequest(Self.plan(source, deadline: deadline))
            }
        }
        return KillPlan(added: now, killAfter: killAfter)
    }

    /// Every request timed to fall due during the run (deadlines within the hour).
    var timed: [Timed] {
        let sourceOf = Dictionary(uniqueKeysWithValues: sources.map { ("\($0.marketplace):\($0.account)", $0.name) })
        return simulator.requests().filter { $0.deadline.timeIntervalSince(start) < 3600 }.map {
            Timed(source: sourceOf["\($0.marketplace):\($0.account)"]!, info: $0)
        }
    }

    var lastDeadline: Date { timed.map(\.deadline).max() ?? start }

    /// Instants at which something falls due: each timed request's threshold and deadline.
    var instants: [Date] { timed.flatMap { [$0.deadline.addingTimeInterval(-Self.threshold), $0.deadline] }.sorted() }

    /// What must reach the receiver: each timed request's `firing` at its threshold, and at
    /// its deadline one of its `resolved` or `expired` (which one depends on whether the
    /// holder's timer at the deadline or a poll that sees the marketplace's auto-approval
    /// comes first).
    struct DueEvents {
        var firings: [(id: String, at: Date)] = []
        var closings: [(ids: Set<String>, at: Date)] = []

        /// Whether every event due at or before `until` is among `acknowledged`.
        func areAcknowledged(_ acknowledged: Set<String>, until: Date = .distantFuture) -> Bool {
            firings.allSatisfy { $0.at > until || acknowledged.contains($0.id) }
                && closings.allSatisfy { $0.at > until || !$0.ids.isDisjoint(with: acknowledged) }
        }

        func missing(from acknowledged: Set<String>) -> [String] {
            (firings.map(\.id).filter { !acknowledged.contains($0) }
                + closings.filter { $0.ids.isDisjoint(with: acknowledged) }.map { $0.ids.sorted().joined(separator: " or ") }).sorted()
        }

        /// Every id that may be acknowledged.
        var all: Set<String> { Set(firings.map(\.id)).union(closings.flatMap(\.ids)) }
    }

    /// The due events of every timed request.
    func dueEvents() -> DueEvents {
        var due = DueEvents()
        for request in timed {
            let id = WatchSetup.requestID(of: request.info)
            func event(_ kind: AlertEvent.Kind) -> String {
                AlertEvent.makeID(source: request.source, request: id, rule: Self.rule, kind: kind, occurrence: 1)
            }
            due.firings.append((event(.firing), request.deadline.addingTimeInterval(-Self.threshold)))
            due.closings.append(([event(.expired), event(.resolved)], request.deadline))
        }
        return due
    }

    // MARK: The kill

    /// Waits for a moment after `plan.killAfter` when everything due so far is acknowledged
    /// and recorded delivered, nothing falls due for half a second, and `instance` renewed
    /// all its leases within the last 3 poll intervals (so that they outlast it by more
    /// than 2 s), and kills `instance` then (SIGKILL); returns the instant just
    /// before the signal, once the process is gone.
    func killAtAQuietMoment(_ instance: String, _ plan: KillPlan) async throws -> (at: Date, waited: String) {
        guard let command = replicas[instance] else { throw CommandFailure("no replica \(instance)") }
        let instants = instants
        let due = dueEvents()
        let limit = Date().addingTimeInterval(60)
        // Why each look found no quiet moment, for a kill that comes late.
        var waits: [String: Int] = [:]
        while Date() < limit {
            let now = Date()
            let next = instants.first { $0 > now } ?? .distantFuture
            if now > plan.killAfter && next.timeIntervalSince(now) > 0.8 {
                let (undelivered, renewed) = try await deliveredAndRenewed(by: instance)
                if !due.areAcknowledged(Set(receiver.acknowledged), until: now) {
                    waits["due events unacknowledged", default: 0] += 1
                } else if undelivered > 0 {
                    waits["outbox entries undelivered", default: 0] += 1
                } else if renewed.map({ $0 < ReplicasTests.leaseTTL - 3 * ReplicasTests.pollInterval }) ?? true {
                    waits["leases not renewed", default: 0] += 1
                } else if next.timeIntervalSinceNow > 0.5 {
                    let killedAt = Date()
                    try await command.killHard()
                    return (killedAt, waits.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)×" }.joined(separator: ", "))
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CommandFailure("no quiet moment to kill \(instance) in 60 s (\(waits))\n\(logs())")
    }

    // MARK: The database

    private func query(_ sql: String) async throws -> [[String]] {
        let (cluster, database) = (cluster, database)
        return try await offPool { try cluster.query(sql, database: database) }.map {
            $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// Every lease's holder, by source, lapsed or not.
    func holders() async throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try await query("SELECT convert_from(source, 'UTF8'), holder FROM leases").map { ($0[0], $0[1]) })
    }

    /// The holder of each lease that has not lapsed, by source.
    func liveHolders() async throws -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: try await query(
                "SELECT convert_from(source, 'UTF8'), holder FROM leases WHERE expires_at > extract(epoch FROM clock_timestamp())"
            ).map { ($0[0], $0[1]) })
    }

    /// When each source's last poll started and last succeeded (seconds since 1970, 0 for never).
    func polls() async throws -> [String: (polledAt: Double, succeededAt: Double)] {
        var polls: [String: (polledAt: Double, succeededAt: Double)] = [:]
        for row in try await query(
            "SELECT convert_from(source, 'UTF8'), COALESCE(last_poll_at, 0), COALESCE(last_success_at, 0) FROM source_health")
        {
            polls[row[0]] = (Double(row[1]) ?? 0, Double(row[2]) ?? 0)
        }
        return polls
    }

    /// How many outbox entries are not delivered, and how long the first of `instance`'s
    /// leases to lapse has left (by the database's clock; nil when it holds none).
    private func deliveredAndRenewed(by instance: String) async throws -> (undelivered: Int, renewed: Double?) {
        let rows = try await query(
            """
            SELECT (SELECT count(*) FROM outbox WHERE status <> 'delivered'),
                (SELECT min(expires_at) - extract(epoch FROM clock_timestamp()) FROM leases WHERE holder = '\(instance)')
            """)
        guard let row = rows.first, row.count == 2, let undelivered = Int(row[0]) else {
            throw CommandFailure("unexpected answer: \(rows)")
        }
        return (undelivered, Double(row[1]))
    }

    /// Each outbox entry's status, by event id.
    func outbox() async throws -> [String: String] {
        Dictionary(
            try await query("SELECT convert_from(event_id, 'UTF8'), status FROM outbox").map { ($0[0], $0[1]) },
            uniquingKeysWith: { $0 + "," + $1 })
    }
}
