import CancelWatch
import Foundation
import MarketSim
import TestServers

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - CPU per process

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`: its own, every
/// thread included, and that of its children it has waited for.
struct ProcessCPU {
    var parent: Int32
    var own: Double
    var reapedChildren: Double

    private static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func read(_ pid: Int32) -> ProcessCPU? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let nameEnd = text.lastIndex(of: ")")
        else { return nil }
        // After the name: state, ppid, … utime (14th field), stime, cutime, cstime.
        let fields = text[text.index(after: nameEnd)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]), let utime = Double(fields[11]), let stime = Double(fields[12]),
            let cutime = Double(fields[13]), let cstime = Double(fields[14])
        else { return nil }
        return ProcessCPU(parent: parent, own: (utime + stime) / ticks, reapedChildren: (cutime + cstime) / ticks)
    }

    /// A server and the processes it started (PostgreSQL's backends and workers): theirs
    /// while they run, and the server's count of those that have exited.
    static func tree(of server: Int32) -> Double {
        guard let root = read(server) else { return 0 }
        var total = root.own + root.reapedChildren
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != server, let process = read(pid), process.parent == server else { continue }
            total += process.own + process.reapedChildren
        }
        return total
    }
}

/// CPU seconds used so far by each replica, PostgreSQL and this process (the simulator), at one instant.
struct CPUSample {
    var at: UInt64
    var replicas: [Double]
    var postgres: Double
    var simulator: Double

    /// What was used from `earlier` to this sample.
    func since(_ earlier: CPUSample) -> CPUSample {
        CPUSample(
            at: at - earlier.at, replicas: zip(replicas, earlier.replicas).map { $0 - $1 }, postgres: postgres - earlier.postgres,
            simulator: simulator - earlier.simulator)
    }

    var seconds: Double { Double(at) / 1e9 }
}

// MARK: - replicas

/// `cancelwatch run` processes sharing one config, each with an instance id of its own.
final class ReplicaProcesses {
    let processes: [ChildProcess]
    let logs: [URL]

    init(count: Int, binary: URL, config: String, directory: URL) throws {
        var processes: [ChildProcess] = []
        var logs: [URL] = []
        for index in 1...count {
            let log = directory.appendingPathComponent("replica-\(index).log")
            let descriptor = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw BenchError("cannot write \(log.path)") }
            defer { close(descriptor) }
            var environment = ProcessInfo.processInfo.environment
            environment["CANCELWATCH_INSTANCE"] = Self.instance(index)
            processes.append(
                try ChildProcess(
                    executable: binary.path, arguments: ["run", "--config", config, "--log-level", "warning"],
                    environment: environment, standardOutput: descriptor, standardError: descriptor))
            logs.append(log)
        }
        self.processes = processes
        self.logs = logs
    }

    static func instance(_ index: Int) -> String { "bench-replica-\(index)" }

    var cpu: [Double] { processes.map { ProcessCPU.read($0.processIdentifier)?.own ?? 0 } }

    /// Throws, with the end of its log, when a replica has exited.
    func checkRunning() throws {
        for (process, log) in zip(processes, logs) where !process.isRunning {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw BenchError(
                "replica \(log.lastPathComponent) exited (\(process.terminationStatus)):\n"
                    + text.split(separator: "\n").suffix(20).joined(separator: "\n"))
        }
    }

    func signal(_ number: Int32) {
        for process in processes where process.isRunning { kill(process.processIdentifier, number) }
    }

    /// SIGTERM, then SIGKILL to whichever is still running after 30 s.
    func stop() async {
        signal(SIGTERM)
        let limit = Date().addingTimeInterval(30)
        while processes.contains(where: \.isRunning) && Date() < limit { try? await Task.sleep(for: .milliseconds(50)) }
        signal(SIGKILL)
        for process in processes { process.waitUntilExit() }
    }
}

/// One cycle of a configuration: its wall time, the CPU it took, how many polls it counted
/// (more than one per account where a source changed hands meanwhile and was polled again).
struct ReplicaCycle {
    var wall: Double
    var cpu: CPUSample
    var polls: Int
}

struct ReplicasOutcome {
    var replicas: Int
    var accounts: Int
    var perAccount: Int
    var tracked: Int
    /// Every account polled once, all requests new, from the replicas' start.
    var first: ReplicaCycle
    /// Seconds from the start until the leases were spread (each replica holding its share).
    var spread: Double
    /// Sources each replica held when the next cycles were timed (the fewer of their start and end).
    var held: [Int]
    /// Polling without pause (`poll_interval: 1s`), all requests known: per cycle of `accounts` polls.
    var next: ReplicaCycle
    var nextCycles: Int
    /// The fewest polls any one account had in the timed cycles.
    var fewestPolls: Int
    /// The load average (1, 5, 15 minutes) as the replicas started.
    var load: String
}

/// The fleet workload run by `cancelwatch run` processes sharing one PostgreSQL database of
/// `cluster`: a simulator (in this process) with `ozon + red` accounts × `perAccount` pending,
/// on loopback. Measures, for each count in `replicas`, on a fresh database: the first cycle
/// (every account polled once, from the processes' start), and, once the leases have spread,
/// `nextCycles` cycles polled without pause. Each configuration's outcome is also handed to
/// `measured` as it comes.
@discardableResult
func replicasPass(
    ozon: Int, red: Int, perAccount: Int, replicas counts: [Int], cluster: PostgresCluster, nextCycles: Int = 3,
    binary: URL = CancelWatchBinary.url, measured: (ReplicasOutcome) -> Void = { _ in }
) async throws -> [ReplicasOutcome] {
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw BenchError("replicas: no cancelwatch binary at \(binary.path): build the product `cancelwatch` beside the benchmark")
    }
    let scenario = SimScenario.fleet(ozonAccounts: ozon, redAccounts: red, pendingPerAccount: perAccount, seed: 6)
    let simulator = try MarketSimulator(scenario: scenario, clock: SystemClock())
    defer { simulator.shutdown() }
    // Written once: the RED sources' logistics are found by a pass over every request.
    let sources = simulator.configSourcesYAML(pollInterval: ReplicaRun.pollIntervalMark)
    var outcomes: [ReplicasOutcome] = []
    for count in counts {
        let run = try await ReplicaRun.start(
            replicas: count, binary: binary, cluster: cluster, simulator: simulator, scenario: scenario, sources: sources)
        do {
            outcomes.append(try await run.measure(perAccount: perAccount, nextCycles: nextCycles))
            measured(outcomes[outcomes.count - 1])
        } catch {
            await run.stop()
            throw error
        }
        await run.stop()
    }
    return outcomes
}

/// One configuration's replicas on a fresh database, and what they are measured by.
private struct ReplicaRun {
    static let pollIntervalMark = "POLL_INTERVAL"
    /// Long enough that no account is polled twice in the first cycle.
    static let firstPollInterval = "1h"
    /// The shortest the config takes: the next cycles are polled without pause.
    static let nextPollInterval = "1s"

    let replicas: ReplicaProcesses
    let cluster: PostgresCluster
    let database: String
    /// The bench's own reader of the database: one connection, kept (a `psql` per look
    /// would start a server process each time).
    let observer: PostgresStateStore
    let simulator: MarketSimulator
    let scenario: SimScenario
    let directory: URL
    let config: URL
    let sources: String
    let started: CPUSample
    let load: String

    static func start(
        replicas count: Int, binary: URL, cluster: PostgresCluster, simulator: MarketSimulator, scenario: SimScenario,
        sources: String
    ) async throws -> ReplicaRun {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-bench-replicas-\(getpid())-\(count)")
        try? FileManager.default.removeItem(at: directory)
        // No rules, as the in-process fleet: the cycle is polling, tracking and the state.
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rules"), withIntermediateDirectories: true)
        let database = try await offPool { try cluster.createDatabase() }
        guard case .success(let location) = PostgresLocation.parse(written: cluster.url(database: database), environment: [:]) else {
            throw BenchError("replicas: cannot read \(cluster.url(database: database))")
        }
        // Made before the replicas start: it brings the schema up to date, as any of them would.
        let observer = try await offPool { try PostgresStateStore(location: location) }
        let config = directory.appendingPathComponent("cancelwatch.yaml")
        let base = Self.configText(url: cluster.url(database: database), directory: directory, sources: sources)
        try base.replacingOccurrences(of: Self.pollIntervalMark, with: Self.firstPollInterval)
            .write(to: config, atomically: true, encoding: .utf8)
        simulator.resetRequestCounts()
        let before = CPUSample(at: DispatchTime.now().uptimeNanoseconds, replicas: Array(repeating: 0, count: count),
            postgres: Self.postgresCPU(cluster), simulator: ProcessCPU.read(getpid())?.own ?? 0)
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ")
        let replicas = try ReplicaProcesses(count: count, binary: binary, config: config.path, directory: directory)
        return ReplicaRun(
            replicas: replicas, cluster: cluster, database: database, observer: observer, simulator: simulator, scenario: scenario,
            directory: directory, config: config, sources: base, started: before, load: load ?? "?")
    }

    static func configText(url: String, directory: URL, sources: String) -> String {
        "state: \(url)\nrules: [\(directory.appendingPathComponent("rules").path)]\n" + sources
    }

    static func postgresCPU(_ cluster: PostgresCluster) -> Double {
        cluster.serverProcessID.map(ProcessCPU.tree(of:)) ?? 0
    }

    func sample() -> CPUSample {
        CPUSample(
            at: DispatchTime.now().uptimeNanoseconds, replicas: replicas.cpu, postgres: Self.postgresCPU(cluster),
            simulator: ProcessCPU.read(getpid())?.own ?? 0)
    }

    /// Each account's listing calls so far (one per poll: a listing fits one page).
    func listings() -> [Int] {
        scenario.ozonAccounts.map { simulator.requestCount(method: "POST", path: OzonClient.listPath, account: $0.clientID) }
            + scenario.redAccounts.map { simulator.requestCount(method: "GET", path: RedClient.listPath, account: $0.appKey) }
    }

    func query(_ sql: String) async throws -> [String] {
        let (cluster, database) = (cluster, database)
        return try await offPool { try cluster.query(sql, database: database) }
    }

    /// Checks `condition` every `period` (the simulator's counts cost it CPU) until it gives a value, for `limit` seconds; a replica that exits ends it.
    @discardableResult
    func waitUntil<T>(_ what: String, limit: TimeInterval, every period: Duration = .milliseconds(200), _ condition: () async throws -> T?)
        async throws -> T
    {
        let end = Date().addingTimeInterval(limit)
        while Date() < end {
            try replicas.checkRunning()
            if let value = try await condition() { return value }
            try await Task.sleep(for: period)
        }
        throw BenchError("replicas: \(what) did not happen within \(Int(limit)) s; logs in \(directory.path)")
    }

    /// The live leases each replica holds, when each holds its even share (`accounts / replicas`,
    /// some one more); else nil.
    func spreadLeases(_ accounts: Int) async throws -> [Int]? {
        let count = replicas.processes.count
        let observer = observer
        let leases = try await offPool { try observer.leases() }
        let now = Date()
        let held = Dictionary(grouping: leases.filter { $0.expiresAt > now }, by: \.holder).values.map(\.count)
        return held.count == count && held.reduce(0, +) == accounts && held.allSatisfy({ $0 >= accounts / count }) ? held : nil
    }

    func measure(perAccount: Int, nextCycles: Int) async throws -> ReplicasOutcome {
        let accounts = scenario.ozonAccounts.count + scenario.redAccounts.count
        let count = replicas.processes.count
        // The first cycle ends when every account's poll is committed: its health and its requests are in the database.
        try await waitUntil("a first listing of every account", limit: 600) { listings().allSatisfy { $0 >= 1 } ? true : nil }
        try await waitUntil("every first poll committed", limit: 300) { () -> Bool? in
            let observer = observer
            let health = try await offPool { try observer.loadHealth() }
            return health.count(where: { $0.lastPollAt != nil }) == accounts ? true : nil
        }
        let firstEnd = sample()
        let firstListings = listings()
        let tracked = try await query("SELECT count(*) FROM requests").first.flatMap { Int($0) } ?? 0

        let held = try await waitUntil("the leases spread over \(count) replicas", limit: 300) { try await spreadLeases(accounts) }
        let spread = sample().since(started).seconds

        // Polled without pause from here: a reload polls every source again at once, then every second.
        try sources.replacingOccurrences(of: Self.pollIntervalMark, with: Self.nextPollInterval)
            .write(to: config, atomically: true, encoding: .utf8)
        let reloaded = listings()
        replicas.signal(SIGHUP)
        // Timed once every account has been polled twice since the reload: the reload's own burst is over.
        try await waitUntil("two polls of every account after the reload", limit: 300) {
            zip(listings(), reloaded).allSatisfy { $0 - $1 >= 2 } ? true : nil
        }
        let from = listings()
        let start = sample()
        let counted = try await waitUntil("\(nextCycles) cycles of polls", limit: 600) { () -> [Int]? in
            let now = listings()
            return zip(now, from).map { $0 - $1 }.reduce(0, +) >= nextCycles * accounts ? now : nil
        }
        let used = sample().since(start)
        guard let heldAfter = try await spreadLeases(accounts) else {
            throw BenchError("replicas: the leases were not spread over \(count) replicas at the end of the timed cycles")
        }
        let perAccountPolls = zip(counted, from).map { $0 - $1 }
        let polls = perAccountPolls.reduce(0, +)
        // Per cycle: `accounts` polls.
        let scale = Double(accounts) / Double(polls)
        let perCycle = CPUSample(
            at: UInt64(Double(used.at) * scale), replicas: used.replicas.map { $0 * scale }, postgres: used.postgres * scale,
            simulator: used.simulator * scale)
        let first = firstEnd.since(started)
        return ReplicasOutcome(
            replicas: count, accounts: accounts, perAccount: perAccount, tracked: tracked,
            first: ReplicaCycle(wall: first.seconds, cpu: first, polls: firstListings.reduce(0, +)), spread: spread,
            held: zip(held, heldAfter).map { min($0, $1) },
            next: ReplicaCycle(wall: perCycle.seconds, cpu: perCycle, polls: polls), nextCycles: nextCycles,
            fewestPolls: perAccountPolls.min() ?? 0, load: load)
    }

    func stop() async {
        await replicas.stop()
        let (cluster, database) = (cluster, database)
        _ = try? await offPool { try cluster.dropDatabase(database) }
        try? FileManager.default.removeItem(at: directory)
    }
}
