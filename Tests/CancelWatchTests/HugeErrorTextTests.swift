import CancelWatchTesting
import Foundation
import HTTPServing
import Logging
import Testing

@testable import CancelWatch

/// Error texts from outside are bounded where they are made (after scrubbing, cut on a
/// character boundary), and again where they are stored: a 5 MB message costs a few KB.
@Suite struct HugeErrorTextTests {
    static let huge = "rejected: " + String(repeating: "Ж", count: 5 << 19)
    static let limit = 4096

    @Test func aFiveMegabyteOzonErrorMessageIsCutAfterItsKeyIsScrubbed() async throws {
        let key = "ozon-key-across-the-cut-5f2e"
        let message = String(repeating: "x", count: TextCut.errorTextLimit - 10) + key + Self.huge
        let body = Data(#"{"code":3,"message":"\#(message)"}"#.utf8)
        let server = try ScriptedServer(fallback: { _ in .json(status: 400, body) })
        let client = OzonClient(
            account: OzonAccount(source: "ozon", baseURL: server.baseURL, clientID: "1", apiKey: key, timeout: 10),
            transport: CurlHTTPTransport(threads: 1), clock: SystemClock())
        do {
            _ = try await client.fetchPending()
            Issue.record("the answer is an error")
        } catch {
            #expect(error.message.utf8.count <= Self.limit, "\(error.message.utf8.count) bytes")
            #expect(!error.message.contains(String(key.prefix(8))), "the key's start across the cut")
            #expect(error.message.hasPrefix("code 3: xxx"))
        }
    }

    /// A client that builds its own huge error (no scrubber on the way): the ledger still
    /// logs and stores a bounded text.
    @Test func theLedgerStoresABoundedLastErrorWhateverTheClientThrew() async throws {
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-huge"))
        let market = ScriptedMarketplace()
        market.failListings(PollError(source: "ozon-main", kind: .server, status: 500, message: Self.huge))
        let lines = LogLines()
        let clock = ManualClock()
        let logger = Logger(label: "test", factory: { _ in LineCollector(lines) })
        let sources = [PolledSource(client: market, pollInterval: 60)]
        let ledger = try Ledger(
            rules: [], store: store, clock: clock, logger: logger, sources: sources, health: HealthConfig(notify: ["hook"], downAfter: 1))
        let report = await Poller(sources: sources, ledger: ledger, clock: clock, logger: logger).poll(market)
        let stored = try #require(try store.loadHealth().first?.lastError)
        #expect(stored.utf8.count <= Self.limit, "last_error of \(stored.utf8.count) bytes")
        #expect(stored.contains("rejected: ЖЖ"))
        #expect(!stored.unicodeScalars.contains("\u{FFFD}"))
        #expect((report.healthEvent?.message.utf8.count ?? 0) <= 2 * Self.limit)
        #expect(lines.all.allSatisfy { $0.utf8.count <= 2 * Self.limit }, "\(lines.all.map(\.utf8.count))")
    }

    /// A sink that fails with a huge message: the outbox's `last_error` and the log stay bounded.
    @Test func theDeliveryQueueStoresABoundedErrorWhateverTheSinkThrew() async throws {
        let clock = ManualClock(SinkTestEvents.occurredAt)
        var event = SinkTestEvents.firing(id: String(format: "%032x", 7), order: "0123-0001-7")
        event.sinks = ["memory"]
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-huge"))
        try store.commit(alerts: [], events: [event], health: nil, at: clock.now())
        let sink = InMemorySink(clock: clock)
        sink.failNext(1, with: DeliveryError(retryable: false, message: Self.huge))
        let lines = LogLines()
        let queue = DeliveryQueue(
            routes: [DeliveryQueue.Route(sink: sink)], store: store, clock: clock,
            logger: Logger(label: "test", factory: { _ in LineCollector(lines) }))
        await queue.deliverDueOnce()
        let letter = try #require(try store.deadLetters(limit: 1).first)
        #expect(letter.error.utf8.count <= Self.limit, "\(letter.error.utf8.count) bytes")
        #expect(letter.error.hasPrefix("rejected: ЖЖ"))
        #expect(lines.all.allSatisfy { $0.utf8.count <= 2 * Self.limit }, "\(lines.all.map(\.utf8.count))")
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    private var levels: [Logger.Level] = []
    func add(_ line: String, level: Logger.Level = .info) {
        lock.withLock {
            stored.append(line)
            levels.append(level)
        }
    }
    var all: [String] { lock.withLock { stored } }
    /// The messages logged at `level` or above.
    func all(atLeast level: Logger.Level) -> [String] { lock.withLock { zip(stored, levels).filter { $0.1 >= level }.map(\.0) } }
}

/// Every message logged, as its text.
struct LineCollector: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    init(_ lines: LogLines) { self.lines = lines }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { lines.add(event.message.description, level: event.level) }
}
