import Foundation
import MarketSim
import Testing

@testable import CancelWatch

/// Seeded random-input tests: mutations of valid inputs and random bytes fed to the
/// config loader, both marketplaces' decoders and the JSON parser. Nothing may crash,
/// and whatever decodes must be usable downstream (formatted, serialized, evaluated).
/// Bounded by input count, a few seconds each; the seed makes a failure reproduce.
@Suite struct FuzzTests {

    /// Byte-level and token-level mutations of `seed`.
    static func mutate(_ seed: [UInt8], pieces: [String], using rng: inout SeededGenerator) -> [UInt8] {
        var bytes = seed
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: if !bytes.isEmpty { bytes.remove(at: at) }
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            case 2: if !bytes.isEmpty { bytes[at] = UInt8.random(in: 0...255, using: &rng) }
            case 3: bytes.insert(contentsOf: Array(pieces.randomElement(using: &rng)!.utf8), at: at)
            case 4:
                // Cut the input short.
                bytes = Array(bytes.prefix(at))
            case 5:
                // Duplicate a slice.
                let end = min(bytes.count, at + Int.random(in: 1...40, using: &rng))
                bytes.insert(contentsOf: bytes[at..<end], at: at)
            default:
                // Replace a number with an extreme one.
                if let digit = bytes[at...].firstIndex(where: { (48...57).contains($0) }) {
                    var end = digit
                    while end < bytes.count, (48...57).contains(bytes[end]) { end += 1 }
                    bytes.replaceSubrange(digit..<end, with: Array(Self.extremes.randomElement(using: &rng)!.utf8))
                }
            }
        }
        return bytes
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let extremes = [
        "0", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e308", "1e309", "-1e309", "1.7976931348623157e308",
        "99999999999999999999999999", "0.0000000000000000000001", "NaN", "Infinity", "4.5", "-0", "1E400", "18446744073709551616",
    ]

    static func randomBytes(using rng: inout SeededGenerator) -> [UInt8] {
        (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Uses what a decoder produced the way the pipeline would: status, events, bodies.
    static func exercise(_ request: CancellationRequest) {
        let now = Date()
        _ = Timestamp.format(request.deadline)
        _ = request.createdAt.map(Timestamp.format)
        _ = DurationText.format(request.remaining(at: now))
        let event = AlertEvent(
            id: AlertEvent.makeID(source: request.source, request: request.id, rule: "r", kind: .firing, occurrence: 1),
            kind: .firing, rule: "r", severity: .warning, source: request.source, marketplace: request.marketplace,
            request: request, occurredAt: now, message: request.reason, sinks: ["s"])
        let body = event.webhookBody.serialized()
        _ = try? JSONParser.parse(body)
        _ = try? event.outboxText()
    }

    @Test func theConfigLoaderSurvivesMutatedAndRandomInput() async throws {
        var rng = SeededGenerator(seed: 51)
        let seeds = [
            CancelWatchConfig.sample,
            """
            state: ./cw.sqlite
            rules: [./rules, ./more]
            timezone: Europe/Moscow
            listen: 127.0.0.1:9464
            sources:
              - {name: a, kind: ozon, client_id: "1", api_key: "${KEY}", poll_interval: 30s, timeout: 5s}
              - name: b
                kind: red
                app_key: k
                app_secret: s
                logistics: [red_auto, red_box]
                max_audit_time_unit: seconds
                page_size: 20
            sinks:
              - {name: ops, kind: webhook, url: "https://h.example/x", secret: s, headers: {A: b}, retry: {max_attempts: 3, initial_delay: 1s, max_delay: 1m}}
              - {name: tg, kind: webhook, format: telegram, chat_id: "1", url: "https://api.telegram.org/botX/sendMessage"}
              - {name: mail, kind: email, url: "smtp://m:587", username: u, password: p, from: "a <a@b.c>", to: [x@y.z]}
              - {name: out, kind: stdout, format: json}
            health: {notify: [ops], down_after: 2}
            """,
        ]
        let pieces = [
            ":", "- ", "{", "}", "[", "]", "\"", "'", "${", "${KEY}", "${MISSING}", "\n", "  ", "\t", "&a", "*a", "!!binary", "? ",
            "|", ">", "#", "%YAML 1.2\n", "---\n", "...\n", "\u{0}", "\u{FEFF}", "é", "999999999999999999999s", "1e999s", "-5s",
            "kind: ", "url: ", "listen: ", "[::1]:", "timeout: ", "poll_interval: ", "0ms", "retry: ", "<<: *a",
        ]
        for round in 0..<4000 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            let bytes = round % 5 == 0 ? Self.randomBytes(using: &rng) : Self.mutate(Array(seeds[round % 2].utf8), pieces: pieces, using: &rng)
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let config = try CancelWatchConfig.parse(yaml: text, path: "/tmp/fuzz.yaml", environment: ["KEY": "k"])
                _ = config.sinkNames
                _ = config.listen?.description
            } catch {
                _ = error.description
            }
        }
    }

    @Test func theOzonDecoderSurvivesMutatedAndRandomPages() async throws {
        var rng = SeededGenerator(seed: 52)
        let fixture = try Data(contentsOf: Self.fixtures.appendingPathComponent("ozon-seed-response.json"))
        let seeds: [[UInt8]] = [
            Array(fixture),
            Array(
                #"{"result":[{"cancellation_id":"12","posting_number":"1-2-3","state":{"id":1,"name":"x","state":"ON_APPROVAL"},"cancelled_at":"2024-01-01T00:00:00.123456Z","cancellation_reason":{"id":"5","name":"r"},"auto_approve_date":"2024-01-03T00:00:00+03:00","cancellation_initiator":"CLIENT","order_date":null,"approve_date":null}],"last_id":"77","counter":"1"}"#
                    .utf8),
        ]
        let pieces = [
            "\"", "{", "}", "[", "]", ",", ":", "null", "true", "\"ON_APPROVAL\"", "\"APPROVED\"", "\"9999-12-31T23:59:60.9999999999Z\"",
            "\"0000-01-01T00:00:00-23:59\"", "\"2024-02-30T24:00:00Z\"", "\\u0000", "\\ud800", "1e999", "-1", "\"cancellation_id\":",
            "\"auto_approve_date\":", "\"result\":", "\"last_id\":", "{\"id\":[]}",
        ]
        var decoded = 0
        for round in 0..<8000 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            let bytes = round % 5 == 0 ? Self.randomBytes(using: &rng) : Self.mutate(seeds[round % 2], pieces: pieces, using: &rng)
            _ = OzonWire.errorMessage(Data(bytes))
            guard let page = try? OzonWire.decodePage(Data(bytes)) else { continue }
            for item in page.items {
                guard let request = try? OzonWire.request(from: item, source: "ozon") else { continue }
                decoded += 1
                Self.exercise(request)
            }
        }
        #expect(decoded > 100, "the mutations should still decode now and then (\(decoded))")
    }

    @Test func theXiaohongshuDecoderSurvivesMutatedAndRandomPages() async throws {
        var rng = SeededGenerator(seed: 53)
        let fixture = try Data(contentsOf: Self.fixtures.appendingPathComponent("red-seed-response.json"))
        let seeds: [[UInt8]] = [
            Array(fixture),
            Array(
                #"{"success":true,"error_code":0,"data":{"total_page":"3","current_page":1,"package_list":[{"package_id":"P1","cancel_time":1700000000,"max_audit_time":"86400000","status":"unaudited","cancel_reason":"x","logistics":"red_box"}]}}"#
                    .utf8),
        ]
        let pieces = [
            "\"", "{", "}", "[", "]", ",", ":", "null", "false", "\"unaudited\"", "1e308", "-1e308", "9223372036854775807",
            "-9223372036854775808", "\"1e300\"", "\"inf\"", "\"nan\"", "\"package_id\":", "\"cancel_time\":", "\"max_audit_time\":",
            "\"error_code\":", "\"total_page\":",
        ]
        var decoded = 0
        for round in 0..<8000 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            let bytes = round % 5 == 0 ? Self.randomBytes(using: &rng) : Self.mutate(seeds[round % 2], pieces: pieces, using: &rng)
            guard let page = try? RedWire.decodePage(Data(bytes)) else { continue }
            for item in page.items {
                for unit in [MaxAuditTimeUnit.milliseconds, .seconds] {
                    guard let request = try? RedWire.pendingRequest(from: item, source: "red", sentAt: Date(), unit: unit, logistics: "red_auto") else { continue }
                    decoded += 1
                    Self.exercise(request)
                }
            }
        }
        #expect(decoded > 100, "the mutations should still decode now and then (\(decoded))")
    }

    @Test func extremeNumbersFromTheMarketplacesStayUsable() throws {
        // The values a fuzzer finds first, kept as plain cases.
        for (cancelTime, left) in [
            ("9223372036854775807", "1e308"), ("-9223372036854775808", "0"), ("0", "1.7976931348623157e308"),
            ("1700000000", "9223372036854775807"), ("1700000000", "-5"),
        ] {
            let item = try JSONParser.parse(
                #"{"package_id":"P","cancel_time":\#(cancelTime),"max_audit_time":\#(left),"status":"unaudited"}"#)
            for unit in [MaxAuditTimeUnit.milliseconds, .seconds] {
                if let request = try? RedWire.pendingRequest(from: item, source: "red", sentAt: Date(), unit: unit, logistics: "red_auto") {
                    Self.exercise(request)
                }
            }
        }
    }

    @Test func theJSONParserSurvivesMutatedAndRandomText() async throws {
        var rng = SeededGenerator(seed: 54)
        let seeds: [[UInt8]] = [
            Array(#"{"a":[1,-2.5e10,"x\u00e9\ud83d\ude00",true,false,null,{"b":{}}],"c":"\\\"\/\b\f\n\r\t"}"#.utf8),
            Array("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]".utf8),
            Array(#"  {"n": 123456789012345678901234567890, "f": 0.1e-400, "neg": -0, "s": "Покупатель 用户"}  "#.utf8),
        ]
        let pieces = [
            "\"", "\\", "\\u", "\\ud800", "\\udc00", "{", "}", "[", "]", ",", ":", "-", "+", ".", "e", "E", "0", "1e999", "tru", "nul",
            "\u{0}", "\u{7F}", "\u{FFFF}", String(repeating: "[", count: 5000), "/*", "//", "NaN", "Infinity",
        ]
        var parsed = 0
        for round in 0..<12000 {
            // A long loop on the cooperative pool: let other tests' timers run.
            if round % 64 == 0 { await Task.yield() }
            let bytes = round % 4 == 0 ? Self.randomBytes(using: &rng) : Self.mutate(seeds[round % 3], pieces: pieces, using: &rng)
            guard let value = try? JSONParser.parse(Data(bytes)) else { continue }
            parsed += 1
            // What parses serializes, and parses back to the same value.
            let text = value.serialized()
            let again = try JSONParser.parse(text)
            #expect(again.serialized() == text, "round trip of \(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(parsed > 100)
    }
}
