import CancelWatch
import Foundation
import MarketSim

/// A clock stopped at one instant: the ingest workload's "now".
struct FixedClock: WatchClock {
    let instant: Date
    func now() -> Date { instant }
    func sleep(until deadline: Date) async throws {}
}

/// Where the package's own files are: `rules/`, `benchmarks/ingest.py`.
enum PackagePaths {
    static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["CANCELWATCH_ROOT"] { return URL(fileURLWithPath: env) }
        // Sources/cancelwatch-bench/Ingest.swift -> the package root.
        let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: fromSource.appendingPathComponent("rules").path) { return fromSource }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()
    static var rules: String { root.appendingPathComponent("rules").path }
    static var pythonScript: String { root.appendingPathComponent("benchmarks/ingest.py").path }
}

/// The shipped rule set, compiled as `cancelwatch check` would without a config.
func loadShippedRules() throws -> [CompiledRule] {
    let result = RuleLoader(knownSinks: nil).load(paths: [PackagePaths.rules])
    guard let set = result.ruleSet else {
        throw BenchError("the shipped rules do not compile:\n" + result.renderDiagnostics())
    }
    return set.rules
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Pages of several Ozon accounts and Xiaohongshu shops, generated from a seed.
struct IngestCorpus: Sendable {
    struct Account: Sendable {
        var source: String
        var marketplace: Marketplace
        /// Ozon `Client-Id` or RED `app-key`.
        var key: String
        /// The data pages (the Ozon end-of-list page is not counted).
        var pages: [Data]
    }
    var accounts: [Account]
    var now: Date

    var ozonItems: Int
    var redItems: Int
    var items: Int { ozonItems + redItems }
    var bytes: Int { accounts.reduce(0) { $0 + $1.pages.reduce(0) { $0 + $1.count } } }
    var ozonBytes: Int { accounts.filter { $0.marketplace == .ozon }.reduce(0) { $0 + $1.pages.reduce(0) { $0 + $1.count } } }

    /// `ozonAccounts` accounts of `ozonPages` pages of 500 items, `redAccounts` shops of
    /// `redPages` pages of 100 items.
    /// The ingest workload of `sizes`.
    static func generate(_ sizes: BenchSizes) -> IngestCorpus {
        generate(
            ozonAccounts: sizes.ingestOzonAccounts, ozonPages: sizes.ingestOzonPages, redAccounts: sizes.ingestRedAccounts,
            redPages: sizes.ingestRedPages)
    }

    static func generate(ozonAccounts: Int, ozonPages: Int, redAccounts: Int, redPages: Int, seed: UInt64 = 2026) -> IngestCorpus {
        var random = SeededGenerator(seed: seed)
        let now = DataGen.epoch
        var accounts: [Account] = []
        var serial: Int64 = 1
        for a in 0..<ozonAccounts {
            var pages: [Data] = []
            for _ in 0..<ozonPages {
                pages.append(DataGen.ozonPage(firstSerial: serial, items: OzonClient.pageLimit, random: &random, now: now))
                serial += Int64(OzonClient.pageLimit)
            }
            accounts.append(Account(source: "ozon-\(a)", marketplace: .ozon, key: "\(200_001 + a)", pages: pages))
        }
        for a in 0..<redAccounts {
            var pages: [Data] = []
            for p in 0..<redPages {
                pages.append(DataGen.redPage(firstSerial: serial, items: 100, pageNo: p + 1, totalPages: redPages, random: &random, now: now))
                serial += 100
            }
            accounts.append(Account(source: "red-\(a)", marketplace: .xiaohongshu, key: "red-key-\(a)", pages: pages))
        }
        return IngestCorpus(
            accounts: accounts, now: now, ozonItems: ozonAccounts * ozonPages * OzonClient.pageLimit, redItems: redAccounts * redPages * 100)
    }

    /// The real clients over a transport that replays the pages.
    func clients() -> [MarketplaceClient] {
        var pages: [String: [Data]] = [:]
        for account in accounts {
            pages[account.key] = account.marketplace == .ozon ? account.pages + [DataGen.ozonEndPage] : account.pages
        }
        let transport = PageTransport(pages: pages)
        let clock = FixedClock(instant: now)
        return accounts.map { account -> MarketplaceClient in
            switch account.marketplace {
            case .ozon:
                return OzonClient(
                    account: OzonAccount(source: account.source, baseURL: "http://127.0.0.1:9", clientID: account.key, apiKey: "k"),
                    transport: transport, clock: clock)
            case .xiaohongshu:
                return RedClient(
                    account: RedAccount(
                        source: account.source, baseURL: "http://127.0.0.1:9", appKey: account.key, appSecret: "s",
                        logistics: ["red_auto"], pageSize: 100),
                    transport: transport, clock: clock)
            }
        }
    }

    /// Writes every page and a `meta.json` index for the Python script.
    func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var sources: [JSONValue] = []
        for account in accounts {
            var files: [JSONValue] = []
            for (i, page) in account.pages.enumerated() {
                let name = "\(account.source)-\(i).json"
                try page.write(to: directory.appendingPathComponent(name))
                files.append(.string(name))
            }
            sources.append([
                "name": .string(account.source), "marketplace": .string(account.marketplace.rawValue), "files": .array(files),
            ])
        }
        let meta: JSONValue = ["now": .number(now.timeIntervalSince1970), "sources": .array(sources)]
        try meta.serializedData().write(to: directory.appendingPathComponent("meta.json"))
    }
}

