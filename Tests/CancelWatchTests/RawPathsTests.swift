import Foundation
import Testing

@testable import CancelWatch

@Suite struct RawPathsTests {
    let raw: JSONValue = [
        "a": ["b": 7, "c": "x", "d": ["e": true]],
        "items": [["sku": "s0", "qty": 1], ["sku": "s1", "qty": 2], ["sku": "s2", "qty": 3]],
        "flag": true, "big": ["k1": 1, "k2": 2, "k3": [1, 2, 3]], "nothing": nil,
    ]

    /// Every path kept answers as the whole object does; nothing else is kept.
    @Test func aPrunedObjectAnswersItsPathsAsTheWholeOneDoes() {
        let paths: [[String]] = [
            ["a", "b"], ["items", "2", "sku"], ["items", "0"], ["flag"], ["missing"], ["a", "zz", "q"], ["items", "7"],
            ["items", "1", "sku", "deeper"], ["nothing"], ["a", "d"], ["a", "d", "e"],
        ]
        let kept = RawPaths(paths)
        let pruned = kept.prune(raw)
        for path in paths {
            #expect(pruned.value(atPath: path) == raw.value(atPath: path), "raw.\(path.joined(separator: "."))")
        }
        #expect(pruned["big"] == nil)
        #expect(pruned["a"]?["c"] == nil)
        #expect(pruned.value(atPath: ["items", "1"]) == .null, "an index on the way to a later one is a placeholder")
        #expect(RawPaths.none.prune(raw) == .object([:]))
        #expect(RawPaths.everything.prune(raw) == raw)
        #expect(kept.prune(.null) == .null)
    }

    @Test func aPathUnderAnotherIsKeptByTheShorterOne() {
        let paths = RawPaths([["a", "d", "e"], ["a"], ["flag"], ["flag"]])
        #expect(paths.description == "raw.a, raw.flag")
        #expect(paths.prune(raw)["a"] == raw["a"])
        #expect(RawPaths([["x"], []]).isEverything)
    }

    @Test func coversAndUnion() {
        let ab = RawPaths([["a", "b"]])
        let a = RawPaths([["a"]])
        #expect(a.covers(ab))
        #expect(!ab.covers(a))
        #expect(ab.covers(.none))
        #expect(RawPaths.everything.covers(a))
        #expect(!a.covers(.everything))
        #expect(a.union(ab) == a)
        #expect(ab.union(.everything).isEverything)
        #expect(ab.union(RawPaths([["flag"]])) == RawPaths([["a", "b"], ["flag"]]))
    }

    /// The paths compiled rules read: conditions and messages.
    @Test func compiledRulesNameTheirRawPaths() throws {
        let result = RulesFixture.compile(
            """
            rule "one" {
              when raw.is_express and raw.items.0.sku == "x"
              notify ops
              message "{{order}} {{raw.delivery.method}}"
            }
            rule "two" {
              when remaining <= 1h
              notify ops
            }
            """)
        let rules = try #require(result.ruleSet)
        #expect(rules.rules[0].rawPaths == RawPaths([["is_express"], ["items", "0", "sku"], ["delivery", "method"]]))
        #expect(rules.rules[1].rawPaths == .none)
        #expect(rules.rawPaths == rules.rules[0].rawPaths)
        #expect(rules.rules.rawPaths == rules.rules[0].rawPaths)
    }
}
