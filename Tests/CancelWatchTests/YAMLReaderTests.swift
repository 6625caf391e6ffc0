import Foundation
import Testing

@testable import CancelWatch

/// The typed-YAML reader under the config and the rule tests.
@Suite struct YAMLReaderTests {
    /// A reader of `text` (as `f.yaml`) and its top-level mapping.
    func top(_ text: String) throws -> (reader: YAMLReader, mapping: YAMLMapping) {
        let reader = YAMLReader(text: text, path: "f.yaml")
        let root = try #require(reader.compose(ifEmpty: "empty"))
        return (reader, try #require(reader.mapping(root, name: "the top level", expected: "a mapping")))
    }

    @Test func anUnknownKeyIsUnderlinedWithTheClosestKnownKeyAsItsSuggestion() throws {
        let (reader, m) = try top("name: x\ntimout: 5s\ncolour: red\n")
        reader.checkKeys(m, allowed: ["name", "timeout"])
        #expect(reader.sortedDiagnostics().map(\.description) == [
            "f.yaml:2:1: error: unknown key 'timout' at the top level; did you mean 'timeout'?",
            "f.yaml:3:1: error: unknown key 'colour' at the top level (known keys: name, timeout)",
        ])
        #expect(reader.diagnostics[0].length == 6 && reader.diagnostics[0].suggestion == "timeout")
    }

    @Test func aRangeBelowZeroReadsALeadingSignAndEveryOtherRangeRefusesIt() throws {
        let (reader, m) = try top("a: -30m\nb: +1h\nc: 2h\nd: -30m\n")
        let signed = -3600.0...3600
        #expect(reader.duration(m, "a", range: signed) == -1800)
        #expect(reader.duration(m, "b", range: signed) == 3600)
        #expect(reader.duration(m, "c", range: signed) == nil)
        #expect(reader.duration(m, "d", range: 0...3600) == nil)
        #expect(reader.sortedDiagnostics().map(\.description) == [
            "f.yaml:3:4: error: 'c' at the top level must be from -1h to 1h, not '2h'",
            "f.yaml:4:4: error: invalid duration '-30m' for 'd' at the top level: write a number and a unit (ms, s, m, h, d, w), e.g. 60s or 1h30m",
        ])
    }

    @Test func aDurationWithoutAUnitSaysWhichUnitToAdd() throws {
        let (reader, m) = try top("wait: 30\n")
        #expect(reader.duration(m, "wait", range: 1...60) == nil)
        #expect(reader.diagnostics.map(\.message) == ["'wait' at the top level needs a unit: write 30s for seconds (units: ms, s, m, h, d, w)"])
    }

    @Test func aValueOfTheWrongShapeSaysWhatWasExpectedAndWhatItIs() throws {
        let (reader, m) = try top("n: [1]\nlist: {a: 1}\nitems: [x, {y: 1}]\n")
        #expect(reader.integer(m, "n", range: 0...9) == nil)
        #expect(reader.items(m, "list", expected: "a list of things") == nil)
        #expect(reader.scalars(m, "items", expected: "names")?.map(\.text) == ["x"])
        #expect(reader.sortedDiagnostics().map(\.message) == [
            "'n' at the top level must be a whole number, not a list",
            "'list' at the top level must be a list of things, not a mapping",
            "items of 'items' at the top level must be text, not a mapping",
        ])
    }

    @Test func aScalarCountsAsAListOfOneAndAnAbsentOrEmptyKeyAsNone() throws {
        let (reader, m) = try top("one: x\nnone: ~\n")
        #expect(reader.scalars(m, "one", expected: "names")?.map(\.text) == ["x"])
        #expect(reader.scalars(m, "none", expected: "names") == nil)
        #expect(reader.scalars(m, "absent", expected: "names") == nil)
        #expect(reader.diagnostics.isEmpty)
    }

    @Test func aChoiceTakesAnyCaseOrAnAliasAndOtherwiseNamesTheClosest() throws {
        let (reader, m) = try top("a: Ozon\nb: red\nc: ozn\n")
        #expect(reader.choice(m, "a", Marketplace.self) == .ozon)
        #expect(reader.choice(m, "b", Marketplace.self, aliases: ["red": .xiaohongshu]) == .xiaohongshu)
        #expect(reader.choice(m, "c", Marketplace.self, what: "marketplace") == nil)
        #expect(reader.diagnostics.map(\.message) == [
            "invalid marketplace 'ozn' at the top level; expected one of: ozon, xiaohongshu (did you mean 'ozon'?)"
        ])
        #expect(reader.diagnostics.first?.suggestion == "ozon")
    }

    @Test func syntaxErrorsAndDuplicateKeysAreReportedAtTheirLine() {
        let syntax = YAMLReader(text: "a: [1\nb: 2\n", path: "f.yaml")
        #expect(syntax.compose(ifEmpty: "empty") == nil)
        #expect(syntax.diagnostics.count == 1 && syntax.diagnostics[0].line >= 1 && syntax.diagnostics[0].message.hasPrefix("YAML syntax error"))
        let duplicate = YAMLReader(text: "a: 1\na: 2\n", path: "f.yaml")
        #expect(duplicate.compose(ifEmpty: "empty") == nil)
        #expect(duplicate.diagnostics.map(\.message) == ["duplicate key 'a' in the same mapping: each key may appear once"])
        let empty = YAMLReader(text: "# nothing\n", path: "f.yaml")
        #expect(empty.compose(ifEmpty: "the file is empty") == nil)
        #expect(empty.diagnostics.map(\.description) == ["f.yaml: error: the file is empty"])
    }

    @Test func diagnosticsComeInFileOrderEachOnce() throws {
        let (reader, m) = try top("a: x\nb: y\n")
        reader.report("second", at: m.value("b")?.mark)
        reader.report("first", at: m.value("a")?.mark)
        reader.report("second", at: m.value("b")?.mark)
        #expect(reader.sortedDiagnostics().map(\.message) == ["first", "second"])
    }

    /// The same mistakes, once in a config and once in a rule test file.
    @Test func theConfigAndARuleTestFileSayTheSameAboutTheSameMistake() {
        let mistakes = "timezon: UTC\ntimezone: Europe/Moskow\n"
        var config: [String] = []
        do {
            _ = try CancelWatchConfig.parse(yaml: mistakes + "sources: []\n", path: "f.yaml", environment: [:])
        } catch {
            config = error.diagnostics.map(\.message)
        }
        let ruleTest = RuleTestParser.parse(text: mistakes + "rules: a.rules\ntests: []\n", path: "f.yaml").diagnostics.map(\.message)
        let expected = [
            "unknown key 'timezon' at the top level; did you mean 'timezone'?",
            "unknown timezone 'Europe/Moskow'; did you mean 'Europe/Moscow'?",
        ]
        #expect(Array(config.prefix(2)) == expected)
        #expect(Array(ruleTest.prefix(2)) == expected)
    }
}
