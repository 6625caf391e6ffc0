import Foundation
import Testing
@testable import CancelWatch

@Suite struct JSONParserTests {
    @Test func acceptsTrailingCommas() throws {
        let v = try JSONParser.parse(#"{"a": [1, 2,], "b": "x",}"#)
        #expect(v["a"] == [1, 2])
        #expect(v["b"] == "x")
    }

    @Test func serializedStringsRoundTripThroughThisParserAndFoundations() throws {
        var random = SystemRandomNumberGenerator()
        let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "/", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}", "\u{E2}", "ж", "退", "😀", " "]
        for _ in 0..<300 {
            var text = ""
            for _ in 0..<Int.random(in: 0..<24, using: &random) {
                text.unicodeScalars.append(alphabet[Int.random(in: 0..<alphabet.count, using: &random)])
            }
            let value: JSONValue = ["k\(text)": .string(text), "n": .integer(Int64.random(in: Int64.min...Int64.max, using: &random)), "a": [.string(text), .null, true]]
            let bytes = value.serializedBytes()
            #expect(try JSONParser.parse(Data(bytes)) == value, "\(String(decoding: bytes, as: UTF8.self))")
            let foundation = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(foundation["n"] != nil)
            #expect(foundation["k\(text)"] as? String == text)
            #expect(!String(decoding: bytes, as: UTF8.self).unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{2028}" || $0 == "\u{2029}" })
        }
        #expect(JSONValue.integer(Int64.min).serialized() == "-9223372036854775808")
        #expect(JSONValue.number(.nan).serialized() == "null")
    }
}
