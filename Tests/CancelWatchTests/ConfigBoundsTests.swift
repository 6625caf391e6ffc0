import Foundation
import Testing
@testable import CancelWatch

/// Every number in the config is bounded before any arithmetic, with ranges the README
/// lists: an absurd value (huge, negative, NaN-like, overflowing) is a diagnostic at its
/// line and column, never a trap later (`Int(timeout * 1000)` once trapped on
/// `timeout: 99999999999999999999w`, which `check` passed). The same holds for the
/// durations of rule files and rule test files.
@Suite struct ConfigBoundsTests {
    /// A numeric field: its key, the config with `value` in it, and its documented range.
    struct Field: CustomStringConvertible, Sendable {
        var key: String
        var yaml: @Sendable (String) -> String
        var lowest: String
        var highest: String
        var justAbove: String
        var description: String { key }
    }

    static func source(_ setting: String) -> String {
        "sources:\n  - {name: shop, kind: ozon, client_id: 1, api_key: k, \(setting)}\n"
    }

    static func sink(_ item: String) -> String {
        source("poll_interval: 1m") + "sinks:\n  - \(item)\n"
    }

    static let durations: [Field] = [
        Field(key: "poll_interval", yaml: { source("poll_interval: \($0)") }, lowest: "1s", highest: "1d", justAbove: "1d1ms"),
        Field(key: "timeout", yaml: { source("timeout: \($0)") }, lowest: "1ms", highest: "10m", justAbove: "10m1ms"),
        Field(
            key: "timeout", yaml: { sink("{name: hook, kind: webhook, url: \"https://h.example.com\", timeout: \($0)}") },
            lowest: "1ms", highest: "10m", justAbove: "601s"),
        Field(
            key: "timeout",
            yaml: { sink("{name: mail, kind: email, url: \"smtp://m.example.com\", from: a@example.com, to: b@example.com, timeout: \($0)}") },
            lowest: "1ms", highest: "10m", justAbove: "11m"),
        Field(
            key: "initial_delay",
            yaml: { sink("{name: hook, kind: webhook, url: \"https://h.example.com\", retry: {initial_delay: \($0), max_delay: 1d}}") },
            lowest: "1ms", highest: "1d", justAbove: "25h"),
        Field(
            key: "max_delay",
            yaml: { sink("{name: hook, kind: webhook, url: \"https://h.example.com\", retry: {initial_delay: 1ms, max_delay: \($0)}}") },
            lowest: "1ms", highest: "1d", justAbove: "2d"),
        Field(
            key: "silent_after", yaml: { source("poll_interval: 1m") + "health: {silent_after: \($0)}\n" }, lowest: "1s",
            highest: "1w", justAbove: "1w1ms"),
        Field(
            key: "lease_ttl", yaml: { source("poll_interval: 1m") + "lease_ttl: \($0)\n" }, lowest: "5s", highest: "10m",
            justAbove: "10m1ms"),
    ]

    static let integers: [Field] = [
        Field(key: "down_after", yaml: { source("poll_interval: 1m") + "health: {down_after: \($0)}\n" }, lowest: "1", highest: "1000000", justAbove: "1000001"),
        Field(
            key: "max_attempts",
            yaml: { sink("{name: hook, kind: webhook, url: \"https://h.example.com\", retry: {max_attempts: \($0)}}") },
            lowest: "0", highest: "1000000", justAbove: "1000001"),
        Field(
            key: "page_size", yaml: { "sources:\n  - {name: red, kind: red, app_key: k, app_secret: s, page_size: \($0)}\n" },
            lowest: "1", highest: "100", justAbove: "101"),
        Field(
            key: "max_per_hour", yaml: { source("poll_interval: 1m") + "actions: {max_per_hour: \($0)}\n" }, lowest: "1",
            highest: "10000", justAbove: "10001"),
    ]

    static let absurdDurations = [
        "99999999999999999999w", "99999999999999w", String(repeating: "9", count: 400) + "ms", "1" + String(repeating: "0", count: 30) + "d",
        "521w", "0s", "0ms", "-5s", "-99999999999999999999w", "nan", "NaN", "inf", "-inf", "infinity", "1e999s", "1e3s", "1.5.5s",
        "0x10s", "1_000s", "1s1s", "s", "w", "", "  ", "9223372036854775807ms", "9223372036854775808s",
    ]

    static let absurdIntegers = [
        "99999999999999999999", "-99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-1", "1e3", "1.5", "nan", "inf", "0x10", "1_000", "10s", String(repeating: "9", count: 400),
    ]

