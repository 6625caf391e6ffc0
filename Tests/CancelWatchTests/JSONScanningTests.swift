@testable import CancelWatch
import Foundation
import MarketSim
import Testing

/// A raw object kept as the text the marketplace sent must answer everything as the
/// parsed value would: its value, `raw.a.b` paths, the change fingerprint, and which
/// texts are JSON at all. Checked against `JSONParser` on generated and mutated text.
@Suite struct JSONScanningTests {
    static func randomString(using rng: inout SeededGenerator) -> String {
        let pieces = ["a", "b", "ключ", "用户", "\"", "\\", "/", "\n", "\u{1}", "😀", "é", " ", "x_y"]
        return (0..<Int.random(in: 0...4, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    static func randomValue(depth: Int = 0, using rng: inout SeededGenerator) -> JSONValue {
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
    static func variant(of value: JSONValue, using rng: inout SeededGenerator) -> String {
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
        var rng = SeededGenerator(seed: 2026)
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
        var rng = SeededGenerator(seed: 77)
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
        // Written with an escape, on an item that is not the page's first (its place is kept relative to the item).
        let page = #"{"result": [{"cancellation_id": 1, "auto_approve_date": "2026-11-27T10:00:00Z"}, "#
            + #"{"cancellation_id": 2, "auto_approve_date": "2026-11-27T10:00:00Z", "order_date": "2026\u002d11-20T08:00:00Z"}]}"#
        let second = try #require(try OzonWire.decodePage(Data(page.utf8)).items.last)
        #expect(try OzonWire.request(from: second, source: "ozon").createdAt == ordered)
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
        // (as written in JSON, as decoded; nil: not JSON)
        let specials: [(String, String?)] = [
            ("\"", nil), ("\u{1}", nil), ("\u{0}", nil), ("\u{1F}", nil), (" ", " "), ("!", "!"), ("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n"), ("\\u00e9", "é"), ("é", "é"),
            ("¢", "¢"), ("Ü", "Ü"), ("\u{85}", "\u{85}"), ("\u{7f}", "\u{7f}"), ("用", "用"),
        ]
        for length in 0..<24 {
            for (special, decoded) in specials {
                let a = String(repeating: "a", count: length)
                let b = String(repeating: "b", count: 9)
                let text = "{\"k\(a)\(special)\(b)\": \"\(a)\(special)\(b)\", \"n\": 1}"
                let raw = try? RawObject(json: Array(text.utf8))
                #expect((try? JSONParser.parse(text)) == raw?.value, "\(text)")
                guard let decoded else {
                    // A bare quote ends the key early, a control character is refused: neither is JSON.
                    #expect(raw == nil, "\(text)")
                    continue
                }
                // The key is found by the text walk and the value read as written (not only as
                // the parser, which shares the scan, reads it).
                let key = "k" + a + decoded + b
                #expect(raw?.value == .object([key: .string(a + decoded + b), "n": .integer(1)]), "\(text)")
                #expect(raw?.value(atPath: [key]) == .string(a + decoded + b), "\(text)")
                // Past the first member (skipped, not read) to the second.
                #expect(raw?.value(atPath: ["n"]) == .integer(1), "\(text)")
            }
        }
    }

    @Test func keysAreMatchedByTheirTextHoweverTheyAreWritten() throws {
        // An empty key, at the top and nested (its bytes are empty: compared without them).
        let empty = try RawObject(json: Array(#"{"": 1, "a": {"": 2}}"#.utf8))
        #expect(empty.value(atPath: [""]) == .integer(1) && empty.value(atPath: ["a", ""]) == .integer(2))
        // Keys written with escapes still name the fields the clients read.
        let ozon = #"{"result": [{"cancellation\u005fid": 7, "auto\u005fapprove_date": "2026-11-27T10:00:00Z"}], "last_id": 7}"#
        let item = try #require(try OzonWire.decodePage(Data(ozon.utf8)).items.first)
        let request = try OzonWire.request(from: item, source: "ozon")
        #expect(request.id == "7" && request.deadline == Date(timeIntervalSince1970: 1_795_773_600))
        let envelope = #"{"success": true, "error_code": 0, "data": {"total_page": 1, "current_page": 1, "package_list": "#
            + #"[{"package\u005fid": "P1", "cancel_time": 1, "max_audit_time": 5, "st\u0061tus": "unaudited"}]}}"#
        let red = try #require(try RedWire.decodePage(Data(envelope.utf8)).items.first)
        #expect(red.packageID == "P1" && red.status == "unaudited")
    }

    /// The countdown member is cut out wherever it stands, however its key is written; the
    /// client's fingerprint (taken while the page is read) is the one taken from the text.
    @Test func theCountdownIsCutOutWhereverItStands() throws {
        let variants: [(String, String)] = [
            (#"{"max_audit_time": 5, "a": 1, "b": "x"}"#, #"{"max_audit_time": 9, "a": 1, "b": "x"}"#),
            (#"{"a": 1, "max_audit_time": 5, "b": "x"}"#, #"{"a": 1, "max_audit_time": 9, "b": "x"}"#),
            (#"{"a": 1, "b": "x", "max_audit_time": 5}"#, #"{"a": 1, "b": "x", "max_audit_time": 9}"#),
            (#"{"max_audit_time": 5}"#, #"{"max_audit_time": 9}"#),
            (#"{ "a" : 1 , "max_audit_time" : 5 , "b" : "x" }"#, #"{ "a" : 1 , "max_audit_time" : 9 , "b" : "x" }"#),
            (#"{"a": 1, "max\u005faudit_time": 5, "b": "x"}"#, #"{"a": 1, "max\u005faudit_time": 9, "b": "x"}"#),
            (#"{"max_audit_time": 5, "max_audit_time": 6, "a": 1}"#, #"{"max_audit_time": 7, "max_audit_time": 8, "a": 1}"#),
        ]
        var seen: [UInt64] = []
        for (before, after) in variants {
            var prints: [UInt64] = []
            for text in [before, after] {
                let page = #"{"success": true, "error_code": 0, "data": {"package_list": ["# + text + "]}}"
                let item = try #require(try RedWire.decodePage(Data(page.utf8)).items.first)
                let fromText = item.raw.fingerprint(ignoring: Marketplace.xiaohongshu.volatileRawKeys)
                #expect(item.raw.changeFingerprint == fromText, "\(text)")
                prints.append(fromText)
            }
            #expect(prints[0] == prints[1], "\(before)")
            seen.append(prints[0])
        }
        // The escaped key is the same member: what is left is the second variant's text.
        #expect(seen[5] == seen[1])
        // The rest of each text still counts: the other variants all differ.
        seen.remove(at: 5)
        #expect(Set(seen).count == seen.count)
    }

    @Test func theDigestSeesEveryByteAndTheLength() {
        func digest(_ bytes: [UInt8]) -> UInt64 {
            var d = FastDigest()
            bytes.withUnsafeBytes { d.add(bytes: $0) }
            return d.value
        }
        let text = (0..<130).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        // Every length (short, one lane, four lanes, tails of every size) gives its own digest.
        var prefixes = Set<UInt64>()
        for n in 0...text.count { prefixes.insert(digest(Array(text[0..<n]))) }
        #expect(prefixes.count == text.count + 1)
        // A change of any one byte, at any place in any of those shapes, changes it.
        for n in [1, 7, 8, 9, 15, 16, 31, 32, 63, 64, 65, 95, 96, 100, 130] {
            let base = Array(text[0..<n])
            for i in 0..<n {
                var changed = base
                changed[i] ^= 0x20
                #expect(digest(changed) != digest(base), "length \(n), byte \(i)")
            }
        }
    }

    @Test func aTextSetKnowsEachTextByItsBytesAsItGrows() {
        var set = TextSet()
        let texts = (0..<5000).map { "P\(100_000_000_000_000 + $0 * 7919)@\(1_700_000_000 + $0 % 7)" }
        for (n, text) in texts.enumerated() {
            let first = set.insert(text)
            let again = set.insert(text)
            #expect(first && !again, "\(n)")
        }
        #expect(set.count == texts.count)
        #expect(texts.allSatisfy { set.contains($0) })
        #expect(!set.contains("P100000000000000@1700000001"))
        #expect(!set.contains(""))
        // Equal to Swift, not in bytes: two ids (é composed, and e with a combining accent).
        let composed = set.insert("caf\u{E9}")
        let combining = set.insert("cafe\u{301}")
        #expect(composed && combining)
        #expect(set.count == texts.count + 2)
    }

    @Test func aTimestampIsReadExactlyAsRFC3339AndNothingElse() {
        let accepted: [(String, Double)] = [
            ("2026-11-23T20:00:00Z", 1_795_464_000), ("2026-11-23t20:00:00z", 1_795_464_000), ("2026-11-23 20:00:00Z", 1_795_464_000),
            ("2026-11-23T20:00:00.5Z", 1_795_464_000.5), ("2026-11-23T23:00:00+03:00", 1_795_464_000),
            ("2026-11-23T19:30:00-00:30", 1_795_464_000), ("2026-11-23T20:00:00.123456Z", 1_795_464_000.123456),
        ]
        for (text, seconds) in accepted {
            let date = Timestamp.parse(text)
            #expect(date.map { abs($0.timeIntervalSince1970 - seconds) < 1e-6 } == true, "\(text)")
        }
        let rejected = [
            "", "2026-11-23T20:00:00", "2026-11-23T20:00:0Z", "2026-11-23T20:00:00.Z", "2026-11-23T20:00:00.5",
            "2026-11-23T20:00:00+03", "2026-11-23T20:00:00+0300", "2026-11-23T20:00:00+03:0", "2026-11-23T20:00:00+03:00Z",
            "2026-11-23T20:00:00ZZ", "2026-11-23X20:00:00Z", "2026/11/23T20:00:00Z", "2026-11-23T20-00:00Z", "2026-11-23T20:00-00Z",
            "x026-11-23T20:00:00Z", "2026-x1-23T20:00:00Z", "2026-11-x3T20:00:00Z", "2026-11-23Tx0:00:00Z", "2026-11-23T20:x0:00Z",
            "2026-11-23T20:00:x0Z", "2026-13-23T20:00:00Z", "2026-00-23T20:00:00Z", "2026-11-32T20:00:00Z", "2026-11-23T24:00:00Z",
            "2026-11-23T20:60:00Z", "2026-11-23T20:00:61Z", "2026-11-23T20:00:00+x3:00", "2026-11-23T20:00:00 Z",
        ]
        for text in rejected { #expect(Timestamp.parse(text) == nil, "\(text)") }
    }

    @Test func aPageItemKeepsItsOwnText() throws {
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
        // Kept as its stretch of the page: it equals (and hashes as) the same text kept alone.
        let alone = try RawObject(json: Array(sent.utf8))
        #expect(request.rawObject == alone && request.rawObject.hashValue == alone.hashValue)
        #expect(request.rawObject.isObject && request.rawObject.jsonBytes == Array(sent.utf8))
        #expect(request.rawObject.isSharedText)
        // Equal to the same object as a value, and to a stretch of another page spaced otherwise.
        #expect(request.rawObject == RawObject(request.raw) && request.rawObject.hashValue == RawObject(request.raw).hashValue)
        let respaced = #"{"result": [ "# + sent.replacingOccurrences(of: ", ", with: ",\n  ") + "]}"
        let other = try #require(try OzonWire.decodePage(Data(respaced.utf8)).items.first?.raw)
        #expect(other.isSharedText && other.description != sent)
        #expect(other == request.rawObject && other.hashValue == request.rawObject.hashValue)
        // An event (which may wait long for its sink) holds its own copy, not the page.
        let event = AlertEvent(
            id: "e", kind: .firing, rule: "r", severity: .warning, source: "ozon", marketplace: .ozon, request: request,
            occurredAt: Date(timeIntervalSince1970: 0), message: "", sinks: [])
        let held = try #require(event.request?.rawObject)
        #expect(!held.isSharedText && held == request.rawObject && held.changeFingerprint == request.rawObject.changeFingerprint)
        #expect(request.rawObject.changeFingerprint != nil)
        // (The store keeps those bytes with that fingerprint: `StateStoreContractTests`.)
    }
}
