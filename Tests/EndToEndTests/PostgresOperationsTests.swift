import CancelWatch
import Foundation
import MarketSim
import Testing
import TestServers

/// Operating replicas on PostgreSQL with the real binary: `once`, `run` and `status` on the
/// same database, the replica's instance id on every metric and log line, `/healthz` while
/// the database is away, and a clear error when it cannot be reached at start.
@Suite struct PostgresOperationsTests {
    static let password = "e2e-Db-Pa55word"

    /// A scenario serving `/metrics` whose state is a fresh database of the test process's cluster.
    static func postgresSetup(ozon: Int, red: Int) async throws -> (setup: WatchSetup, database: String, cluster: PostgresCluster) {
        let (url, database, cluster) = try await offPool {
            let cluster = try PostgresCluster.shared()
            let database = try cluster.createDatabase()
            return (cluster.url(database: database), database, cluster)
        }
        var options = WatchOptions()
        options.state = url
        options.listen = true
        return (try WatchSetup(ozon: ozon, red: red, options: options), database, cluster)
    }

    @Test func onceRunAndStatusShareTheDatabaseAndStatusShowsWhatTheReplicasSaw() async throws {
        let (setup, database, cluster) = try await Self.postgresSetup(ozon: 3, red: 2)
        defer { setup.shutdown() }

        let once = try await setup.capture(["once", "--config", setup.configPath])
        #expect(once.status == 0, "\(once.stderr)")
        #expect(try await setup.statusOrders() == setup.pendingOrders())

        let run = try setup.startRun(environment: ["CANCELWATCH_INSTANCE": "replica-e2e-1"])
        let metricsURL = try await run.metricsURL()
        let due = try setup.dueFirings()
        try await eventually("every firing acknowledged\n\(run.stderr)") { Set(setup.receiver.acknowledged).isSuperset(of: due) }
        try await eventually("the outbox delivered") { try await setup.capture(["status", "--config", setup.configPath]).stdout.contains("  hook: ok\n") }
        #expect(try await httpGet(metricsURL + "/healthz") == (200, "ok\n"))
        let exposition = try await httpGet(metricsURL + "/metrics").body
        let samples = exposition.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(samples.contains { $0.hasPrefix(#"cancelwatch_polls_total{instance="replica-e2e-1",source="ozon"}"#) }, "\(exposition)")
        for sample in samples { #expect(sample.contains(#"{instance="replica-e2e-1""#), "\(sample)") }
        #expect(try await run.stop() == 0)
        let watching = try #require(run.stderr.split(separator: "\n").first { $0.contains(" info watching ") })
        #expect(watching.contains("instance=replica-e2e-1"), "\(watching)")
        #expect(watching.contains("state=postgres://cancelwatch@127.0.0.1:\(cluster.port)/\(database)?sslmode=disable"), "\(watching)")
        // Nothing of a state file: no file, no lock beside the config.
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.directory.path).filter { $0.hasPrefix("state") }.isEmpty)

        // What `status` shows is the database's, as it shows a state file's.
        var status = try await setup.capture(["status", "--config", setup.configPath])
        #expect(status.status == 0, "\(status.stderr)")
        for order in try setup.pendingRequests().map(\.order) { #expect(status.stdout.contains(order), "\(status.stdout)") }
        #expect(status.stdout.contains("\n5 pending\n"), "\(status.stdout)")
        #expect(status.stdout.contains("\n  ozon: ok, last success ") && status.stdout.contains("\n  red: ok, last success "), "\(status.stdout)")
        #expect(!status.stdout.contains("held by"), "\(status.stdout)")

        // Where sources are leased, each source's line says which replica holds it.
        let now = Date().timeIntervalSince1970
        _ = try await offPool {
            try cluster.query(
                """
                INSERT INTO leases VALUES (convert_to('ozon', 'UTF8'), 'replica-e2e-1', \(now + 600), nextval('lease_tokens')),
                    (convert_to('red', 'UTF8'), 'replica-e2e-2', \(now - 120), nextval('lease_tokens'))
                """, database: database)
        }
        status = try await setup.capture(["status", "--config", setup.configPath])
        let lines = status.stdout.split(separator: "\n")
        let ozon = try #require(lines.first { $0.hasPrefix("  ozon: ") })
        let red = try #require(lines.first { $0.hasPrefix("  red: ") })
        #expect(ozon.contains("; held by replica-e2e-1 for 9m"), "\(ozon)")
        #expect(red.contains("; held by no replica (replica-e2e-2's lease ended 2m"), "\(red)")
    }

    @Test func aDatabaseUnreachableAtStartIsOneLineNamingItsHostAndPortAndExit1() async throws {
        let port = try freeLoopbackPort()
        let hold = try #require(PortHold(port: port))
        defer { withExtendedLifetime(hold) {} }
        var options = WatchOptions()
        options.state = "postgres://watcher:${CW_E2E_DB_PASSWORD}@127.0.0.1:\(port)/cw?sslmode=disable"
        let setup = try WatchSetup(options: options)
        defer { setup.shutdown() }
        for command in ["run", "once", "status"] {
            let result = try await setup.capture(
                [command, "--config", setup.configPath], environment: ["CW_E2E_DB_PASSWORD": Self.password], timeout: 30)
            #expect(result.status == 1, "\(command): \(result.stderr)")
            let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(
                errors == [
                    "error: state database postgres://watcher@127.0.0.1:\(port)/cw?sslmode=disable: cannot connect to 127.0.0.1:\(port): Connection refused"
                ], "\(command): \(result.stderr)")
            #expect(!result.stderr.contains(Self.password) && !result.stdout.contains(Self.password))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.directory.path).filter { $0.hasPrefix("state") }.isEmpty)
    }

    @Test func healthzOfARunningReplicaIs503WhileItsDatabaseRefusesConnectionsAnd200WhenItIsBack() async throws {
        let (setup, database, cluster) = try await Self.postgresSetup(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let metricsURL = try await run.metricsURL()
        try await eventually("healthy\n\(run.stderr)") { try await httpGet(metricsURL + "/healthz").status == 200 }

        // Every connection to the database ended and no new one let in, as when it is down.
        _ = try await offPool {
            try cluster.query(
                """
                ALTER DATABASE \(database) ALLOW_CONNECTIONS false;
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'
                """, database: "postgres")
        }
        try await eventually("503\n\(run.stderr)") { try await httpGet(metricsURL + "/healthz").status == 503 }
        let down = try await httpGet(metricsURL + "/healthz")
        #expect(down.body.hasPrefix("unhealthy: state database unreachable at 127.0.0.1:\(cluster.port): "), "\(down.body)")
        #expect(run.process.isRunning)

        _ = try await offPool { try cluster.query("ALTER DATABASE \(database) ALLOW_CONNECTIONS true", database: "postgres") }
        try await eventually("200 again\n\(run.stderr)") { try await httpGet(metricsURL + "/healthz") == (200, "ok\n") }
        #expect(try await run.stop() == 0)
    }

    @Test func anInstanceIDThatIsNotOneIsRefusedAtStart() async throws {
        let setup = try WatchSetup()
        defer { setup.shutdown() }
        let result = try await setup.capture(
            ["run", "--config", setup.configPath], environment: ["CANCELWATCH_INSTANCE": "two words"], timeout: 30)
        #expect(result.status == 1)
        #expect(
            result.stderr.contains(
                "error: CANCELWATCH_INSTANCE 'two words' is not an instance id: write 1 to 64 letters, digits, '.', '_' or '-'"),
            "\(result.stderr)")
    }

    /// Outbox rows of `database` as (event id, status).
    static func outbox(_ database: String, cluster: PostgresCluster) async throws -> [String] {
        try await offPool {
            try cluster.query("SELECT convert_from(event_id, 'UTF8') || ' ' || status FROM outbox ORDER BY 1", database: database)
        }
    }

    /// (That the deadman does not take the outage for silence is `ReplicaLedgerTests`'s, on a
    /// virtual clock: here a short window would also catch polls slowed by a loaded machine.)
    @Test func aDatabaseAwayMidRunLeavesPollingGoingAndWhatWasDecidedMeanwhileIsSentOnceWhenItIsBack() async throws {
        let (setup, database, cluster) = try await Self.postgresSetup(ozon: 2, red: 1)
        defer { setup.shutdown() }
        let run = try setup.startRun()
        let first = try setup.dueFirings()
        try await eventually("the first firings acknowledged\n\(run.stderr)") { Set(setup.receiver.acknowledged) == first }

        _ = try await offPool {
            try cluster.query(
                """
                ALTER DATABASE \(database) ALLOW_CONNECTIONS false;
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'
                """, database: "postgres")
        }
        let away = Date()
        try setup.simulator.addRequest(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .relative(-120), deadline: .relative(5 * 3600)))
        // Polling goes on while nothing can be recorded.
        let listed = try setup.simulator.requestCount(path: "/v2/conditional-cancellation/list")
        try await eventually("polls while the database is away\n\(run.stderr)") {
            try setup.simulator.requestCount(path: "/v2/conditional-cancellation/list") >= listed + 6 && Date().timeIntervalSince(away) > 6
        }
        #expect(Set(setup.receiver.acknowledged) == first, "nothing can be sent while nothing can be recorded")

        _ = try await offPool { try cluster.query("ALTER DATABASE \(database) ALLOW_CONNECTIONS true", database: "postgres") }
        let due = try setup.dueFirings()
        #expect(due.count == first.count + 1)
        try await eventually("the firing decided while away acknowledged\n\(run.stderr)") {
            Set(setup.receiver.acknowledged) == due
        }
        try await eventually("every firing recorded delivered") {
            try await Self.outbox(database, cluster: cluster) == due.sorted().map { "\($0) delivered" }
        }
        #expect(multiplicities(setup.receiver.acknowledged).values.allSatisfy { $0 == 1 }, "\(setup.receiver.acknowledged)")
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains("could not save the state") && $0.contains(" error ") }.count == 1, "\(run.stderr)")
        #expect(lines.contains { $0.contains("the state is saved again") }, "\(run.stderr)")
        #expect(try await run.stop() == 0)
    }

    @Test func aSecondCopyStartedWithARunningReplicasInstanceIdIsRefusedAndTheFirstGoesOn() async throws {
        let (setup, _, _) = try await Self.postgresSetup(ozon: 1, red: 1)
        defer { setup.shutdown() }
        let environment = ["CANCELWATCH_INSTANCE": "replica-twin"]
        let first = try setup.startRun(environment: environment)
        try await eventually("the first replica holds its sources\n\(first.stderr)") {
            try await setup.capture(["status", "--config", setup.configPath]).stdout.contains("held by replica-twin")
        }
        let copy = try await setup.capture(["run", "--config", setup.configPath], environment: environment, timeout: 30)
        #expect(copy.status == 1, "\(copy.stderr)")
        #expect(copy.stderr.contains("replica 'replica-twin' already runs in another process (seen "), "\(copy.stderr)")
        // The copy gave nothing back: the first still holds every source.
        let status = try await setup.capture(["status", "--config", setup.configPath]).stdout
        #expect(status.components(separatedBy: "held by replica-twin").count == 3, "\(status)")
        #expect(first.process.isRunning)
        #expect(try await first.stop() == 0)
    }
}
