@testable import CancelWatch
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import MarketSim
import Testing
import TestServers

/// The accounts every fault scenario's simulator knows.
enum E2EAccounts {
    static let ozonClientID = "300001"
    static let ozonKey = "e2e-ozon-key-9f3a"
    static let redAppKey = "e2e-red-app"
    static let redSecret = "e2e-red-secret-7c1d"
}

/// The rule of the fault scenarios: every pending request fires once, at first sight.
let pendingRule = """
    rule "pending" {
      when     state == "pending"
      severity warning
      notify   hook
      message  "{{marketplace}} {{order}} pending, {{remaining}} left"
    }
    """

/// A simulator scenario of requests pending for hours, with absolute times, so that a
/// simulator restarted on the same port serves the very same requests.
func pendingScenario(ozon: Int, red: Int, now: Date = Date(), seed: UInt64 = 11) -> SimScenario {
    var requests: [SimRequestPlan] = []
    for i in 0..<ozon {
        requests.append(
            SimRequestPlan(
                marketplace: .ozon, account: E2EAccounts.ozonClientID, created: .absolute(now.addingTimeInterval(-600)),
                deadline: .absolute(now.addingTimeInterval(6 * 3600 + Double(i) * 600)), initiator: "CLIENT"))
    }
    for i in 0..<red {
        requests.append(
            SimRequestPlan(
                marketplace: .red, account: E2EAccounts.redAppKey, created: .absolute(now.addingTimeInterval(-600 - Double(i))),
                deadline: .absolute(now.addingTimeInterval(7 * 3600 + Double(i) * 600)), logistics: "red_auto"))
    }
    return SimScenario(
        ozonAccounts: [SimOzonAccount(name: "ozon", clientID: E2EAccounts.ozonClientID, apiKey: E2EAccounts.ozonKey)],
        redAccounts: [SimRedAccount(name: "red", appKey: E2EAccounts.redAppKey, appSecret: E2EAccounts.redSecret)],
        requests: requests, seed: seed)
}

/// How a scenario's `cancelwatch.yaml` is written.
struct WatchOptions {
    /// `state:`: the state file, or a `postgres://` database.
    var state = "./state.sqlite"
    var pollInterval = "1s"
    var sourceTimeout = "5s"
    var sinkTimeout = "3s"
    var downAfter = 2
    /// `health.silent_after` when set: how long a source may go without a successful poll.
    var silentAfter: String?
    var listen = false
    /// What `listen:` says when `listen` is on.
    var listenAddress = "127.0.0.1:0"
    /// `listenAddress` as YAML: quoted only where YAML needs it (`[::1]:0`, `:9464`).
    var listenYAML: String { listenAddress.hasPrefix("[") || listenAddress.hasPrefix(":") ? "\"\(listenAddress)\"" : listenAddress }
    var retry = "{initial_delay: 300ms, max_delay: 2s}"
    var ozon = true
    var red = true
    var rules = pendingRule
    /// More of the `hook` sink's settings (YAML flow members after a comma, such as `batch: true`).
    var hookSettings = ""
    /// Extra sinks (YAML list items, indented two spaces).
    var extraSinks = ""
    /// Extra top-level keys (YAML lines), such as `actions:`.
    var extraConfig = ""

    /// The token `onEveryInterfaceWithAToken` reads from `CW_STATUS_TOKEN`.
    static let statusToken = "e2e-status-token-0123456789"

    /// `listen:` on every interface, where the status page needs `auth:`: its token comes from
    /// `CW_STATUS_TOKEN` (``statusToken`` in `statusTokenEnvironment`).
    static var onEveryInterfaceWithAToken: WatchOptions {
        var options = WatchOptions()
        options.listen = true
        options.listenAddress = "0.0.0.0:0"
        options.extraConfig = #"auth: {token: "${CW_STATUS_TOKEN}"}"#
        return options
    }

    /// What every command on `onEveryInterfaceWithAToken` options needs: it reads the whole config.
    static let statusTokenEnvironment = ["CW_STATUS_TOKEN": statusToken]
}

/// One scenario's world: a directory, an in-process simulator, a webhook receiver, the
/// config and rules, and the `cancelwatch run` processes started on them. `shutdown()`
/// stops everything it started.
final class WatchSetup: @unchecked Sendable {
    let directory: URL
    let scenario: SimScenario
    let receiver: WebhookReceiver
    var options: WatchOptions
    private let lock = NSLock()
    private var simulatorStore: MarketSimulator?
    private var simulatorPortHold: PortHold?
    private var processes: [RunningCommand] = []
    let simulatorPort: Int