    /// Loads `yaml`; returns the diagnostics (empty when it loaded).
    func diagnostics(_ yaml: String) -> [ConfigDiagnostic] {
        do {
            _ = try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: [:])
            return []
        } catch {
            return error.diagnostics
        }
    }

    func expectRefused(_ field: Field, _ value: String) {
        let yaml = field.yaml(value.isEmpty || value.hasPrefix(" ") ? "\"\(value)\"" : value)
        let found = diagnostics(yaml)
        #expect(
            found.contains { $0.message.contains("'\(field.key)'") && $0.line >= 1 && $0.column >= 1 },
            "\(field.key): \(value) was not refused at its line and column: \(found)\n\(yaml)")
    }

    @Test(arguments: durations)
    func everyDurationRefusesAbsurdValuesAtItsLineAndColumn(field: Field) {
        for value in Self.absurdDurations + [field.justAbove] { expectRefused(field, value) }
    }

    @Test(arguments: integers)
    func everyWholeNumberRefusesAbsurdValuesAtItsLineAndColumn(field: Field) {
        for value in Self.absurdIntegers + [field.justAbove] { expectRefused(field, value) }
    }

    @Test(arguments: durations + integers)
    func theEndsOfEveryRangeLoad(field: Field) {
        for value in [field.lowest, field.highest] {
            #expect(diagnostics(field.yaml(value)).isEmpty, "\(field.key): \(value)")
        }
    }

    @Test func aLeaseTTLIsThirtySecondsUnlessWrittenAndOneTooShortSaysTheRange() throws {
        let yaml = Self.source("poll_interval: 1m")
        #expect(try CancelWatchConfig.parse(yaml: yaml, path: "/etc/cw/cancelwatch.yaml", environment: [:]).leaseTTL == 30)
        #expect(try CancelWatchConfig.parse(yaml: yaml + "lease_ttl: 2m\n", path: "/etc/cw/cancelwatch.yaml", environment: [:]).leaseTTL == 120)
        #expect(
            diagnostics(yaml + "lease_ttl: 4s\n").map(\.message) == ["'lease_ttl' at the top level must be from 5s to 10m, not '4s'"])
    }

    @Test func aHugeTimeoutSaysTheRange() {
        let found = diagnostics(Self.source("timeout: 99999999999999999999w"))
        #expect(
            found.map(\.headline) == [
                "/etc/cw/cancelwatch.yaml:2:65: error: 'timeout' in source 'shop' must be from 1ms to 10m, not '99999999999999999999w'"
            ])
    }

    @Test(arguments: ["65536", "99999999999999999999", "-1", "nan"])
    func aListenPortOutOfRangeIsRefused(port: String) {
        let found = diagnostics("listen: 127.0.0.1:\(port)\n" + Self.source("poll_interval: 1m"))
        #expect(found.contains { $0.line == 1 && $0.message.contains("listen") }, "\(found)")
    }

    /// The URLs of the config with `port` after their host: a base_url, a webhook url, an email url.
    static let urlFields: [(key: String, yaml: @Sendable (String) -> String)] = [
        ("'base_url' in source 'shop'", { source("base_url: \"https://api.example.com:\($0)\"") }),
        ("'url' in sink 'hook'", { sink("{name: hook, kind: webhook, url: \"https://h.example.com:\($0)/hook\"}") }),
        ("'url' in sink 'mail'", {
            sink("{name: mail, kind: email, url: \"smtp://m.example.com:\($0)\", from: a@example.com, to: b@example.com}")
        }),
    ]

    @Test(arguments: ["0", "65536", "99999", "99999999999999999999"])
    func aPortInsideAURLOutOfRangeIsRefusedAtItsLineAndColumn(port: String) {
        for (field, yaml) in Self.urlFields {
            let found = diagnostics(yaml(port))
            #expect(
                found.contains { $0.message.contains(field) && $0.line >= 2 && $0.column > 1 },
                "\(field) with port \(port): \(found)")
        }
    }

    @Test func aPortInsideAURLSaysTheRange() {
        let found = diagnostics(Self.urlFields[2].yaml("99999"))
        #expect(found.map(\.headline) == [
            "/etc/cw/cancelwatch.yaml:4:57: error: 'url' in sink 'mail' has port 99999: a port is from 1 to 65535"
        ])
    }

    @Test(arguments: ["1", "65535"])
    func theEndsOfTheURLPortRangeLoad(port: String) {
        for (field, yaml) in Self.urlFields {
            #expect(diagnostics(yaml(port)).isEmpty, "\(field) with port \(port)")
        }
    }

    @Test func durationTextNeverReturnsMoreThanTheLongest() {
        for text in Self.absurdDurations {
            if let seconds = DurationText.parse(text) {
                #expect(seconds.isFinite && seconds >= 0 && seconds <= DurationText.longest, "\(text) → \(seconds)")
            }
        }
        #expect(DurationText.parse("520w") == DurationText.longest)
        #expect(DurationText.isTooLong("99999999999999999999w"))
        #expect(!DurationText.isTooLong("1h"))
    }

    // MARK: Rules and rule tests

    @Test(arguments: ["repeat every 99999999999999w", "repeat every 521w"])
    func aRepeatIntervalTooLongIsADiagnostic(clause: String) {
        let result = RulesFixture.compile("rule \"r\" {\n  when state == \"pending\"\n  notify ops\n  \(clause)\n}\n")
        #expect(result.ruleSet == nil || result.hasErrors, "\(result.diagnostics)")
        #expect(result.diagnostics.contains { $0.line == 4 && $0.message.contains("too long") }, "\(result.diagnostics)")
    }

    @Test(arguments: ["remaining <= 99999999999999999999999w", "age > 99999999999999w", "remaining < 1" + String(repeating: "0", count: 400) + "s"])
    func aDurationLiteralTooLongIsADiagnostic(condition: String) {
        let found = RulesFixture.diagnostics(when: condition)
        #expect(found.contains { $0.line == 2 && $0.message.contains("too long") }, "\(found)")
    }

    @Test func aRuleTestFileWithAbsurdDurationsIsReportedNotRun() {
        let text = """
            rules: [t.rules]
            tests:
              - name: far
                start: 2025-11-24 10:00
                end: +99999999999999w
                requests:
                  - {id: "1", remaining: 99999999999999w}
                expect: []
            """
        let (file, diagnostics) = RuleTestParser.parse(text: text, path: "t.test.yaml")
        #expect(file == nil)
        #expect(diagnostics.contains { $0.line == 5 }, "\(diagnostics)")
        #expect(diagnostics.contains { $0.line == 7 && $0.message.contains("must be from -3640d to 3640d") }, "\(diagnostics)")
    }
}