/// What one ingest pass did.
struct IngestOutcome {
    var seconds: Double
    var requests: Int
    /// (request, rule) pairs whose condition held: the same number the Python script must find.
    var matches: Int
    var tracked: Int
    var stages: IngestStages

    /// Nothing measured yet: any pass is better.
    static let none = IngestOutcome(seconds: .infinity, requests: 0, matches: 0, tracked: 0, stages: IngestStages())

    /// The fastest of `passes` runs of `pass`.
    static func best(of passes: Int, _ pass: () async throws -> IngestOutcome) async rethrows -> IngestOutcome {
        var best = IngestOutcome.none
        for _ in 0..<passes {
            let outcome = try await pass()
            if outcome.seconds < best.seconds { best = outcome }
        }
        return best
    }
}

/// Where an ingest pass spent its time, in nanoseconds.
struct IngestStages {
    /// The clients: calls, page decoding, requests built.
    var fetch: UInt64 = 0
    /// `LedgerStorage.apply`.
    var apply: UInt64 = 0
    /// Every shipped rule on every request.
    var rules: UInt64 = 0

    var text: String {
        func ms(_ ns: UInt64) -> String { String(Double(ns / 100_000) / 10) + " ms" }
        return "clients \(ms(fetch)), LedgerStorage.apply \(ms(apply)), rules \(ms(rules))"
    }
}