    init(ozon: Int = 3, red: Int = 2, options: WatchOptions = WatchOptions()) throws {
        directory = try temporaryDirectory()
        scenario = pendingScenario(ozon: options.ozon ? ozon : 0, red: options.red ? red : 0)
        let simulator = try MarketSimulator(scenario: scenario, clock: SystemClock())
        simulatorStore = simulator
        simulatorPort = simulator.port
        receiver = try WebhookReceiver()
        self.options = options
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rules"), withIntermediateDirectories: true)
        try writeRules(options.rules)
        try writeConfig()
    }

    deinit { shutdown() }

    var simulator: MarketSimulator {
        get throws {
            guard let simulator = lock.withLock({ simulatorStore }) else { throw CommandFailure("the simulator is stopped") }
            return simulator
        }
    }

    var baseURL: String { "http://127.0.0.1:\(simulatorPort)" }
    var configPath: String { directory.appendingPathComponent("cancelwatch.yaml").path }
    var statePath: String { directory.appendingPathComponent("state.sqlite").path }

    func writeRules(_ text: String, file: String = "main.rules") throws {
        try text.write(to: directory.appendingPathComponent("rules/\(file)"), atomically: true, encoding: .utf8)
    }

    func writeConfig() throws {
        var sources = ""
        if options.ozon {
            sources += """
                  - {name: ozon, kind: ozon, client_id: "\(E2EAccounts.ozonClientID)", api_key: "\(E2EAccounts.ozonKey)",
                     base_url: "\(baseURL)", poll_interval: \(options.pollInterval), timeout: \(options.sourceTimeout)}

                """
        }
        if options.red {
            sources += """
                  - {name: red, kind: red, app_key: "\(E2EAccounts.redAppKey)", app_secret: "\(E2EAccounts.redSecret)",
                     logistics: [red_auto], base_url: "\(baseURL)", poll_interval: \(options.pollInterval), timeout: \(options.sourceTimeout)}

                """
        }
        let config = """
            state: \(options.state)
            rules: [./rules]
            timezone: UTC
            \(options.listen ? "listen: \(options.listenYAML)" : "")
            sources:
            \(sources)
            sinks:
              - {name: hook, kind: webhook, url: "\(receiver.url)", timeout: \(options.sinkTimeout), retry: \(options.retry)\(options.hookSettings.isEmpty ? "" : ", " + options.hookSettings)}
            \(options.extraSinks)
            health: {notify: [hook], down_after: \(options.downAfter)\(options.silentAfter.map { ", silent_after: \($0)" } ?? "")}
            \(options.extraConfig)
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// A watcher whose `pendingRule` also notifies `tg`: a telegram sink at the simulator's Bot API
    /// double, with buttons for user 42 and the refusal reason "Already shipped".
    static func withTelegramSink(ozon: Int, red: Int) throws -> WatchSetup {
        var options = WatchOptions()
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   hook, tg")
        let setup = try WatchSetup(ozon: ozon, red: red, options: options)
        setup.options.extraSinks = """
              - {name: tg, kind: webhook, format: telegram, chat_id: "-1001234567890",
                 url: "\(try setup.simulator.telegramURL("sendMessage"))", actions: {allow: [42], refuse_reasons: ["Already shipped"]}}
            """
        try setup.writeConfig()
        return setup
    }

    /// Starts `cancelwatch run` on this directory.
    func startRun(
        _ extra: [String] = [], environment: [String: String] = [:], standardOutput: FileHandle? = nil,
        standardError: FileHandle? = nil
    ) throws -> RunningCommand {
        let command = try RunningCommand(
            ["run", "--config", configPath, "--log-level", "debug"] + extra, directory: directory, environment: environment,
            standardOutput: standardOutput, standardError: standardError)
        lock.withLock { processes.append(command) }
        return command
    }

    /// Runs a command to completion in this directory.
    func command(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 60) async throws -> CommandResult {
        try await RunningCommand.run(arguments, directory: directory, environment: environment, timeout: timeout)
    }

    /// Runs a command to completion with its output in files (nothing is lost to pipe timing).
    func capture(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 60) async throws
        -> CommandResult
    {
        let id = UUID().uuidString
        let outURL = directory.appendingPathComponent("out-\(id).txt")
        let errURL = directory.appendingPathComponent("err-\(id).txt")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        let process = try ChildProcess(
            executable: CancelWatchBinary.url.path, arguments: arguments, environment: env, directory: directory.path,
            standardOutput: out.fileDescriptor, standardError: err.fileDescriptor)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw CommandFailure("\(arguments) did not finish within \(timeout)s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try out.close()
        try err.close()
        return CommandResult(
            status: process.terminationStatus, stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    /// Stops the simulator: connections to its port are refused until `restartSimulator()`,
    /// and no other server of the test run is given the port meanwhile (the watcher keeps
    /// polling it: a webhook receiver that got the port once received its RED polls).
    func stopSimulator() {
        let simulator = lock.withLock {
            let s = simulatorStore
            simulatorStore = nil
            return s
        }
        simulator?.shutdown()
        if simulator != nil {
            let hold = PortHold(port: simulatorPort)
            lock.withLock { simulatorPortHold = hold }
        }
    }

    /// A new simulator on the same port with the same (absolute-time) requests.
    func restartSimulator() async throws {
        var lastError: Error?
        lock.withLock { simulatorPortHold = nil }
        for _ in 0..<50 {
            do {
                let simulator = try MarketSimulator(scenario: scenario, clock: SystemClock(), port: simulatorPort)
                lock.withLock { simulatorStore = simulator }
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw CommandFailure("cannot restart the simulator on port \(simulatorPort): \(String(describing: lastError))")
    }

    /// Stops every process still running (SIGKILL), the simulator and the receiver.
    func shutdown() {
        let running = lock.withLock { processes }
        for process in running where process.process.isRunning {
            kill(process.process.processIdentifier, SIGKILL)
            process.process.waitUntilExit()
        }
        stopSimulator()
        lock.withLock { simulatorPortHold = nil }
        receiver.stop()
    }

    // MARK: What is due

    /// The source name of a simulator request.
    static func source(of info: SimRequestInfo) -> String { info.marketplace == .ozon ? "ozon" : "red" }

    /// cancelwatch's id of a simulator request.
    static func requestID(of info: SimRequestInfo) -> String {
        info.marketplace == .ozon ? info.id : "\(info.order)@\(Int64(info.created.timeIntervalSince1970.rounded(.down)))"
    }

    /// Requests pending in the simulator now.
    func pendingRequests() throws -> [SimRequestInfo] {
        try simulator.requests().filter { $0.state == "pending" }
    }

    /// The `firing` ids of rule `rule` for every request pending in the simulator.
    func dueFirings(rule: String = "pending", of requests: [SimRequestInfo]? = nil) throws -> Set<String> {
        Set(
            try (requests ?? pendingRequests()).map {
                AlertEvent.makeID(source: Self.source(of: $0), request: Self.requestID(of: $0), rule: rule, kind: .firing, occurrence: 1)
            })
    }

    /// The id of the `occurrence`-th `source_down` or `source_up` of `source`.
    static func healthID(source: String, kind: AlertEvent.Kind, occurrence: Int = 1) -> String {
        AlertEvent.makeID(source: source, request: "", rule: "health", kind: kind, occurrence: occurrence)
    }

    // MARK: The state file and `status`

    /// `status --format json`, one object per pending request.
    func status(environment: [String: String] = [:]) async throws -> [[String: Any]] {
        let result = try await capture(["status", "--config", configPath, "--format", "json"], environment: environment)
        guard result.status == 0 else { throw CommandFailure("status failed: \(result.stderr)") }
        return try result.stdout.split(separator: "\n").map {
            guard let object = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
                throw CommandFailure("status printed a line that is not an object: \($0)")
            }
            return object
        }
    }

    /// The "source|order" of each request `status` lists as pending.
    func statusOrders() async throws -> Set<String> {
        Set(try await status().compactMap { row in
            guard let source = row["source"] as? String, let order = row["order"] as? String else { return nil }
            return "\(source)|\(order)"
        })
    }

    func pendingOrders() throws -> Set<String> {
        Set(try pendingRequests().map { "\(Self.source(of: $0))|\($0.order)" })
    }

    /// The outbox rows (event id, sink, status), read with the sqlite3 shell.
    func outbox() throws -> [(id: String, sink: String, status: String)] {
        guard FileManager.default.fileExists(atPath: statePath),
            try StateFileReader.rows(statePath, "SELECT name FROM sqlite_master WHERE name = 'outbox'").count == 1
        else { return [] }
        return try StateFileReader.rows(statePath, "SELECT event_id, sink, status FROM outbox ORDER BY created_at").map {
            (id: $0[0], sink: $0[1], status: $0[2])
        }
    }

    /// Ids the state file records as delivered to `sink`.
    func deliveredIDs(sink: String = "hook") throws -> Set<String> {
        Set(try outbox().filter { $0.sink == sink && $0.status == "delivered" }.map(\.id))
    }
}

/// Reads a state file on a connection of its own, as a second reader would (in this
/// process: spawning the sqlite3 shell from polling loops starves a small machine's
/// cooperative pool, which the scenarios' timings then feel).
enum StateFileReader {
    static func rows(_ path: String, _ sql: String, write: Bool = false) throws -> [[String]] {
        let database = try SQLiteDatabase(path: path, readOnly: !write)
        var rows: [[String]] = []
        try database.query(sql) { row in
            rows.append((0..<row.columnCount).map { row.string($0) })
        }
        return rows
    }
}

/// Waits until `condition` holds, checking every 100 ms (an error counts as "not yet");
/// fails after `timeout` with `what` (and the last error).
func eventually(
    _ what: @autoclosure () -> String, timeout: TimeInterval = 60, _ condition: () async throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: Error?
    repeat {
        do {
            if try await condition() { return }
            lastError = nil
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(100))
    } while Date() < deadline
    if try await condition() { return }
    throw CommandFailure("timed out after \(Int(timeout))s waiting for \(what())\(lastError.map { " (last error: \($0))" } ?? "")")
}

/// Counts of each id in `ids`.
func multiplicities(_ ids: [String]) -> [String: Int] {
    ids.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

extension RunningCommand {
    /// Kills the process with SIGKILL and waits for it to be gone.
    func killHard() async throws {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = try await wait(timeout: 30)
    }

    /// The `http://127.0.0.1:PORT` (or `http://[::1]:PORT`) of `/metrics`, from the log line that announces it.
    func metricsURL(timeout: TimeInterval = 30) async throws -> String {
        var found: String?
        try await eventually("the /metrics address in the log", timeout: timeout) {
            // `listen=http://…` in text logs, `"listen":"http://…"` in JSON ones.
            guard let range = self.stderr.range(of: #"listen"?[=:]"?http://(127\.0\.0\.1|\[::1\]|0\.0\.0\.0):[0-9]+"#, options: .regularExpression),
                let start = self.stderr[range].range(of: "http://")
            else { return false }
            // Every interface (0.0.0.0) is reached at 127.0.0.1.
            found = String(self.stderr[start.lowerBound..<range.upperBound]).replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
            return true
        }
        return found!
    }
}

/// The value of one sample (`name{labels}` as written) in `url`'s `/metrics`, or nil when
/// the scrape fails or the sample is absent.
func scrapedMetric(_ url: String, _ sample: String) async throws -> Double? {
    let (status, body) = try await httpGet(url + "/metrics")
    return status == 200 ? metricValue(body, sample) : nil
}

/// A plain HTTP GET from the test (URLSession), with its status and body.
func httpGet(_ url: String, timeout: TimeInterval = 10) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = timeout
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

extension RunningCommand {
    /// The TCP addresses (`127.0.0.1:port`) this process listens on, from the kernel's
    /// socket table and the process's own descriptors. Unlike a request to an address,
    /// this cannot be answered by another test's server that got the port meanwhile.
    func listeningAddresses() throws -> Set<String> {
        let fdDirectory = "/proc/\(process.processIdentifier)/fd"
        var inodes: Set<String> = []
        for name in try FileManager.default.contentsOfDirectory(atPath: fdDirectory) {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(name)"),
                target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        var addresses: Set<String> = []
        for line in try procFile("/proc/net/tcp").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            // sl local_address rem_address st … inode: LISTEN is state 0A.
            guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let host = UInt32(local[0], radix: 16), let port = UInt16(local[1], radix: 16) else { continue }
            // The kernel prints the address as a host-order number of network-order bytes.
            let octets = (0..<4).map { String((host >> (8 * $0)) & 0xff) }
            addresses.insert("\(octets.joined(separator: ".")):\(port)")
        }
        return addresses
    }
}

/// A file under /proc read to its end (Foundation's `String(contentsOfFile:)` stops at
/// the first 4 KB of these files, whose size reads as 0).
func procFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CommandFailure("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
