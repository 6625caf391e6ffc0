import Foundation
import MarketSim
import Testing

@testable import CancelWatch

/// Text in the store contract is bytes: a NUL, any control byte, U+FFFD, a lone "\ud800"
/// escape, 64 KB strings come back as they went in, from every part that holds text, and
/// keys that differ in their bytes alone are different rows.
extension StateStoreContractTests {
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

        /// The strings every part is tried with: the edge cases, then random ones.
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
    }

    /// A request whose every text is `text`.
    static func textRequest(_ text: String, _ index: Int) throws -> TrackedRequest {
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        // The raw object as a marketplace may send it: escapes kept as they came, a lone surrogate included.
        let rawText = #"{"package_id":"PKG\u0000A","bad":"\ud800","text":"# + JSONValue.string(text).serialized() + "}"
        let request = CancellationRequest(
            marketplace: .xiaohongshu, source: Strings.key(text, index), id: Strings.key(text, index), order: text, state: .pending,
            rawState: text, initiator: text, reason: text, reasonID: text, logistics: text, reasonMessage: text, createdAt: at,
            deadline: at.addingTimeInterval(3600), rawObject: try RawObject(json: Array(rawText.utf8)))
        return TrackedRequest(request: request, status: .pending, firstSeen: at, lastSeen: at)
    }

    /// An event whose every text is `text`, for a sink of that name.
    static func textEvent(_ text: String, _ index: Int) throws -> AlertEvent {
        AlertEvent(
            id: Strings.key(text, index), kind: .firing, rule: text, severity: .warning, source: text, marketplace: .xiaohongshu,
            request: try textRequest(text, index).request, occurredAt: Date(timeIntervalSince1970: 1_764_000_000), message: text,
            sinks: [Strings.key(text, index)])
    }

    @Test(arguments: StoreKind.all)
    func everyTextColumnGivesBackTheBytesItWasGiven(_ kind: StoreKind) throws {
        try kind.withStore { store in
            let texts = Strings.samples(count: 200)
            let at = Date(timeIntervalSince1970: 1_764_000_000)
            let tracked = try texts.enumerated().map { try Self.textRequest($1, $0) }
            let healths = texts.enumerated().map { index, text in
                SourceHealth(source: Strings.key(text, index), marketplace: .ozon, lastPollAt: at, consecutiveFailures: 1, lastError: text)
            }
            for (item, health) in zip(tracked, healths) { try store.save([item], health: health) }

            #expect(Samples.bytes(of: try store.loadTracked()) == Samples.bytes(of: tracked))
            #expect(try store.loadTracked().sorted { $0.key < $1.key } == tracked.sorted { $0.key < $1.key })
            let raws = Dictionary(try store.loadTracked().map { ($0.key, $0.request.raw) }, uniquingKeysWith: { a, _ in a })
            #expect(raws.count == tracked.count)
            for item in tracked { #expect(raws[item.key] == item.request.raw) }
            let loadedHealth = try store.loadHealth()
            #expect(Set(loadedHealth) == Set(healths))
            #expect(Set(loadedHealth.map { Array($0.source.utf8) + [0xFF] + Array(($0.lastError ?? "").utf8) })
                == Set(healths.map { Array($0.source.utf8) + [0xFF] + Array(($0.lastError ?? "").utf8) }))

            let alerts = texts.enumerated().map { index, text in
                AlertState(request: tracked[index].key, rule: text, firings: 1, active: true, lastFiredAt: at)
            }
            let events = try texts.enumerated().map { try Self.textEvent($1, $0) }
            try store.commit(alerts: alerts, events: events, health: nil, at: at)
            #expect(Set(try store.loadAlerts()) == Set(alerts))
            let loaded = try store.loadAlerts()
            for alert in alerts.prefix(20) { #expect(loaded.filter { $0.request == alert.request } == [alert]) }
            #expect(Set(loaded.map { Array($0.rule.utf8) }) == Set(alerts.map { Array($0.rule.utf8) }))

            for (index, event) in events.enumerated() {
                let sink = event.sinks[0]
                let due = try store.dueDeliveries(sink: sink, now: at, limit: 10)
                #expect(due.unreadable.isEmpty)
                #expect(due.deliveries.map(\.event) == [event], "sample \(index)")
                #expect(due.deliveries.first.map { Array($0.event.message.utf8) } == Array(event.message.utf8), "sample \(index)")
                try store.recordDelivery(
                    DeliveryResult(eventID: event.id, sink: sink, status: .dead, attempts: 1, error: texts[index], at: at))
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
    }

    /// Two RED packages that differ only after a NUL are two requests, each with its alert.
    @Test(arguments: StoreKind.all)
    func idsThatDifferOnlyAfterANulAreTwoRows(_ kind: StoreKind) throws {
        try kind.withPlace { place in
            let first = try Self.textRequest("PKG\u{0}A", 0)
            let second = try Self.textRequest("PKG\u{0}B", 0)
            do {
                try place.open().save([first, second], health: nil)
            }
            let store = try place.open()
            #expect(Set(try store.loadTracked().map(\.key)) == [first.key, second.key])
            let alerts = [first, second].map { AlertState(request: $0.key, rule: "pending", firings: 1, active: true) }
            try store.commit(alerts: alerts, events: [], health: nil, at: Date())
            #expect(try store.loadAlerts().filter { $0.request == second.key } == [alerts[1]])
            try store.delete([first.key])
            #expect(try store.loadTracked().map(\.key) == [second.key])
        }
    }

    /// Keys told apart by their bytes alone: after a NUL, by the scalar a lone surrogate
    /// escape reads as, by Unicode form (é and e + U+0301), by case and a trailing space.
    /// Each is a row with its own alert state and outbox entry, and deleting one leaves
    /// the others.
    @Test(arguments: StoreKind.all)
    func keysThatDifferOnlyInTheirBytesAreDifferentRows(_ kind: StoreKind) throws {
        let surrogates = try ["\\ud800", "\\udbff", "\\udc00"].map { escape in
            try #require(try JSONParser.parse(Data(#"{"id":"PKG\#(escape)A"}"#.utf8))["id"]?.stringValue)
        }
        let ids = ["PKG\u{0}A", "PKG\u{0}B", "PKG"] + surrogates + ["caf\u{E9}", "cafe\u{301}", "Cafe\u{301}", "cafe\u{301} "]
        let sources = ["red-shop", "red-shop\u{0}", "r\u{E9}d", "re\u{301}d"]
        try kind.withStore { store in
            let requests = sources.flatMap { source in
                ids.map { id in
                    var item = Samples.tracked(id, source: source, marketplace: .xiaohongshu)
                    item.request.order = id
                    return item
                }
            }
            #expect(Set(requests.map(\.key)).count == ids.count * sources.count)
            let alerts = requests.map { AlertState(request: $0.key, rule: "r", firings: 1) }
            let events = requests.enumerated().map { index, item in
                AlertEvent(
                    id: "\(item.key.source)/\(item.key.id)", kind: .firing, rule: "r", severity: .info, source: item.key.source,
                    marketplace: .xiaohongshu, request: item.request, occurredAt: Samples.now, message: "\(index)", sinks: ["hook"])
            }
            try store.commit(StoreChanges(tracked: requests, alerts: alerts, events: events), at: Samples.now)
            #expect(Samples.bytes(of: try store.loadTracked()) == Samples.bytes(of: requests))
            #expect(Set(try store.loadAlerts().map(\.request)) == Set(requests.map(\.key)))
            let due = try store.dueDeliveries(sink: "hook", now: Samples.now, limit: 1000).deliveries
            #expect(due.count == events.count)
            #expect(Set(due.map { Array($0.event.id.utf8) }) == Set(events.map { Array($0.id.utf8) }))

            let gone = requests[ids.count + 4].key
            try store.delete([gone])
            #expect(Set(try store.loadTracked().map(\.key)) == Set(requests.map(\.key)).subtracting([gone]))
            #expect(Set(try store.loadAlerts().map(\.request)) == Set(requests.map(\.key)).subtracting([gone]))
        }
    }
}
