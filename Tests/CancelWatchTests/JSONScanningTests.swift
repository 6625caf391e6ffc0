@testable import CancelWatch
import Foundation
import Testing

/// A raw object kept as the text the marketplace sent must answer everything as the
/// parsed value would: its value, `raw.a.b` paths, the change fingerprint, and which
/// texts are JSON at all. Checked against `JSONParser` on generated and mutated text.
@Suite struct JSONScanningTests {
    typealias Generator = FuzzTests.Generator

    static func randomString(using rng: inout Generator) -> String {
        let pieces = ["a", "b", "ключ", "用户", "\"", "\\", "/", "\n", "\u{1}", "😀", "é", " ", "x_y"]
        return (0..<Int.random(in: 0...4, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func randomValue(depth: Int = 0, using rng: inout Generator) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 6 : 8), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .integer(Int64.random(in: -1_000_000_000_000...1_000_000_000_000, using: &rng))
        case 3: return .number([0.5, -2.25, 1e300, 3.0, 1e-7][Int.random(in: 0..<5, using: &rng)])
        case 4, 5: return .string(randomString(using: &rng))
        case 6:
            return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth: depth + 1, using: &rng) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                members[["a", "b", "c", "ключ", "x\"y", "0"].randomElement(using: &rng)!] = randomValue(depth: depth + 1, using: &rng)
            }
            return .object(members)
        }
    }

    /// The same value written differently: spaces, `\u` escapes, repeated keys (the last counts).
    static func variant(of value: JSONValue, using rng: inout Generator) -> String {
        let space = [" ", "", "\n\t", "  "].randomElement(using: &rng)!
        switch value {
        case .string(let s):
            // Escape some characters the canonical writer would not.
            var text = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case _ where scalar.value < 0x20: text += String(format: "\\u%04x", scalar.value)
                case _ where scalar.value > 0xFFFF:
                    let v = scalar.value - 0x10000
                    text += String(format: "\\u%04X\\u%04X", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                case _ where Bool.random(using: &rng) && scalar.value < 0x10000: text += String(format: "\\u%04x", scalar.value)
                default: text += String(scalar)
                }
            }
            return text + "\""
        case .array(let items):
            return "[" + space + items.map { variant(of: $0, using: &rng) }.joined(separator: "," + space) + space + "]"
        case .object(let members):
            var parts: [String] = []
            for (key, item) in members {
                if Bool.random(using: &rng) {
                    // A repeated key whose first value is overridden.
                    parts.append(variant(of: .string(key), using: &rng) + ":" + "[\"overridden\"]")
                }
                parts.append(variant(of: .string(key), using: &rng) + space + ":" + space + variant(of: item, using: &rng))
            }
            return "{" + space + parts.joined(separator: ",") + space + "}"
        default:
            return value.serialized()
        }
    }

    static func paths(in value: JSONValue, prefix: [String] = [], into result: inout [[String]]) {
        result.append(prefix)
        switch value {
        case .object(let members):
            for (key, item) in members { paths(in: item, prefix: prefix + [key], into: &result) }
            result.append(prefix + ["missing"])
        case .array(let items):
            for (index, item) in items.enumerated() { paths(in: item, prefix: prefix + [String(index)], into: &result) }
            result.append(prefix + [String(items.count)])
            result.append(prefix + ["x"])
        default:
            result.append(prefix + ["0"])
        }
    }

    @Test func aTextAnswersEveryPathValueAndFingerprintAsItsParsedValue() async throws {
        var rng = Generator(state: 2026)
        for round in 0..<3000 {
            if round % 64 == 0 { await Task.yield() }
            let value = Self.randomValue(using: &rng)
            let texts = [value.serialized(), Self.variant(of: value, using: &rng)]
            for text in texts {
                let parsed = try JSONParser.parse(text)
                let raw = try RawObject(json: Array(text.utf8))
                #expect(raw.value == parsed, "\(text)")
                #expect(raw == RawObject(parsed))
                // The change fingerprint is the text's: the compact text's is the value's.
                if text == texts[0] {
                    #expect(raw.fingerprint(ignoring: []) == RawObject(parsed).fingerprint(ignoring: []), "\(text)")
                }
                var paths: [[String]] = []
                Self.paths(in: parsed, into: &paths)
                for path in paths {
                    #expect(raw.value(atPath: path) == parsed.value(atPath: path), "\(path) in \(text)")
                }
            }
        }
    }

    @Test func aTextIsAcceptedExactlyWhenTheParserAcceptsIt() async throws {
        var rng = Generator(state: 77)
        let seeds: [[UInt8]] = [
            Array(#"{"a":[1,-2.5e10,"x\u00e9\ud83d\ude00",true,false,null,{"b":{}}],"c":"\\\"\/\b\f\n\r\t",}"#.utf8),
            Array(#"  {"n": 123456789012345678901234567890, "f": 0.1e-400, "neg": -0, "s": "Покупатель 用户", "l": [1,2,]}  "#.utf8),
        ]
        let pieces = ["\"", "\\", "\\u", "\\ud800", "{", "}", "[", "]", ",", ":", "-", ".", "e", "tru", "nul", "\u{0}", "1e999"]
        var accepted = 0
        for round in 0..<8000 {
            if round % 64 == 0 { await Task.yield() }
            let bytes = FuzzTests.mutate(seeds[round % 2], pieces: pieces, using: &rng)
            let parsed = try? JSONParser.parse(bytes)
            let raw = try? RawObject(json: bytes)
            #expect((parsed == nil) == (raw == nil), "\(String(decoding: bytes, as: UTF8.self))")
            if let parsed, let raw {
                accepted += 1
                #expect(raw.value == parsed)
            }
        }
        #expect(accepted > 100)
    }

    @Test func theChangeFingerprintIgnoresTheMarketplacesOwnCountdownAndNothingElse() throws {
        func fingerprint(_ text: String, ignoring: [String] = []) throws -> UInt64 {
            try RawObject(json: Array(text.utf8)).fingerprint(ignoring: ignoring)
        }
        let base = try fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"c": "x"}}"#, ignoring: ["max_audit_time"])
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 4, "b": {"c": "x"}}"#, ignoring: ["max_audit_time"]) == base)
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 123456, "b": {"c": "x"}}"#, ignoring: ["max_audit_time"]) == base)
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"c": "y"}}"#, ignoring: ["max_audit_time"]) != base)
        #expect(try fingerprint(#"{"a": 2, "max_audit_time": 5, "b": {"c": "x"}}"#, ignoring: ["max_audit_time"]) != base)
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"c": "x"}}"#) != base)
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"c": "x"}, "d": null}"#, ignoring: ["max_audit_time"]) != base)
        // Only the top-level member is the countdown.
        #expect(try fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"max_audit_time": 1}}"#, ignoring: ["max_audit_time"])
            != fingerprint(#"{"a": 1, "max_audit_time": 5, "b": {"max_audit_time": 2}}"#, ignoring: ["max_audit_time"]))
        // The text as sent counts (a marketplace sends an unchanged object the same way):
        // another member order is another text.
        #expect(try fingerprint(#"{"max_audit_time": 5, "b": {"c": "x"}, "a": 1}"#, ignoring: ["max_audit_time"]) != base)
        // What a client takes while reading a page is what the tracker would take.
        let item = RedWire.Item.reading(["package_id": "P1", "cancel_time": 1_763_999_990, "max_audit_time": 7, "status": "unaudited"])
        #expect(item.raw.changeFingerprint == item.raw.fingerprint(ignoring: ["max_audit_time"]))
        let ozon = OzonWire.Item.reading(["cancellation_id": 1, "state": ["state": "ON_APPROVAL"]])
        #expect(ozon.raw.changeFingerprint == ozon.raw.fingerprint(ignoring: []))
    }

    @Test(arguments: [
        (#"{"result": 5, "last_id": 0}"#, "'result' is a number, not an array"),
        (#"{"result": 5, "last_id": "#, "the answer is not JSON (invalid JSON at line 1"),
        (#"[{"cancellation_id": 1}]"#, "the answer is a JSON array, not an object"),
        (#"{"result": [{"cancellation_id": 1,}], "last_id": 1"#, "the answer is not JSON (invalid JSON at line 1"),
    ])
    func anOzonPageThatCannotBeReadSaysWhy(_ body: String, _ expected: String) {
        do {
            _ = try OzonWire.decodePage(Data(body.utf8))
            Issue.record("\(body) was read")
        } catch {
            #expect(error.message.hasPrefix(expected), "\(error.message)")
        }
    }

    @Test(arguments: [
        (#"{"success": true, "error_code": 0, "data": {"package_list": {}}}"#, "'data.package_list' is an object, not an array"),
        (#"{"success": true, "data": "#, "the answer is not JSON (invalid JSON at line 1"),
        (#""ok""#, "the answer is a JSON string, not an object"),
        (#"{"success": true, "error_code": 0}"#, "'data' is missing or not an object"),
    ])
    func aXiaohongshuPageThatCannotBeReadSaysWhy(_ body: String, _ expected: String) {
        do {
            _ = try RedWire.decodePage(Data(body.utf8))
            Issue.record("\(body) was read")
        } catch {
            guard case .decoding(let message) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(message.hasPrefix(expected), "\(message)")
        }
    }

    @Test func anOzonRequestIsCreatedWhenCancelledElseWhenOrdered() throws {
        func created(_ fields: String) throws -> Date? {
            let text = #"{"result": [{"cancellation_id": 1, "auto_approve_date": "2026-11-27T10:00:00Z", "# + fields + "}]}"
            let page = try OzonWire.decodePage(Data(text.utf8))
            return try OzonWire.request(from: try #require(page.items.first), source: "ozon").createdAt
        }
        let cancelled = Timestamp.parse("2026-11-25T10:00:00Z")
        let ordered = Timestamp.parse("2026-11-20T08:00:00Z")
        #expect(try created(#""cancelled_at": "2026-11-25T10:00:00Z", "order_date": "2026-11-20T08:00:00Z""#) == cancelled)
        #expect(try created(#""order_date": "2026-11-20T08:00:00Z", "cancelled_at": "2026-11-25T10:00:00Z""#) == cancelled)
        #expect(try created(#""cancelled_at": null, "order_date": "2026-11-20T08:00:00Z""#) == ordered)
        #expect(try created(#""cancelled_at": "yesterday", "order_date": "2026-11-20T08:00:00Z""#) == ordered)
        #expect(try created(#""order_date": "2026-11-20T08:00:00Z""#) == ordered)
        #expect(try created(#""order_date": "soon""#) == nil)
        // A repeated key counts by its last value, as the parser keeps it.
        #expect(
            try created(#""cancelled_at": "2026-11-25T10:00:00Z", "order_date": "2026-11-20T08:00:00Z", "cancelled_at": null"#)
                == ordered)
    }

    @Test func theTextIsReadAsTheParserReadsItEvenAtItsEdges() throws {
        // A repeated `result`: the last one counts.
        let page = try OzonWire.decodePage(Data(#"{"result": 5, "result": [{"cancellation_id": 3}], "last_id": 3}"#.utf8))
        #expect(page.items.count == 1 && page.items.first?.id == 3)
        // Nesting deeper than the parser takes is refused by the text path too, scalars included.
        let deep = String(repeating: "[", count: 512) + "1" + String(repeating: "]", count: 512)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        #expect(throws: JSONParseError.self) { try RawObject(json: Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 511) + "1" + String(repeating: "]", count: 511)
        #expect(try RawObject(json: Array(fine.utf8)).value == JSONParser.parse(fine))
        // A key in decomposed form answers a path written composed, as a dictionary lookup would.
        let raw = try RawObject(json: Array(#"{"cafe\#u{301}": 1}"#.utf8))
        #expect(raw.value(atPath: ["caf\u{e9}"]) == .integer(1))
        #expect(raw.value(atPath: ["caf\u{e9}"]) == raw.value.value(atPath: ["caf\u{e9}"]))
    }

    /// Strings are scanned eight bytes at a time: a quote, an escape or a control character
    /// at every position of a word, in keys and values, ends or breaks the run where the
    /// byte-by-byte reading would, and bytes above 0x7F never do.
    @Test func aStringEndsWhereItsByteIsWhateverItsPlaceInAWord() throws {
        for length in 0..<24 {
            for special in ["\"", "\\n", "\\u00e9", "\u{1}", "é", "\u{7f}"] {
                let body = String(repeating: "a", count: length) + special + String(repeating: "b", count: 9)
                let text = "{\"k\(body)\": \"\(body)\", \"n\": 1}"
                let parsed = try? JSONParser.parse(text)
                let raw = try? RawObject(json: Array(text.utf8))
                #expect((parsed == nil) == (raw == nil), "\(text)")
                if let parsed, let raw { #expect(raw.value == parsed, "\(text)") }
                // A bare quote ends the key or value early, a control character is refused: neither is JSON.
                #expect((parsed == nil) == (special == "\"" || special == "\u{1}"), "\(text)")
                if let parsed { #expect(raw?.value(atPath: ["n"]) == .integer(1) && parsed["n"] == .integer(1)) }
            }
        }
    }

    @Test func aPageItemKeepsItsOwnTextAndTheStateFileStoresIt() throws {
        let page = Data(
            (#"{"result": [ {"cancellation_id": 7, "posting_number": "1-2-3", "auto_approve_date": "2026-11-27T10:00:00Z", "#
                + #""extra": {"note": "\u043f\u0440\u0438\u0432\u0435\u0442", "n": 1.50}} ], "last_id": 7}"#).utf8)
        let item = try #require(try OzonWire.decodePage(page).items.first)
        let request = try OzonWire.request(from: item, source: "ozon")
        // The bytes as sent: escapes and number spelling untouched.
        let sent = #"{"cancellation_id": 7, "posting_number": "1-2-3", "auto_approve_date": "2026-11-27T10:00:00Z", "#
            + #""extra": {"note": "\u043f\u0440\u0438\u0432\u0435\u0442", "n": 1.50}}"#
        #expect(request.rawObject.description == sent)
        #expect(request.rawObject.value(atPath: ["extra", "note"]) == "привет")
        #expect(request.raw["extra"]?["n"] == JSONValue.number(1.5))

        // The state file keeps those bytes, and what is read back has the same change
        // fingerprint as the listing (a restart does not make every request "changed").
        let store = try SQLiteStateStore(path: try temporaryStatePath("cw-raw-text"))
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        try store.save([TrackedRequest(request: request, status: .pending, firstSeen: now, lastSeen: now)], health: nil)
        let reloaded = try #require(try store.loadTracked().first?.request.rawObject)
        #expect(reloaded.description == sent)
        #expect(reloaded.fingerprint(ignoring: []) == request.rawObject.changeFingerprint)
        #expect(request.rawObject.changeFingerprint != nil)
    }
}
