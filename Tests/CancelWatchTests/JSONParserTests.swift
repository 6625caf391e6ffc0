import Testing
@testable import CancelWatch

@Suite struct JSONParserTests {
    @Test func acceptsTrailingCommas() throws {
        let v = try JSONParser.parse(#"{"a": [1, 2,], "b": "x",}"#)
        #expect(v["a"] == [1, 2])
        #expect(v["b"] == "x")
    }
}
