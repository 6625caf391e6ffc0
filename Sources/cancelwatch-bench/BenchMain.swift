import CancelWatch
import Foundation
import TestServers

/// `swift run -c release cancelwatch-bench [--quick] [--only ingest,rules,scale,ontime,fleet,replicas]`
///
/// Generates its data from fixed seeds and prints one Markdown table. Each scale size runs
/// in a child process of this binary (`--scale-child N`) so peaks don't mix. `replicas`
/// (only when named) runs the `cancelwatch` binary built beside this one.
@main
struct BenchMain {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        if let i = args.firstIndex(of: "--scale-child"), i + 1 < args.count, let n = Int(args[i + 1]) {
            await scaleChild(count: n, dropRaw: args.contains("--drop-raw"))
            return
        }
        if args.contains("--help") || args.contains("-h") {
            print("usage: cancelwatch-bench [--quick] [--only ingest,rules,scale,ontime,fleet,replicas]")
            print("       replicas runs only when named, with `cancelwatch` built beside this binary; --replicas 1,3: how many;")
            print("       --no-fsync: their PostgreSQL's commits do not wait for the disk (as the tests' cluster)")
            print("       cancelwatch-bench --profile-ingest N   (N first-poll ingest passes alone, for a profiler)")
            return
        }
        if let i = args.firstIndex(of: "--profile-ingest"), i + 1 < args.count, let n = Int(args[i + 1]) {
            do { try await profileIngest(passes: n) } catch {
                FileHandle.standardError.write(Data("cancelwatch-bench: \(error)\n".utf8))
                exit(1)
            }
            return
        }
        let quick = args.contains("--quick")
        var only: Set<String> = ["ingest", "rules", "scale", "ontime", "fleet"]
        if let i = args.firstIndex(of: "--only"), i + 1 < args.count {
            only = Set(args[i + 1].split(separator: ",").map(String.init))
        }
        var sizes = quick ? BenchSizes.quick : BenchSizes.full
        if let i = args.firstIndex(of: "--replicas"), i + 1 < args.count {
            sizes.replicaCounts = args[i + 1].split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        }
        sizes.replicasDurable = !args.contains("--no-fsync")
        var table = BenchTable()
        printMachine()
        do {
            if only.contains("ingest") { try await runIngest(sizes, table: &table) }
            if only.contains("rules") { try await runRules(sizes, table: &table) }
            if only.contains("scale") { try await runScale(sizes, table: &table) }
            if only.contains("ontime") { try await runOnTime(sizes, table: &table) }
            if only.contains("fleet") { try await runFleet(sizes, table: &table) }
            if only.contains("replicas") { try await runReplicas(sizes, table: &table) }
        } catch {
            table.print()
            FileHandle.standardError.write(Data("cancelwatch-bench: \(error)\n".utf8))
            exit(1)
        }
        table.print()
    }

    static func progress(_ text: String) {
        FileHandle.standardError.write(Data("· \(text)\n".utf8))
    }

    static func printMachine() {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown"
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .map { String($0.dropFirst(9)).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (nproc), \(cpu), MemTotal \(memory)")
    }

    // MARK: ingest

    static func runIngest(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        let rules = try loadShippedRules()
        progress("ingest: generating pages")
        let corpus = IngestCorpus.generate(sizes)
        let megabytes = Double(corpus.bytes) / 1e6
        let workload = "\(corpus.ozonItems) Ozon (pages of 500) + \(corpus.redItems) RED (pages of 100); \(fmt(megabytes, 1)) MB JSON"
        progress("ingest: Swift, \(workload)")
        var first = IngestOutcome.none
        var steady = first
        for _ in 0..<sizes.repeats {
            var tracker = LedgerStorage()
            let cold = try await ingestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
            if cold.seconds < first.seconds { first = cold }
            let warm = try await ingestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
            if warm.seconds < steady.seconds { steady = warm }
        }
        guard first.requests == corpus.items else {
            throw BenchError("ingest: the clients returned \(first.requests) requests of \(corpus.items)")
        }
        let together = try await IngestOutcome.best(of: sizes.repeats) {
            var tracker = LedgerStorage()
            return try await concurrentIngestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
        }
        guard together.requests == first.requests, together.matches == first.matches, together.tracked == first.tracked else {
            throw BenchError("ingest: polled together, \(together.requests) requests and \(together.matches) matches; one by one \(first.requests) and \(first.matches)")
        }
        var swiftParse = Double.infinity
        var swiftScan = Double.infinity
        for _ in 0..<sizes.repeats {
            swiftParse = min(swiftParse, try parseOnlyPass(corpus: corpus).seconds)
            swiftScan = min(swiftScan, try scanOnlyPass(corpus: corpus).seconds)
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try corpus.write(to: directory)
        progress("ingest: Python")
        let python = try await runPython(directory: directory, parseOnly: false, repeats: sizes.repeats)
        let pythonParse = try await runPython(directory: directory, parseOnly: true, repeats: sizes.repeats)
        guard python.requests == first.requests, python.matches == first.matches else {
            throw BenchError(
                "ingest: Python saw \(python.requests) requests and \(python.matches) rule matches, Swift \(first.requests) and \(first.matches)")
        }
        let n = Double(first.requests)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        table.add("ingest", workload + ", first poll (all new), one core: accounts one after another, best of \(sizes.repeats)",
            "\(rate(n / first.seconds)) requests/s, \(fmt(megabytes / first.seconds, 1)) MB/s (\(ms(first.seconds)))")
        table.add("ingest", "first poll, one core, by stage", first.stages.text)
        table.add("ingest", "first poll as the watcher polls: accounts fetched at once, tracked one at a time, \(cores) cores",
            "\(rate(n / together.seconds)) requests/s, \(fmt(megabytes / together.seconds, 1)) MB/s (\(ms(together.seconds)))")
        table.add("ingest", "same pages, next poll (all known, unchanged)",
            "\(rate(n / steady.seconds)) requests/s, \(fmt(megabytes / steady.seconds, 1)) MB/s (\(ms(steady.seconds)))")
        table.add("ingest", "Python script (benchmarks/ingest.py), same pages",
            "\(rate(n / python.seconds)) requests/s, \(fmt(megabytes / python.seconds, 1)) MB/s (\(ms(python.seconds)))")
        table.add("ingest", "floor: Python json.loads alone, same pages",
            "\(fmt(megabytes / pythonParse.seconds, 1)) MB/s (\(ms(pythonParse.seconds)))")
        table.add("ingest", "Swift JSONParser alone (a whole tree; the clients no longer build one), same pages",
            "\(fmt(megabytes / swiftParse, 1)) MB/s (\(ms(swiftParse)))")
        table.add("ingest", "Swift scan alone (every byte checked, nothing built), same pages",
            "\(fmt(megabytes / swiftScan, 1)) MB/s (\(ms(swiftScan)))")
        let speedup = python.seconds / first.seconds
        table.add("ingest", "cancelwatch vs the Python script (first poll, one core each)", "\(fmt(speedup, 1))× faster", target: "≥ 5×", met: speedup >= 5)
        table.add("ingest", "cancelwatch as the watcher polls (\(cores) cores) vs the Python script (one core)",
            "\(fmt(python.seconds / together.seconds, 1))× faster")
        let overFloor = first.seconds / pythonParse.seconds
        table.add("ingest", "cancelwatch cost / json.loads cost (first poll)", "\(fmt(overFloor, 2))×", target: "≤ 2×", met: overFloor <= 2)
    }

    /// The first-poll ingest pass alone, `passes` times (nothing else runs: a profile of it is clean).
    static func profileIngest(passes: Int) async throws {
        let rules = try loadShippedRules()
        let corpus = IngestCorpus.generate(BenchSizes.full)
        let best = try await IngestOutcome.best(of: passes) {
            var tracker = LedgerStorage()
            return try await ingestPass(clients: corpus.clients(), rules: rules, now: corpus.now, tracker: &tracker)
        }
        print("first poll, best of \(passes): \(ms(best.seconds)); \(best.stages.text)")
    }

    // MARK: rules

    static func runRules(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        let rules = try loadShippedRules()
        let corpus = IngestCorpus.generate(ozonAccounts: 1, ozonPages: 2, redAccounts: 1, redPages: 10, seed: 77)
        var requests: [CancellationRequest] = []
        for client in corpus.clients() { requests += try await client.fetchPending().requests }
        progress("rules: \(sizes.ruleEvaluations) evaluations")
        var best = RulesOutcome(seconds: .infinity, evaluations: 0, matches: 0)
        for _ in 0..<sizes.repeats {
            let outcome = rulesPass(requests: requests, rules: rules, evaluations: sizes.ruleEvaluations, base: corpus.now)
            if outcome.seconds < best.seconds { best = outcome }
        }
        let perSecond = Double(best.evaluations) / best.seconds
        table.add("rules", "\(rules.count) shipped rules × \(requests.count) requests × 97 instants; \(rate(Double(best.evaluations))) evaluations, 1 core",
            "\(rate(perSecond)) evaluations/s (\(fmt(best.seconds * 1e9 / Double(best.evaluations), 1)) ns each)",
            target: "> 5M/s", met: perSecond > 5e6)
    }

    // MARK: scale

    static func runScale(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        for count in sizes.scaleCounts {
            // (`--drop-raw`, the what-if of a raw object kept only in the state file, is what
            // the ledger does now: no longer a row of its own.)
            progress("scale: \(count) tracked, Ledger (child process)")
            let value = try await runChild(["--scale-child", String(count)])
            let perRequest = value["bytes_per_request"]?.lenientDouble ?? .nan
            let peak = value["peak"]?.lenientDouble ?? .nan
            let rss = value["rss"]?.lenientDouble ?? .nan
            let isTarget = count == 1_000_000
            table.add("scale", "\(rate(Double(count))) pending Ozon requests, Ledger (with their alert states)",
                "\(Int(perRequest)) bytes/request; RSS \(mb(rss)), peak \(mb(peak))",
                target: isTarget ? "≤ 256 B" : "", met: isTarget ? perRequest <= 256 : nil)
        }
    }

    /// This benchmark again, in a process of its own (each scale size starts from a clean heap).
    static func runChild(_ arguments: [String]) async throws -> JSONValue {
        try await runJSONProcess(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(), arguments)
    }

    static func scaleChild(count: Int, dropRaw: Bool) async {
        do {
            let outcome = try await scalePass(count: count, dropRaw: dropRaw)
            let value: JSONValue = [
                "count": .integer(Int64(outcome.count)), "pending": .integer(Int64(outcome.pending)),
                "baseline_rss": .integer(Int64(outcome.baselineRSS)), "rss": .integer(Int64(outcome.rss)),
                "peak": .integer(Int64(outcome.peak)), "bytes_per_request": .number(outcome.bytesPerRequest),
                "seconds": .number(outcome.seconds),
            ]
            print(value.serialized())
        } catch {
            FileHandle.standardError.write(Data("scale child: \(error)\n".utf8))
            exit(1)
        }
    }

    // MARK: on time

    static func runOnTime(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-bench-ontime-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        progress("on time: \(sizes.onTimeCount) thresholds in \(Int(sizes.onTimeWindow)) s, real clock (takes about \(Int(sizes.onTimeWindow + sizes.onTimeLead)) s)")
        let outcome = try await onTimePass(
            count: sizes.onTimeCount, window: sizes.onTimeWindow, lead: sizes.onTimeLead,
            statePath: directory.appendingPathComponent("state.sqlite").path)
        let p99 = outcome.percentile(0.99)
        table.add("on time", "\(outcome.count) heads-up thresholds within \(Int(outcome.window)) s; SQLite outbox → DeliveryQueue → in-memory sink",
            "delivered \(outcome.delivered)/\(outcome.count); p50 \(ms(outcome.percentile(0.5))), p99 \(ms(p99)), max \(ms(outcome.delays.last ?? .nan))",
            target: "p99 < 1 s", met: outcome.delivered == outcome.count && p99 < 1)
    }

    // MARK: fleet

    static func runFleet(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cancelwatch-bench-fleet-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        progress("fleet: \(sizes.fleetOzon + sizes.fleetRed) accounts × \(sizes.fleetPerAccount) pending, loopback")
        let outcome = try await fleetPass(
            ozon: sizes.fleetOzon, red: sizes.fleetRed, perAccount: sizes.fleetPerAccount,
            statePath: directory.appendingPathComponent("state.sqlite").path)
        let workload = "\(sizes.fleetOzon) Ozon + \(sizes.fleetRed) RED accounts × \(outcome.perAccount) pending, libcurl → simulator on 127.0.0.1, SQLite state; \(outcome.httpCalls) HTTP calls"
        let ok = outcome.failures == 0 && outcome.pending == outcome.accounts * outcome.perAccount
        table.add("fleet", workload + ", first cycle (all new)",
            "\(fmt(outcome.firstCycle, 2)) s (\(outcome.pending) tracked, \(outcome.failures) failed polls)",
            target: "< 10 s", met: ok && outcome.firstCycle < 10)
        table.add("fleet", "next cycle (all known)", "\(fmt(outcome.secondCycle, 2)) s", target: "< 10 s", met: ok && outcome.secondCycle < 10)
    }
}

extension BenchMain {
    // MARK: replicas

    static func runReplicas(_ sizes: BenchSizes, table: inout BenchTable) async throws {
        let accounts = sizes.replicasOzon + sizes.replicasRed
        progress("replicas: \(accounts) accounts × \(sizes.replicasPerAccount) pending on \(sizes.replicaCounts) `cancelwatch run` processes, one PostgreSQL")
        // PostgreSQL's defaults unless `--no-fsync`: a commit waits for its WAL on disk.
        let durable = sizes.replicasDurable
        let cluster = try await offPool { try PostgresCluster(durable: durable) }
        defer { cluster.stop() }
        try await replicasPass(
            ozon: sizes.replicasOzon, red: sizes.replicasRed, perAccount: sizes.replicasPerAccount, replicas: sizes.replicaCounts,
            cluster: cluster
        ) { outcome in
            let name = outcome.replicas == 1 ? "1 replica" : "\(outcome.replicas) replicas"
            let ok = outcome.tracked == outcome.accounts * outcome.perAccount
            table.add(
                "replicas",
                "\(name): \(sizes.replicasOzon) Ozon + \(sizes.replicasRed) RED accounts × \(outcome.perAccount) pending, `cancelwatch run` processes → simulator on 127.0.0.1, one PostgreSQL (fsync \(durable ? "on" : "off")); first cycle (all new, \(outcome.first.polls) polls; load average as it started \(outcome.load))",
                "\(fmt(outcome.first.wall, 2)) s (\(outcome.tracked) tracked); CPU \(outcome.first.cpu.text)", met: ok ? nil : false)
            if outcome.replicas > 1 {
                table.add("replicas", "\(name): leases spread (looked at from the end of the first cycle on), from the start", "\(fmt(outcome.spread, 1)) s; held \(outcome.held.map(String.init).joined(separator: "/"))")
            }
            table.add(
                "replicas",
                "\(name): next cycle (all known; polled without pause, poll_interval 1s: \(outcome.next.polls) polls over \(outcome.nextCycles) cycles, each account \(outcome.fewestPolls) or more)",
                "\(fmt(outcome.next.wall, 2)) s; CPU \(outcome.next.cpu.text)")
        }
    }
}

extension CPUSample {
    /// Summed, per replica, PostgreSQL's, the simulator's, and the share of the machine's cores.
    var text: String {
        let replicaSum = replicas.reduce(0, +)
        let each = replicas.count > 1 ? " (" + replicas.map { fmt($0, 2) }.joined(separator: " + ") + ")" : ""
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let busy = (replicaSum + postgres + simulator) / (seconds * cores)
        return "replicas \(fmt(replicaSum, 2)) s\(each), PostgreSQL \(fmt(postgres, 2)) s, simulator \(fmt(simulator, 2)) s: \(fmt(busy * 100, 0)) % of \(Int(cores)) cores"
    }
}

/// Workload sizes: the full run, and `--quick` for a smoke test.
struct BenchSizes {
    var repeats: Int
    var ingestOzonAccounts: Int
    var ingestOzonPages: Int
    var ingestRedAccounts: Int
    var ingestRedPages: Int
    var ruleEvaluations: Int
    var scaleCounts: [Int]
    var onTimeCount: Int
    var onTimeWindow: Double
    var onTimeLead: Double
    var fleetOzon: Int
    var fleetRed: Int
    var fleetPerAccount: Int
    var replicasOzon: Int
    var replicasRed: Int
    var replicasPerAccount: Int
    var replicaCounts: [Int]
    var replicasDurable = true

    static let full = BenchSizes(
        repeats: 5, ingestOzonAccounts: 4, ingestOzonPages: 10, ingestRedAccounts: 4, ingestRedPages: 50,
        ruleEvaluations: 40_000_000, scaleCounts: [100_000, 1_000_000], onTimeCount: 10_000, onTimeWindow: 60, onTimeLead: 15,
        fleetOzon: 500, fleetRed: 500, fleetPerAccount: 500, replicasOzon: 1500, replicasRed: 1500, replicasPerAccount: 50,
        replicaCounts: [1, 3])
    static let quick = BenchSizes(
        repeats: 2, ingestOzonAccounts: 1, ingestOzonPages: 2, ingestRedAccounts: 1, ingestRedPages: 5,
        ruleEvaluations: 400_000, scaleCounts: [10_000], onTimeCount: 200, onTimeWindow: 3, onTimeLead: 2,
        fleetOzon: 5, fleetRed: 5, fleetPerAccount: 500, replicasOzon: 5, replicasRed: 5, replicasPerAccount: 50, replicaCounts: [1, 3])
}

/// The printed table: Markdown, so BENCHMARKS.md can take it as is.
struct BenchTable {
    struct Row {
        var benchmark: String
        var workload: String
        var result: String
        var target: String
        var met: Bool?
    }
    var rows: [Row] = []

    mutating func add(_ benchmark: String, _ workload: String, _ result: String, target: String = "", met: Bool? = nil) {
        rows.append(Row(benchmark: benchmark, workload: workload, result: result, target: target, met: met))
        BenchMain.progress("\(benchmark): \(result)")
    }

    func print() {
        Swift.print("")
        Swift.print("| benchmark | workload | result | target | met |")
        Swift.print("|---|---|---|---|---|")
        for row in rows {
            let met = row.met.map { $0 ? "yes" : "**no**" } ?? ""
            Swift.print("| \(row.benchmark) | \(row.workload) | \(row.result) | \(row.target) | \(met) |")
        }
    }
}

func fmt(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
func ms(_ seconds: Double) -> String { seconds < 1 ? fmt(seconds * 1000, 1) + " ms" : fmt(seconds, 2) + " s" }
func mb(_ bytes: Double) -> String { fmt(bytes / 1_048_576, 0) + " MiB" }
func rate(_ value: Double) -> String {
    if value >= 1e6 { return fmt(value / 1e6, 2) + "M" }
    if value >= 1e3 { return fmt(value / 1e3, 1) + "k" }
    return fmt(value, 0)
}