/// Decode → normalize → track → evaluate, every account once, with the real clients.
/// `tracker` is fresh for a first poll, or the one from a previous pass for a steady-state poll.
func ingestPass(clients: [MarketplaceClient], rules: [CompiledRule], now: Date, tracker: inout LedgerStorage) async throws -> IngestOutcome {
    var requests = 0
    var matches = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var stages = IngestStages()
    for client in clients {
        let fetched = DispatchTime.now().uptimeNanoseconds
        let snapshot = try await client.fetchPending()
        let applied = DispatchTime.now().uptimeNanoseconds
        _ = tracker.apply(snapshot: snapshot, outcomes: [:], source: client.source, now: now)
        let evaluated = DispatchTime.now().uptimeNanoseconds
        matches += countMatches(snapshot.requests, rules: rules, now: now)
        stages.fetch += applied - fetched
        stages.apply += evaluated - applied
        stages.rules += DispatchTime.now().uptimeNanoseconds - evaluated
        requests += snapshot.requests.count
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return IngestOutcome(seconds: seconds, requests: requests, matches: matches, tracked: tracker.requests.count, stages: stages)
}

/// Every rule's condition on every request: how many (request, rule) pairs hold.
@inline(__always)
func countMatches(_ requests: [CancellationRequest], rules: [CompiledRule], now: Date) -> Int {
    var matches = 0
    for request in requests {
        for rule in rules where rule.matches(request, now: now) { matches += 1 }
    }
    return matches
}

/// The same ingest as the watcher runs it: every account fetched and decoded at once (tasks
/// on the cooperative pool, as many running as there are cores), each snapshot tracked and
/// evaluated by the caller as it arrives, one at a time (the watcher's actor). Wall time.
func concurrentIngestPass(clients: [MarketplaceClient], rules: [CompiledRule], now: Date, tracker: inout LedgerStorage) async throws -> IngestOutcome {
    var requests = 0
    var matches = 0
    let start = DispatchTime.now().uptimeNanoseconds
    try await withThrowingTaskGroup(of: (String, PendingSnapshot).self) { group in
        for client in clients {
            group.addTask { (client.source, try await client.fetchPending()) }
        }
        for try await (source, snapshot) in group {
            _ = tracker.apply(snapshot: snapshot, outcomes: [:], source: source, now: now)
            matches += countMatches(snapshot.requests, rules: rules, now: now)
            requests += snapshot.requests.count
        }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return IngestOutcome(seconds: seconds, requests: requests, matches: matches, tracked: tracker.requests.count, stages: IngestStages())
}

/// JSONParser alone over every page: Swift's own floor.
/// Returns its seconds and how many top-level members the pages had (what was built).
func parseOnlyPass(corpus: IngestCorpus) throws -> (seconds: Double, members: Int) {
    let start = DispatchTime.now().uptimeNanoseconds
    var members = 0
    for account in corpus.accounts {
        for page in account.pages {
            if case .object(let object) = try JSONParser.parse(page) { members += object.count }
        }
    }
    return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, members)
}

/// Every page checked as JSON and nothing built (`RawObject(json:)`): the floor of the
/// clients' one pass over the bytes.
/// Returns its seconds and how many bytes were checked.
func scanOnlyPass(corpus: IngestCorpus) throws -> (seconds: Double, bytes: Int) {
    let pages = corpus.accounts.flatMap { $0.pages.map { [UInt8]($0) } }
    let start = DispatchTime.now().uptimeNanoseconds
    var checked = 0
    for page in pages { checked += try RawObject(json: page).jsonBytes.count }
    return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, checked)
}

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

struct PythonResult {
    var seconds: Double
    var requests: Int
    var matches: Int
}

/// Runs `benchmarks/ingest.py` on the pages in `directory`.
func runPython(directory: URL, parseOnly: Bool, repeats: Int) async throws -> PythonResult {
    let value = try await runJSONProcess(
        URL(fileURLWithPath: "/usr/bin/python3"),
        [PackagePaths.pythonScript, directory.path, "--repeat", String(repeats)] + (parseOnly ? ["--parse-only"] : []))
    guard let seconds = value["best_seconds"]?.lenientDouble else {
        throw BenchError("python3 \(PackagePaths.pythonScript) gave no best_seconds: \(value.serialized())")
    }
    return PythonResult(
        seconds: seconds, requests: Int(value["requests"]?.lenientInt64 ?? 0), matches: Int(value["matches"]?.lenientInt64 ?? 0))
}

/// Runs `executable` to its end and reads what it prints as one JSON value. Waiting for a
/// process blocks: it is done on a thread of its own, not on Swift's cooperative pool.
func runJSONProcess(_ executable: URL, _ arguments: [String]) async throws -> JSONValue {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, Error>) in
        Thread {
            continuation.resume(
                with: Result {
                    let process = Process()
                    process.executableURL = executable
                    process.arguments = arguments
                    let out = Pipe()
                    process.standardOutput = out
                    try process.run()
                    let data = out.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    guard process.terminationStatus == 0, let value = try? JSONParser.parse(data) else {
                        throw BenchError(
                            "\(executable.path) \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))")
                    }
                    return value
                })
        }.start()
    }
}
