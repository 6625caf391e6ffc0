import Foundation
import MarketSim
import Testing

@testable import CancelWatch

/// Text in the state file is bytes: a NUL, any control byte, U+FFFD, a lone "\ud800"
/// escape, 64 KB strings come back as they went in, from every column that holds text.
@Suite struct StoreBytesTests {
    static func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-bytes-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("state.sqlite").path
    }

    /// Reproducible strings made of what cuts or bends text: NUL, every control byte,
    /// DEL, quotes and backslashes, U+FFFD, multi-byte and combining scalars.
    struct Strings: RandomNumberGenerator {
        var generator: SeededGenerator

        mutating func next() -> UInt64 { generator.next() }

        static let pieces: [String] =
            (0..<0x20).map { String(UnicodeScalar(UInt8($0))) } + [
                "\u{7F}", "\"", "\\", "\\u0000", "\u{FFFD}", "é", "e\u{301}", "中", "🚚", "\u{202E}", "\r\n", "PKG", "a", " ",
            ]

        mutating func string(maxPieces: Int = 24) -> String {
            (0..<Int.random(in: 0...maxPieces, using: &self)).map { _ in Self.pieces.randomElement(using: &self)! }.joined()
        }
    }

    /// The strings every column is tried with: the edge cases, then random ones.
    static func samples(count: Int) -> [String] {
        var strings = Strings(generator: SeededGenerator(seed: 12))
        let fixed = [
            "", "\u{0}", "PKG\u{0}A", "PKG\u{0}B", "\u{0}\u{0}", (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }.joined(),
            String(repeating: "\u{0}x", count: 32 * 1024), String(repeating: "中", count: 22 * 1024) + "\u{0}",
        ]
        return fixed + (0..<count).map { _ in strings.string() }
    }

    /// `text` made distinct by an index after a NUL, so a cut at the NUL makes two keys one.
    static func key(_ text: String, _ index: Int) -> String { "\(text)\u{0}\(index)" }

    func request(_ text: String, _ index: Int) throws -> TrackedRequest {
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        // The raw object as a marketplace may send it: escapes kept as they came, a lone surrogate included.
        let rawText = #"{"package_id":"PKG\u0000A","bad":"\ud800","text":"# + JSONValue.string(text).serialized() + "}"
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: Self.key(text, index), id: Self.key(text, index), order: text, state: .pending,
            rawState: text, initiator: text, reason: text, reasonID: text, logistics: text, createdAt: at, deadline: at.addingTimeInterval(3600),
            rawObject: try RawObject(json: Array(rawText.utf8)))
        return TrackedRequest(request: request, status: .pending, firstSeen: at, lastSeen: at)
    }

    func event(_ text: String, _ index: Int) throws -> AlertEvent {
        AlertEvent(
            id: Self.key(text, index), kind: .firing, rule: text, severity: .warning, source: text, marketplace: .xiaohongshu,
            request: try request(text, index).request, occurredAt: Date(timeIntervalSince1970: 1_764_000_000), message: text,
            sinks: [Self.key(text, index)])
    }

    @Test func everyTextColumnGivesBackTheBytesItWasGiven() throws {
        let store = try SQLiteStateStore(path: Self.temporaryPath())
        let texts = Self.samples(count: 200)
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        let tracked = try texts.enumerated().map { try request($1, $0) }
        let healths = texts.enumerated().map { index, text in
            SourceHealth(source: Self.key(text, index), marketplace: .ozon, lastPollAt: at, consecutiveFailures: 1, lastError: text)
        }
        for (item, health) in zip(tracked, healths) { try store.save([item], health: health) }

        #expect(try store.loadTracked().sorted { $0.key < $1.key } == tracked.sorted { $0.key < $1.key })
        let raws = Dictionary(try store.loadTracked().map { ($0.key, $0.request.raw) }, uniquingKeysWith: { a, _ in a })
        #expect(raws.count == tracked.count)
        for item in tracked { #expect(raws[item.key] == item.request.raw) }
        let loadedHealth = try store.loadHealth()
        #expect(Set(loadedHealth) == Set(healths))

        let alerts = texts.enumerated().map { index, text in
            AlertState(request: tracked[index].key, rule: text, firings: 1, active: true, lastFiredAt: at)
        }
        let events = try texts.enumerated().map { try event($1, $0) }
        try store.commit(alerts: alerts, events: events, health: nil, at: at)
        #expect(Set(try store.loadAlerts()) == Set(alerts))
        let loaded = try store.loadAlerts()
        for alert in alerts.prefix(20) { #expect(loaded.filter { $0.request == alert.request } == [alert]) }

        for (index, event) in events.enumerated() {
            let sink = event.sinks[0]
            let due = try store.dueDeliveries(sink: sink, now: at, limit: 10)
            #expect(due.unreadable.isEmpty)
            #expect(due.deliveries.map(\.event) == [event], "sample \(index)")
            try store.recordDelivery(DeliveryResult(eventID: event.id, sink: sink, status: .dead, attempts: 1, error: texts[index], at: at))
        }
        let letters = try store.deadLetters(limit: events.count + 1)
        #expect(letters.count == events.count)
        let byID = Dictionary(letters.map { ($0.eventID, $0) }, uniquingKeysWith: { a, _ in a })
        for (index, event) in events.enumerated() {
            let letter = byID[event.id]
            #expect(letter?.sink == event.sinks[0] && letter?.error == texts[index] && letter?.event == event, "sample \(index)")
        }
        #expect(Set(try store.outboxCounts().map(\.sink)) == Set(events.map { $0.sinks[0] }))
    }

    /// Two RED packages that differ only after a NUL are two requests, each with its alert.
    @Test func idsThatDifferOnlyAfterANulAreTwoRows() throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        let first = try request("PKG\u{0}A", 0)
        let second = try request("PKG\u{0}B", 0)
        try store.save([first, second], health: nil)
        #expect(Set(try SQLiteStateStore(path: path, readOnly: true).loadTracked().map(\.key)) == [first.key, second.key])
        let alerts = [first, second].map { AlertState(request: $0.key, rule: "pending", firings: 1, active: true) }
        try store.commit(alerts: alerts, events: [], health: nil, at: Date())
        #expect(try store.loadAlerts().filter { $0.request == second.key } == [alerts[1]])
        try store.delete([first.key])
        #expect(try store.loadTracked().map(\.key) == [second.key])
    }
}
