import Foundation
import Testing

@testable import CancelWatch

/// The parser builds objects at their final size, reads integers from the bytes and
/// shares repeated strings; none of that may change what it reads.
@Suite struct JSONParserSharingTests {
    @Test func repeatedKeysAndValuesReadTheSame() throws {
        let item = #"{"cancellation_initiator": "CLIENT", "state": {"name": "На согласовании", "state": "ON_APPROVAL"}, "n": 1}"#
        let page = "{\"result\": [" + Array(repeating: item, count: 300).joined(separator: ",") + "]}"
        let value = try JSONParser.parse(page)
        let items = try #require(value["result"]?.arrayValue)
        #expect(items.count == 300)
        for element in items {
            #expect(element["cancellation_initiator"] == "CLIENT")
            #expect(element["state"]?["name"] == "На согласовании")
            #expect(element["state"]?["state"] == "ON_APPROVAL")
            #expect(element["n"] == 1)
        }
    }

    @Test func stringsThatCollideInTheCacheStayDistinct() throws {
        // Same length, first, middle and last byte: the same cache slot, different text.
        let value = try JSONParser.parse(#"["abXcd", "abXzd", "abXcd", "aXd", "aYd", "", "", "abXzd"]"#)
        #expect(value == ["abXcd", "abXzd", "abXcd", "aXd", "aYd", "", "", "abXzd"])
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        let value = try JSONParser.parse(#"{"a": 1, "b": {"c": [1, {"d": 2, "d": 3}]}, "a": 2}"#)
        #expect(value == ["a": 2, "b": ["c": [1, ["d": 3]]]])
    }

    @Test func integersAndNumbers() throws {
        let value = try JSONParser.parse(
            #"[0, -0, 7, -42, 123456789012345678, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1.5, -2e3, 1E2, 0.000001]"#)
        #expect(
            value == [
                .integer(0), .integer(0), .integer(7), .integer(-42), .integer(123_456_789_012_345_678), .integer(Int64.max),
                .integer(Int64.min), .number(9_223_372_036_854_775_808), .number(1.5), .number(-2000), .number(100), .number(0.000001),
            ])
    }

    @Test func nestedEmptyAndTrailingCommas() throws {
        let value = try JSONParser.parse(#"{"a": [], "b": {}, "c": [[], [{}], [1,],], "d": {"e": {},},}"#)
        #expect(value == ["a": [], "b": [:], "c": [[], [[:]], [1]], "d": ["e": [:]]])
    }

    @Test func escapedStringsAndErrorsStillWork() throws {
        let value = try JSONParser.parse(#"{"k\"ey": "line\nbreak \u041e\u0437\u043e\u043d \ud83d\ude00", "k\"ey": "x"}"#)
        #expect(value == ["k\"ey": "x"])
        let escaped = try JSONParser.parse(#"["line\nbreak \u041e\u0437\u043e\u043d \ud83d\ude00"]"#)
        #expect(escaped == ["line\nbreak Озон 😀"])
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a": [1, 2}"#) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a": -}"#) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(#"{"a" 1}"#) }
    }
}
